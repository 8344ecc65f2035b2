//! Unix time and the RFC 3339 strings Dodo sends and we store.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current time in unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Parses an RFC 3339 date-time (`Z` or an offset) into unix microseconds.
pub fn parse_rfc3339_micros(text: &str) -> Option<i64> {
    let parsed = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000).ok()
}

/// Parses an RFC 3339 date-time into unix seconds (fractions dropped).
pub fn parse_rfc3339_seconds(text: &str) -> Option<i64> {
    parse_rfc3339_micros(text).map(|micros| micros.div_euclid(1_000_000))
}

/// Parses the ISO 8601 forms other systems write into unix seconds: a date (`2026-12-31`,
/// midnight UTC), a date-time with `T` or a space, with or without a fraction, with `Z`, an
/// offset (`+01:00`, `+0100`, `+01`) or no zone at all (read as UTC).
pub fn parse_iso8601_seconds(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.len() == 10 {
        return parse_rfc3339_seconds(&format!("{text}T00:00:00Z"));
    }
    let (date, time) = (text.get(..10)?, text.get(11..)?);
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    // The zone: what follows the clock (`hh:mm:ss` and an optional fraction).
    let clock_end = time
        .char_indices()
        .find(|&(i, c)| i >= 8 && !(c.is_ascii_digit() || c == '.'))
        .map_or(time.len(), |(i, _)| i);
    let (clock, zone) = time.split_at(clock_end);
    let zone = match zone {
        "" | "Z" | "z" => "Z".to_owned(),
        _ if zone.len() == 3 => format!("{zone}:00"),
        _ if zone.len() == 5 && zone.is_ascii() && !zone.contains(':') => {
            format!("{}:{}", &zone[..3], &zone[3..])
        }
        _ => zone.to_owned(),
    };
    parse_rfc3339_seconds(&format!("{date}T{clock}{zone}"))
}

/// Reads a stored time in either form this project meets: RFC 3339 / ISO 8601 (with or
/// without a fraction, `Z` or an offset) or unix seconds as decimal text (`1735689600`, a
/// fraction dropped). The one parser for every time field of both tables.
pub fn parse_stored_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let whole = text.split_once('.').map_or(text, |(whole, fraction)| {
        if fraction.bytes().all(|b| b.is_ascii_digit()) {
            whole
        } else {
            text
        }
    });
    if let Ok(seconds) = whole.parse::<i64>() {
        return Some(seconds);
    }
    parse_iso8601_seconds(text)
}

/// Formats unix seconds as `2026-01-10T17:55:53Z`.
pub fn format_rfc3339(unix_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix_seconds.to_string())
}

/// The English month names, January first.
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Formats unix seconds as a date in words, in UTC: `6 January 2027`.
pub fn format_date(unix_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_seconds).map_or_else(
        |_| unix_seconds.to_string(),
        |at| {
            let month = MONTHS[usize::from(u8::from(at.month())) - 1];
            format!("{} {month} {}", at.day(), at.year())
        },
    )
}

/// Formats unix seconds as a date and time in words, in UTC: `6 January 2027, 00:37 UTC`.
pub fn format_date_time(unix_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_seconds).map_or_else(
        |_| unix_seconds.to_string(),
        |at| {
            format!(
                "{}, {:02}:{:02} UTC",
                format_date(unix_seconds),
                at.hour(),
                at.minute()
            )
        },
    )
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
    fn formats_dates_in_words() {
        assert_eq!(format_date(1_799_203_051), "6 January 2027");
        assert_eq!(format_date(1_768_067_753), "10 January 2026");
        assert_eq!(format_date_time(1_799_195_851), "6 January 2027, 00:37 UTC");
        assert_eq!(format_date(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn reads_stored_times_in_both_forms() {
        for text in [
            "2026-01-10T17:55:53Z",
            "2026-01-10T17:55:53.180Z",
            "2026-01-10T18:55:53+01:00",
            "2026-01-10T18:55:53.5+01:00",
            "1768067753",
            " 1768067753 ",
            "1768067753.9",
        ] {
            assert_eq!(parse_stored_time(text), Some(1_768_067_753), "{text}");
        }
        for text in [
            "2026-01-10T17:55:53",
            "2026-01-10 17:55:53",
            "2026-01-10t17:55:53z",
            "2026-01-10T17:55:53.180",
            "2026-01-10T18:55:53+0100",
            "2026-01-10T18:55:53.25+01",
            "2026-01-10T12:55:53-05:00",
        ] {
            assert_eq!(parse_stored_time(text), Some(1_768_067_753), "{text}");
        }
        assert_eq!(parse_stored_time("2026-01-10"), Some(1_768_003_200));
        for bad in [
            "",
            "soon",
            "12.x",
            "1e9",
            "2026-13-10",
            "2026-01-10T25:00:00Z",
            "2026-01-10X17:55:53Z",
            "2026-01-10T17:55",
            "10/01/2026",
            "2026-01-10T18:55:53+1ü2",
            "2026-01-10T18:55:53ü",
        ] {
            assert_eq!(parse_stored_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_whole_seconds() {
        assert_eq!(format_rfc3339(1_768_067_753), "2026-01-10T17:55:53Z");
    }
}
