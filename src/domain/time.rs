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
    buf.iter().map(|&b| b as char).collect()
}

/// Whole seconds, rounded up: what `Retry-After`-style headers say.
pub fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

pub fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// `#[serde(serialize_with = "crate::domain::time::serialize")]` for `DateTime<Utc>` fields.
pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(t))
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
        }
    }
}
