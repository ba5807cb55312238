//! Time in Basalt: instants, intervals, granularities and timestamp parsing.
//!
//! Every instant is an [`i64`] count of milliseconds since the Unix epoch, in UTC ([`Millis`]).
//! There are no time zones past parsing: an offset in an input timestamp is applied once and
//! forgotten, and all truncation and calendar arithmetic is done in UTC, as Druid does by default.
//!
//! - [`Interval`]: a half-open `[start, end)` range of instants, with Druid's text form
//!   (`start/end`, `start/PERIOD`, `PERIOD/end`).
//! - [`parse_iso_timestamp`] / [`format_iso_millis`]: the ISO-8601 subset Druid reads and the exact
//!   `YYYY-MM-DDTHH:MM:SS.sssZ` form it writes. The parser is hand-written byte code with no
//!   allocation on success: it runs on the ingest hot path.
//! - [`TimestampFormat`]: Druid's `timestampSpec.format` values (`auto`, `iso`, `millis`, `posix`,
//!   `micro`, `nano`) applied to JSON values, strings and integers.
//! - [`Granularity`]: Druid's simple granularities (`hour`, `day`, `week`, `month`, ...), their
//!   buckets, and the "finer than" relation used to validate `queryGranularity <= segmentGranularity`.
//! - [`Period`]: ISO-8601 periods (`P1Y2M`, `PT15M`, `P1W`) as used in interval text.
//! - [`days_from_civil`] / [`civil_from_days`]: proleptic-Gregorian date arithmetic (Howard
//!   Hinnant's algorithms), valid for every `i64` and used by everything above.
//!
//! Invariants shared by the module:
//! - Nothing here panics on any input: string parsing never slices at a non-boundary, and all
//!   arithmetic that input can drive is checked (errors) or saturating (documented per function).
//! - Calendar years use astronomical numbering (year 0 exists, year -1 is 2 BC), as Joda/Druid do.
//! - Results are exact for every instant in [`Interval::ETERNITY`]; beyond it, granularity
//!   arithmetic saturates at `i64::MIN` / `i64::MAX` instead of overflowing.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Milliseconds since 1970-01-01T00:00:00Z (UTC). Negative values are before the epoch.
pub type Millis = i64;

/// Milliseconds in one second.
pub const MILLIS_PER_SECOND: i64 = 1_000;
/// Milliseconds in one minute.
pub const MILLIS_PER_MINUTE: i64 = 60 * MILLIS_PER_SECOND;
/// Milliseconds in one hour.
pub const MILLIS_PER_HOUR: i64 = 60 * MILLIS_PER_MINUTE;
/// Milliseconds in one UTC day (UTC has no DST; leap seconds are ignored, as everywhere in Unix time).
pub const MILLIS_PER_DAY: i64 = 24 * MILLIS_PER_HOUR;
/// Milliseconds in one week.
pub const MILLIS_PER_WEEK: i64 = 7 * MILLIS_PER_DAY;

// ---------------------------------------------------------------------------------------------
// Civil (proleptic Gregorian) calendar arithmetic
// ---------------------------------------------------------------------------------------------

/// True if `year` is a leap year in the proleptic Gregorian calendar (astronomical numbering).
#[inline]
pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Number of days in `month` (1-12) of `year`; 0 if `month` is not in 1-12.
#[inline]
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of the civil date `year-month-day` (proleptic Gregorian, astronomical
/// years). Howard Hinnant's `days_from_civil`.
///
/// Exact for `month` in 1-12, `day` in 1-31 and any year whose day count fits in `i64`
/// (|year| < ~2.5e16). Out-of-range months/days give an unspecified value (never a panic);
/// validate with [`days_in_month`] first. Years beyond the representable range saturate.
#[inline]
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let month = i64::from(month);
    let day = i64::from(day);
    // Shift the year to start in March so the leap day is the last day of the "year".
    let y = if month <= 2 {
        year.saturating_sub(1)
    } else {
        year
    };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // year of era, [0, 399]
    let mp = (month + 9) % 12; // March = 0 ... February = 11
    let doy = (153 * mp + 2) / 5 + day - 1; // day of (March-based) year, [0, 365] for valid input
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // day of era, [0, 146096]
    // era * 146097 alone can overflow while the final sum fits, so combine in i128 and clamp.
    let days = i128::from(era) * 146_097 + i128::from(doe - 719_468);
    days.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01; the inverse of
/// [`days_from_civil`]. Howard Hinnant's `civil_from_days`, exact for every `i64`.
#[inline]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Hinnant shifts the epoch to 0000-03-01 with `z = days + 719468`; that addition can overflow,
    // so split `days` into 400-year eras first (719468 = 4 * 146097 + 135080).
    let q = days.div_euclid(146_097);
    let r = days.rem_euclid(146_097) + 135_080;
    let (era, doe) = if r >= 146_097 {
        (q + 5, r - 146_097)
    } else {
        (q + 4, r)
    };
    // doe in [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    // |era| <= i64::MAX / 146097 + 5, so era * 400 cannot overflow.
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// Adds `months` calendar months to `t`, clamping the day of month to the target month's length
/// (Jan 31 + 1 month = Feb 28/29), keeping the time of day. `None` if the result is not an `i64`.
fn add_months(t: Millis, months: i64) -> Option<Millis> {
    let days = t.div_euclid(MILLIS_PER_DAY);
    let tod = t.rem_euclid(MILLIS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let total = y
        .checked_mul(12)?
        .checked_add(i64::from(m) - 1)?
        .checked_add(months)?;
    let ny = total.div_euclid(12);
    let nm = (total.rem_euclid(12) + 1) as u32;
    let nd = d.min(days_in_month(ny, nm));
    let new_days = i128::from(days_from_civil(ny, nm, nd));
    i64::try_from(new_days * i128::from(MILLIS_PER_DAY) + i128::from(tod)).ok()
}

/// `s` quoted for an error message, shortened (at a char boundary) if very long.
fn quoted(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    match s.char_indices().nth(MAX_CHARS) {
        Some((idx, _)) => format!("{:?}... ({} bytes)", &s[..idx], s.len()),
        None => format!("{s:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// ISO-8601 timestamps
// ---------------------------------------------------------------------------------------------

/// Why an ISO timestamp failed to parse. Kept allocation-free so the success path never allocates;
/// rendered into the error message only on failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IsoError {
    Empty,
    Expected { what: &'static str, at: usize },
    YearTooLong,
    Month(u32),
    Day { year: i64, month: u32, day: u32 },
    Hour(u32),
    Minute(u32),
    Second(u32),
    FractionTooLong,
    Offset { hours: u32, minutes: u32 },
    Trailing(usize),
    OutOfRange,
}

impl fmt::Display for IsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IsoError::Empty => f.write_str("the timestamp is empty"),
            IsoError::Expected { what, at } => write!(f, "expected {what} at byte {at}"),
            IsoError::YearTooLong => f.write_str("the year has more than 9 digits"),
            IsoError::Month(m) => write!(f, "month {m} is out of range 01-12"),
            IsoError::Day { year, month, day } => write!(
                f,
                "day {day} is out of range for {year:04}-{month:02}, which has {} days",
                days_in_month(year, month)
            ),
            IsoError::Hour(h) => write!(f, "hour {h} is out of range 00-23"),
            IsoError::Minute(m) => write!(f, "minute {m} is out of range 00-59"),
            IsoError::Second(s) => write!(f, "second {s} is out of range 00-59"),
            IsoError::FractionTooLong => f.write_str("fractional seconds must have 1 to 9 digits"),
            IsoError::Offset { hours, minutes } => write!(
                f,
                "zone offset {hours:02}:{minutes:02} is out of range (hours 00-23, minutes 00-59)"
            ),
            IsoError::Trailing(at) => write!(f, "unexpected characters at byte {at}"),
            IsoError::OutOfRange => {
                f.write_str("the instant is outside the representable range of i64 milliseconds")
            }
        }
    }
}

/// The decimal digit at `b[i]`, if there is one.
#[inline(always)]
fn digit_at(b: &[u8], i: usize) -> Option<u32> {
    match b.get(i) {
        Some(c) if c.is_ascii_digit() => Some(u32::from(c - b'0')),
        _ => None,
    }
}

/// Exactly two decimal digits at `b[i..i + 2]`.
#[inline(always)]
fn two_digits(b: &[u8], i: usize, what: &'static str) -> std::result::Result<u32, IsoError> {
    match (digit_at(b, i), digit_at(b, i + 1)) {
        (Some(hi), Some(lo)) => Ok(hi * 10 + lo),
        _ => Err(IsoError::Expected { what, at: i }),
    }
}

/// The byte-level ISO parser behind [`parse_iso_timestamp`]. `i` is always <= `b.len()`, and
/// every read goes through `get`, so no input can make it index out of bounds.
fn parse_iso_bytes(b: &[u8]) -> std::result::Result<Millis, IsoError> {
    if b.is_empty() {
        return Err(IsoError::Empty);
    }
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };

    // Year: 4 to 9 digits. Nine digits cover every i64 instant (|year| <= ~292 million), so the
    // output of format_iso_millis always parses back.
    let year_start = i;
    let mut year: i64 = 0;
    while let Some(d) = digit_at(b, i) {
        if i - year_start == 9 {
            return Err(IsoError::YearTooLong);
        }
        year = year * 10 + i64::from(d);
        i += 1;
    }
    if i - year_start < 4 {
        return Err(IsoError::Expected {
            what: "a year of at least 4 digits",
            at: year_start,
        });
    }
    if negative {
        year = -year;
    }

    let mut month = 1;
    let mut day = 1;
    let mut time_ms: i64 = 0;
    let mut offset_ms: i64 = 0;

    if i < b.len() {
        if b.get(i) != Some(&b'-') {
            return Err(IsoError::Expected {
                what: "'-' after the year",
                at: i,
            });
        }
        month = two_digits(b, i + 1, "a 2-digit month")?;
        i += 3;
        if !(1..=12).contains(&month) {
            return Err(IsoError::Month(month));
        }
    }
    if i < b.len() {
        if b.get(i) != Some(&b'-') {
            return Err(IsoError::Expected {
                what: "'-' after the month",
                at: i,
            });
        }
        day = two_digits(b, i + 1, "a 2-digit day")?;
        i += 3;
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(IsoError::Day { year, month, day });
    }

    if i < b.len() {
        if !matches!(b.get(i), Some(b'T' | b't' | b' ')) {
            return Err(IsoError::Expected {
                what: "'T' or ' ' between date and time",
                at: i,
            });
        }
        let hour = two_digits(b, i + 1, "a 2-digit hour")?;
        i += 3;
        if hour > 23 {
            return Err(IsoError::Hour(hour));
        }
        let mut minute = 0;
        let mut second = 0;
        let mut millis = 0;
        if b.get(i) == Some(&b':') {
            minute = two_digits(b, i + 1, "2-digit minutes")?;
            i += 3;
            if minute > 59 {
                return Err(IsoError::Minute(minute));
            }
            if b.get(i) == Some(&b':') {
                second = two_digits(b, i + 1, "2-digit seconds")?;
                i += 3;
                if second > 59 {
                    return Err(IsoError::Second(second));
                }
                if matches!(b.get(i), Some(b'.' | b',')) {
                    i += 1;
                    let frac_start = i;
                    while let Some(d) = digit_at(b, i) {
                        // Only the first three digits matter: sub-millisecond digits are truncated.
                        if i - frac_start < 3 {
                            millis = millis * 10 + d;
                        }
                        i += 1;
                    }
                    let n = i - frac_start;
                    if n == 0 {
                        return Err(IsoError::Expected {
                            what: "digits after the decimal point",
                            at: frac_start,
                        });
                    }
                    if n > 9 {
                        return Err(IsoError::FractionTooLong);
                    }
                    for _ in n..3 {
                        millis *= 10;
                    }
                }
            }
        }
        time_ms = i64::from(hour) * MILLIS_PER_HOUR
            + i64::from(minute) * MILLIS_PER_MINUTE
            + i64::from(second) * MILLIS_PER_SECOND
            + i64::from(millis);

        match b.get(i) {
            None => {}
            Some(b'Z' | b'z') => i += 1,
            Some(&sign @ (b'+' | b'-')) => {
                let hours = two_digits(b, i + 1, "2-digit zone offset hours")?;
                i += 3;
                let mut minutes = 0;
                if b.get(i) == Some(&b':') {
                    minutes = two_digits(b, i + 1, "2-digit zone offset minutes")?;
                    i += 3;
                } else if digit_at(b, i).is_some() {
                    minutes = two_digits(b, i, "2-digit zone offset minutes")?;
                    i += 2;
                }
                if hours > 23 || minutes > 59 {
                    return Err(IsoError::Offset { hours, minutes });
                }
                let magnitude =
                    i64::from(hours) * MILLIS_PER_HOUR + i64::from(minutes) * MILLIS_PER_MINUTE;
                // Local time = UTC + offset, so UTC = local - offset.
                offset_ms = if sign == b'+' { magnitude } else { -magnitude };
            }
            Some(_) => {
                return Err(IsoError::Expected {
                    what: "a zone ('Z', '+hh:mm', '+hhmm' or '+hh') or the end",
                    at: i,
                });
            }
        }
        if i != b.len() {
            return Err(IsoError::Trailing(i));
        }
    }

    // i128 so instants near i64::MIN/MAX (whose day start is out of range) still compute exactly.
    let days = i128::from(days_from_civil(year, month, day));
    let total = days * i128::from(MILLIS_PER_DAY) + i128::from(time_ms) - i128::from(offset_ms);
    i64::try_from(total).map_err(|_| IsoError::OutOfRange)
}

/// Parse an ISO-8601 timestamp into UTC milliseconds.
///
/// Accepted forms (a subset of ISO-8601 extended format, matching what Druid reads):
/// - dates `YYYY`, `YYYY-MM`, `YYYY-MM-DD`;
/// - then optionally a time after `T` (or `t` or a space): `HH`, `HH:MM`, `HH:MM:SS`, and after
///   seconds a fraction of 1-9 digits after `.` or `,` (truncated to milliseconds);
/// - after a time, optionally a zone: `Z`, `+hh:mm`, `+hhmm`, `+hh` (or `-`); absent means UTC.
///
/// The year has 4 digits, or up to 9 with an optional `+`/`-` sign (astronomical numbering), so
/// every string [`format_iso_millis`] produces, for any `i64`, parses back to the same value.
/// Invalid dates and times (2021-02-30, month 13, hour 24, minute 60) are rejected; leap seconds
/// and `24:00` are not supported.
///
/// This is on the ingest hot path: it is hand-written byte parsing and allocates only to build
/// an error.
pub fn parse_iso_timestamp(s: &str) -> Result<Millis> {
    parse_iso_bytes(s.as_bytes()).map_err(|e| iso_error(s, e))
}

fn iso_error(s: &str, e: IsoError) -> Error {
    Error::invalid(format!("invalid ISO-8601 timestamp {}: {e}", quoted(s)))
}

/// Appends `v` in decimal, left-padded with zeros to at least `width` digits.
fn push_padded(out: &mut String, v: u64, width: usize) {
    let mut buf = [0u8; 20]; // u64::MAX has 20 digits
    let mut n = 0;
    let mut v = v;
    loop {
        buf[n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
        if v == 0 {
            break;
        }
    }
    for _ in n..width {
        out.push('0');
    }
    for &c in buf[..n].iter().rev() {
        out.push(char::from(c));
    }
}

/// Format UTC milliseconds as `YYYY-MM-DDTHH:MM:SS.sssZ`, Druid's (Joda's) output format.
///
/// Defined for every `i64`: years outside 0000-9999 are written with more digits and, before
/// year 0, a leading `-` (e.g. [`Interval::ETERNITY`] formats as
/// `-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z`, exactly as in Druid).
/// [`parse_iso_timestamp`] reads every output back to the same value.
pub fn format_iso_millis(t: Millis) -> String {
    let mut out = String::with_capacity(24);
    push_iso_millis(&mut out, t);
    out
}

/// Append [`format_iso_millis`]'s text to `out`.
pub fn push_iso_millis(out: &mut String, t: Millis) {
    let days = t.div_euclid(MILLIS_PER_DAY);
    let tod = t.rem_euclid(MILLIS_PER_DAY) as u64; // [0, 86_399_999]
    let (year, month, day) = civil_from_days(days);
    if year < 0 {
        out.push('-');
    }
    push_padded(out, year.unsigned_abs(), 4);
    out.push('-');
    push_padded(out, u64::from(month), 2);
    out.push('-');
    push_padded(out, u64::from(day), 2);
    out.push('T');
    push_padded(out, tod / 3_600_000, 2);
    out.push(':');
    push_padded(out, tod / 60_000 % 60, 2);
    out.push(':');
    push_padded(out, tod / 1_000 % 60, 2);
    out.push('.');
    push_padded(out, tod % 1_000, 3);
    out.push('Z');
}

/// Append `"` + [`format_iso_millis`]'s text + `"` to `out`: a timestamp as a JSON string.
///
/// Years 0000-9999 are written from a fixed-size buffer, two digits at a time (result sets
/// carry millions of timestamps); other years take [`push_iso_millis`].
#[inline]
pub fn write_iso_millis_json(out: &mut Vec<u8>, t: Millis) {
    const DIGITS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let days = t.div_euclid(MILLIS_PER_DAY);
    let tod = t.rem_euclid(MILLIS_PER_DAY) as usize; // [0, 86_399_999]
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        let mut s = String::with_capacity(32);
        push_iso_millis(&mut s, t);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    let two = |b: &mut [u8], at: usize, v: usize| {
        b[at..at + 2].copy_from_slice(&DIGITS[2 * v..2 * v + 2]);
    };
    let mut b = *b"\"0000-00-00T00:00:00.000Z\"";
    let year = year as usize;
    two(&mut b, 1, year / 100);
    two(&mut b, 3, year % 100);
    two(&mut b, 6, month as usize);
    two(&mut b, 9, day as usize);
    two(&mut b, 12, tod / 3_600_000);
    two(&mut b, 15, tod / 60_000 % 60);
    two(&mut b, 18, tod / 1_000 % 60);
    let ms = tod % 1_000;
    b[21] = b'0' + (ms / 100) as u8;
    two(&mut b, 22, ms % 100);
    out.extend_from_slice(&b);
}

// ---------------------------------------------------------------------------------------------
// Periods
// ---------------------------------------------------------------------------------------------

/// An ISO-8601 period such as `P1D`, `PT1H`, `P1Y2M`, `PT15M`, `P1W` or `PT1.5S`.
///
/// Fields are applied like Joda (and so Druid) applies them: years, then months (each step
/// clamping the day of month, so 2020-02-29 + `P1Y1M` = 2021-03-28), then the fixed-length
/// fields (weeks, days, hours, minutes, seconds, millis) as exact durations, since all time here
/// is UTC. Parsed periods have non-negative fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Period {
    /// Calendar years.
    pub years: i64,
    /// Calendar months.
    pub months: i64,
    /// Weeks (7 days).
    pub weeks: i64,
    /// Days (24 hours, UTC).
    pub days: i64,
    /// Hours.
    pub hours: i64,
    /// Minutes.
    pub minutes: i64,
    /// Whole seconds.
    pub seconds: i64,
    /// Milliseconds (from a fractional seconds field).
    pub millis: i64,
}

impl Period {
    /// Parse ISO-8601 period text: `P[nY][nM][nW][nD][T[nH][nM][n[.fff]S]]`, at least one
    /// component, designators in that order, only seconds may be fractional (truncated to ms).
    pub fn parse(s: &str) -> Result<Period> {
        parse_period(s)
            .map_err(|why| Error::invalid(format!("invalid ISO-8601 period {}: {why}", quoted(s))))
    }

    /// `t + self`; an error if the result is not representable.
    pub fn add_to(&self, t: Millis) -> Result<Millis> {
        self.apply(t, 1).ok_or_else(|| {
            Error::invalid(format!(
                "adding period {self:?} to {} leaves the representable time range",
                format_iso_millis(t)
            ))
        })
    }

    /// `t - self` (each field subtracted in the same order as [`Period::add_to`] adds them);
    /// an error if the result is not representable.
    pub fn subtract_from(&self, t: Millis) -> Result<Millis> {
        self.apply(t, -1).ok_or_else(|| {
            Error::invalid(format!(
                "subtracting period {self:?} from {} leaves the representable time range",
                format_iso_millis(t)
            ))
        })
    }

    fn apply(&self, t: Millis, sign: i64) -> Option<Millis> {
        let mut t = t;
        if self.years != 0 {
            t = add_months(t, self.years.checked_mul(12)?.checked_mul(sign)?)?;
        }
        if self.months != 0 {
            t = add_months(t, self.months.checked_mul(sign)?)?;
        }
        // Each product is < 2^63 * 2^30 and there are six, so the i128 sum cannot overflow.
        let fixed = i128::from(self.weeks) * i128::from(MILLIS_PER_WEEK)
            + i128::from(self.days) * i128::from(MILLIS_PER_DAY)
            + i128::from(self.hours) * i128::from(MILLIS_PER_HOUR)
            + i128::from(self.minutes) * i128::from(MILLIS_PER_MINUTE)
            + i128::from(self.seconds) * i128::from(MILLIS_PER_SECOND)
            + i128::from(self.millis);
        i64::try_from(i128::from(t) + i128::from(sign) * fixed).ok()
    }
}

fn parse_period(s: &str) -> std::result::Result<Period, String> {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(b'P' | b'p')) {
        return Err("a period must start with 'P'".to_string());
    }
    let mut p = Period::default();
    let mut i = 1;
    let mut in_time = false;
    let mut any_component = false;
    let mut any_time_component = false;
    // Rank of the last designator: Y=1 M=2 W=3 D=4 H=5 M=6 S=7; strictly increasing.
    let mut last_rank = 0u8;
    while let Some(&c) = b.get(i) {
        if c == b'T' || c == b't' {
            if in_time {
                return Err(format!("'T' appears twice (byte {i})"));
            }
            in_time = true;
            i += 1;
            continue;
        }
        let num_start = i;
        let mut value: i64 = 0;
        while let Some(d) = digit_at(b, i) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(i64::from(d)))
                .ok_or_else(|| format!("the number at byte {num_start} is too large"))?;
            i += 1;
        }
        if i == num_start {
            return Err(format!("expected a number at byte {i}"));
        }
        let mut frac_ms: Option<i64> = None;
        if matches!(b.get(i), Some(b'.' | b',')) {
            i += 1;
            let frac_start = i;
            let mut ms = 0;
            while let Some(d) = digit_at(b, i) {
                if i - frac_start < 3 {
                    ms = ms * 10 + i64::from(d);
                }
                i += 1;
            }
            let n = i - frac_start;
            if n == 0 || n > 9 {
                return Err(format!(
                    "the fraction at byte {frac_start} must have 1 to 9 digits"
                ));
            }
            for _ in n..3 {
                ms *= 10;
            }
            frac_ms = Some(ms);
        }
        let Some(&designator) = b.get(i) else {
            return Err(format!(
                "the number at byte {num_start} has no designator (Y, M, W, D, H, M or S)"
            ));
        };
        let rank = match (in_time, designator.to_ascii_uppercase()) {
            (false, b'Y') => 1,
            (false, b'M') => 2,
            (false, b'W') => 3,
            (false, b'D') => 4,
            (true, b'H') => 5,
            (true, b'M') => 6,
            (true, b'S') => 7,
            (false, b'H' | b'S') => {
                return Err(format!("hours and seconds must come after 'T' (byte {i})"));
            }
            (true, b'Y' | b'W' | b'D') => {
                return Err(format!(
                    "years, weeks and days must come before 'T' (byte {i})"
                ));
            }
            _ => {
                return Err(format!(
                    "unknown designator at byte {i} (expected Y, M, W, D, T, H, M or S)"
                ));
            }
        };
        if rank <= last_rank {
            return Err(format!(
                "the designator at byte {i} is repeated or out of order (order is Y, M, W, D, T, H, M, S)"
            ));
        }
        if frac_ms.is_some() && rank != 7 {
            return Err(format!(
                "only seconds may have a fraction (byte {num_start})"
            ));
        }
        match rank {
            1 => p.years = value,
            2 => p.months = value,
            3 => p.weeks = value,
            4 => p.days = value,
            5 => p.hours = value,
            6 => p.minutes = value,
            _ => {
                p.seconds = value;
                p.millis = frac_ms.unwrap_or(0);
            }
        }
        last_rank = rank;
        any_component = true;
        any_time_component |= in_time;
        i += 1;
    }
    if in_time && !any_time_component {
        return Err("'T' must be followed by at least one of H, M, S".to_string());
    }
    if !any_component {
        return Err("a period needs at least one component, e.g. P1D or PT1H".to_string());
    }
    Ok(p)
}

// ---------------------------------------------------------------------------------------------
// Intervals
// ---------------------------------------------------------------------------------------------

/// Half-open `[start, end)` interval in UTC milliseconds.
///
/// Invariant: `start <= end` for every interval built by [`Interval::new`], [`Interval::parse`]
/// or deserialization (which validates). The fields are public, so the methods stay total for
/// hand-built intervals with `start > end` too: those behave as empty.
///
/// Serialized (serde) as `{"start": <ms>, "end": <ms>}`; [`fmt::Display`] and [`FromStr`] use
/// Druid's ISO text form.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "RawInterval")]
pub struct Interval {
    /// First instant inside the interval.
    pub start: Millis,
    /// First instant after the interval (exclusive).
    pub end: Millis,
}

/// Unvalidated serde shape of [`Interval`].
#[derive(Deserialize)]
struct RawInterval {
    start: Millis,
    end: Millis,
}

impl TryFrom<RawInterval> for Interval {
    type Error = Error;

    fn try_from(raw: RawInterval) -> Result<Interval> {
        Interval::new(raw.start, raw.end)
    }
}

impl Interval {
    /// All of time: `[i64::MIN / 2, i64::MAX / 2)`, the same bounds as Druid's
    /// `Intervals.ETERNITY` (Joda's `MIN_INSTANT`/`MAX_INSTANT`). It formats as
    /// `-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z`, like Druid, and that text
    /// parses back. Halving leaves headroom so `end - start` (= `i64::MAX`) and arithmetic near
    /// the bounds does not overflow.
    pub const ETERNITY: Interval = Interval {
        start: i64::MIN / 2,
        end: i64::MAX / 2,
    };

    /// `[start, end)`; an error if `start > end`. `start == end` is a valid, empty interval.
    pub fn new(start: Millis, end: Millis) -> Result<Interval> {
        if start > end {
            return Err(Error::invalid(format!(
                "interval start {} ({start}) is after its end {} ({end})",
                format_iso_millis(start),
                format_iso_millis(end)
            )));
        }
        Ok(Interval { start, end })
    }

    /// True if `start <= t < end`.
    #[inline]
    pub fn contains(&self, t: Millis) -> bool {
        self.start <= t && t < self.end
    }

    /// True if the two intervals share at least one instant (adjacent intervals do not overlap,
    /// and an empty interval overlaps nothing).
    #[inline]
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start.max(other.start) < self.end.min(other.end)
    }

    /// True if every instant of `other` is in `self`: `self.start <= other.start` and
    /// `other.end <= self.end`. (So an empty `other` is contained when it lies within `self`'s
    /// closed bounds.)
    #[inline]
    pub fn contains_interval(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// The common part of the two intervals, or `None` if it is empty (exactly when
    /// [`Interval::overlaps`] is false).
    #[inline]
    pub fn intersect(&self, other: &Interval) -> Option<Interval> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Interval { start, end })
    }

    /// True if the interval contains no instant (`start >= end`).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// `end - start` in milliseconds; 0 for empty intervals, saturating at `i64::MAX`.
    #[inline]
    pub fn duration_ms(&self) -> i64 {
        self.end.saturating_sub(self.start).max(0)
    }

    /// Parse Druid/ISO-8601 interval text: `start/end`, `start/PERIOD` or `PERIOD/end`, where
    /// `start` and `end` are timestamps as read by [`parse_iso_timestamp`] and `PERIOD` is a
    /// [`Period`] (`P1D`, `PT1H`, `P1Y2M`, `PT15M`, `P1W`, ...). Surrounding whitespace is
    /// ignored. Errors if the text is malformed or `start > end`.
    pub fn parse(s: &str) -> Result<Interval> {
        let text = s.trim();
        let invalid =
            |why: String| Error::invalid(format!("invalid interval {}: {why}", quoted(s)));
        let Some((left, right)) = text.split_once('/') else {
            return Err(invalid(
                "expected 'start/end', 'start/PERIOD' or 'PERIOD/end'".to_string(),
            ));
        };
        if right.contains('/') {
            return Err(invalid("expected exactly one '/'".to_string()));
        }
        let is_period = |side: &str| side.starts_with(['P', 'p']);
        let timestamp = |side: &str, which: &str| {
            parse_iso_bytes(side.as_bytes()).map_err(|e| {
                invalid(format!(
                    "{which} is not an ISO-8601 timestamp or period ({}: {e})",
                    quoted(side)
                ))
            })
        };
        let period = |side: &str| parse_period(side).map_err(invalid);
        let (start, end) = match (is_period(left), is_period(right)) {
            (false, false) => (timestamp(left, "start")?, timestamp(right, "end")?),
            (false, true) => {
                let start = timestamp(left, "start")?;
                let end = period(right)?.apply(start, 1).ok_or_else(|| {
                    invalid("the end is outside the representable time range".to_string())
                })?;
                (start, end)
            }
            (true, false) => {
                let end = timestamp(right, "end")?;
                let start = period(left)?.apply(end, -1).ok_or_else(|| {
                    invalid("the start is outside the representable time range".to_string())
                })?;
                (start, end)
            }
            (true, true) => {
                return Err(invalid(
                    "both sides are periods; one side must be a timestamp".to_string(),
                ));
            }
        };
        if start > end {
            return Err(invalid(format!(
                "start {} is after end {}",
                format_iso_millis(start),
                format_iso_millis(end)
            )));
        }
        Ok(Interval { start, end })
    }
}

impl fmt::Display for Interval {
    /// `2020-01-01T00:00:00.000Z/2020-01-02T00:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(49);
        push_iso_millis(&mut out, self.start);
        out.push('/');
        push_iso_millis(&mut out, self.end);
        f.write_str(&out)
    }
}

impl FromStr for Interval {
    type Err = Error;

    /// Same as [`Interval::parse`].
    fn from_str(s: &str) -> Result<Interval> {
        Interval::parse(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Timestamp formats
// ---------------------------------------------------------------------------------------------

/// Druid's `timestampSpec.format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimestampFormat {
    /// Numbers and all-digit strings (optionally with a leading `-`) are milliseconds; any other
    /// string is ISO-8601.
    #[default]
    Auto,
    /// ISO-8601 strings ([`parse_iso_timestamp`]); numbers are milliseconds, as in Druid.
    Iso,
    /// Milliseconds since the epoch.
    Millis,
    /// Seconds since the epoch (fractions allowed: 1.5 is 1500 ms).
    Posix,
    /// Microseconds since the epoch.
    Micro,
    /// Nanoseconds since the epoch.
    Nano,
}

impl TimestampFormat {
    /// Every format, in documentation order.
    pub const VARIANTS: [TimestampFormat; 6] = [
        TimestampFormat::Auto,
        TimestampFormat::Iso,
        TimestampFormat::Millis,
        TimestampFormat::Posix,
        TimestampFormat::Micro,
        TimestampFormat::Nano,
    ];

    /// Parse `"auto"`, `"iso"`, `"millis"`, `"posix"`, `"micro"` or `"nano"` (case-insensitive).
    /// The error names the value and lists the valid ones (Joda patterns and `ruby` are not
    /// supported).
    pub fn parse(s: &str) -> Result<Self> {
        Self::VARIANTS
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let valid: Vec<&str> = Self::VARIANTS.iter().map(|f| f.name()).collect();
                Error::invalid(format!(
                    "unknown timestamp format {}: valid formats are {}",
                    quoted(s),
                    valid.join(", ")
                ))
            })
    }

    /// The lower-case Druid name, e.g. `"auto"`.
    pub fn name(&self) -> &'static str {
        match self {
            TimestampFormat::Auto => "auto",
            TimestampFormat::Iso => "iso",
            TimestampFormat::Millis => "millis",
            TimestampFormat::Posix => "posix",
            TimestampFormat::Micro => "micro",
            TimestampFormat::Nano => "nano",
        }
    }

    /// Power of ten that turns a value in this format's unit into milliseconds.
    fn scale(&self) -> i32 {
        match self {
            TimestampFormat::Auto | TimestampFormat::Iso | TimestampFormat::Millis => 0,
            TimestampFormat::Posix => 3,
            TimestampFormat::Micro => -3,
            TimestampFormat::Nano => -6,
        }
    }

    /// Interpret a JSON value as a timestamp in this format.
    ///
    /// Strings go to [`TimestampFormat::parse_str`]; integers to [`TimestampFormat::parse_i64`];
    /// other numbers (fractional, or integers beyond `i64`) are converted exactly from their
    /// decimal text and floored to whole milliseconds. Null, booleans, arrays and objects are
    /// errors naming what was found.
    pub fn parse_json(&self, v: &serde_json::Value) -> Result<Millis> {
        use serde_json::Value;
        match v {
            Value::String(s) => self.parse_str(s),
            Value::Number(n) => match n.as_i64() {
                Some(i) => self.parse_i64(i),
                None => {
                    let text = n.to_string();
                    parse_decimal_scaled(&text, self.scale())
                        .map_err(|why| self.number_error(&text, why))
                }
            },
            Value::Null => Err(self.type_error("null")),
            Value::Bool(b) => Err(self.type_error(if *b {
                "the boolean true"
            } else {
                "the boolean false"
            })),
            Value::Array(_) => Err(self.type_error("an array")),
            Value::Object(_) => Err(self.type_error("an object")),
        }
    }

    /// Interpret a string as a timestamp in this format (surrounding ASCII whitespace ignored).
    ///
    /// `auto`: all digits with an optional leading `-` means milliseconds, anything else ISO.
    /// `iso`: ISO-8601 only. Numeric formats: a decimal number, optionally with a fraction and
    /// exponent (`1.5`, `1.5e9`), scaled to milliseconds and floored (toward negative infinity).
    pub fn parse_str(&self, s: &str) -> Result<Millis> {
        let t = s.trim_ascii();
        match self {
            TimestampFormat::Auto => {
                if is_integer_text(t) {
                    parse_i64_text(t)
                        .ok_or_else(|| self.number_error(s, "out of range for i64 milliseconds"))
                } else {
                    parse_iso_timestamp(t)
                }
            }
            TimestampFormat::Iso => parse_iso_timestamp(t),
            _ => match parse_i64_text(t) {
                // Fast path: plain integers, the common case.
                Some(v) => self.parse_i64(v),
                None => {
                    parse_decimal_scaled(t, self.scale()).map_err(|why| self.number_error(s, why))
                }
            },
        }
    }

    /// Interpret an integer (e.g. from an Arrow or Parquet column) in this format.
    ///
    /// `auto`, `iso` and `millis` take it as milliseconds; `posix` multiplies by 1000 (an error on
    /// overflow); `micro` and `nano` divide, rounding toward negative infinity.
    pub fn parse_i64(&self, v: i64) -> Result<Millis> {
        match self {
            TimestampFormat::Auto | TimestampFormat::Iso | TimestampFormat::Millis => Ok(v),
            TimestampFormat::Posix => v.checked_mul(1_000).ok_or_else(|| {
                self.number_error(
                    &v.to_string(),
                    "out of range: seconds overflow i64 milliseconds",
                )
            }),
            TimestampFormat::Micro => Ok(v.div_euclid(1_000)),
            TimestampFormat::Nano => Ok(v.div_euclid(1_000_000)),
        }
    }

    fn number_error(&self, text: &str, why: &str) -> Error {
        Error::invalid(format!(
            "invalid '{}' timestamp {}: {why}",
            self.name(),
            quoted(text)
        ))
    }

    fn type_error(&self, found: &str) -> Error {
        Error::invalid(format!(
            "expected a timestamp (string or number) for format '{}', found {found}",
            self.name()
        ))
    }
}

impl fmt::Display for TimestampFormat {
    /// The lower-case Druid name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TimestampFormat {
    type Err = Error;

    /// Same as [`TimestampFormat::parse`].
    fn from_str(s: &str) -> Result<Self> {
        TimestampFormat::parse(s)
    }
}

/// True if `s` is one or more ASCII digits with an optional leading `-`.
#[inline]
fn is_integer_text(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
}

/// `s` as an i64 if it is an optional `-` and 1+ digits and fits; no `+`, no whitespace.
#[inline]
fn parse_i64_text(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulate negatively so i64::MIN parses.
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
    }
    if negative { Some(v) } else { v.checked_neg() }
}

/// `floor(x * 10^scale)` as an i64, where `x` is decimal text: `[+-]digits[.digits][(e|E)[+-]digits]`
/// (either digit run may be empty, not both). Exact: no floating point is involved.
fn parse_decimal_scaled(s: &str, scale: i32) -> std::result::Result<i64, &'static str> {
    const NOT_A_NUMBER: &str = "expected a number";
    const OUT_OF_RANGE: &str = "out of range for i64 milliseconds";
    // Beyond this magnitude an exponent behaves the same (overflow, or everything truncated).
    const EXP_CAP: i64 = 1_000_000;
    let b = s.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while digit_at(b, i).is_some() {
        i += 1;
    }
    let int_digits = &b[int_start..i];
    let mut frac_digits: &[u8] = &[];
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while digit_at(b, i).is_some() {
            i += 1;
        }
        frac_digits = &b[frac_start..i];
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(NOT_A_NUMBER);
    }
    let mut exp: i64 = 0;
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exp_negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let exp_start = i;
        while let Some(d) = digit_at(b, i) {
            exp = (exp * 10 + i64::from(d)).min(EXP_CAP);
            i += 1;
        }
        if i == exp_start {
            return Err(NOT_A_NUMBER);
        }
        if exp_negative {
            exp = -exp;
        }
    }
    if i != b.len() {
        return Err(NOT_A_NUMBER);
    }
    // `pos` is the power of ten (after scaling) of the digit being read. Digits at pos >= 0 form
    // the integer part; any nonzero digit below is a remainder that matters only for flooring.
    let len = i64::try_from(int_digits.len()).map_err(|_| OUT_OF_RANGE)?;
    let mut pos = len - 1 + exp + i64::from(scale);
    let mut acc: i128 = 0;
    let mut remainder = false;
    for &c in int_digits.iter().chain(frac_digits) {
        let d = i128::from(c - b'0');
        if pos >= 0 {
            acc = acc
                .checked_mul(10)
                .and_then(|a| a.checked_add(d))
                .ok_or(OUT_OF_RANGE)?;
        } else if d != 0 {
            remainder = true;
        }
        pos -= 1;
    }
    // Digits ended above the units position: append the implied zeros.
    let mut zeros = pos + 1;
    while zeros > 0 && acc != 0 {
        acc = acc.checked_mul(10).ok_or(OUT_OF_RANGE)?;
        zeros -= 1;
    }
    let value = if negative {
        -acc - i128::from(remainder)
    } else {
        acc
    };
    i64::try_from(value).map_err(|_| OUT_OF_RANGE)
}

// ---------------------------------------------------------------------------------------------
// Granularities
// ---------------------------------------------------------------------------------------------

/// Druid's simple granularities. Buckets are aligned in UTC: fixed-length ones to the epoch,
/// weeks to Mondays (ISO weeks, as in Druid), months/quarters/years to calendar boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One-millisecond buckets: no truncation.
    None,
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// Five minutes.
    FiveMinute,
    /// Ten minutes.
    TenMinute,
    /// Fifteen minutes.
    FifteenMinute,
    /// Thirty minutes.
    ThirtyMinute,
    /// One hour.
    Hour,
    /// Six hours (00, 06, 12, 18 UTC).
    SixHour,
    /// Eight hours (00, 08, 16 UTC).
    EightHour,
    /// One UTC day.
    Day,
    /// One ISO week, Monday 00:00 UTC to the next Monday.
    Week,
    /// One calendar month.
    Month,
    /// One calendar quarter (starting January, April, July, October).
    Quarter,
    /// One calendar year.
    Year,
    /// A single bucket covering all of time ([`Interval::ETERNITY`]).
    All,
}

impl Granularity {
    /// Every granularity, finest to coarsest (Week sorts between Day and Month, though it is not
    /// finer than Month).
    pub const VARIANTS: [Granularity; 16] = [
        Granularity::None,
        Granularity::Second,
        Granularity::Minute,
        Granularity::FiveMinute,
        Granularity::TenMinute,
        Granularity::FifteenMinute,
        Granularity::ThirtyMinute,
        Granularity::Hour,
        Granularity::SixHour,
        Granularity::EightHour,
        Granularity::Day,
        Granularity::Week,
        Granularity::Month,
        Granularity::Quarter,
        Granularity::Year,
        Granularity::All,
    ];

    /// Parse a Druid granularity name, case-insensitively: `none`, `second`, `minute`,
    /// `five_minute`, `ten_minute`, `fifteen_minute`, `thirty_minute`, `hour`, `six_hour`,
    /// `eight_hour`, `day`, `week`, `month`, `quarter`, `year`, `all`. The error lists them.
    pub fn parse(s: &str) -> Result<Self> {
        Self::parse_name(s).map_err(Error::invalid)
    }

    fn parse_name(s: &str) -> std::result::Result<Self, String> {
        Self::VARIANTS
            .into_iter()
            .find(|g| g.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let valid: Vec<&str> = Self::VARIANTS.iter().map(|g| g.name()).collect();
                format!(
                    "unknown granularity {}: valid granularities are {}",
                    quoted(s),
                    valid.join(", ")
                )
            })
    }

    /// The lower-case Druid name, e.g. `"five_minute"`.
    pub fn name(&self) -> &'static str {
        match self {
            Granularity::None => "none",
            Granularity::Second => "second",
            Granularity::Minute => "minute",
            Granularity::FiveMinute => "five_minute",
            Granularity::TenMinute => "ten_minute",
            Granularity::FifteenMinute => "fifteen_minute",
            Granularity::ThirtyMinute => "thirty_minute",
            Granularity::Hour => "hour",
            Granularity::SixHour => "six_hour",
            Granularity::EightHour => "eight_hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
            Granularity::Quarter => "quarter",
            Granularity::Year => "year",
            Granularity::All => "all",
        }
    }

    /// Bucket length for epoch-aligned fixed-length granularities (None through Day).
    fn fixed_ms(&self) -> Option<i64> {
        Some(match self {
            Granularity::None => 1,
            Granularity::Second => MILLIS_PER_SECOND,
            Granularity::Minute => MILLIS_PER_MINUTE,
            Granularity::FiveMinute => 5 * MILLIS_PER_MINUTE,
            Granularity::TenMinute => 10 * MILLIS_PER_MINUTE,
            Granularity::FifteenMinute => 15 * MILLIS_PER_MINUTE,
            Granularity::ThirtyMinute => 30 * MILLIS_PER_MINUTE,
            Granularity::Hour => MILLIS_PER_HOUR,
            Granularity::SixHour => 6 * MILLIS_PER_HOUR,
            Granularity::EightHour => 8 * MILLIS_PER_HOUR,
            Granularity::Day => MILLIS_PER_DAY,
            Granularity::Week
            | Granularity::Month
            | Granularity::Quarter
            | Granularity::Year
            | Granularity::All => return Option::None,
        })
    }

    /// Bucket length in months for calendar granularities.
    fn calendar_months(&self) -> Option<u32> {
        match self {
            Granularity::Month => Some(1),
            Granularity::Quarter => Some(3),
            Granularity::Year => Some(12),
            _ => Option::None,
        }
    }

    /// Start of the bucket containing `t`. `None` returns `t`; `All` returns
    /// `Interval::ETERNITY.start`. Exact within [`Interval::ETERNITY`]; a bucket start before
    /// `i64::MIN` saturates to `i64::MIN`.
    pub fn truncate(&self, t: Millis) -> Millis {
        if let Some(unit) = self.fixed_ms() {
            return t.saturating_sub(t.rem_euclid(unit));
        }
        match self {
            Granularity::Week => {
                // 1970-01-01 was a Thursday, so Mondays are at epoch + 4 days (mod 7 days):
                // the offset into the week is (t - 4 days) mod 7 days = (t mod 7d + 3d) mod 7d,
                // written so nothing overflows.
                let into_week =
                    (t.rem_euclid(MILLIS_PER_WEEK) + 3 * MILLIS_PER_DAY) % MILLIS_PER_WEEK;
                t.saturating_sub(into_week)
            }
            Granularity::All => Interval::ETERNITY.start,
            _ => {
                let months = self.calendar_months().unwrap_or(1);
                let (y, m, _) = civil_from_days(t.div_euclid(MILLIS_PER_DAY));
                let first_month = (m - 1) / months * months + 1;
                days_from_civil(y, first_month, 1).saturating_mul(MILLIS_PER_DAY)
            }
        }
    }

    /// Start of the bucket after the one containing `bucket_start` (normally a bucket start).
    /// Months, quarters and years step by calendar. `None` returns `+1`; `All` returns
    /// `Interval::ETERNITY.end`. Saturates at `i64::MAX`.
    pub fn next(&self, bucket_start: Millis) -> Millis {
        let start = self.truncate(bucket_start);
        if let Some(unit) = self.fixed_ms() {
            return start.saturating_add(unit);
        }
        match self {
            Granularity::Week => start.saturating_add(MILLIS_PER_WEEK),
            Granularity::All => Interval::ETERNITY.end,
            _ => {
                let months = self.calendar_months().unwrap_or(1);
                add_months(start, i64::from(months)).unwrap_or(i64::MAX)
            }
        }
    }

    /// The bucket containing `t`: `[truncate(t), next(truncate(t)))`.
    pub fn bucket(&self, t: Millis) -> Interval {
        let start = self.truncate(t);
        Interval {
            start,
            end: self.next(start),
        }
    }

    /// The buckets overlapping `interval`, in order and contiguous. The first may start before
    /// `interval.start` and the last may end after `interval.end`; an empty interval has none.
    ///
    /// Errors with [`Error::ResourcesExhausted`] if more than `max_buckets` buckets would be
    /// produced (checked before allocating for fixed-length granularities).
    pub fn buckets(&self, interval: Interval, max_buckets: usize) -> Result<Vec<Interval>> {
        if interval.is_empty() {
            return Ok(Vec::new());
        }
        let too_many = || {
            Error::ResourcesExhausted(format!(
                "granularity '{}' splits interval {interval} into more than {max_buckets} buckets",
                self.name()
            ))
        };
        let first = self.truncate(interval.start);
        let step = match self {
            Granularity::Week => Some(MILLIS_PER_WEEK),
            _ => self.fixed_ms(),
        };
        if let Some(step) = step {
            let span = i128::from(interval.end) - i128::from(first);
            let count = (span + i128::from(step) - 1) / i128::from(step);
            if count > i128::try_from(max_buckets).unwrap_or(i128::MAX) {
                return Err(too_many());
            }
        }
        // Bounded pre-allocation: `max_buckets` may be huge.
        let mut out = Vec::with_capacity(max_buckets.min(1024));
        let mut start = first;
        while start < interval.end {
            if out.len() >= max_buckets {
                return Err(too_many());
            }
            let end = self.next(start);
            // Invariant: end > start except when saturated at i64::MAX; never loop forever.
            if end <= start {
                break;
            }
            out.push(Interval { start, end });
            start = end;
        }
        Ok(out)
    }

    /// True if every bucket of `self` lies inside one bucket of `coarser` (Hour is finer than
    /// Day; Day than Week and Month; Week is not finer than Month). Reflexive; `None` is finer
    /// than everything and everything is finer than `All`. Used to validate
    /// `queryGranularity <= segmentGranularity`.
    pub fn is_finer_or_equal(&self, coarser: &Granularity) -> bool {
        use Granularity as G;
        match (self, coarser) {
            (_, G::All) | (G::None, _) => true,
            (G::All, _) | (_, G::None) => false,
            (G::Week, G::Week) => true,
            (G::Week, _) => false,
            _ => match (self.fixed_ms(), coarser.fixed_ms()) {
                // Both epoch-aligned: nested iff the lengths divide.
                (Some(fine), Some(coarse)) => coarse % fine == 0,
                // Week, month, quarter and year boundaries are all UTC day boundaries.
                (Some(fine), Option::None) => MILLIS_PER_DAY % fine == 0,
                (Option::None, Some(_)) => false,
                (Option::None, Option::None) => {
                    match (self.calendar_months(), coarser.calendar_months()) {
                        (Some(fine), Some(coarse)) => coarse % fine == 0,
                        _ => false,
                    }
                }
            },
        }
    }
}

impl fmt::Display for Granularity {
    /// The lower-case Druid name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Granularity {
    type Err = Error;

    /// Same as [`Granularity::parse`].
    fn from_str(s: &str) -> Result<Self> {
        Granularity::parse(s)
    }
}

impl Serialize for Granularity {
    /// As the lower-case name string, e.g. `"hour"`.
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Granularity {
    /// From a name string (`"hour"`, any case) or Druid's object form with only a type
    /// (`{"type": "hour"}`). Druid's `period` and `duration` granularities are rejected.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(GranularityVisitor)
    }
}

#[derive(Debug)]
struct GranularityVisitor;

impl<'de> Visitor<'de> for GranularityVisitor {
    type Value = Granularity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a granularity name such as \"hour\", or an object such as {\"type\": \"hour\"}",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Granularity, E> {
        Granularity::parse_name(v).map_err(E::custom)
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Granularity, A::Error> {
        let mut kind: Option<String> = Option::None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "type" {
                return Err(de::Error::custom(format!(
                    "unsupported granularity field {}: only simple granularities \
                     ({{\"type\": \"<name>\"}}) are supported",
                    quoted(&key)
                )));
            }
            if kind.is_some() {
                return Err(de::Error::duplicate_field("type"));
            }
            kind = Some(map.next_value::<String>()?);
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        if kind.eq_ignore_ascii_case("period") || kind.eq_ignore_ascii_case("duration") {
            return Err(de::Error::custom(format!(
                "granularity type {} is not supported: use a simple granularity name such as \"hour\"",
                quoted(&kind)
            )));
        }
        Granularity::parse_name(&kind).map_err(de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = MILLIS_PER_DAY;
    const HOUR: i64 = MILLIS_PER_HOUR;
    /// 0001-01-01T00:00:00.000Z
    const YEAR_1: i64 = -62_135_596_800_000;
    /// 10000-01-01T00:00:00.000Z
    const YEAR_10000: i64 = 253_402_300_800_000;

    fn ts(s: &str) -> Millis {
        parse_iso_timestamp(s).unwrap()
    }

    fn err_msg<T: fmt::Debug>(r: Result<T>) -> String {
        r.unwrap_err().to_string()
    }

    // ---- civil ----

    #[test]
    fn civil_known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1970, 1, 2), 1);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2020, 1, 1), 18_262);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
        assert_eq!(days_from_civil(0, 3, 1), -719_468);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(civil_from_days(-719_469), (0, 2, 29)); // year 0 is a leap year
    }

    #[test]
    fn civil_round_trip_and_sequential() {
        let mut prev = civil_from_days(-800_000);
        for days in -799_999..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=days_in_month(y, m)).contains(&d));
            let (py, pm, pd) = prev;
            if d == 1 {
                assert_eq!(pd, days_in_month(py, pm));
                if m == 1 {
                    assert_eq!((py + 1, pm), (y, 12));
                } else {
                    assert_eq!((py, pm + 1), (y, m));
                }
            } else {
                assert_eq!((py, pm, pd + 1), (y, m, d));
            }
            prev = (y, m, d);
        }
    }

    #[test]
    fn civil_extremes_do_not_panic() {
        for days in [i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1, -1, 0] {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            let _ = days_from_civil(y, m, d);
        }
        let big = civil_from_days(i64::MAX);
        assert_eq!(days_from_civil(big.0, big.1, big.2), i64::MAX);
        let small = civil_from_days(i64::MIN);
        assert_eq!(days_from_civil(small.0, small.1, small.2), i64::MIN);
        // Nonsense input: unspecified but no panic.
        let _ = days_from_civil(i64::MIN, 1, 1);
        let _ = days_from_civil(i64::MAX, 12, u32::MAX);
        let _ = days_from_civil(2020, u32::MAX, 0);
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2000));
        assert!(is_leap_year(2024));
        assert!(is_leap_year(0));
        assert!(is_leap_year(-4));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2100));
        assert!(!is_leap_year(2023));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2023, 13), 0);
        assert_eq!(ts("2020-02-29"), ts("2020-03-01") - DAY);
        assert_eq!(ts("2000-02-29T12:00:00Z"), 951_825_600_000);
        assert!(parse_iso_timestamp("2021-02-29").is_err());
        assert!(parse_iso_timestamp("1900-02-29").is_err());
        assert!(parse_iso_timestamp("2100-02-29").is_err());
        assert_eq!(
            format_iso_millis(ts("2024-02-29T23:59:59.999")),
            "2024-02-29T23:59:59.999Z"
        );
    }

    // ---- ISO parse / format ----

    #[test]
    fn parse_forms() {
        let base = 1_577_836_800_000; // 2020-01-01T00:00:00Z
        assert_eq!(ts("2020-01-01"), base);
        assert_eq!(ts("2020"), base);
        assert_eq!(ts("2020-01"), base);
        assert_eq!(ts("2020-06"), ts("2020-06-01T00:00:00.000Z"));
        assert_eq!(ts("2020-01-01T10"), base + 10 * HOUR);
        assert_eq!(ts("2020-01-01T10:20"), base + 10 * HOUR + 20 * 60_000);
        assert_eq!(
            ts("2020-01-01T10:20:30"),
            base + 10 * HOUR + 20 * 60_000 + 30_000
        );
        assert_eq!(ts("2020-01-01 10:20:30"), ts("2020-01-01T10:20:30"));
        assert_eq!(ts("2020-01-01t10:20:30z"), ts("2020-01-01T10:20:30"));
        assert_eq!(ts("2020-01-01T00:00:00.1"), base + 100);
        assert_eq!(ts("2020-01-01T00:00:00.12"), base + 120);
        assert_eq!(ts("2020-01-01T00:00:00.123"), base + 123);
        assert_eq!(ts("2020-01-01T00:00:00.1239"), base + 123);
        assert_eq!(ts("2020-01-01T00:00:00.123456789Z"), base + 123);
        assert_eq!(ts("2020-01-01T00:00:00,5Z"), base + 500);
        assert_eq!(ts("2020-01-01T00:00:00Z"), base);
        assert_eq!(ts("2020-01-01T00:00:00.000Z"), base);
    }

    #[test]
    fn parse_zones() {
        let utc = ts("2020-01-01T10:00:00Z");
        assert_eq!(ts("2020-01-01T15:30:00+05:30"), utc);
        assert_eq!(ts("2020-01-01T15:30:00+0530"), utc);
        assert_eq!(ts("2020-01-01T15:00:00+05"), utc);
        assert_eq!(ts("2020-01-01T02:00:00-08:00"), utc);
        assert_eq!(ts("2020-01-01T02:00-0800"), utc);
        assert_eq!(ts("2020-01-01T02-08"), utc);
        assert_eq!(ts("2020-01-01T10:00:00.000+00:00"), utc);
        // Offsets can move the date.
        assert_eq!(ts("2020-01-01T00:00:00+01:00"), ts("2019-12-31T23:00:00Z"));
    }

    #[test]
    fn negative_times() {
        assert_eq!(ts("1969-12-31T23:59:59.999Z"), -1);
        assert_eq!(format_iso_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(ts("1900-01-01"), -2_208_988_800_000);
        assert_eq!(ts("0001-01-01"), YEAR_1);
        assert_eq!(format_iso_millis(YEAR_1), "0001-01-01T00:00:00.000Z");
        assert_eq!(format_iso_millis(YEAR_1 - 1), "0000-12-31T23:59:59.999Z");
        assert_eq!(ts("0000-12-31T23:59:59.999Z"), YEAR_1 - 1);
        assert_eq!(
            format_iso_millis(YEAR_1 - 366 * DAY),
            "0000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_iso_millis(YEAR_1 - 731 * DAY),
            "-0001-01-01T00:00:00.000Z"
        );
        assert_eq!(ts("-0001-01-01"), YEAR_1 - 731 * DAY);
        assert_eq!(ts("-0001-12-31T23:59:59.999Z"), YEAR_1 - 366 * DAY - 1);
    }

    #[test]
    fn format_known() {
        assert_eq!(format_iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_iso_millis(1_577_836_800_123),
            "2020-01-01T00:00:00.123Z"
        );
        assert_eq!(
            format_iso_millis(YEAR_10000 - 1),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(format_iso_millis(YEAR_10000), "10000-01-01T00:00:00.000Z");
        assert_eq!(ts("10000-01-01"), YEAR_10000);
        assert_eq!(ts("+10000-01-01"), YEAR_10000);
        for t in [
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
            i64::MAX - 1,
            i64::MIN / 2,
            i64::MAX / 2,
        ] {
            let s = format_iso_millis(t);
            assert_eq!(parse_iso_timestamp(&s).unwrap(), t, "{s}");
        }
        assert_eq!(format_iso_millis(i64::MAX), "292278994-08-17T07:12:55.807Z");
        assert_eq!(
            format_iso_millis(i64::MIN),
            "-292275055-05-16T16:47:04.192Z"
        );
    }

    #[test]
    fn eternity_matches_druid() {
        assert_eq!(
            Interval::ETERNITY.to_string(),
            "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z"
        );
        assert_eq!(
            Interval::parse(&Interval::ETERNITY.to_string()).unwrap(),
            Interval::ETERNITY
        );
        assert_eq!(Interval::ETERNITY.duration_ms(), i64::MAX);
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("2020-13-01", "month 13"),
            ("2020-00-10", "month 0"),
            ("2021-02-30", "day 30"),
            ("2020-04-31", "day 31"),
            ("2020-01-00", "day 0"),
            ("2020-01-01T25:00", "hour 25"),
            ("2020-01-01T24:00", "hour 24"),
            ("2020-01-01T10:60", "minute 60"),
            ("2020-01-01T10:00:60", "second 60"),
            ("2020-01-01T", "2-digit hour"),
            ("2020-01-01X10", "'T' or ' '"),
            ("2020-1-1", "2-digit month"),
            ("2020-01-1", "2-digit day"),
            ("20-01-01", "at least 4 digits"),
            ("2020-01-01T10:00:00.", "digits after the decimal point"),
            ("2020-01-01T10:00:00.1234567890", "1 to 9 digits"),
            ("2020-01-01T10:00:00+24:00", "zone offset 24:00"),
            ("2020-01-01T10:00:00+05:60", "zone offset 05:60"),
            ("2020-01-01T10:00:00+5", "zone offset hours"),
            ("2020-01-01T10:00:00Z ", "unexpected characters"),
            ("2020-01-01T10:00:00ZZ", "unexpected characters"),
            ("2020-01-01T10:00:00+05:30x", "unexpected characters"),
            ("2020-01-01T10:00:00 UTC", "zone"),
            ("2020-01-01Z", "'T' or ' '"),
            ("1234567890-01-01", "more than 9 digits"),
            ("+999999999-12-31", "representable range"),
            ("-999999999-01-01", "representable range"),
            ("２０２０-01-01", "at least 4 digits"),
            ("2020-01-01T10:00:00.000Zé", "unexpected characters"),
            ("2020-01-01T1é", "2-digit hour"),
            ("é", "at least 4 digits"),
            ("-", "at least 4 digits"),
            ("2020-", "2-digit month"),
            ("abc", "at least 4 digits"),
        ];
        for (input, needle) in cases {
            let msg = err_msg(parse_iso_timestamp(input));
            assert!(msg.contains(needle), "{input:?}: {msg}");
            assert!(msg.contains(&format!("{input:?}")), "{input:?}: {msg}");
        }
        // Long inputs are shortened in messages.
        let long = "x".repeat(10_000);
        let msg = err_msg(parse_iso_timestamp(&long));
        assert!(msg.len() < 300, "{msg}");
    }

    // ---- periods and intervals ----

    #[test]
    fn period_parsing() {
        assert_eq!(
            Period::parse("P1D").unwrap(),
            Period {
                days: 1,
                ..Period::default()
            }
        );
        assert_eq!(
            Period::parse("P1Y2M3W4DT5H6M7.089S").unwrap(),
            Period {
                years: 1,
                months: 2,
                weeks: 3,
                days: 4,
                hours: 5,
                minutes: 6,
                seconds: 7,
                millis: 89
            }
        );
        assert_eq!(
            Period::parse("PT15M").unwrap(),
            Period {
                minutes: 15,
                ..Period::default()
            }
        );
        assert_eq!(Period::parse("PT1.5S").unwrap().millis, 500);
        for bad in [
            "",
            "1D",
            "P",
            "PT",
            "P1DT",
            "P1H",
            "PT1D",
            "P1D1Y",
            "P1M1M",
            "PTT1H",
            "P1",
            "P-1D",
            "P1.5D",
            "P1X",
            "P99999999999999999999Y",
            "P1é",
            "PT1.S",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad:?}");
        }
        let p = Period::parse("P1Y").unwrap();
        assert!(p.add_to(i64::MAX - 1).is_err());
        assert!(p.subtract_from(i64::MIN + 1).is_err());
    }

    #[test]
    fn interval_basics() {
        assert!(Interval::new(2, 1).is_err());
        let msg = err_msg(Interval::new(2, 1));
        assert!(msg.contains("after"), "{msg}");
        let a = Interval::new(10, 20).unwrap();
        assert!(a.contains(10) && a.contains(19) && !a.contains(20) && !a.contains(9));
        assert!(a.overlaps(&Interval::new(19, 30).unwrap()));
        assert!(!a.overlaps(&Interval::new(20, 30).unwrap()));
        assert!(!a.overlaps(&Interval::new(0, 10).unwrap()));
        assert!(!a.overlaps(&Interval::new(15, 15).unwrap()));
        assert!(a.overlaps(&Interval::new(0, 100).unwrap()));
        assert!(a.contains_interval(&Interval::new(10, 20).unwrap()));
        assert!(a.contains_interval(&Interval::new(12, 15).unwrap()));
        assert!(!a.contains_interval(&Interval::new(9, 15).unwrap()));
        assert!(!a.contains_interval(&Interval::new(15, 21).unwrap()));
        assert_eq!(
            a.intersect(&Interval::new(15, 30).unwrap()),
            Some(Interval::new(15, 20).unwrap())
        );
        assert_eq!(a.intersect(&Interval::new(20, 30).unwrap()), None);
        assert_eq!(a.intersect(&Interval::ETERNITY), Some(a));
        assert!(Interval::new(5, 5).unwrap().is_empty());
        assert!(!a.is_empty());
        assert_eq!(a.duration_ms(), 10);
        // Hand-built inverted intervals behave as empty.
        let inverted = Interval { start: 5, end: 1 };
        assert!(inverted.is_empty());
        assert_eq!(inverted.duration_ms(), 0);
        assert!(!inverted.contains(3));
        assert!(!inverted.overlaps(&Interval::ETERNITY));
        assert_eq!(
            Interval {
                start: i64::MIN,
                end: i64::MAX
            }
            .duration_ms(),
            i64::MAX
        );
    }

    #[test]
    fn interval_parse_and_display() {
        let day = Interval::parse("2020-01-01/2020-01-02").unwrap();
        assert_eq!(
            day,
            Interval::new(ts("2020-01-01"), ts("2020-01-02")).unwrap()
        );
        assert_eq!(
            day.to_string(),
            "2020-01-01T00:00:00.000Z/2020-01-02T00:00:00.000Z"
        );
        assert_eq!(Interval::parse(&day.to_string()).unwrap(), day);
        assert_eq!("2020-01-01/P1D".parse::<Interval>().unwrap(), day);
        assert_eq!(Interval::parse("P1D/2020-01-02").unwrap(), day);
        assert_eq!(Interval::parse("  2020-01-01/P1D \n").unwrap(), day);
        assert_eq!(
            Interval::parse("2020/2021").unwrap().duration_ms(),
            366 * DAY
        );
        assert_eq!(
            Interval::parse("2020-01-01T00:00:00Z/PT15M")
                .unwrap()
                .duration_ms(),
            15 * 60_000
        );
        assert_eq!(
            Interval::parse("2020-01-01/PT1H").unwrap().duration_ms(),
            HOUR
        );
        assert_eq!(
            Interval::parse("2020-01-01/P1W").unwrap().duration_ms(),
            7 * DAY
        );
        assert_eq!(
            Interval::parse("2020-01-01/PT1.5S").unwrap().duration_ms(),
            1_500
        );
        assert_eq!(
            Interval::parse("2020-01-01/P1Y2M").unwrap().end,
            ts("2021-03-01")
        );
        // Calendar clamping, Joda-style: years then months, each clamped.
        assert_eq!(
            Interval::parse("2020-01-31/P1M").unwrap().end,
            ts("2020-02-29")
        );
        assert_eq!(
            Interval::parse("P1M/2020-03-31").unwrap().start,
            ts("2020-02-29")
        );
        assert_eq!(
            Interval::parse("2020-02-29/P1Y1M").unwrap().end,
            ts("2021-03-28")
        );
        assert_eq!(
            Interval::parse("2020-02-29/P13M").unwrap().end,
            ts("2021-03-29")
        );
        assert_eq!(
            Interval::parse("2020-01-01T10:00+02:00/PT1H")
                .unwrap()
                .start,
            ts("2020-01-01T08:00Z")
        );
        assert_eq!(
            Interval::parse("2020-01-01/2020-01-01")
                .unwrap()
                .duration_ms(),
            0
        );
        let cases: &[(&str, &str)] = &[
            ("2020-01-02/2020-01-01", "after end"),
            ("2020-01-01", "start/end"),
            ("", "start/end"),
            ("P1D/P1D", "both sides are periods"),
            ("2020-01-01/P", "at least one component"),
            ("2020-01-01/PT", "'T' must be followed"),
            ("2020-01-01/P1H", "after 'T'"),
            ("2020-01-01/P1D1Y", "out of order"),
            ("a/b/c", "exactly one '/'"),
            ("2020-01-01/2020-02-30", "day 30"),
            ("2020-13-01/2020-01-01", "month 13"),
            ("2020-01-01/P99999999999999999999Y", "too large"),
            ("2020-01-01/P999999999999Y", "representable"),
            ("P999999999999Y/2020-01-01", "representable"),
            ("é/é", "start"),
        ];
        for (input, needle) in cases {
            let msg = err_msg(Interval::parse(input));
            assert!(msg.contains(needle), "{input:?}: {msg}");
            assert!(msg.contains("invalid interval"), "{input:?}: {msg}");
        }
    }

    #[test]
    fn interval_serde() {
        let i = Interval::new(1, 2).unwrap();
        let json = serde_json::to_string(&i).unwrap();
        assert_eq!(json, r#"{"start":1,"end":2}"#);
        assert_eq!(serde_json::from_str::<Interval>(&json).unwrap(), i);
        let err = serde_json::from_str::<Interval>(r#"{"start":3,"end":2}"#).unwrap_err();
        assert!(err.to_string().contains("after"), "{err}");
    }

    // ---- timestamp formats ----

    #[test]
    fn timestamp_format_names() {
        for f in TimestampFormat::VARIANTS {
            assert_eq!(TimestampFormat::parse(f.name()).unwrap(), f);
            assert_eq!(TimestampFormat::parse(&f.name().to_uppercase()).unwrap(), f);
            assert_eq!(f.to_string().parse::<TimestampFormat>().unwrap(), f);
        }
        assert_eq!(TimestampFormat::default(), TimestampFormat::Auto);
        let msg = err_msg(TimestampFormat::parse("yyyy-MM-dd"));
        assert!(
            msg.contains("\"yyyy-MM-dd\"") && msg.contains("auto, iso, millis, posix, micro, nano"),
            "{msg}"
        );
    }

    #[test]
    fn timestamp_format_values() {
        use TimestampFormat as F;
        use serde_json::json;
        let t2020 = 1_577_836_800_000;
        assert_eq!(F::Auto.parse_json(&json!(t2020)).unwrap(), t2020);
        assert_eq!(F::Auto.parse_json(&json!("1577836800000")).unwrap(), t2020);
        assert_eq!(F::Auto.parse_json(&json!("-1000")).unwrap(), -1000);
        assert_eq!(F::Auto.parse_json(&json!("2020-01-01")).unwrap(), t2020);
        assert_eq!(
            F::Auto
                .parse_json(&json!(" 2020-01-01T00:00:00Z "))
                .unwrap(),
            t2020
        );
        assert_eq!(F::Auto.parse_json(&json!(1.5)).unwrap(), 1);
        assert!(F::Auto.parse_json(&json!("99999999999999999999")).is_err());
        assert_eq!(F::Iso.parse_json(&json!("2020-01-01")).unwrap(), t2020);
        assert!(F::Iso.parse_json(&json!("1577836800000")).is_err());
        assert_eq!(F::Iso.parse_json(&json!(5)).unwrap(), 5);
        assert_eq!(
            F::Millis.parse_json(&json!("1577836800000")).unwrap(),
            t2020
        );
        assert_eq!(F::Millis.parse_json(&json!("1.5e3")).unwrap(), 1500);
        assert_eq!(F::Millis.parse_json(&json!(-0.5)).unwrap(), -1);
        assert_eq!(F::Posix.parse_json(&json!(1_577_836_800)).unwrap(), t2020);
        assert_eq!(F::Posix.parse_json(&json!(1.5)).unwrap(), 1500);
        assert_eq!(F::Posix.parse_json(&json!(1.001)).unwrap(), 1001);
        assert_eq!(F::Posix.parse_json(&json!("1.5")).unwrap(), 1500);
        assert_eq!(F::Posix.parse_json(&json!("-1.5")).unwrap(), -1500);
        assert_eq!(F::Posix.parse_json(&json!("-0.0001")).unwrap(), -1);
        assert_eq!(
            F::Posix.parse_json(&json!(1.5e9)).unwrap(),
            1_500_000_000_000
        );
        assert_eq!(F::Posix.parse_json(&json!("1577836800")).unwrap(), t2020);
        assert_eq!(
            F::Micro
                .parse_json(&json!(1_577_836_800_000_999_i64))
                .unwrap(),
            t2020
        );
        assert_eq!(F::Micro.parse_json(&json!(-1)).unwrap(), -1);
        assert_eq!(F::Micro.parse_json(&json!("-1000")).unwrap(), -1);
        assert_eq!(F::Micro.parse_json(&json!("-1001")).unwrap(), -2);
        assert_eq!(F::Nano.parse_json(&json!(1_999_999)).unwrap(), 1);
        assert_eq!(F::Nano.parse_json(&json!(-1)).unwrap(), -1);
        assert_eq!(
            F::Nano.parse_json(&json!(u64::MAX)).unwrap(),
            18_446_744_073_709
        );
        assert_eq!(
            F::Nano.parse_str("99999999999999999999999").unwrap(),
            99_999_999_999_999_999
        );
        assert_eq!(F::Posix.parse_i64(2).unwrap(), 2000);
        assert!(F::Posix.parse_i64(i64::MAX / 100).is_err());
        assert_eq!(F::Micro.parse_i64(i64::MIN).unwrap(), i64::MIN / 1000 - 1);
        assert_eq!(F::Nano.parse_i64(-1_000_000).unwrap(), -1);
        assert_eq!(F::Millis.parse_i64(i64::MIN).unwrap(), i64::MIN);
        assert_eq!(
            F::Millis.parse_str("-9223372036854775808").unwrap(),
            i64::MIN
        );
        assert!(F::Millis.parse_str("9223372036854775808").is_err());
        assert!(F::Posix.parse_str("1e100").is_err());
        assert_eq!(F::Posix.parse_str("1e-100").unwrap(), 0);
        assert_eq!(F::Posix.parse_str("-1e-100").unwrap(), -1);
        assert_eq!(F::Posix.parse_str("0e99999999999999999999").unwrap(), 0);
        assert_eq!(F::Posix.parse_str(".5").unwrap(), 500);
        assert_eq!(F::Posix.parse_str("+2.").unwrap(), 2000);
        for bad in ["", "abc", "1.2.3", "1e", "--1", ".", "e5", "1 2", "１"] {
            let msg = err_msg(F::Posix.parse_str(bad));
            assert!(msg.contains("'posix'"), "{bad:?}: {msg}");
        }
        for (v, found) in [
            (json!(null), "null"),
            (json!(true), "boolean true"),
            (json!([1]), "array"),
            (json!({"a": 1}), "object"),
        ] {
            let msg = err_msg(F::Auto.parse_json(&v));
            assert!(msg.contains(found), "{msg}");
        }
    }

    // ---- granularities ----

    #[test]
    fn granularity_names() {
        for g in Granularity::VARIANTS {
            assert_eq!(Granularity::parse(g.name()).unwrap(), g);
            assert_eq!(Granularity::parse(&g.name().to_uppercase()).unwrap(), g);
            assert_eq!(g.to_string().parse::<Granularity>().unwrap(), g);
        }
        let msg = err_msg(Granularity::parse("fortnight"));
        assert!(
            msg.contains("\"fortnight\"") && msg.contains("five_minute") && msg.contains("all"),
            "{msg}"
        );
    }

    #[test]
    fn granularity_serde() {
        assert_eq!(
            serde_json::to_string(&Granularity::FiveMinute).unwrap(),
            "\"five_minute\""
        );
        assert_eq!(
            serde_json::from_str::<Granularity>("\"HOUR\"").unwrap(),
            Granularity::Hour
        );
        assert_eq!(
            serde_json::from_str::<Granularity>(r#"{"type":"day"}"#).unwrap(),
            Granularity::Day
        );
        let v = serde_json::json!({"type": "week"});
        assert_eq!(
            serde_json::from_value::<Granularity>(v).unwrap(),
            Granularity::Week
        );
        for bad in [
            r#""fortnight""#,
            r#"{"type":"period","period":"PT1H"}"#,
            r#"{"type":"period"}"#,
            r#"{}"#,
            r#"{"type":"hour","timeZone":"UTC"}"#,
            r#"{"type":"hour","type":"day"}"#,
            "3",
            "null",
        ] {
            assert!(serde_json::from_str::<Granularity>(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<Granularity>(r#"{"type":"period"}"#).unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
    }

    #[test]
    fn truncate_every_granularity() {
        use Granularity as G;
        let t = ts("2021-05-19T13:47:23.456Z"); // a Wednesday
        let expect = [
            (G::None, "2021-05-19T13:47:23.456Z"),
            (G::Second, "2021-05-19T13:47:23.000Z"),
            (G::Minute, "2021-05-19T13:47:00.000Z"),
            (G::FiveMinute, "2021-05-19T13:45:00.000Z"),
            (G::TenMinute, "2021-05-19T13:40:00.000Z"),
            (G::FifteenMinute, "2021-05-19T13:45:00.000Z"),
            (G::ThirtyMinute, "2021-05-19T13:30:00.000Z"),
            (G::Hour, "2021-05-19T13:00:00.000Z"),
            (G::SixHour, "2021-05-19T12:00:00.000Z"),
            (G::EightHour, "2021-05-19T08:00:00.000Z"),
            (G::Day, "2021-05-19T00:00:00.000Z"),
            (G::Week, "2021-05-17T00:00:00.000Z"),
            (G::Month, "2021-05-01T00:00:00.000Z"),
            (G::Quarter, "2021-04-01T00:00:00.000Z"),
            (G::Year, "2021-01-01T00:00:00.000Z"),
        ];
        for (g, want) in expect {
            assert_eq!(format_iso_millis(g.truncate(t)), want, "{g}");
        }
        assert_eq!(G::All.truncate(t), Interval::ETERNITY.start);
        assert_eq!(G::All.bucket(t), Interval::ETERNITY);
        assert_eq!(expect.len() + 1, Granularity::VARIANTS.len());
    }

    #[test]
    fn truncate_before_epoch() {
        use Granularity as G;
        assert_eq!(G::Hour.truncate(-1), -HOUR);
        assert_eq!(G::Day.truncate(-1), -DAY);
        assert_eq!(G::Second.truncate(-1000), -1000);
        assert_eq!(G::Second.truncate(-1001), -2000);
        let t = ts("1969-07-20T20:17:40.5Z"); // Sunday
        assert_eq!(
            format_iso_millis(G::Week.truncate(t)),
            "1969-07-14T00:00:00.000Z"
        );
        assert_eq!(
            format_iso_millis(G::Month.truncate(t)),
            "1969-07-01T00:00:00.000Z"
        );
        assert_eq!(
            format_iso_millis(G::Quarter.truncate(t)),
            "1969-07-01T00:00:00.000Z"
        );
        assert_eq!(
            format_iso_millis(G::Year.truncate(t)),
            "1969-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_iso_millis(G::EightHour.truncate(t)),
            "1969-07-20T16:00:00.000Z"
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        let g = Granularity::Week;
        // 1970-01-01 was a Thursday: its week started Monday 1969-12-29.
        assert_eq!(format_iso_millis(g.truncate(0)), "1969-12-29T00:00:00.000Z");
        assert_eq!(g.truncate(0), -3 * DAY);
        assert_eq!(g.truncate(4 * DAY), 4 * DAY); // Monday 1970-01-05
        assert_eq!(g.truncate(4 * DAY - 1), -3 * DAY); // Sunday night
        assert_eq!(g.next(-3 * DAY), 4 * DAY);
        assert_eq!(
            format_iso_millis(g.truncate(ts("2024-01-01T12:00"))),
            "2024-01-01T00:00:00.000Z"
        ); // Monday
        assert_eq!(
            format_iso_millis(g.truncate(ts("2023-12-31T23:59"))),
            "2023-12-25T00:00:00.000Z"
        ); // Sunday
        // Every truncation is a Monday at midnight.
        for k in -1_000..1_000 {
            let start = g.truncate(k * 37 * HOUR + 12_345);
            let days = start.div_euclid(DAY);
            assert_eq!(start.rem_euclid(DAY), 0);
            assert_eq!((days + 3).rem_euclid(7), 0, "{}", format_iso_millis(start));
        }
    }

    #[test]
    fn calendar_next() {
        use Granularity as G;
        let n = |g: G, s: &str| format_iso_millis(g.next(ts(s)));
        assert_eq!(n(G::Month, "2020-01-01"), "2020-02-01T00:00:00.000Z");
        assert_eq!(n(G::Month, "2020-02-01"), "2020-03-01T00:00:00.000Z");
        assert_eq!(n(G::Month, "2020-12-01"), "2021-01-01T00:00:00.000Z");
        assert_eq!(n(G::Month, "1969-12-01"), "1970-01-01T00:00:00.000Z");
        assert_eq!(n(G::Month, "2020-01-31T10:00"), "2020-02-01T00:00:00.000Z"); // unaligned input
        assert_eq!(n(G::Quarter, "2020-10-01"), "2021-01-01T00:00:00.000Z");
        assert_eq!(n(G::Quarter, "2020-04-01"), "2020-07-01T00:00:00.000Z");
        assert_eq!(n(G::Year, "2020-01-01"), "2021-01-01T00:00:00.000Z");
        assert_eq!(n(G::Year, "1969-01-01"), "1970-01-01T00:00:00.000Z");
        assert_eq!(n(G::Week, "2021-05-17"), "2021-05-24T00:00:00.000Z");
        assert_eq!(n(G::Day, "2020-02-28"), "2020-02-29T00:00:00.000Z");
        assert_eq!(G::None.next(41), 42);
        assert_eq!(G::All.next(0), Interval::ETERNITY.end);
        assert_eq!(G::Month.bucket(ts("2020-02-10")).duration_ms(), 29 * DAY);
        assert_eq!(G::Year.bucket(ts("2021-02-10")).duration_ms(), 365 * DAY);
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        for g in Granularity::VARIANTS {
            for t in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
                let b = g.bucket(t);
                assert!(b.start <= b.end, "{g} {t}");
                let _ = g.next(t);
                let _ = g.buckets(
                    Interval {
                        start: t,
                        end: i64::MAX,
                    },
                    3,
                );
            }
        }
    }

    #[test]
    fn buckets() {
        use Granularity as G;
        let iv = Interval::new(ts("2020-01-01T12:00"), ts("2020-01-03T01:00")).unwrap();
        let days = G::Day.buckets(iv, 10).unwrap();
        assert_eq!(
            days,
            vec![
                Interval::parse("2020-01-01/P1D").unwrap(),
                Interval::parse("2020-01-02/P1D").unwrap(),
                Interval::parse("2020-01-03/P1D").unwrap(),
            ]
        );
        assert_eq!(G::Day.buckets(iv, 3).unwrap().len(), 3);
        match G::Day.buckets(iv, 2) {
            Err(Error::ResourcesExhausted(msg)) => assert!(msg.contains("more than 2"), "{msg}"),
            other => panic!("expected ResourcesExhausted, got {other:?}"),
        }
        assert!(
            G::Day
                .buckets(Interval::new(5, 5).unwrap(), 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(G::All.buckets(iv, 1).unwrap(), vec![Interval::ETERNITY]);
        assert!(matches!(
            G::All.buckets(iv, 0),
            Err(Error::ResourcesExhausted(_))
        ));
        let year = Interval::parse("2020/2021").unwrap();
        let months = G::Month.buckets(year, 12).unwrap();
        assert_eq!(months.len(), 12);
        assert!(matches!(
            G::Month.buckets(year, 11),
            Err(Error::ResourcesExhausted(_))
        ));
        assert_eq!(G::Quarter.buckets(year, 100).unwrap().len(), 4);
        assert_eq!(G::Week.buckets(year, 100).unwrap().len(), 53);
        assert_eq!(G::Hour.buckets(year, 10_000).unwrap().len(), 366 * 24);
        // Huge requests fail fast, before allocating.
        assert!(matches!(
            G::None.buckets(Interval::ETERNITY, 1_000_000),
            Err(Error::ResourcesExhausted(_))
        ));
        // Contiguous, covering, and each a real bucket.
        for g in Granularity::VARIANTS {
            let iv = Interval::parse("2019-12-30T07:13:00Z/2020-03-02T01:00:00Z").unwrap();
            let Ok(bs) = g.buckets(iv, 200_000) else {
                continue;
            };
            assert!(bs.first().unwrap().start <= iv.start, "{g}");
            assert!(bs.last().unwrap().end >= iv.end, "{g}");
            for w in bs.windows(2) {
                assert_eq!(w[0].end, w[1].start, "{g}");
            }
            for b in &bs {
                assert!(b.overlaps(&iv), "{g}");
                assert_eq!(g.bucket(b.start), *b, "{g}");
            }
        }
    }

    #[test]
    fn finer_or_equal_table() {
        use Granularity as G;
        assert!(G::Hour.is_finer_or_equal(&G::Day));
        assert!(G::Day.is_finer_or_equal(&G::Month));
        assert!(G::Day.is_finer_or_equal(&G::Week));
        assert!(G::SixHour.is_finer_or_equal(&G::Week));
        assert!(G::EightHour.is_finer_or_equal(&G::Day));
        assert!(G::FiveMinute.is_finer_or_equal(&G::FifteenMinute));
        assert!(G::Month.is_finer_or_equal(&G::Quarter));
        assert!(G::Quarter.is_finer_or_equal(&G::Year));
        assert!(G::Year.is_finer_or_equal(&G::All));
        assert!(G::None.is_finer_or_equal(&G::None));
        assert!(G::All.is_finer_or_equal(&G::All));
        assert!(!G::Week.is_finer_or_equal(&G::Month));
        assert!(!G::Week.is_finer_or_equal(&G::Year));
        assert!(!G::TenMinute.is_finer_or_equal(&G::FifteenMinute));
        assert!(!G::EightHour.is_finer_or_equal(&G::SixHour));
        assert!(!G::Month.is_finer_or_equal(&G::Day));
        assert!(!G::Day.is_finer_or_equal(&G::Hour));
        assert!(!G::All.is_finer_or_equal(&G::Year));
        assert!(!G::Second.is_finer_or_equal(&G::None));
    }

    /// Checks the whole is_finer_or_equal matrix against actual buckets: "finer" pairs must nest
    /// at every sample, "not finer" pairs must have a counterexample among the samples.
    #[test]
    fn finer_or_equal_matches_buckets() {
        let base = ts("2019-12-25");
        let mut samples: Vec<Millis> = (0..2 * 24 * 12)
            .map(|k| base + k * 5 * 60_000 + 7)
            .collect();
        samples.extend((0..3 * 366).map(|k| base + k * DAY + 3 * HOUR));
        for fine in Granularity::VARIANTS {
            for coarse in Granularity::VARIANTS {
                let nested = |t: Millis| coarse.bucket(t).contains_interval(&fine.bucket(t));
                if fine.is_finer_or_equal(&coarse) {
                    assert!(
                        samples.iter().all(|&t| nested(t)),
                        "{fine} should nest in {coarse}"
                    );
                } else {
                    assert!(
                        !samples.iter().all(|&t| nested(t)),
                        "{fine} unexpectedly nests in {coarse}"
                    );
                }
            }
        }
    }

    // ---- properties ----

    fn any_granularity() -> impl Strategy<Value = Granularity> {
        proptest::sample::select(Granularity::VARIANTS.to_vec())
    }

    proptest! {
        #[test]
        fn format_parse_round_trip_years_1_to_9999(t in YEAR_1..YEAR_10000) {
            let s = format_iso_millis(t);
            prop_assert_eq!(s.len(), 24);
            prop_assert_eq!(parse_iso_timestamp(&s).unwrap(), t);
            let i = Interval::new(t, t.saturating_add(1)).unwrap();
            prop_assert_eq!(Interval::parse(&i.to_string()).unwrap(), i);
        }

        #[test]
        fn format_parse_round_trip_any_i64(t in any::<i64>()) {
            prop_assert_eq!(parse_iso_timestamp(&format_iso_millis(t)).unwrap(), t);
        }

        #[test]
        fn json_timestamps_are_the_formatted_text(t in any::<i64>(), near in YEAR_1 - 400 * DAY..YEAR_10000 + 400 * DAY) {
            for t in [t, near] {
                let mut out = b"x".to_vec();
                write_iso_millis_json(&mut out, t);
                prop_assert_eq!(out, format!("x\"{}\"", format_iso_millis(t)).into_bytes());
            }
        }

        #[test]
        fn truncate_next_bracket_t(t in YEAR_1..YEAR_10000, g in any_granularity()) {
            let start = g.truncate(t);
            let next = g.next(start);
            prop_assert!(start <= t && t < next, "{} {} {} {}", g, start, t, next);
            prop_assert_eq!(g.truncate(start), start);
            prop_assert_eq!(g.bucket(t), Interval { start, end: next });
            // The next bucket starts exactly where this one ends (All has no next bucket).
            if g != Granularity::All {
                prop_assert_eq!(g.truncate(next), next);
            }
        }

        #[test]
        fn civil_round_trip(days in -10_000_000_000_000i64..10_000_000_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_iso_timestamp(&s);
            let _ = Interval::parse(&s);
            let _ = Period::parse(&s);
            for f in TimestampFormat::VARIANTS {
                let _ = f.parse_str(&s);
            }
        }

        #[test]
        fn parsers_never_panic_near_misses(s in "[-+0-9T:.,Z zPYMWDHS/eé]{0,40}") {
            let _ = parse_iso_timestamp(&s);
            let _ = Interval::parse(&s);
            let _ = Period::parse(&s);
            for f in TimestampFormat::VARIANTS {
                let _ = f.parse_str(&s);
            }
        }

        #[test]
        fn zone_offsets_shift_exactly(t in YEAR_1 + DAY..YEAR_10000 - DAY, h in 0i64..24, m in 0i64..60) {
            let local = format_iso_millis(t);
            let base = local.trim_end_matches('Z');
            let off = h * HOUR + m * 60_000;
            prop_assert_eq!(parse_iso_timestamp(&format!("{base}+{h:02}:{m:02}")).unwrap(), t - off);
            prop_assert_eq!(parse_iso_timestamp(&format!("{base}-{h:02}{m:02}")).unwrap(), t + off);
        }

        #[test]
        fn decimal_posix_matches_integer_math(secs in -10_000_000_000i64..10_000_000_000, ms in 0i64..1000) {
            let text = format!("{secs}.{ms:03}");
            let want = if secs < 0 && ms > 0 { secs * 1000 - ms } else { secs * 1000 + ms };
            // "-5.250" is -5250 ms; for secs = 0 the sign is lost, so compare against positive.
            let want = if secs == 0 { ms } else { want };
            prop_assert_eq!(TimestampFormat::Posix.parse_str(&text).unwrap(), want);
        }
    }
}
