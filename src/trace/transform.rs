//! The streaming adapter behind [`TraceOptions`]: window, shift, scale, cap.

use super::{Request, TraceOptions};
use crate::error::{Error, Result};
use crate::units::{checked_secs_to_nanos, SimTime};

/// Applies validated [`TraceOptions`] to a request stream, one request at a time.
/// Stops reading its source as soon as the window end or the request cap is reached,
/// and after the first error.
pub(crate) struct Transform<I> {
    inner: I,
    /// `[start, end)` in trace nanoseconds.
    window: Option<(u64, u64)>,
    /// `time_scale / rate_scale`, when it is not 1.
    factor: Option<f64>,
    remaining: Option<u64>,
    done: bool,
}

impl<I: Iterator<Item = Result<Request>>> Transform<I> {
    /// `opts` must have passed [`TraceOptions::validate`].
    pub(crate) fn new(inner: I, opts: &TraceOptions) -> Self {
        let window = opts.time_window.map(|(start, end)| {
            let s = checked_secs_to_nanos(start).unwrap_or(u64::MAX);
            let e = checked_secs_to_nanos(end).unwrap_or(u64::MAX);
            (s, e)
        });
        let f = opts.time_scale / opts.rate_scale;
        Transform {
            inner,
            window,
            factor: (f != 1.0).then_some(f),
            remaining: opts.max_requests,
            done: false,
        }
    }
}

impl<I: Iterator<Item = Result<Request>>> Iterator for Transform<I> {
    type Item = Result<Request>;

    fn next(&mut self) -> Option<Result<Request>> {
        if self.done || self.remaining == Some(0) {
            self.done = true;
            return None;
        }
        loop {
            let mut req = match self.inner.next() {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Ok(r)) => r,
            };
            let mut ns = req.arrival.as_nanos();
            if let Some((start, end)) = self.window {
                if ns < start {
                    continue;
                }
                if ns >= end {
                    // Arrivals are sorted: nothing later can be inside the window.
                    self.done = true;
                    return None;
                }
                ns -= start;
            }
            if let Some(f) = self.factor {
                let scaled = (ns as f64 * f).round();
                if scaled >= u64::MAX as f64 {
                    self.done = true;
                    return Some(Err(Error::Config(format!(
                        "request {}: arrival at {} s scaled by {f} is past the largest simulated time",
                        req.id,
                        super::format_secs(req.arrival)
                    ))));
                }
                ns = scaled as u64;
            }
            req.arrival = SimTime::from_nanos(ns);
            if let Some(r) = &mut self.remaining {
                *r -= 1;
            }
            return Some(Ok(req));
        }
    }
}
