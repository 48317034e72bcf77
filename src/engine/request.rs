//! Per-request state inside a replica.
//!
//! Token accounting follows vLLM V1: a request's *known* tokens are its prompt plus the
//! tokens generated so far; `computed` counts those whose KV is in the cache. Each
//! iteration schedules `known − computed` new tokens (a prefill chunk, a re-prefill after
//! preemption, or exactly one token for a decode). When an iteration brings `computed`
//! up to `known`, the model samples one new token.

use crate::engine::kv::BlockHash;
use crate::units::SimTime;

/// Lifecycle outcome of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Generated all its output tokens.
    Finished,
    /// Could never run: longer than `max_model_len`, or needs more KV than the whole cache.
    Rejected,
    /// Its client's timeout passed before it finished, on its last attempt (see
    /// [`crate::sim::client`]).
    TimedOut,
    /// Its client left because the first token came later than it would wait.
    Abandoned,
    /// Lost when the replica serving it failed, or sent while every replica was down
    /// (see [`crate::sim::failures`]), on its last attempt.
    Failed,
}

impl RequestStatus {
    /// The name written to outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Finished => "finished",
            RequestStatus::Rejected => "rejected",
            RequestStatus::TimedOut => "timed_out",
            RequestStatus::Abandoned => "abandoned",
            RequestStatus::Failed => "failed",
        }
    }
}

/// A request living in a replica (waiting, running or preempted).
#[derive(Clone, Debug)]
pub struct LiveRequest {
    /// The trace's request id.
    pub id: u64,
    /// When it arrived at the replica.
    pub arrival: SimTime,
    /// Prompt length.
    pub prompt_tokens: u32,
    /// Output tokens to generate.
    pub output_tokens: u32,
    /// Output tokens generated so far.
    pub generated: u32,
    /// Tokens whose KV is computed and held (0 while waiting or after recompute).
    pub computed: u32,
    /// Chained hashes of the request's shareable full KV blocks (may be empty).
    pub block_hashes: Vec<BlockHash>,
    /// First time it was scheduled.
    pub scheduled_at: Option<SimTime>,
    /// When its first output token was produced.
    pub first_token_at: Option<SimTime>,
    /// When its latest output token was produced.
    pub last_token_at: SimTime,
    /// Times it was preempted.
    pub preemptions: u32,
    /// Prompt tokens served from the prefix cache at its first admission.
    pub prefix_hit_tokens: u32,
    /// Whether its KV currently lives in host memory (swap preemption).
    pub swapped: bool,
    /// Whether its computed KV arrived from a prefill replica (disaggregated serving)
    /// and still has to be placed in this replica's cache.
    pub kv_transferred: bool,
    /// Whether it is part of a batch still in the pipeline (it cannot be scheduled
    /// again, or preempted, until that batch completes).
    pub in_flight: bool,
    /// Order of its latest admission to the running set (running requests are kept in
    /// this order; a preempted request gets a new one when it is admitted again).
    pub admit_seq: u64,
    /// The cohort clock at which it joined the replica's decode cohort, while it is a
    /// member. Members' `computed`, `generated` and `last_token_at` are then as of
    /// joining; the cohort (`engine/cohort.rs`) knows how far they have advanced.
    pub cohort_join: Option<u64>,
}

impl LiveRequest {
    /// Prompt plus tokens generated so far.
    pub fn known_tokens(&self) -> u32 {
        self.prompt_tokens + self.generated
    }

    /// Tokens still to compute before the next output token can be sampled.
    pub fn pending_tokens(&self) -> u32 {
        self.known_tokens() - self.computed
    }

    /// True once every output token is generated.
    pub fn is_done(&self) -> bool {
        self.generated >= self.output_tokens
    }

    /// Most tokens this request ever holds in the KV cache (the last output token is
    /// never fed back).
    pub fn max_kv_tokens(&self) -> u32 {
        self.prompt_tokens + self.output_tokens - 1
    }

    /// True when the next iteration for this request is a one-token decode.
    pub fn is_decoding(&self) -> bool {
        self.generated > 0 && self.pending_tokens() == 1
    }
}

/// The finished (or rejected) record of one request: the row of `requests.csv`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RequestRecord {
    /// The trace's request id.
    pub request_id: u64,
    /// Replica that served it (0 with one replica).
    pub replica: u32,
    /// Arrival time, s.
    pub arrival_time_s: f64,
    /// Prompt length.
    pub input_tokens: u32,
    /// Output length.
    pub output_tokens: u32,
    /// First scheduling time, s (NaN if never scheduled).
    pub scheduled_time_s: f64,
    /// First output token time, s (NaN if rejected).
    pub first_token_time_s: f64,
    /// Finish time, s (the arrival time if rejected).
    pub finish_time_s: f64,
    /// Time to first token, s.
    pub ttft_s: f64,
    /// Time per output token after the first: (e2e − ttft)/(output_tokens − 1), s;
    /// NaN for one-token outputs.
    pub tpot_s: f64,
    /// End-to-end latency, s.
    pub e2e_s: f64,
    /// Queueing delay before first scheduling, s.
    pub queue_s: f64,
    /// Times preempted.
    pub preemptions: u32,
    /// Prompt tokens served from the prefix cache.
    pub prefix_hit_tokens: u32,
    /// Outcome.
    pub status: RequestStatus,
    /// Times the client sent it (1 unless it retried after timeouts; the times above
    /// then run from the first send).
    pub attempts: u32,
}

impl RequestRecord {
    /// Its times in seconds, in `requests.csv` order after the arrival: scheduled,
    /// first token, finish, TTFT, TPOT, E2E, queueing.
    pub fn times_s(&self) -> [f64; 7] {
        [
            self.scheduled_time_s,
            self.first_token_time_s,
            self.finish_time_s,
            self.ttft_s,
            self.tpot_s,
            self.e2e_s,
            self.queue_s,
        ]
    }

    /// The record of a request that finished at `now`.
    pub fn finished(r: &LiveRequest, replica: u32, now: SimTime) -> Self {
        let arrival = r.arrival.as_secs_f64();
        let first = r.first_token_at.map_or(f64::NAN, SimTime::as_secs_f64);
        let sched = r.scheduled_at.map_or(f64::NAN, SimTime::as_secs_f64);
        let finish = now.as_secs_f64();
        let ttft = r.first_token_at.map_or(f64::NAN, |t| {
            t.saturating_duration_since(r.arrival).as_secs_f64()
        });
        let e2e = now.saturating_duration_since(r.arrival).as_secs_f64();
        let tpot = match (r.first_token_at, r.output_tokens) {
            (Some(t), n) if n > 1 => {
                now.saturating_duration_since(t).as_secs_f64() / f64::from(n - 1)
            }
            _ => f64::NAN,
        };
        let queue = r.scheduled_at.map_or(f64::NAN, |t| {
            t.saturating_duration_since(r.arrival).as_secs_f64()
        });
        RequestRecord {
            request_id: r.id,
            replica,
            arrival_time_s: arrival,
            input_tokens: r.prompt_tokens,
            output_tokens: r.output_tokens,
            scheduled_time_s: sched,
            first_token_time_s: first,
            finish_time_s: finish,
            ttft_s: ttft,
            tpot_s: tpot,
            e2e_s: e2e,
            queue_s: queue,
            preemptions: r.preemptions,
            prefix_hit_tokens: r.prefix_hit_tokens,
            status: RequestStatus::Finished,
            attempts: 1,
        }
    }

    /// The record of a request its client gave up on at `now` (`status`: timed out or
    /// abandoned): its times so far, the finish time is when the client gave up, and
    /// it has no E2E or TPOT.
    pub fn given_up(r: &LiveRequest, replica: u32, now: SimTime, status: RequestStatus) -> Self {
        let mut rec = Self::finished(r, replica, now);
        rec.e2e_s = f64::NAN;
        rec.tpot_s = f64::NAN;
        rec.status = status;
        rec
    }

    /// The record of a request rejected on arrival.
    pub fn rejected(
        id: u64,
        replica: u32,
        arrival: SimTime,
        input_tokens: u32,
        output_tokens: u32,
    ) -> Self {
        let a = arrival.as_secs_f64();
        RequestRecord {
            request_id: id,
            replica,
            arrival_time_s: a,
            input_tokens,
            output_tokens,
            scheduled_time_s: f64::NAN,
            first_token_time_s: f64::NAN,
            finish_time_s: a,
            ttft_s: f64::NAN,
            tpot_s: f64::NAN,
            e2e_s: f64::NAN,
            queue_s: f64::NAN,
            preemptions: 0,
            prefix_hit_tokens: 0,
            status: RequestStatus::Rejected,
            attempts: 1,
        }
    }
}
