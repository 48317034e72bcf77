//! A lazily filled table of a pure function's values at small whole numbers.

use std::sync::OnceLock;

/// Values of a pure function of a small whole number, computed once each: a run asks
/// for the same token and sequence counts millions of times. Filled lazily (allocated
/// on first use, so models that are built and never run cost nothing) and safe to
/// share between threads; a clone starts empty.
#[derive(Debug, Default)]
pub(crate) struct CostCache<T> {
    slots: OnceLock<Box<[OnceLock<T>]>>,
}

/// Largest count kept in a [`CostCache`]; larger ones are computed every time.
const COST_CACHE_MAX: usize = 16_384;

impl<T> Clone for CostCache<T> {
    fn clone(&self) -> Self {
        CostCache {
            slots: OnceLock::new(),
        }
    }
}

/// Every cache equals every other: it holds values of a function, not part of the
/// value it belongs to.
impl<T> PartialEq for CostCache<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T: Copy> CostCache<T> {
    /// `f(n)`, from the cache when `n` is a whole number within its range.
    pub(crate) fn get(&self, n: f64, f: impl FnOnce() -> T) -> T {
        // The cast saturates (NaN to 0); comparing back tests wholeness without `trunc`,
        // a library call.
        let i = n as usize;
        if !(n >= 0.0 && i <= COST_CACHE_MAX && i as f64 == n) {
            return f();
        }
        let slots = self
            .slots
            .get_or_init(|| (0..=COST_CACHE_MAX).map(|_| OnceLock::new()).collect());
        *slots[i].get_or_init(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn whole_numbers_in_range_are_computed_once_and_others_every_time() {
        let cache = CostCache::<f64>::default();
        let calls = Cell::new(0);
        let f = |n: f64| {
            calls.set(calls.get() + 1);
            n * 2.0
        };
        for _ in 0..3 {
            assert_eq!(cache.get(7.0, || f(7.0)), 14.0);
        }
        assert_eq!(calls.get(), 1);
        for n in [7.5, -1.0, (COST_CACHE_MAX + 1) as f64, f64::INFINITY] {
            assert_eq!(cache.get(n, || f(n)), n * 2.0);
            assert_eq!(cache.get(n, || f(n)), n * 2.0);
        }
        assert_eq!(calls.get(), 9);
        assert!(cache.get(f64::NAN, || f(f64::NAN)).is_nan());
        assert_eq!(cache.get(0.0, || f(0.0)), 0.0);
        assert_eq!(calls.get(), 11);
        // A clone starts empty.
        assert_eq!(cache.clone().get(7.0, || f(7.0)), 14.0);
        assert_eq!(calls.get(), 12);
    }
}
