//! The serving engine of one replica: request state, scheduler and KV cache.

pub mod kv;
