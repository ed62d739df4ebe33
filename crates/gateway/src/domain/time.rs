//! Timestamps in stored and sent JSON, written as chrono's own serde does (RFC 3339 in UTC with
//! `Z`, as many fraction digits as the instant needs: none, 3, 6 or 9), but handed to the
//! serializer as one string. chrono's `Serialize` goes through `collect_str`, which passes
//! serde_json one character at a time, each escaped on its own: 2 % of a checkout's
//! instructions (issue 12). Reading stays chrono's.
//!
//! Use with `#[serde(serialize_with = "crate::domain::time::rfc3339")]` (or `rfc3339_opt` for
//! an `Option`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

pub fn rfc3339_opt<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Ours {
        #[serde(serialize_with = "rfc3339")]
        at: DateTime<Utc>,
        #[serde(serialize_with = "rfc3339_opt")]
        maybe: Option<DateTime<Utc>>,
    }

    #[derive(Serialize)]
    struct Chronos {
        at: DateTime<Utc>,
        maybe: Option<DateTime<Utc>>,
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
            }
        }
    }
}
