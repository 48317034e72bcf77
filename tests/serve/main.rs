//! `servesim serve` end to end: a server on a loopback ephemeral port, driven by a real
//! HTTP client. Most tests run the library server with a hand-computable latency model
//! (`FixedLatency`); one starts the `servesim` binary and stops it with SIGTERM.
#![cfg(feature = "serve")]

mod api;
mod errors;
mod lifecycle;
mod limits;
mod tokenizer;
mod util;
