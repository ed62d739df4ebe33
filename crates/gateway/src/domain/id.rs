//! Ids the gateway makes: a prefix and the 32 lowercase hex digits of a UUID v7, so that ids
//! sort by creation time and say what they name (`chk_…`, `re_…`).

/// Declares an id type: generated fresh, parsed strictly, shown as it is.
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $error:ident, $prefix:literal, $message:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        #[derive(Debug, thiserror::Error)]
        #[error($message)]
        pub struct $error;

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id from a UUID v7 (time-ordered).
            pub fn generate() -> Self {
                Self(format!("{}{}", Self::PREFIX, uuid::Uuid::now_v7().simple()))
            }

            pub fn parse(s: &str) -> Result<Self, $error> {
                let hex = s.strip_prefix(Self::PREFIX).ok_or($error)?;
                let well_formed = hex.len() == 32
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if well_formed {
                    Ok(Self(s.to_owned()))
                } else {
                    Err($error)
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

pub(crate) use prefixed_id;
