//! SGLang's `--scheduler-recv-interval N`: the scheduler takes new requests from the
//! tokenizer only on some of its loop turns, to save the polling cost. Each turn adds
//! the weight of the iteration it just ran to a counter (a decode iteration 1, any
//! iteration with prompt work, or an idle turn, enough to reach `N` at once) and polls
//! when the counter reaches `N`, then starts it again from 0. During steady decoding a
//! request that has reached the engine therefore waits for up to `N` decode iterations
//! before any scheduling decision sees it ([sgl-project/sglang]
//! `python/sglang/srt/managers/scheduler_recv_skipper.py`, `SchedulerRecvSkipper`;
//! `N` = 1, the default, polls on every turn).

use crate::units::SimTime;

/// What the replica ran just before a scheduling decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastIteration {
    /// An iteration of decodes only.
    Decode,
    /// An iteration with prompt work (a prefill or a chunk of one).
    Prefill,
    /// Nothing: the engine was idle (SGLang's idle loop polls at once).
    Idle,
}

/// The poll state of one replica's scheduler.
#[derive(Clone, Debug)]
pub struct RecvSkipper {
    interval: u32,
    counter: u32,
    received_until: SimTime,
    /// Whether the last iteration planned was decodes only.
    last_decode_only: bool,
}

impl RecvSkipper {
    /// A scheduler polling every `interval` decode iterations (at least 1).
    pub fn new(interval: u32) -> Self {
        RecvSkipper {
            interval: interval.max(1),
            counter: 0,
            received_until: SimTime::ZERO,
            last_decode_only: false,
        }
    }

    /// Records whether the iteration just planned is decodes only.
    pub fn planned(&mut self, decode_only: bool) {
        self.last_decode_only = decode_only;
    }

    /// The decision at `now`, `back_to_back` when an iteration ended at `now` (else the
    /// engine was idle): [`RecvSkipper::at_decision`] after the iteration last planned.
    pub fn at_turn(&mut self, now: SimTime, back_to_back: bool) -> SimTime {
        let last = match (back_to_back, self.last_decode_only) {
            (false, _) => LastIteration::Idle,
            (true, true) => LastIteration::Decode,
            (true, false) => LastIteration::Prefill,
        };
        self.at_decision(now, last)
    }

    /// The decision at `now` after `last`: requests that reached the engine after the
    /// returned time are not seen by it (`now` when the scheduler polls now).
    pub fn at_decision(&mut self, now: SimTime, last: LastIteration) -> SimTime {
        self.counter = self.counter.saturating_add(match last {
            LastIteration::Decode => 1,
            LastIteration::Prefill | LastIteration::Idle => self.interval,
        });
        if self.counter >= self.interval {
            self.poll(now);
        }
        self.received_until
    }

    /// Poll now (the engine has nothing else to run and would poll on its idle turns).
    pub fn poll(&mut self, now: SimTime) {
        self.counter = 0;
        self.received_until = self.received_until.max(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> SimTime {
        SimTime::ZERO + crate::units::SimDuration::from_millis(ms)
    }

    /// Every turn polls at interval 1; at interval 3 a decode run polls on every third
    /// decode iteration, and an iteration with prompt work or an idle engine polls at
    /// the next decision.
    #[test]
    fn polls_every_interval_decodes_and_at_once_after_prompt_work() {
        let mut every = RecvSkipper::new(1);
        for i in 1..5 {
            assert_eq!(every.at_decision(t(i), LastIteration::Decode), t(i));
        }
        let mut s = RecvSkipper::new(3);
        assert_eq!(s.at_decision(t(1), LastIteration::Idle), t(1));
        assert_eq!(s.at_decision(t(2), LastIteration::Decode), t(1));
        assert_eq!(s.at_decision(t(3), LastIteration::Decode), t(1));
        assert_eq!(s.at_decision(t(4), LastIteration::Decode), t(4));
        assert_eq!(s.at_decision(t(5), LastIteration::Decode), t(4));
        assert_eq!(s.at_decision(t(6), LastIteration::Prefill), t(6));
        assert_eq!(s.at_decision(t(7), LastIteration::Decode), t(6));
        s.poll(t(8));
        assert_eq!(s.at_decision(t(9), LastIteration::Decode), t(8));
    }
}
