//! Strict request bodies: every merchant
//! endpoint parses its JSON body through [`parse`] against a [`Shape`] that lists the fields it
//! knows and their JSON types.
//!
//! The body is checked while it is read, in document order, so the first problem is the one
//! reported:
//! - a field the endpoint does not know: `unknown_field`, with "did you mean …?" when a known
//!   field is close (a misspelt `shipping_amount` must not silently become 0);
//! - a value of the wrong JSON type: `invalid_type`, naming the expected type in JSON's words;
//!   `null` is a value of the wrong type too, not "absent": `"amount": null` must not read as a
//!   refund or capture of everything (a storefront that lost its number must hear of it);
//! - a key given twice in one object: `duplicate_field` (the last one must not silently win).
//!
//! No message ever repeats a submitted value (it could be a card number or a CVC), and every
//! error names the field's path (`items[0].quantity`). Objects whose keys are the merchant's own
//! (`metadata`) are checked for JSON well-formedness only; their limits are the domain's.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::domain::validation::FieldError;
use crate::errors::ErrorCode;

/// The JSON a field may hold.
#[derive(Debug)]
pub enum Shape {
    String,
    /// A whole number (JSON has one number type: `1.0` and `1e3` are not integers here).
    Integer,
    Boolean,
    /// An object with exactly these optional fields (any may be absent, none may be `null`).
    Object(&'static [(&'static str, Shape)]),
    /// An array of values of one shape.
    Array(&'static Shape),
    /// An object whose keys are the merchant's own, with any JSON values.
    FreeObject,
}

impl Shape {
    /// The JSON type's name, as a message says it.
    fn expected(&self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Integer => "an integer",
            Self::Boolean => "true or false",
            Self::Object(_) | Self::FreeObject => "an object",
            Self::Array(_) => "an array",
        }
    }
}

/// Checks `body` against `shape` (an object at the top), then reads it as `T`; the first
/// problem, in document order, is the error.
pub fn parse<T: DeserializeOwned>(body: &[u8], shape: &'static Shape) -> Result<T, FieldError> {
    check(body, shape)?;
    read(body)
}

/// Checks `body` against `shape` without building anything: keys are borrowed from the body
/// and a field's path is spelt out only for an error (issue 12: building a `Value` of every
/// checkout body, paths and all, was 8 % of a checkout's instructions).
pub fn check(body: &[u8], shape: &'static Shape) -> Result<(), FieldError> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = Node {
        shape: Some(shape),
        path: &Path::Root,
        found: &found,
    };
    match seed.deserialize(&mut de).and_then(|()| de.end()) {
        Ok(()) => Ok(()),
        Err(e) => Err(found.into_inner().unwrap_or_else(|| syntax_error(&e))),
    }
}

/// A query string whose parameter names must be among `known`: the same rules as for bodies
/// (`unknown_field` with a suggestion, `duplicate_field`), so that `?refesh=true` is not quietly
/// a plain read.
pub fn check_query(query: &str, known: &[&str]) -> Result<(), FieldError> {
    let mut seen: Vec<String> = Vec::new();
    for (name, _) in url::form_urlencoded::parse(query.as_bytes()) {
        let param = Path::Field(&Path::Root, &name).spelt();
        if seen.iter().any(|s| *s == name) {
            let message = format!(
                "`{}` is given twice: send each parameter once",
                named(&param)
            );
            return Err(FieldError::new(param, ErrorCode::DuplicateField, message));
        }
        if !known.contains(&name.as_ref()) {
            let mut message = format!("`{}` is not a parameter this endpoint knows", named(&param));
            match closest(&name, known.iter().copied()) {
                Some(k) => message.push_str(&format!(": did you mean `{k}`?")),
                None if known.is_empty() => message.push_str(": it takes none"),
                None => message.push_str(&format!(": it takes {}", known.join(", "))),
            }
            return Err(FieldError::new(param, ErrorCode::UnknownField, message));
        }
        seen.push(name.into_owned());
    }
    Ok(())
}

/// A body [`check`] accepted, read as `T`. Its shape guarantees every field's JSON type, so
/// this fails only if the shape and the type disagree (a bug): the message then names no value.
fn read<T: DeserializeOwned>(body: &[u8]) -> Result<T, FieldError> {
    serde_json::from_slice(body).map_err(|e| {
        tracing::error!(
            line = e.line(),
            "a body that fits its shape did not fit its request type"
        );
        FieldError {
            param: String::new(),
            code: ErrorCode::InvalidJson,
            message:
                "The body is not the JSON this endpoint expects: check it against openapi.yaml."
                    .into(),
        }
    })
}

/// Whether `body` is empty or only whitespace.
fn blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// As [`parse`], for an endpoint whose fields are all optional: an empty body is `{}`
/// (such a POST accepts an empty body, with or without a JSON `Content-Type`).
pub fn parse_optional<T: DeserializeOwned>(
    body: &[u8],
    shape: &'static Shape,
) -> Result<T, FieldError> {
    check_optional(body, shape)?;
    read(if blank(body) { b"{}" } else { body })
}

/// As [`check`], for an endpoint whose fields are all optional (an empty body is `{}`).
pub fn check_optional(body: &[u8], shape: &'static Shape) -> Result<(), FieldError> {
    if blank(body) {
        return Ok(());
    }
    check(body, shape)
}

/// The canonical form of a body [`check`] or [`check_optional`] accepted: keys sorted, compact,
/// `{}` for an empty body. "The same body" for an idempotency key means the same JSON, whatever
/// its whitespace or key order.
pub fn canonical(body: &[u8]) -> Vec<u8> {
    if blank(body) {
        return b"{}".to_vec();
    }
    serde_json::from_slice::<Value>(body)
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_default()
}

/// serde_json's syntax errors say where, never what: safe to pass on.
fn syntax_error(e: &serde_json::Error) -> FieldError {
    FieldError {
        param: String::new(),
        code: ErrorCode::InvalidJson,
        message: format!(
            "The body is not valid JSON (line {}, column {}): fix it and send it again.",
            e.line(),
            e.column()
        ),
    }
}

/// Where a value is, as the API spells it (`customer.address.country`, `items[2].name`): a
/// chain of steps borrowed from the body as it is read, spelt out only for an error.
#[derive(Clone, Copy, Debug)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// The path as an error's `param` says it. A name that does not look like a field name (a
    /// card number pasted as a key, markup) is not repeated: it shows as `?`.
    fn spelt(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match *self {
            Self::Root => {}
            Self::Field(parent, name) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(if looks_like_a_name(name) { name } else { "?" });
            }
            Self::Index(parent, i) => {
                parent.write(out);
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
}

/// A spelt path for a message: the body itself has none.
fn named(spelt: &str) -> &str {
    if spelt.is_empty() { "the body" } else { spelt }
}

/// One value being read: what it may be (`None`: anything, inside a free object), where it is,
/// and where the first problem is put.
struct Node<'a> {
    shape: Option<&'static Shape>,
    path: &'a Path<'a>,
    found: &'a RefCell<Option<FieldError>>,
}

impl Node<'_> {
    /// Records `error` (the first one wins) and makes serde stop.
    fn fail<E: serde::de::Error>(&self, error: FieldError) -> E {
        let mut found = self.found.borrow_mut();
        if found.is_none() {
            *found = Some(error);
        }
        E::custom("strict JSON check failed")
    }

    fn wrong_type<E: serde::de::Error>(&self, got: &str) -> E {
        let Some(shape) = self.shape else {
            return E::custom("unreachable: free values take any type");
        };
        let param = self.path.spelt();
        let message = format!(
            "`{}` must be {}, not {got}",
            named(&param),
            shape.expected()
        );
        self.fail(FieldError {
            param,
            code: ErrorCode::InvalidType,
            message,
        })
    }

    fn fits<E: serde::de::Error>(&self, ok: impl Fn(&Shape) -> bool, got: &str) -> Result<(), E> {
        if self.shape.is_none_or(ok) {
            Ok(())
        } else {
            Err(self.wrong_type(got))
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        // `null` is not absent: where leaving a field out has a meaning (everything, a default),
        // a `null` that stood for a value the storefront failed to fill in must not take it.
        let Some(shape) = self.shape else {
            return Ok(());
        };
        let param = self.path.spelt();
        let message = format!(
            "`{}` must be {}, not null: send a value, or leave the field out",
            named(&param),
            shape.expected()
        );
        Err(self.fail(FieldError {
            param,
            code: ErrorCode::InvalidType,
            message,
        }))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.fits(|s| matches!(s, Shape::Boolean), "true or false")
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.fits(|s| matches!(s, Shape::Integer), "a number")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        match self.shape {
            None => Ok(()),
            Some(Shape::Integer) if i64::try_from(v).is_ok() => Ok(()),
            Some(Shape::Integer) => {
                let param = self.path.spelt();
                let message = format!("`{}` is too large", named(&param));
                Err(self.fail(FieldError {
                    param,
                    code: ErrorCode::InvalidAmount,
                    message,
                }))
            }
            Some(_) => Err(self.wrong_type("a number")),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        match self.shape {
            None => Ok(()),
            Some(Shape::Integer) => Err(self.wrong_type("a number with a fraction or exponent")),
            Some(_) => Err(self.wrong_type("a number")),
        }
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.fits(|s| matches!(s, Shape::String), "a string")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let item_shape = match self.shape {
            None => None,
            Some(Shape::Array(item)) => Some(*item),
            Some(_) => return Err(self.wrong_type("an array")),
        };
        for i in 0.. {
            let path = Path::Index(self.path, i);
            let item = Node {
                shape: item_shape,
                path: &path,
                found: self.found,
            };
            if seq.next_element_seed(item)?.is_none() {
                break;
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // `None`: any key (a free object, or inside one).
        let fields = match self.shape {
            None | Some(Shape::FreeObject) => None,
            Some(Shape::Object(fields)) => Some(*fields),
            Some(_) => return Err(self.wrong_type("an object")),
        };
        // The keys seen so far: a bit per known field when they fit in one word, else (and in a
        // free object) the names.
        let by_bit = fields.is_some_and(|f| f.len() <= 64);
        let mut known_seen: u64 = 0;
        let mut names_seen: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let path = Path::Field(self.path, &key);
            let (shape, again) = match fields {
                None => (None, !names_seen.insert(key.clone())),
                Some(fields) => match fields.iter().position(|(name, _)| *name == key) {
                    Some(i) if !by_bit => (Some(&fields[i].1), !names_seen.insert(key.clone())),
                    Some(i) => {
                        let bit = 1u64 << i;
                        let again = known_seen & bit != 0;
                        known_seen |= bit;
                        (Some(&fields[i].1), again)
                    }
                    None => {
                        let error = unknown_field(&path, &key, fields);
                        return Err(self.fail(error));
                    }
                },
            };
            if again {
                let param = path.spelt();
                let message = format!("`{}` is given twice: send each field once", named(&param));
                return Err(self.fail(FieldError {
                    param,
                    code: ErrorCode::DuplicateField,
                    message,
                }));
            }
            map.next_value_seed(Node {
                shape,
                path: &path,
                found: self.found,
            })?;
        }
        Ok(())
    }
}

/// An object's key, borrowed from the body unless it holds escapes.
#[derive(Clone, Copy)]
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// Letters, digits, `_` and `-`, at most 64 of them, and no run of five digits or more (a key
/// made of a card number or a CVC is not echoed back).
fn looks_like_a_name(key: &str) -> bool {
    let mut digits = 0;
    !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| {
            digits = if b.is_ascii_digit() { digits + 1 } else { 0 };
            digits < 5 && (b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

fn unknown_field(path: &Path<'_>, key: &str, known: &[(&str, Shape)]) -> FieldError {
    let param = path.spelt();
    let mut message = format!("`{}` is not a field this endpoint knows", named(&param));
    match closest(key, known.iter().map(|(name, _)| *name)) {
        Some(name) => message.push_str(&format!(": did you mean `{name}`?")),
        None => {
            let names: Vec<&str> = known.iter().map(|(name, _)| *name).collect();
            message.push_str(&format!(": the fields here are {}", names.join(", ")));
        }
    }
    FieldError {
        param,
        code: ErrorCode::UnknownField,
        message,
    }
}

/// The known name closest to `key`, if it is close enough to be a slip: at most two edits (and
/// fewer than a third of the name), or the same beginning with another ending
/// (`capture_mode` → `capture_method`, Jaro-Winkler similarity of 0.9 or more).
fn closest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    known
        .map(|name| {
            let edits = strsim::damerau_levenshtein(&key, name);
            let similar = strsim::jaro_winkler(&key, name);
            (edits, similar, name)
        })
        .filter(|(edits, similar, name)| {
            (*edits <= 2 && *edits * 3 <= name.len().max(3)) || *similar >= 0.9
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(_, _, name)| name)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    static ITEM: Shape = Shape::Object(&[("name", Shape::String), ("quantity", Shape::Integer)]);
    static BODY: Shape = Shape::Object(&[
        ("shipping_amount", Shape::Integer),
        ("reference", Shape::String),
        ("items", Shape::Array(&ITEM)),
        (
            "card",
            Shape::Object(&[("number", Shape::String), ("cvc", Shape::String)]),
        ),
        ("flag", Shape::Boolean),
        ("metadata", Shape::FreeObject),
    ]);

    fn error(body: &str) -> FieldError {
        parse::<Value>(body.as_bytes(), &BODY).unwrap_err()
    }

    #[test]
    fn a_body_that_fits_comes_back_as_json() {
        let v: Value = parse(
            br#"{"shipping_amount": 495, "items": [{"name": "T", "quantity": 2}], "metadata": {"Any": [1, {"x": null}]}, "flag": true}"#,
            &BODY,
        )
        .unwrap();
        assert_eq!(v["shipping_amount"], 495);
        assert_eq!(v["items"][0]["quantity"], 2);
        assert_eq!(v["metadata"]["Any"][1]["x"], Value::Null);
    }

    #[test]
    fn unknown_fields_are_named_with_a_suggestion() {
        let e = error(r#"{"shiping_amount": 495}"#);
        assert_eq!(
            (e.param.as_str(), e.code),
            ("shiping_amount", ErrorCode::UnknownField)
        );
        assert!(
            e.message.contains("did you mean `shipping_amount`?"),
            "{}",
            e.message
        );
        let e = error(r#"{"items": [{"name": "T"}, {"qty": 1}]}"#);
        assert_eq!(e.param, "items[1].qty");
        assert!(
            e.message.contains("the fields here are name, quantity"),
            "{}",
            e.message
        );
        let e = error(r#"{"card": {"number": "4111111111111111", "pin": "1234"}}"#);
        assert_eq!(e.param, "card.pin");
        assert_eq!(
            closest("shipping_amout", ["shipping_amount", "amount"].into_iter()),
            Some("shipping_amount")
        );
        assert_eq!(
            closest("capture_mode", ["capture_method", "currency"].into_iter()),
            Some("capture_method")
        );
        assert_eq!(closest("zzz", ["reference", "currency"].into_iter()), None);
    }

    #[test]
    fn the_first_problem_in_document_order_wins() {
        let e = error(r#"{"zzz": 1, "aaa": 2}"#);
        assert_eq!(e.param, "zzz");
    }

    #[test]
    fn wrong_types_name_the_expected_json_type_and_never_the_value() {
        let e = error(r#"{"card": {"number": 4111111111111111, "cvc": "123"}}"#);
        assert_eq!(
            (e.param.as_str(), e.code),
            ("card.number", ErrorCode::InvalidType)
        );
        assert_eq!(e.message, "`card.number` must be a string, not a number");
        let e = error(r#"{"shipping_amount": 4.95}"#);
        assert_eq!(e.code, ErrorCode::InvalidType);
        assert!(e.message.contains("must be an integer"));
        let e = error(r#"{"shipping_amount": "495"}"#);
        assert_eq!(
            e.message,
            "`shipping_amount` must be an integer, not a string"
        );
        let e = error(r#"{"items": {"name": "T"}}"#);
        assert_eq!(e.message, "`items` must be an array, not an object");
        let e = error(r#"{"flag": "yes"}"#);
        assert_eq!(e.message, "`flag` must be true or false, not a string");
        let e = error(r#"[1, 2]"#);
        assert_eq!((e.param.as_str(), e.code), ("", ErrorCode::InvalidType));
        assert_eq!(e.message, "`the body` must be an object, not an array");
    }

    #[test]
    fn null_is_not_absent_but_a_value_of_the_wrong_type() {
        for (body, param, expected) in [
            (
                r#"{"shipping_amount": null}"#,
                "shipping_amount",
                "an integer",
            ),
            (r#"{"reference": null}"#, "reference", "a string"),
            (r#"{"flag": null}"#, "flag", "true or false"),
            (r#"{"card": null}"#, "card", "an object"),
            (r#"{"items": null}"#, "items", "an array"),
            (r#"{"items": [null]}"#, "items[0]", "an object"),
            (
                r#"{"items": [{"quantity": null}]}"#,
                "items[0].quantity",
                "an integer",
            ),
            (r#"{"metadata": null}"#, "metadata", "an object"),
            ("null", "", "an object"),
        ] {
            let e = error(body);
            assert_eq!(
                (e.param.as_str(), e.code),
                (param, ErrorCode::InvalidType),
                "{body}"
            );
            assert!(
                e.message.contains(&format!("must be {expected}, not null")),
                "{body}: {}",
                e.message
            );
            assert!(e.message.contains("leave the field out"), "{}", e.message);
        }
        // Inside the merchant's own objects, values are the domain's to judge.
        assert!(check(br#"{"metadata": {"x": null}}"#, &BODY).is_ok());
        // An all-optional endpoint's `null` is refused too (it is not an empty body).
        assert_eq!(
            parse_optional::<Value>(br#"{"shipping_amount": null}"#, &BODY)
                .unwrap_err()
                .param,
            "shipping_amount"
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let e = error(r#"{"shipping_amount": 495, "shipping_amount": 0}"#);
        assert_eq!(
            (e.param.as_str(), e.code),
            ("shipping_amount", ErrorCode::DuplicateField)
        );
        let e = error(r#"{"metadata": {"a": 1, "a": 2}}"#);
        assert_eq!(e.param, "metadata.a");
        // A key spelt with an escape is the same key.
        let e = error(r#"{"items": [{"name": "T"}, {"quantity": 1, "quantit\u0079": 2}]}"#);
        assert_eq!(
            (e.param.as_str(), e.code),
            ("items[1].quantity", ErrorCode::DuplicateField)
        );
        let e = error(r#"{"metadata": {"\u0061": 1, "a": 2}}"#);
        assert_eq!(e.param, "metadata.a");
    }

    #[test]
    fn a_duplicate_is_found_among_any_number_of_known_fields() {
        // More fields than the duplicate check's one-word bit set holds.
        let fields: Vec<(&'static str, Shape)> = (0..70)
            .map(|i| {
                (
                    &*Box::leak(format!("f{i}").into_boxed_str()),
                    Shape::Integer,
                )
            })
            .collect();
        let wide: &'static Shape = Box::leak(Box::new(Shape::Object(fields.leak())));
        assert!(check(br#"{"f1": 1, "f66": 2, "f69": 3}"#, wide).is_ok());
        for twice in ["f1", "f66"] {
            let body = format!(r#"{{"{twice}": 1, "f2": 2, "{twice}": 3}}"#);
            let e = check(body.as_bytes(), wide).unwrap_err();
            assert_eq!(
                (e.param.as_str(), e.code),
                (twice, ErrorCode::DuplicateField)
            );
        }
    }

    #[test]
    fn the_canonical_form_ignores_whitespace_and_key_order() {
        let a = canonical(br#"{ "reference": "r", "items": [{"quantity": 2, "name": "T"}] }"#);
        let b = canonical(br#"{"items":[{"name":"T","quantity":2}],"reference":"r"}"#);
        assert_eq!(a, b);
        assert_eq!(canonical(b" "), b"{}");
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = error(r#"{"reference": "x",}"#);
        assert_eq!((e.param.as_str(), e.code), ("", ErrorCode::InvalidJson));
        assert!(e.message.contains("line 1"), "{}", e.message);
        assert_eq!(error("").code, ErrorCode::InvalidJson);
        assert_eq!(error(r#"{} {}"#).code, ErrorCode::InvalidJson);
    }

    #[test]
    fn an_empty_body_is_an_empty_object_only_where_every_field_is_optional() {
        assert_eq!(
            parse_optional::<Value>(b"", &BODY).unwrap(),
            serde_json::json!({})
        );
        assert_eq!(
            parse_optional::<Value>(b" \n", &BODY).unwrap(),
            serde_json::json!({})
        );
        assert_eq!(
            parse::<Value>(b"", &BODY).unwrap_err().code,
            ErrorCode::InvalidJson
        );
        assert_eq!(
            parse_optional::<Value>(b"{\"x\": 1}", &BODY)
                .unwrap_err()
                .code,
            ErrorCode::UnknownField
        );
    }

    #[test]
    fn integers_beyond_64_bits_are_refused_without_echo() {
        let e = error(r#"{"shipping_amount": 18446744073709551615}"#);
        assert!(!e.message.contains("18446744073709551615"));
        let e = error(r#"{"shipping_amount": 1e400}"#);
        assert_eq!(e.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn query_strings_are_checked_like_bodies() {
        assert!(check_query("", &["refresh"]).is_ok());
        assert!(check_query("refresh=true", &["refresh"]).is_ok());
        let e = check_query("refesh=true", &["refresh"]).unwrap_err();
        assert_eq!(
            (e.param.as_str(), e.code),
            ("refesh", ErrorCode::UnknownField)
        );
        assert!(e.message.contains("did you mean `refresh`?"));
        let e = check_query("refresh=true&refresh=false", &["refresh"]).unwrap_err();
        assert_eq!(e.code, ErrorCode::DuplicateField);
        let e = check_query("4111111111111111=1", &[]).unwrap_err();
        assert_eq!(e.param, "?");
        assert!(!e.message.contains("4111"));
    }

    #[test]
    fn keys_that_are_not_names_are_not_echoed() {
        let e = error(r#"{"card": {"4111111111111111": "x"}}"#);
        assert_eq!(
            (e.param.as_str(), e.code),
            ("card.?", ErrorCode::UnknownField)
        );
        assert!(!e.message.contains("4111"));
        let e = error(r#"{"metadata": {"<b>": 1, "<b>": 2}}"#);
        assert_eq!(e.param, "metadata.?");
    }

    proptest! {
        /// Whatever is sent where, the error never repeats a submitted card number or CVC.
        #[test]
        fn no_error_repeats_a_submitted_value(
            field in prop::sample::select(vec!["shipping_amount", "reference", "items", "card", "flag", "metadata", "nmber", "card\":{\"number", "PAN"]),
            pan in "4[0-9]{15}",
            quote in any::<bool>(),
        ) {
            let value = if quote { format!("\"{pan}\"") } else { pan.clone() };
            let field = if field == "PAN" { pan.as_str() } else { field };
            let body = format!(r#"{{"{field}": {value}, "card": {{"cvc": {value}, "number": [{value}]}}}}"#);
            if let Err(e) = parse::<Value>(body.as_bytes(), &BODY) {
                prop_assert!(!e.message.contains(&pan), "{}", e.message);
                prop_assert!(!e.param.contains(&pan), "{}", e.param);
            }
        }
    }
}
