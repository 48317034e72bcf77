//! `servesim serve`: an OpenAI-compatible HTTP endpoint whose timing is simulated.
//!
//! A stand-in for a real model server, for testing clients, gateways, routers and load
//! generators against realistic latencies without GPUs. The discrete-event core stays
//! synchronous: one engine task owns the [`Simulation`] and advances it with the wall
//! clock (`simulated time = wall time since start × speedup`); HTTP handlers only send
//! it commands and stream back the tokens it releases. Concurrent clients therefore
//! share batches, KV capacity and queueing exactly as requests of a trace do in
//! `servesim simulate`.
//!
//! ```text
//!  clients ──HTTP──► routes (axum) ──Command──► engine task ──► Simulation
//!     ▲                                              │   (process_until, add_request,
//!     └──── JSON / SSE chunks ◄── StreamEvent ◄──────┘    abort, start_idle)
//! ```
//!
//! Endpoints: `POST /v1/completions`, `POST /v1/chat/completions` (whole or streamed
//! as server-sent events ending with `data: [DONE]`), `GET /v1/models`, `GET /health`,
//! `GET /metrics` (Prometheus text with vLLM's names, see [`metrics`]) and
//! `GET /version`. How prompts are counted and what is generated is in [`openai`];
//! errors are OpenAI-style JSON ([`errors`]).
//!
//! A client that disconnects aborts its request, which frees its KV blocks. On shutdown
//! the server stops accepting, lets in-flight requests finish for
//! [`ServeOptions::shutdown_timeout`], then cancels what is left (streams end with an
//! error chunk and `data: [DONE]`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use servesim::engine::{EngineConfig, Replica, SchedulerKind};
//! use servesim::perf::fixed::FixedLatency;
//! use servesim::serve::{serve, ServeOptions};
//! use servesim::sim::{Router, Simulation};
//! use std::sync::Arc;
//!
//! let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
//! let lat = Arc::new(FixedLatency::from_micros(5000, 20, 100));
//! let sim = Simulation::new(vec![Replica::new(0, cfg, lat)?], Router::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! serve(listener, sim, ServeOptions::new("my-model"), async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```

use crate::error::{Error, Result};
use crate::sim::Simulation;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::net::TcpListener;

mod engine_task;
pub mod errors;
mod listener;
pub mod metrics;
pub mod openai;
pub mod prompt;
mod respond;
mod routes;
mod tokenize;
pub mod tokenizer;

use engine_task::{Command, CommandSender, EngineSettings, EngineTask, WallClock};
pub use prompt::Tokenization;

/// How the server behaves.
#[derive(Clone)]
pub struct ServeOptions {
    /// Names clients may put in `model` (the first is used when a request names none,
    /// and in `/metrics`). Must not be empty.
    pub served_model_names: Vec<String>,
    /// What `/v1/models` reports as `root` (the deployed checkpoint).
    pub root_model: String,
    /// Simulated seconds per wall-clock second (finite, > 0).
    pub speedup: f64,
    /// Refuse a request with 429 when this many requests already wait for admission.
    pub max_queue: Option<usize>,
    /// `max_tokens` when a request gives none (default: 16 for completions, the rest
    /// of the context window for chat).
    pub default_max_tokens: Option<u32>,
    /// The model's own limit for chat requests that set none (`max_new_tokens` of its
    /// `generation_config.json`, as vLLM reads it); `default_max_tokens` wins.
    pub chat_max_new_tokens: Option<u32>,
    /// Wall time in-flight requests get to finish after shutdown begins.
    pub shutdown_timeout: Duration,
    /// Interval of SSE keep-alive comments (they also reveal disconnected clients of
    /// queued streams).
    pub sse_keep_alive: Duration,
    /// A request's headers must arrive within this long of the connection opening or
    /// of the previous response, else the connection is closed.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and nothing received for this long is
    /// closed.
    pub keep_alive_timeout: Duration,
    /// Open connections beyond this get a 503 and are closed.
    pub max_connections: usize,
    /// When set, every `/v1` route needs `Authorization: Bearer <key>` (401 otherwise),
    /// as vLLM's `--api-key`. Never printed (`Debug` redacts it).
    pub api_key: Option<String>,
    /// How prompts are counted and output text is made: the model's tokenizer, or the
    /// approximation (the default).
    pub tokenization: Tokenization,
    /// Report `usage.prompt_tokens_details.cached_tokens` (prefix-cache hits), as
    /// vLLM's `--enable-prompt-tokens-details`.
    pub prompt_tokens_details: bool,
    /// The serving stack's API server (request handling and tokenization before the
    /// engine, streaming after it), applied as `simulate` applies it; none by default.
    pub api_server: Option<crate::stack::ApiServer>,
}

/// Every option but the API key, which is never printed.
impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("served_model_names", &self.served_model_names)
            .field("root_model", &self.root_model)
            .field("speedup", &self.speedup)
            .field("max_queue", &self.max_queue)
            .field("default_max_tokens", &self.default_max_tokens)
            .field("chat_max_new_tokens", &self.chat_max_new_tokens)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("sse_keep_alive", &self.sse_keep_alive)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("keep_alive_timeout", &self.keep_alive_timeout)
            .field("max_connections", &self.max_connections)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("tokenization", &self.tokenization.describe())
            .field("prompt_tokens_details", &self.prompt_tokens_details)
            .field("api_server", &self.api_server)
            .finish()
    }
}

impl ServeOptions {
    /// Defaults for serving `model`: real time, no queue limit, 5 s shutdown grace.
    pub fn new(model: impl Into<String>) -> Self {
        let model = model.into();
        ServeOptions {
            served_model_names: vec![model.clone()],
            root_model: model,
            speedup: 1.0,
            max_queue: None,
            default_max_tokens: None,
            chat_max_new_tokens: None,
            shutdown_timeout: Duration::from_secs(5),
            sse_keep_alive: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            max_connections: 16_384,
            api_key: None,
            tokenization: Tokenization::Approximate,
            prompt_tokens_details: false,
            api_server: None,
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) commands: CommandSender,
    pub(crate) tokens: Tokenization,
    pub(crate) prompt_tokens_details: bool,
    pub(crate) model_names: Vec<String>,
    pub(crate) root_model: String,
    pub(crate) max_model_len: u32,
    pub(crate) default_max_tokens: Option<u32>,
    pub(crate) chat_max_new_tokens: Option<u32>,
    pub(crate) keep_alive: Duration,
    pub(crate) next_id: AtomicU64,
    pub(crate) created: u64,
    pub(crate) api_key: Option<ApiKey>,
}

/// The key clients must present; never printed.
pub(crate) struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKey {
    /// Whether `given` is the key, in time that does not depend on where they differ.
    pub(crate) fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Serve the OpenAI API on `listener` with `sim` as the engine until `shutdown`
/// resolves, then drain (see the module docs) and return.
///
/// `sim` must be fresh (clock at zero, no requests). Errors: invalid options, or an
/// I/O error of the listener.
pub async fn serve(
    listener: TcpListener,
    sim: Simulation,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if !(opts.speedup.is_finite() && opts.speedup > 0.0) {
        return Err(Error::Config(format!(
            "--speedup must be a positive number, got {}",
            opts.speedup
        )));
    }
    let Some(first_name) = opts.served_model_names.first().cloned() else {
        return Err(Error::Config(
            "--served-model-name needs at least one name".into(),
        ));
    };
    if opts.max_connections == 0 || opts.max_connections > u32::MAX as usize {
        return Err(Error::Config(format!(
            "--max-connections must be between 1 and {}, got {}",
            u32::MAX,
            opts.max_connections
        )));
    }
    for (flag, d) in [
        ("--header-read-timeout-s", opts.header_read_timeout),
        ("--keep-alive-timeout-s", opts.keep_alive_timeout),
    ] {
        if d.is_zero() {
            return Err(Error::Config(format!("{flag} must be positive")));
        }
    }
    if opts.api_key.as_deref().is_some_and(str::is_empty) {
        return Err(Error::Config("--api-key must not be empty".into()));
    }
    if sim.now() != crate::units::SimTime::ZERO || sim.num_outstanding() > 0 {
        return Err(Error::Config(
            "serve needs a fresh simulation (clock at zero, no requests)".into(),
        ));
    }
    let max_model_len = sim
        .replicas()
        .iter()
        .map(|r| r.config().max_model_len)
        .min()
        .unwrap_or(0);

    let (commands, rx) = std::sync::mpsc::channel();
    let api = opts
        .api_server
        .as_ref()
        // Each request's own handling; this live server queues real requests itself.
        .map(|a| crate::sim::api::ApiDelays::of(a, 0))
        .unwrap_or_default();
    let engine = EngineTask::new(
        sim,
        EngineSettings {
            clock: WallClock::start(opts.speedup).with_lag(api.egress()),
            api,
            max_queue: opts.max_queue,
            model_name: first_name,
            max_model_len,
        },
    );
    // A thread of its own, so that tokens are released on time (see engine_task).
    let (engine_done, engine_ended) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("servesim-engine".into())
        .spawn(move || {
            engine.run(rx);
            let _ = engine_done.send(());
        })
        .map_err(|e| Error::io("<engine thread>", e))?;
    let state = std::sync::Arc::new(AppState {
        commands: commands.clone(),
        tokens: opts.tokenization,
        prompt_tokens_details: opts.prompt_tokens_details,
        model_names: opts.served_model_names,
        root_model: opts.root_model,
        max_model_len,
        default_max_tokens: opts.default_max_tokens,
        chat_max_new_tokens: opts.chat_max_new_tokens,
        keep_alive: opts.sse_keep_alive,
        next_id: AtomicU64::new(1),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        api_key: opts.api_key.map(ApiKey),
    });
    let app = routes::router(state);

    let grace = opts.shutdown_timeout;
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let limits = listener::ConnLimits {
        header_read_timeout: opts.header_read_timeout,
        keep_alive_timeout: opts.keep_alive_timeout,
        max_connections: opts.max_connections,
    };
    let server = listener::serve_connections(listener, app, limits, async move {
        shutdown.await;
        let _ = commands.send(Command::Drain { grace });
        let _ = stopping_tx.send(());
    });
    // Connections that outlive the grace period (cancelled streams close themselves;
    // this catches idle or stuck ones) are dropped a little after it.
    let force = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(grace.saturating_add(Duration::from_secs(2))).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        r = server => r.map_err(|e| Error::io("<http listener>", e)),
        () = force => Ok(()),
    };
    // Every handler is gone once the server returns, so the engine sees its channel
    // close and its thread ends; don't wait on it forever if something still holds a
    // sender (the thread then ends with the process).
    let _ = tokio::time::timeout(Duration::from_secs(1), engine_ended).await;
    result
}
