//! Parsing of single trace fields: token counts, ids, times, wall-clock timestamps.
//!
//! Every function returns the message of what is wrong (`Err(String)`); the readers wrap
//! it into an [`Error::Input`](crate::Error::Input) with the file, line and field.

use crate::units::{checked_secs_to_nanos, NANOS_PER_SEC};

/// A token count: a non-negative integer that fits in `u32` (range checks such as
/// "at least 1" are the caller's).
pub(crate) fn tokens(s: &str) -> Result<u32, String> {
    let v = unsigned(s)?;
    u32::try_from(v).map_err(|_| format!("too large: `{s}` (at most {})", u32::MAX))
}

/// A non-negative integer (`u64`), with a message that says why `s` is not one.
pub(crate) fn unsigned(s: &str) -> Result<u64, String> {
    if s.is_empty() {
        return Err("empty value: expected a non-negative integer".into());
    }
    match s.parse::<u64>() {
        Ok(v) => Ok(v),
        Err(_) => Err(
            if s.starts_with('-') && s[1..].bytes().all(|b| b.is_ascii_digit()) {
                format!("negative: `{s}`")
            } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                format!("too large: `{s}`")
            } else {
                format!("not a non-negative integer: `{s}`")
            },
        ),
    }
}

/// A time given as a decimal number of `unit_nanos` nanoseconds (seconds: 1e9,
/// milliseconds: 1e6), to integer nanoseconds. Integers and plain decimals that name a
/// whole number of nanoseconds (`12.345678901` seconds) take an exact integer path;
/// other numbers go through `f64` and round to the nearest nanosecond (the same result
/// for any time under about 26 days, where `f64` is finer than half a nanosecond).
pub(crate) fn time_nanos(s: &str, unit_nanos: u64) -> Result<u64, String> {
    if s.is_empty() {
        return Err("empty value: expected a time".into());
    }
    if let Ok(v) = s.parse::<u64>() {
        return v
            .checked_mul(unit_nanos)
            .ok_or_else(|| format!("too large: `{s}`"));
    }
    if let Some(ns) = plain_decimal_nanos(s, unit_nanos) {
        return Ok(ns);
    }
    let v: f64 = s.parse().map_err(|_| format!("not a number: `{s}`"))?;
    if v.is_nan() || v.is_infinite() {
        return Err(format!("not a finite number: `{s}`"));
    }
    if v < 0.0 {
        return Err(format!("negative: `{s}`"));
    }
    let secs = v * (unit_nanos as f64 / NANOS_PER_SEC as f64);
    checked_secs_to_nanos(secs).ok_or_else(|| format!("too large: `{s}`"))
}

/// `digits.digits` in units of `unit_nanos` as exact nanoseconds, where the fraction
/// has no more digits than the unit has powers of ten (9 for seconds); None for any
/// other form (signs, exponents, a missing integer part) or on overflow.
fn plain_decimal_nanos(s: &str, unit_nanos: u64) -> Option<u64> {
    let (int, frac) = s.split_once('.')?;
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || frac.len() > 9 || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let scale = 10u64.pow(frac.len() as u32);
    if unit_nanos % scale != 0 {
        return None;
    }
    let frac_value = frac.bytes().fold(0u64, |a, b| a * 10 + u64::from(b - b'0'));
    int.parse::<u64>()
        .ok()?
        .checked_mul(unit_nanos)?
        .checked_add(frac_value * (unit_nanos / scale))
}

/// Space-separated non-negative integers (Mooncake `hash_ids`, native `prefix_hash_ids`).
/// An empty string is an empty list.
pub(crate) fn id_list(s: &str, out: &mut Vec<u64>) -> Result<(), String> {
    out.clear();
    for (i, tok) in s.split_ascii_whitespace().enumerate() {
        let v = unsigned(tok).map_err(|m| format!("item {}: {m}", i + 1))?;
        out.push(v);
    }
    Ok(())
}

/// Nanoseconds since 1970-01-01 00:00:00 (no time zone, no leap seconds) of a wall-clock
/// timestamp `YYYY-MM-DD HH:MM:SS[.f…]` (a `T` may replace the space; 1 to 9 fraction
/// digits, more are rejected).
pub(crate) fn wall_clock_nanos(s: &str) -> Result<i128, String> {
    let bad =
        |what: &str| format!("{what} in timestamp `{s}` (expected `YYYY-MM-DD HH:MM:SS.fffffff`)");
    let b = s.as_bytes();
    if b.len() < 19 {
        return Err(bad("too short"));
    }
    let num = |range: std::ops::Range<usize>, what: &str| -> Result<u32, String> {
        let part = &b[range];
        if part.iter().all(u8::is_ascii_digit) {
            Ok(part.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0')))
        } else {
            Err(bad(&format!("bad {what}")))
        }
    };
    if b[4] != b'-' || b[7] != b'-' || !(b[10] == b' ' || b[10] == b'T') {
        return Err(bad("bad date separator"));
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad("bad time separator"));
    }
    let year = num(0..4, "year")?;
    let month = num(5..7, "month")?;
    let day = num(8..10, "day")?;
    let hour = num(11..13, "hour")?;
    let minute = num(14..16, "minute")?;
    let second = num(17..19, "second")?;
    if !(1..=12).contains(&month) {
        return Err(bad("month out of range"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(bad("day out of range"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("time of day out of range"));
    }
    let mut frac_ns: u64 = 0;
    if b.len() > 19 {
        if b[19] != b'.' {
            return Err(bad("unexpected text after the seconds"));
        }
        let digits = &b[20..];
        if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad("bad fraction of a second (1 to 9 digits)"));
        }
        let v = digits
            .iter()
            .fold(0u64, |a, &d| a * 10 + u64::from(d - b'0'));
        frac_ns = v * 10u64.pow(9 - digits.len() as u32);
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Ok(i128::from(secs) * i128::from(NANOS_PER_SEC) + i128::from(frac_ns))
}

fn is_leap(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (negative before 1970).
/// Howard Hinnant's `days_from_civil`, valid for every date this parser accepts.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn token_counts() {
        assert_eq!(tokens("12"), Ok(12));
        assert_eq!(tokens("-3").unwrap_err(), "negative: `-3`");
        assert_eq!(
            tokens("abc").unwrap_err(),
            "not a non-negative integer: `abc`"
        );
        assert_eq!(
            tokens("1.5").unwrap_err(),
            "not a non-negative integer: `1.5`"
        );
        assert!(tokens("4294967296").unwrap_err().starts_with("too large"));
        assert!(tokens("").unwrap_err().starts_with("empty value"));
    }

    proptest! {
        /// The exact decimal path agrees with the `f64` path wherever `f64` resolves
        /// the nanosecond (times under about 26 days).
        #[test]
        fn plain_decimals_match_the_float_path(ns in 0u64..2_000_000_000_000_000, digits in 0usize..10, ms in any::<bool>()) {
            let (unit, places) = if ms { (1_000_000u64, 6) } else { (NANOS_PER_SEC, 9) };
            let digits = digits.min(places);
            let kept = ns / 10u64.pow((places - digits) as u32) * 10u64.pow((places - digits) as u32);
            let whole = kept / unit;
            let frac = (kept % unit) / 10u64.pow((places - digits) as u32);
            let text = format!("{whole}.{frac:0digits$}");
            let via_f64 = checked_secs_to_nanos(text.parse::<f64>().unwrap() * (unit as f64 / 1e9));
            prop_assert_eq!(plain_decimal_nanos(&text, unit), via_f64);
            prop_assert_eq!(time_nanos(&text, unit), Ok(kept));
        }
    }

    #[test]
    fn times() {
        assert_eq!(time_nanos("0.045742001", NANOS_PER_SEC), Ok(45_742_001));
        assert_eq!(time_nanos("7.", NANOS_PER_SEC), Ok(7_000_000_000));
        assert_eq!(time_nanos(".5", NANOS_PER_SEC), Ok(500_000_000));
        assert_eq!(time_nanos("0.0000000004", NANOS_PER_SEC), Ok(0));
        assert_eq!(time_nanos("1.0000001", 1_000_000), Ok(1_000_000));
        assert_eq!(time_nanos("2", NANOS_PER_SEC), Ok(2_000_000_000));
        assert_eq!(time_nanos("0.1", NANOS_PER_SEC), Ok(100_000_000));
        assert_eq!(time_nanos("1e-3", NANOS_PER_SEC), Ok(1_000_000));
        assert_eq!(time_nanos("3536999", 1_000_000), Ok(3_536_999_000_000));
        assert_eq!(time_nanos("1.5", 1_000_000), Ok(1_500_000));
        assert_eq!(
            time_nanos("-0.5", NANOS_PER_SEC).unwrap_err(),
            "negative: `-0.5`"
        );
        assert_eq!(
            time_nanos("x", NANOS_PER_SEC).unwrap_err(),
            "not a number: `x`"
        );
        assert!(time_nanos("inf", NANOS_PER_SEC).is_err());
        assert!(time_nanos("NaN", NANOS_PER_SEC).is_err());
        assert!(time_nanos("1e30", NANOS_PER_SEC).is_err());
    }

    #[test]
    fn id_lists() {
        let mut v = vec![9];
        id_list("", &mut v).unwrap();
        assert!(v.is_empty());
        id_list(" 0 1  22 ", &mut v).unwrap();
        assert_eq!(v, [0, 1, 22]);
        assert_eq!(
            id_list("1 x", &mut v).unwrap_err(),
            "item 2: not a non-negative integer: `x`"
        );
    }

    #[test]
    fn wall_clock() {
        let t0 = wall_clock_nanos("1970-01-01 00:00:00").unwrap();
        assert_eq!(t0, 0);
        let t = wall_clock_nanos("2023-11-16 18:17:03.9799600").unwrap();
        // 2023-11-16 is day 19677 since the epoch.
        assert_eq!(
            t,
            (19_677i128 * 86_400 + 18 * 3600 + 17 * 60 + 3) * 1_000_000_000 + 979_960_000
        );
        // Day and year rollovers, leap days.
        let a = wall_clock_nanos("2023-12-31 23:59:59.9").unwrap();
        let b = wall_clock_nanos("2024-01-01T00:00:00.1").unwrap();
        assert_eq!(b - a, 200_000_000);
        let a = wall_clock_nanos("2024-02-28 12:00:00").unwrap();
        let b = wall_clock_nanos("2024-03-01 12:00:00").unwrap();
        assert_eq!(b - a, 2 * 86_400 * 1_000_000_000);
        assert!(wall_clock_nanos("2023-02-29 00:00:00").is_err());
        assert!(wall_clock_nanos("2000-02-29 00:00:00").is_ok());
        assert!(wall_clock_nanos("1900-02-29 00:00:00").is_err());
        assert!(wall_clock_nanos("2023-13-01 00:00:00").is_err());
        assert!(wall_clock_nanos("2023-11-16 24:00:00").is_err());
        assert!(wall_clock_nanos("2023-11-16 18:17:03.").is_err());
        assert!(wall_clock_nanos("2023-11-16 18:17:03.1234567890").is_err());
        assert!(wall_clock_nanos("2023/11/16 18:17:03").is_err());
        assert!(wall_clock_nanos("2023-11-16").is_err());
        assert!(wall_clock_nanos("2023-11-16 18:17:0x").is_err());
    }

    proptest! {
        #[test]
        fn days_are_consecutive(days in -100_000i64..200_000) {
            // Walk civil dates through days_from_civil's inverse (via a naive count).
            let (y, m, d) = crate::units::civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
