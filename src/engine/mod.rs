//! The serving engine of one replica: request state, scheduler and KV cache.
//!
//! ```text
//!  arrivals ──► waiting (FCFS) ──schedule()──► running ──iteration──► tokens
//!                  ▲                              │
//!                  └──────── preemption ◄─────────┘   KV blocks: kv::KvCache
//! ```

mod cohort;
pub mod config;
pub mod kv;
pub mod recv_skipper;
pub mod replica;
pub mod request;
pub mod scheduler;

pub use config::{
    EngineConfig, LongPrompts, PreemptionMode, SchedulerKind, SeqLimitScope, SeqsOverBudget,
};
pub use replica::{Replica, ReplicaRole, RequestSink, TokenEvent};
pub use request::{LiveRequest, RequestRecord, RequestStatus};
