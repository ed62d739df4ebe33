//! Timestamps in stored and sent JSON, written as chrono's own serde does (RFC 3339 in UTC with
//! `Z`, as many fraction digits as the instant needs: none, 3, 6 or 9), but handed to the
//! serializer as one string. chrono's `Serialize` goes through `collect_str`, which passes
//! serde_json one character at a time, each escaped on its own: 2 % of a checkout's
//! instructions (issue 12). Reading stays chrono's.
//!
//! Use with `#[serde(serialize_with = "crate::domain::time::rfc3339")]` (or `rfc3339_opt` for
//! an `Option`).
//!
//! The text itself is written by [`with_text`], on the stack: chrono's `to_rfc3339_opts` makes a
//! `String` through `fmt::Write`, about 700 instructions a timestamp, and a checkout writes
//! some twenty (its records, events, answer and log lines; issue 12).

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serializer;

pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    with_text(at, SecondsFormat::AutoSi, |text| s.serialize_str(text))
}

pub fn rfc3339_opt<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, s),
        None => s.serialize_none(),
    }
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
            for form in [
                SecondsFormat::Secs,
                SecondsFormat::Millis,
                SecondsFormat::Micros,
                SecondsFormat::Nanos,
                SecondsFormat::AutoSi,
            ] {
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
            }
        }
    }
}
