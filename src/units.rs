//! Physical units with their unit in the type.
//!
//! Simulated time is integer nanoseconds ([`SimTime`], [`SimDuration`]): ordering is
//! exact and total, sums never drift, and results are byte-identical on every platform.
//! Latency models compute in `f64` seconds and convert once, through
//! [`SimDuration::from_secs_f64`].
//!
//! Byte and token counts are plain integers whose names carry the unit (`weight_bytes`,
//! `input_tokens`); the helpers here convert between the decimal and binary multiples
//! that vendors and users mix up.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Bytes in one decimal gigabyte (vendors' "GB", as in "80 GB of HBM").
pub const BYTES_PER_GB: f64 = 1e9;
/// Bytes in one binary gibibyte (what `nvidia-smi` and most users call "GB").
pub const BYTES_PER_GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// A point in simulated time: nanoseconds since the start of a run.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SimTime(u64);

/// A non-negative span of simulated time in nanoseconds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SimDuration(u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// The largest representable time (about 584 years).
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// A time from integer nanoseconds.
    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }
    /// Nanoseconds since the start of the run.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// A time from seconds, rounded to the nearest nanosecond.
    ///
    /// Negative or non-finite inputs are a caller bug: validate user input first
    /// (see [`checked_secs_to_nanos`]).
    pub fn from_secs_f64(s: f64) -> Self {
        SimTime(secs_to_nanos(s))
    }
    /// Seconds since the start of the run.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    /// The span from `earlier` to `self`, or `None` if `earlier` is later.
    pub fn duration_since(self, earlier: SimTime) -> Option<SimDuration> {
        self.0.checked_sub(earlier.0).map(SimDuration)
    }
    /// The span from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);
    /// The largest span (about 584 years); also what [`crate::perf::step_duration`]
    /// returns for a time that is not a finite, positive number of seconds.
    pub const MAX: SimDuration = SimDuration(u64::MAX);

    /// A span from integer nanoseconds.
    pub const fn from_nanos(ns: u64) -> Self {
        SimDuration(ns)
    }
    /// A span from integer microseconds.
    pub const fn from_micros(us: u64) -> Self {
        SimDuration(us * 1_000)
    }
    /// A span from integer milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(ms * 1_000_000)
    }
    /// Whether it is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
    /// The span in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// A span from seconds, rounded to the nearest nanosecond (see [`SimTime::from_secs_f64`]).
    pub fn from_secs_f64(s: f64) -> Self {
        SimDuration(secs_to_nanos(s))
    }
    /// The span in seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    /// The span in milliseconds.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// `self * n`, saturating at the largest span.
    pub fn saturating_mul(self, n: u64) -> SimDuration {
        SimDuration(self.0.saturating_mul(n))
    }
}

/// Seconds to nanoseconds, or `None` for a negative, NaN or too large input.
pub fn checked_secs_to_nanos(s: f64) -> Option<u64> {
    if !s.is_finite() || s < 0.0 {
        return None;
    }
    let x = s * NANOS_PER_SEC as f64;
    if x < TWO_POW_52 {
        // `round` (half away from zero) without its library call: below 2^52 the
        // integer part and the fraction are exact, so this is the same rounding.
        let t = x as u64;
        return Some(if x - t as f64 >= 0.5 { t + 1 } else { t });
    }
    let ns = x.round();
    if ns >= u64::MAX as f64 {
        None
    } else {
        Some(ns as u64)
    }
}

/// 2^52, below which every `f64` has an exact integer part and fraction.
const TWO_POW_52: f64 = (1u64 << 52) as f64;

fn secs_to_nanos(s: f64) -> u64 {
    checked_secs_to_nanos(s)
        .unwrap_or_else(|| panic!("time in seconds must be finite and non-negative, got {s}"))
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(
            self.0
                .checked_add(d.0)
                .expect("simulated time overflowed u64 nanoseconds"),
        )
    }
}

impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        *self = *self + d;
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}

impl AddAssign for SimDuration {
    fn add_assign(&mut self, d: SimDuration) {
        *self = *self + d;
    }
}

impl Sub for SimDuration {
    type Output = SimDuration;
    /// Saturating: a span is never negative.
    fn sub(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_sub(d.0))
    }
}

impl std::iter::Sum for SimDuration {
    fn sum<I: Iterator<Item = SimDuration>>(iter: I) -> Self {
        iter.fold(SimDuration::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6} s", self.as_secs_f64())
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} ms", self.as_millis_f64())
    }
}

/// Bytes to decimal gigabytes (1e9 bytes).
pub fn bytes_to_gb(bytes: f64) -> f64 {
    bytes / BYTES_PER_GB
}

/// Bytes to binary gibibytes (2^30 bytes).
pub fn bytes_to_gib(bytes: f64) -> f64 {
    bytes / BYTES_PER_GIB
}

/// Number of blocks of `block_size_tokens` needed to hold `tokens` tokens (rounded up).
pub fn blocks_for_tokens(tokens: u64, block_size_tokens: u32) -> u64 {
    debug_assert!(block_size_tokens > 0, "block size must be positive");
    tokens.div_ceil(u64::from(block_size_tokens))
}

/// The UTC civil date `(year, month 1–12, day 1–31)` of `days` after 1970-01-01
/// (Howard Hinnant's `civil_from_days`, exact for every `i64` day a clock gives).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 (UTC) by the system clock.
pub fn unix_days_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The rounding without `round` is `round`'s, on any non-negative float.
        #[test]
        fn nanosecond_rounding_is_rounds(bits in any::<u64>(), ns in 0u64..1u64 << 53, half in any::<bool>()) {
            let reference = |s: f64| -> Option<u64> {
                if !s.is_finite() || s < 0.0 {
                    return None;
                }
                let ns = (s * NANOS_PER_SEC as f64).round();
                (ns < u64::MAX as f64).then_some(ns as u64)
            };
            let near = ns as f64 / 1e9 + if half { 0.5e-9 } else { 0.0 };
            for s in [f64::from_bits(bits), f64::from_bits(bits).abs(), near] {
                prop_assert_eq!(checked_secs_to_nanos(s), reference(s), "s = {:e}", s);
            }
        }
    }

    #[test]
    fn seconds_round_to_nearest_nanosecond() {
        assert_eq!(SimDuration::from_secs_f64(1.5e-9).as_nanos(), 2);
        assert_eq!(SimTime::from_secs_f64(2.0).as_nanos(), 2 * NANOS_PER_SEC);
        assert_eq!(checked_secs_to_nanos(-1.0), None);
        assert_eq!(checked_secs_to_nanos(f64::NAN), None);
        assert_eq!(checked_secs_to_nanos(f64::INFINITY), None);
    }

    #[test]
    fn duration_since_is_checked() {
        let a = SimTime::from_nanos(5);
        let b = SimTime::from_nanos(9);
        assert_eq!(b.duration_since(a), Some(SimDuration::from_nanos(4)));
        assert_eq!(a.duration_since(b), None);
        assert_eq!(a.saturating_duration_since(b), SimDuration::ZERO);
    }

    proptest! {
        #[test]
        fn secs_round_trip(ns in 0u64..(1u64 << 48)) {
            let d = SimDuration::from_nanos(ns);
            prop_assert_eq!(SimDuration::from_secs_f64(d.as_secs_f64()), d);
        }

        #[test]
        fn blocks_is_div_ceil(tokens in 0u64..1_000_000, bs in 1u32..512) {
            let b = blocks_for_tokens(tokens, bs);
            prop_assert!(b * u64::from(bs) >= tokens);
            prop_assert!(b == 0 || (b - 1) * u64::from(bs) < tokens);
        }
    }

    #[test]
    fn civil_dates_from_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_930), (2024, 7, 26));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
