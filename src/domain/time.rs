//! Times: UTC, RFC 3339 with millisecond precision (`2026-11-22T03:04:05.678Z`), the one
//! format used in JSON, SQL and logs.

use chrono::{DateTime, Datelike, SecondsFormat, SubsecRound, Timelike, Utc};

/// The current time at the precision times are stored with, so a value reads back exactly.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// NOTE: written out by hand because chrono's formatter goes character by character through
/// `fmt::Write`, which showed up in profiles of hot routes; the result is identical.
pub fn format_rfc3339(t: &DateTime<Utc>) -> String {
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    // A leap second shows as second 59 with ≥ 1000 ms in chrono; clamp to .999.
    put(17, 2, t.second());
    put(20, 3, (t.nanosecond() / 1_000_000).min(999));
    // Only ASCII digits and separators were written.
    String::from_utf8(buf.to_vec()).unwrap_or_default()
}

/// Whole seconds, rounded up: what `Retry-After`-style headers say.
pub fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

pub fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    if let Some(t) = parse_stored(s) {
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// The format this crate writes (`YYYY-MM-DDTHH:MM:SS.mmmZ`), read without chrono's general
/// parser: every listed row carries several times, and the general parser showed in profiles
/// of list routes (~150 instructions per time against ~50 here). Anything else is `None`.
fn parse_stored(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
    let time = chrono::NaiveTime::from_hms_milli_opt(
        num(11, 13)?,
        num(14, 16)?,
        num(17, 19)?,
        num(20, 23)?,
    )?;
    Some(date.and_time(time).and_utc())
}

/// `#[serde(serialize_with = "crate::domain::time::serialize")]` for `DateTime<Utc>` fields.
pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(t))
}

/// `#[serde(serialize_with = "crate::domain::time::serialize_opt")]` for optional times: like
/// every time, or `null`.
pub fn serialize_opt<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formatting_matches_chrono_and_round_trips() {
        let samples = [
            Utc.with_ymd_and_hms(2026, 11, 22, 3, 4, 5).unwrap(),
            Utc.with_ymd_and_hms(1999, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::milliseconds(7),
            Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap()
                + chrono::Duration::milliseconds(999),
            now(),
        ];
        for t in samples {
            let text = format_rfc3339(&t);
            assert_eq!(text, t.to_rfc3339_opts(SecondsFormat::Millis, true));
            assert_eq!(parse_rfc3339(&text).unwrap(), t.trunc_subsecs(3));
            assert_eq!(
                parse_stored(&text),
                Some(t.trunc_subsecs(3)),
                "the fast path"
            );
        }
    }

    #[test]
    fn other_rfc3339_spellings_still_parse_and_nonsense_does_not() {
        let t = parse_rfc3339("2026-11-22T10:00:00+02:00").unwrap();
        assert_eq!(format_rfc3339(&t), "2026-11-22T08:00:00.000Z");
        assert!(parse_rfc3339("2026-11-22T10:00:00Z").is_ok());
        for bad in [
            "2026-13-01T00:00:00.000Z",
            "2026-02-30T00:00:00.000Z",
            "2026-11-22T25:00:00.000Z",
            "2026-11-22T10:00:00.0x0Z",
            "yesterday",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
