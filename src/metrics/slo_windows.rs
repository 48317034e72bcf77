//! SLO attainment over time: requests grouped into fixed windows by arrival, each
//! window's share of requests that met every SLO, and how many windows reach a target.
//!
//! A request belongs to the window its arrival falls in (so a burst is charged to when
//! the load came, not to when the backlog cleared). Rejected requests count as missed;
//! windows without arrivals are not windows of the run.

use super::Slo;
use crate::engine::RequestRecord;
use serde::Serialize;
use std::collections::BTreeMap;

/// Per-window tallies of a run.
#[derive(Clone, Debug)]
pub struct SloWindows {
    window_s: f64,
    target: f64,
    /// Window index → (requests that arrived in it and ended, of which met the SLO).
    bins: BTreeMap<u64, (u64, u64)>,
}

/// One window in the summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SloWindow {
    /// Start of the window, s after the run's time zero.
    pub start_s: f64,
    /// End of the window, s.
    pub end_s: f64,
    /// Requests that arrived in the window.
    pub requests: u64,
    /// Their share that met every SLO (0 to 1).
    pub attainment: f64,
}

/// SLO attainment over time, as `summary.json` gives it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SloWindowSummary {
    /// Window length, s.
    pub window_s: f64,
    /// Attainment a window must reach to meet the SLO (0 to 1).
    pub target: f64,
    /// Windows with at least one arrival.
    pub windows: u64,
    /// Of those, windows whose attainment reaches the target.
    pub windows_meeting_target: u64,
    /// `windows_meeting_target / windows` (0 when there are none).
    pub fraction_meeting_target: f64,
    /// The window with the lowest attainment (the earliest among equals).
    pub worst: Option<SloWindow>,
}

impl SloWindows {
    /// Windows of `window_s` seconds (finite, ≥ 1 ms), meeting the SLO at `target`
    /// attainment (in (0, 1]); errors name the flags.
    pub fn new(window_s: f64, target: f64) -> crate::Result<Self> {
        if !(window_s.is_finite() && window_s >= 1e-3) {
            return Err(crate::Error::input(
                "<command line>",
                Some("--slo-window-s"),
                format!("must be a finite number of seconds of at least 0.001, got {window_s}"),
            ));
        }
        if !(target > 0.0 && target <= 1.0) {
            return Err(crate::Error::input(
                "<command line>",
                Some("--slo-window-target"),
                format!("must be a fraction in (0, 1], got {target}"),
            ));
        }
        Ok(SloWindows {
            window_s,
            target,
            bins: BTreeMap::new(),
        })
    }

    fn index(&self, t_s: f64) -> u64 {
        // Non-negative and finite by construction of records; the cast saturates.
        (t_s.max(0.0) / self.window_s) as u64
    }

    /// Count one ended request.
    pub fn record(&mut self, slo: &Slo, r: &RequestRecord) {
        let met = u64::from(slo.is_met(r));
        let bin = self.bins.entry(self.index(r.arrival_time_s)).or_default();
        bin.0 += 1;
        bin.1 += met;
    }

    /// The attainment of the window containing `t_s`, if any request arrived in it.
    pub fn attainment_at(&self, t_s: f64) -> Option<f64> {
        self.bins
            .get(&self.index(t_s))
            .map(|&(n, met)| met as f64 / n as f64)
    }

    /// Every window with arrivals, in time order.
    pub fn windows(&self) -> impl Iterator<Item = SloWindow> + '_ {
        self.bins.iter().map(|(&i, &(n, met))| SloWindow {
            start_s: i as f64 * self.window_s,
            end_s: (i + 1) as f64 * self.window_s,
            requests: n,
            attainment: met as f64 / n as f64,
        })
    }

    /// The summary.
    pub fn summary(&self) -> SloWindowSummary {
        let mut worst: Option<SloWindow> = None;
        let mut meeting = 0;
        for w in self.windows() {
            if w.attainment >= self.target {
                meeting += 1;
            }
            if worst.as_ref().is_none_or(|x| w.attainment < x.attainment) {
                worst = Some(w);
            }
        }
        let windows = self.bins.len() as u64;
        SloWindowSummary {
            window_s: self.window_s,
            target: self.target,
            windows,
            windows_meeting_target: meeting,
            fraction_meeting_target: if windows > 0 {
                meeting as f64 / windows as f64
            } else {
                0.0
            },
            worst,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RequestStatus;

    fn rec(arrival: f64, ttft: f64, status: RequestStatus) -> RequestRecord {
        RequestRecord {
            request_id: 0,
            replica: 0,
            arrival_time_s: arrival,
            input_tokens: 10,
            output_tokens: 2,
            scheduled_time_s: arrival,
            first_token_time_s: arrival + ttft,
            finish_time_s: arrival + ttft + 0.01,
            ttft_s: ttft,
            tpot_s: 0.01,
            e2e_s: ttft + 0.01,
            queue_s: 0.0,
            preemptions: 0,
            prefix_hit_tokens: 0,
            status,
            attempts: 1,
        }
    }

    #[test]
    fn windows_by_arrival_by_hand() {
        let slo = Slo {
            ttft_s: Some(1.0),
            tpot_s: None,
        };
        let mut w = SloWindows::new(10.0, 0.75).unwrap();
        // [0, 10): 4 requests, 3 met → 0.75, meets the target.
        for (a, t) in [(0.0, 0.5), (3.0, 0.9), (9.99, 1.0), (5.0, 2.0)] {
            w.record(&slo, &rec(a, t, RequestStatus::Finished));
        }
        // [20, 30): 2 requests, one rejected → 0.5. [10, 20) has no arrivals.
        w.record(&slo, &rec(20.0, 0.1, RequestStatus::Finished));
        w.record(&slo, &rec(25.0, 0.1, RequestStatus::Rejected));
        let s = w.summary();
        assert_eq!((s.windows, s.windows_meeting_target), (2, 1));
        assert_eq!(s.fraction_meeting_target, 0.5);
        let worst = s.worst.unwrap();
        assert_eq!(
            (worst.start_s, worst.end_s, worst.requests),
            (20.0, 30.0, 2)
        );
        assert_eq!(worst.attainment, 0.5);
        assert_eq!(w.attainment_at(15.0), None);
        assert_eq!(w.attainment_at(9.0), Some(0.75));
    }

    #[test]
    fn flags_out_of_range_are_named() {
        for (window, target, flag) in [
            (0.0, 0.9, "--slo-window-s"),
            (f64::NAN, 0.9, "--slo-window-s"),
            (60.0, 0.0, "--slo-window-target"),
            (60.0, 1.5, "--slo-window-target"),
        ] {
            let e = SloWindows::new(window, target).unwrap_err().to_string();
            assert!(e.contains(flag), "{e}");
        }
    }
}
