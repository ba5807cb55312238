//! UTC timestamp parsing and formatting for the runner (RFC 3339, `Z` suffix only).
//!
//! The bench crate needs only a handful of conversions between epoch milliseconds and
//! `YYYY-MM-DDTHH:MM:SS[.mmm]Z` strings, so it does them itself (proleptic Gregorian calendar,
//! Howard Hinnant's `days_from_civil` / `civil_from_days`) instead of pulling in a date crate.

use anyhow::{Context, bail};

/// Milliseconds per day.
const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian `(year, month, day)` of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SSZ`, with `.mmm` only when non-zero.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let rem = ms.rem_euclid(DAY_MS);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, frac) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    if frac == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
    }
}

/// Formats epoch milliseconds as a file-name-safe stamp, `YYYY-MM-DDTHHMMSSZ`.
pub fn format_file_stamp(ms: i64) -> String {
    format_rfc3339_ms(ms - ms.rem_euclid(1000)).replace(':', "")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or a bare `YYYY-MM-DD`, meaning midnight UTC) into epoch
/// milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> anyhow::Result<i64> {
    parse_inner(text).with_context(|| {
        format!("invalid UTC timestamp {text:?}: expected YYYY-MM-DDTHH:MM:SS[.fff]Z")
    })
}

fn parse_inner(text: &str) -> anyhow::Result<i64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> anyhow::Result<i64> {
        let part = b.get(range).context("too short")?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            bail!("expected digits");
        }
        Ok(part
            .iter()
            .fold(0, |acc, &c| acc * 10 + i64::from(c - b'0')))
    };
    let sep = |i: usize, want: u8| -> anyhow::Result<()> {
        if b.get(i) != Some(&want) {
            bail!("expected {:?} at byte {i}", want as char);
        }
        Ok(())
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    sep(4, b'-')?;
    sep(7, b'-')?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        bail!("month or day out of range");
    }
    let day_ms = days_from_civil(y, mo as u32, d as u32) * DAY_MS;
    if b.len() == 10 {
        return Ok(day_ms);
    }
    sep(10, b'T')?;
    sep(13, b':')?;
    sep(16, b':')?;
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || s > 59 {
        bail!("time of day out of range");
    }
    let mut ms = 0;
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            bail!("empty fraction");
        }
        // Keep millisecond precision: pad or truncate the fraction to 3 digits.
        let digits = &text[start..i.min(start + 3)];
        ms = format!("{digits:0<3}").parse::<i64>()?;
    }
    if &b[i..] != b"Z" {
        bail!("expected a trailing 'Z' (only UTC is accepted)");
    }
    Ok(day_ms + h * 3_600_000 + mi * 60_000 + s * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_known_instants() -> anyhow::Result<()> {
        for (text, ms) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2016-01-01T00:00:00Z", 1_451_606_400_000),
            ("2000-02-29T23:59:59.250Z", 951_868_799_250),
            ("1969-12-31T23:59:59.999Z", -1),
        ] {
            assert_eq!(parse_rfc3339_ms(text)?, ms, "{text}");
            assert_eq!(format_rfc3339_ms(ms), text);
        }
        assert_eq!(parse_rfc3339_ms("2016-01-01")?, 1_451_606_400_000);
        assert_eq!(format_file_stamp(951_868_799_250), "2000-02-29T235959Z");
        Ok(())
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2016-01-01T00:00:00",
            "2016-13-01T00:00:00Z",
            "2016-01-01 00:00:00Z",
            "2016-01-01T00:00:00+01:00",
            "2016-01-01T00:00:00.Z",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
