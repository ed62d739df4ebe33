//! MSP's times: wall time in Europe/Amsterdam
//! (CET/CEST) without an offset, written `YYYY-MM-DDTHH:MM:SS` (MSP's examples) or
//! `DD-MM-YYYY HH:MM:SS` (its schema). Converted with the time-zone database, so that both sides
//! of a daylight-saving change come out right; a text with an offset is taken as it says.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;

const FORMS: [&str; 5] = [
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
];

/// An instant from MSP's text; `None` when it is no time MSP writes.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let local = FORMS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(Default::default()))
        })?;
    Some(from_local(local))
}

/// Amsterdam wall time as an instant: in the hour that repeats when summer time ends, the
/// first of the two (a watermark read early only makes the sweep read a little more); in the
/// hour skipped when it starts, the instant just after the gap.
pub fn from_local(local: NaiveDateTime) -> DateTime<Utc> {
    match Amsterdam.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        chrono::LocalResult::None => Amsterdam
            .from_local_datetime(&(local + TimeDelta::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| local.and_utc()),
    }
}

/// An instant as MSP reads a filter (`created_from`): Amsterdam wall time, no offset.
pub fn format(at: DateTime<Utc>) -> String {
    at.with_timezone(&Amsterdam)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn winter_and_summer_times_are_an_hour_apart_from_utc_and_two() {
        assert_eq!(
            parse("2026-01-15T12:00:00"),
            Some(utc("2026-01-15T11:00:00Z"))
        );
        assert_eq!(
            parse("2026-07-15T12:00:00"),
            Some(utc("2026-07-15T10:00:00Z"))
        );
        assert_eq!(
            parse("15-07-2026 12:00:00"),
            Some(utc("2026-07-15T10:00:00Z"))
        );
        assert_eq!(
            parse("2026-07-15T12:00:00+00:00"),
            Some(utc("2026-07-15T12:00:00Z"))
        );
        assert_eq!(parse("yesterday"), None);
    }

    #[test]
    fn the_daylight_saving_changes_convert_both_ways() {
        // 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        assert_eq!(
            parse("2026-03-29T01:59:59"),
            Some(utc("2026-03-29T00:59:59Z"))
        );
        assert_eq!(
            parse("2026-03-29T03:00:00"),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        assert_eq!(
            parse("2026-03-29T02:30:00"),
            Some(utc("2026-03-29T01:30:00Z")),
            "the gap"
        );
        // 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens twice, the first is taken.
        assert_eq!(
            parse("2026-10-25T02:30:00"),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        for at in [
            "2026-03-29T00:59:59Z",
            "2026-03-29T01:00:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:30:00Z",
        ] {
            let at = utc(at);
            let back = parse(&format(at)).unwrap();
            assert!(
                back <= at && at - back <= TimeDelta::hours(1),
                "{at} -> {} -> {back}",
                format(at)
            );
        }
        assert_eq!(format(utc("2026-10-25T01:30:00Z")), "2026-10-25T02:30:00");
    }
}
