//! Timestamps in stored and sent JSON, written as chrono's own serde does (RFC 3339 in UTC with
//! `Z`, as many fraction digits as the instant needs: none, 3, 6 or 9), and read as chrono reads
//! them. chrono's `Serialize` goes through `collect_str`, which passes serde_json one character
//! at a time, each escaped on its own: 2 % of a checkout's instructions (issue 12).
//!
//! Use with `#[serde(with = "crate::domain::time::rfc3339")]` (or `rfc3339_opt` for an
//! `Option`, with `default` so that a missing field stays `None`).
//!
//! The text is written by [`with_text`], on the stack: chrono's `to_rfc3339_opts` makes a
//! `String` through `fmt::Write`, about 700 instructions a timestamp, and a checkout writes some
//! twenty (its records, events, answer and log lines). Reading takes the form written here
//! directly (about 300 instructions, against chrono's 1000) and leaves every other text to
//! chrono's parser, so what is accepted, and every error, stays chrono's.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, SecondsFormat, Timelike, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};

/// A timestamp field: `#[serde(with = "crate::domain::time::rfc3339")]`.
pub mod rfc3339 {
    use super::*;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        with_text(at, SecondsFormat::AutoSi, |text| s.serialize_str(text))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_str(Text)
    }
}

/// An optional timestamp field: `#[serde(default, with = "crate::domain::time::rfc3339_opt")]`.
pub mod rfc3339_opt {
    use super::*;

    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => rfc3339::serialize(at, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<Stamp>::deserialize(d)?.map(|Stamp(at)| at))
    }

    /// A timestamp read by [`rfc3339`], for serde's own `Option` to wrap.
    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Stamp(#[serde(with = "rfc3339")] DateTime<Utc>);
}

/// Reads a timestamp's text as chrono's `Deserialize for DateTime<Utc>` does.
struct Text;

impl Visitor<'_> for Text {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an RFC 3339 formatted date and time string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        match parse_written(text) {
            Some(at) => Ok(at),
            None => text
                .parse::<DateTime<FixedOffset>>()
                .map(|at| at.with_timezone(&Utc))
                .map_err(E::custom),
        }
    }
}

/// The instant of a text in the form [`with_text`] writes (`YYYY-MM-DDTHH:MM:SS`, then
/// optionally `.` and 1 to 9 digits, then `Z`); `None` for any other text, including a leap
/// second, for chrono to read.
fn parse_written(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let number = |from: usize, to: usize| -> Option<u32> {
        b.get(from..to)?.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if b.len() < 20 || b[b.len() - 1] != b'Z' || separators.iter().any(|(i, c)| b[*i] != *c) {
        return None;
    }
    let nano = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            number(20, b.len() - 1)? * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let year = i32::try_from(number(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)?;
    // Refuses second 60: a leap second's text is chrono's to read.
    let time =
        NaiveTime::from_hms_nano_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?, nano)?;
    Some(date.and_time(time).and_utc())
}

/// Calls `f` with the text `at.to_rfc3339_opts(form, true)` makes, written on the stack. Years
/// 0 to 9999 (every instant this gateway makes); any other year, or a form chrono adds later,
/// goes through chrono itself.
pub fn with_text<R>(at: &DateTime<Utc>, form: SecondsFormat, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 30]; // `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`
    match write(at, form, &mut buf).and_then(|len| std::str::from_utf8(&buf[..len]).ok()) {
        Some(text) => f(text),
        None => f(&at.to_rfc3339_opts(form, true)),
    }
}

/// Writes the text into `buf` as chrono's `write_rfc3339` does; its length, or `None` for what
/// only chrono writes.
fn write(at: &DateTime<Utc>, form: SecondsFormat, buf: &mut [u8; 30]) -> Option<usize> {
    let t = at.naive_utc();
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    // A leap second is nanoseconds past 10^9 in chrono; its text says second 60.
    let (mut second, mut nano) = (t.second(), t.nanosecond());
    if nano >= 1_000_000_000 {
        second += 1;
        nano -= 1_000_000_000;
    }
    let digits = match form {
        SecondsFormat::Secs => 0,
        SecondsFormat::Millis => 3,
        SecondsFormat::Micros => 6,
        SecondsFormat::Nanos => 9,
        SecondsFormat::AutoSi if nano == 0 => 0,
        SecondsFormat::AutoSi if nano % 1_000_000 == 0 => 3,
        SecondsFormat::AutoSi if nano % 1_000 == 0 => 6,
        SecondsFormat::AutoSi => 9,
        _ => return None,
    };
    let mut out = Out { buf, len: 0 };
    out.number(year, 4);
    out.byte(b'-');
    out.number(t.month(), 2);
    out.byte(b'-');
    out.number(t.day(), 2);
    out.byte(b'T');
    out.number(t.hour(), 2);
    out.byte(b':');
    out.number(t.minute(), 2);
    out.byte(b':');
    out.number(second, 2);
    if digits > 0 {
        out.byte(b'.');
        out.number(nano / 10u32.pow(9 - digits), digits as usize);
    }
    out.byte(b'Z');
    Some(out.len)
}

/// A cursor over [`write`]'s buffer, which is long enough for every form.
struct Out<'a> {
    buf: &'a mut [u8; 30],
    len: usize,
}

impl Out<'_> {
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `value` in `width` decimal digits, zero-padded.
    fn number(&mut self, value: u32, width: usize) {
        let mut rest = value;
        for slot in self.buf[self.len..self.len + width].iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        self.len += width;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Ours {
        #[serde(with = "rfc3339")]
        at: DateTime<Utc>,
        #[serde(default, with = "rfc3339_opt")]
        maybe: Option<DateTime<Utc>>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Chronos {
        at: DateTime<Utc>,
        maybe: Option<DateTime<Utc>>,
    }

    /// Every form chrono writes.
    const FORMS: [SecondsFormat; 5] = [
        SecondsFormat::Secs,
        SecondsFormat::Millis,
        SecondsFormat::Micros,
        SecondsFormat::Nanos,
        SecondsFormat::AutoSi,
    ];

    /// Instants across the years this writes itself and beyond them, at every kind of
    /// fraction, leap seconds included.
    fn instants() -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for year in [0, 1, 9, 99, 999, 1970, 2026, 9999, -1, 10_000] {
            for _ in 0..40 {
                let r = next();
                let nanos = match r % 5 {
                    0 => 0,
                    1 => (r >> 8) as u32 % 1_000 * 1_000_000,
                    2 => (r >> 8) as u32 % 1_000_000 * 1_000,
                    3 => (r >> 8) as u32 % 1_000_000_000,
                    _ => 1_000_000_000 + (r >> 8) as u32 % 1_000_000_000, // a leap second
                };
                let (h, m, s) = if nanos >= 1_000_000_000 {
                    (23, 59, 59)
                } else {
                    (
                        (r >> 40) as u32 % 24,
                        (r >> 48) as u32 % 60,
                        (r >> 56) as u32 % 60,
                    )
                };
                let date = chrono::NaiveDate::from_ymd_opt(year, 1 + (r >> 16) as u32 % 12, 1)
                    .unwrap()
                    + chrono::Days::new((r >> 24) % 28);
                let time = chrono::NaiveTime::from_hms_nano_opt(h, m, s, nanos).unwrap();
                out.push(date.and_time(time).and_utc());
            }
        }
        out
    }

    #[test]
    fn the_written_text_is_chronos_for_every_form() {
        for at in instants() {
            for form in FORMS {
                let chronos = at.to_rfc3339_opts(form, true);
                assert_eq!(with_text(&at, form, str::to_owned), chronos, "{form:?}");
            }
        }
        // Years past 9999 and before 0 are chrono's to write (`+10000-…`, `-0001-…`).
        let far = instants()
            .into_iter()
            .find(|at| at.year() == 10_000)
            .unwrap();
        let mut buf = [0; 30];
        assert_eq!(write(&far, SecondsFormat::Secs, &mut buf), None);
    }

    #[test]
    fn the_text_is_chronos_own_for_every_precision() {
        let base = Utc.with_ymd_and_hms(2026, 11, 29, 7, 8, 9).unwrap();
        for nanos in [0, 120_000_000, 123_456_000, 123_456_789, 1, 999_999_999] {
            let at = base + chrono::Duration::nanoseconds(nanos);
            for maybe in [None, Some(at)] {
                let ours = serde_json::to_string(&Ours { at, maybe }).unwrap();
                let chronos = serde_json::to_string(&Chronos { at, maybe }).unwrap();
                assert_eq!(ours, chronos);
                assert_eq!(
                    serde_json::from_str::<Ours>(&ours).unwrap(),
                    Ours { at, maybe }
                );
            }
        }
        // A missing optional timestamp is `None`, as chrono's derive reads it.
        let read: Ours = serde_json::from_str(r#"{"at":"2026-11-29T07:08:09Z"}"#).unwrap();
        assert_eq!(read.maybe, None);
    }

    /// chrono's reading of `text` into UTC, as its `Deserialize` does.
    fn chronos_reading(text: &str) -> Result<DateTime<Utc>, String> {
        serde_json::from_value::<DateTime<Utc>>(serde_json::Value::String(text.to_owned()))
            .map_err(|e| e.to_string())
    }

    fn our_reading(text: &str) -> Result<DateTime<Utc>, String> {
        rfc3339::deserialize(serde_json::Value::String(text.to_owned())).map_err(|e| e.to_string())
    }

    #[test]
    fn every_written_text_is_read_back_as_chrono_reads_it() {
        for at in instants() {
            for form in FORMS {
                let text = at.to_rfc3339_opts(form, true);
                assert_eq!(our_reading(&text), chronos_reading(&text), "{text}");
                // The form written here is read without chrono's parser, but for leap seconds
                // and years chrono writes itself.
                let own = (0..=9999).contains(&at.year()) && at.nanosecond() < 1_000_000_000;
                assert_eq!(parse_written(&text).is_some(), own, "{text}");
            }
        }
    }

    #[test]
    fn any_other_text_is_read_or_refused_as_chrono_does() {
        for text in [
            "2026-11-29T07:08:09.1Z",
            "2026-11-29T07:08:09.12Z",
            "2026-11-29T07:08:09.1234Z",
            "2026-11-29T07:08:09.12345678Z",
            "2026-11-29T07:08:09.1234567891Z",
            "2026-11-29T07:08:09.Z",
            "2026-11-29t07:08:09z",
            "2026-11-29 07:08:09Z",
            "2026-11-29T07:08:09+00:00",
            "2026-11-29T07:08:09-05:30",
            "2026-11-29T07:08:60Z",
            "2026-11-29T24:00:00Z",
            "2026-02-30T07:08:09Z",
            "2026-13-01T07:08:09Z",
            "2026-11-29T07:08:09",
            "2026-11-29",
            "+2026-11-29T07:08:09Z",
            "２026-11-29T07:08:09Z",
            "",
            "yesterday",
        ] {
            assert_eq!(our_reading(text), chronos_reading(text), "{text}");
        }
        // And a timestamp that is not a string is refused as chrono refuses it.
        let number = serde_json::json!(1_700_000_000);
        assert_eq!(
            rfc3339::deserialize(number.clone()).map_err(|e| e.to_string()),
            serde_json::from_value::<DateTime<Utc>>(number).map_err(|e| e.to_string())
        );
    }
}
