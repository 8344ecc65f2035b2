//! Unix time and the RFC 3339 strings Dodo sends and we store.

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

/// The current time in unix seconds.
pub fn unix_now() -> i64 {
    DateTime::from(std::time::SystemTime::now()).secs()
}

/// Parses an RFC 3339 date-time (`Z` or an offset) into unix microseconds.
pub fn parse_rfc3339_micros(text: &str) -> Option<i64> {
    let parsed = DateTime::from_str(text.trim(), Format::DateTimeWithOffset).ok()?;
    parsed
        .secs()
        .checked_mul(1_000_000)?
        .checked_add(i64::from(parsed.subsec_nanos() / 1_000))
}

/// Parses an RFC 3339 date-time into unix seconds (fractions dropped).
pub fn parse_rfc3339_seconds(text: &str) -> Option<i64> {
    parse_rfc3339_micros(text).map(|micros| micros.div_euclid(1_000_000))
}

/// Formats unix seconds as `2026-01-10T17:55:53Z`.
pub fn format_rfc3339(unix_seconds: i64) -> String {
    DateTime::from_secs(unix_seconds)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| unix_seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dodo_timestamps() {
        assert_eq!(
            parse_rfc3339_micros("2025-08-04T05:30:45.182629Z"),
            Some(1_754_285_445_182_629)
        );
        assert_eq!(
            parse_rfc3339_seconds("2026-01-10T17:55:53.180Z"),
            Some(1_768_067_753)
        );
        assert_eq!(
            parse_rfc3339_seconds("2026-01-10T18:55:53+01:00"),
            Some(1_768_067_753)
        );
        assert_eq!(parse_rfc3339_seconds("yesterday"), None);
    }

    #[test]
    fn formats_whole_seconds() {
        assert_eq!(format_rfc3339(1_768_067_753), "2026-01-10T17:55:53Z");
    }
}
