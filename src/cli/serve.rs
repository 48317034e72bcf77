//! `servesim serve`: an OpenAI-compatible endpoint backed by a simulated deployment.

use super::args::{DeploymentArgs, EngineArgs};
use crate::deployment::Deployment;
use crate::paths::DataPaths;
use crate::serve::tokenizer::{find_tokenizer_dir, ModelTokenizer};
use crate::serve::{serve, ServeOptions, Tokenization};
use crate::setup::ReplicaSetup;
use crate::sim::{RoutePolicy, Simulation};
use anyhow::{Context, Result};
use clap::Args;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `servesim serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// Port to listen on (0 picks a free one; the address is printed on stderr).
    #[arg(long, default_value_t = 8000)]
    port: u16,

    /// Simulated seconds per wall-clock second (10 = tokens arrive 10× sooner than on
    /// the simulated hardware).
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    speedup: f64,

    /// Answer 429 to a request that arrives while N requests wait for admission.
    /// Default: no limit.
    #[arg(long, value_name = "N")]
    max_queue: Option<usize>,

    /// Model names clients may use (the first is reported). Default: the --model id.
    #[arg(long, value_name = "NAME", num_args = 1..)]
    served_model_name: Vec<String>,

    /// max_tokens of requests that give none. Default: 16 for completions; for chat the
    /// model's generation_config.json max_new_tokens (beside its tokenizer), else the
    /// rest of the context window (as vLLM).
    #[arg(long, value_name = "TOKENS")]
    default_max_tokens: Option<u32>,

    /// Seconds in-flight requests get to finish on SIGINT/SIGTERM before they are
    /// cancelled.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    shutdown_timeout_s: f64,

    /// Require `Authorization: Bearer KEY` on every /v1 route (401 otherwise), as
    /// vLLM's flag. Also read from VLLM_API_KEY.
    #[arg(long, value_name = "KEY", env = "VLLM_API_KEY", hide_env_values = true)]
    api_key: Option<String>,

    /// Close a connection whose request headers have not all arrived this many seconds
    /// after it opened or after its previous response (slow or stalled clients).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    header_read_timeout_s: f64,

    /// Close a connection with no request in flight and nothing received for this many
    /// seconds (uvicorn's default under vLLM is 5).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    keep_alive_timeout_s: f64,

    /// Open connections beyond this many get a 503 and are closed.
    #[arg(long, value_name = "N", default_value_t = 16_384)]
    max_connections: usize,

    /// Identical replicas behind the router; with --data-parallel-size D each is D
    /// ranks, as in `simulate`.
    #[arg(long, value_name = "N", default_value_t = 1)]
    num_replicas: u32,

    /// How the router picks a replica.
    #[arg(long, value_enum, default_value_t = RoutePolicy::default())]
    route: RoutePolicy,

    /// The tokenizer: a folder holding tokenizer.json (and tokenizer_config.json with
    /// the chat template), or `org/name` in the HuggingFace cache (downloaded with
    /// --allow-download). Default: the --model folder or repository when it has one;
    /// else prompts are approximated as 4 characters per token.
    #[arg(long, value_name = "DIR|ORG/NAME")]
    tokenizer: Option<String>,

    /// Report prefix-cache hits in usage.prompt_tokens_details.cached_tokens, as vLLM's
    /// flag of the same name.
    #[arg(long)]
    enable_prompt_tokens_details: bool,

    #[command(flatten)]
    deployment: DeploymentArgs,

    #[command(flatten)]
    engine: EngineArgs,
}

/// Run `servesim serve` until SIGINT or SIGTERM.
pub fn run(args: ServeArgs, paths: &DataPaths) -> Result<()> {
    let Ok(shutdown_timeout) = Duration::try_from_secs_f64(args.shutdown_timeout_s) else {
        anyhow::bail!(
            "--shutdown-timeout-s must be a non-negative number of seconds, got {}",
            args.shutdown_timeout_s
        );
    };
    if args.num_replicas == 0 {
        anyhow::bail!("--num-replicas must be at least 1");
    }
    let seconds = |flag: &str, s: f64| match Duration::try_from_secs_f64(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(anyhow::anyhow!(
            "{flag} must be a positive number of seconds, got {s}"
        )),
    };
    let header_read_timeout = seconds("--header-read-timeout-s", args.header_read_timeout_s)?;
    let keep_alive_timeout = seconds("--keep-alive-timeout-s", args.keep_alive_timeout_s)?;
    // --max-connections and an empty --api-key are checked by `serve` itself.
    let deployment = Deployment::resolve(&args.deployment.request_for(&args.engine), paths)?;
    let setup = ReplicaSetup::new(deployment, &args.engine.overrides(), paths)?;
    // The same cluster `simulate` builds: each replica's data-parallel ranks together.
    let cluster =
        crate::cluster::ClusterSpec::uniform(setup.clone(), args.num_replicas, args.route);
    let sim = Simulation::new(cluster.nominal_replicas()?, cluster.router())?;
    let model = setup.deployment.model.name.clone();
    let mut opts = ServeOptions::new(model.clone());
    if !args.served_model_name.is_empty() {
        opts.served_model_names = args.served_model_name.clone();
    }
    opts.speedup = args.speedup;
    opts.max_queue = args.max_queue;
    opts.default_max_tokens = args.default_max_tokens;
    opts.shutdown_timeout = shutdown_timeout;
    opts.header_read_timeout = header_read_timeout;
    opts.keep_alive_timeout = keep_alive_timeout;
    opts.max_connections = args.max_connections;
    opts.api_key = args.api_key.clone();
    opts.prompt_tokens_details = args.enable_prompt_tokens_details;
    // The serving stack's API-server delays, as `simulate` applies them.
    opts.api_server = Some(setup.deployment.stack.api_server.clone());
    let model_arg = args.deployment.model.clone().unwrap_or_default();
    opts.tokenization = tokenization(args.tokenizer.as_deref(), &model_arg, paths)?;
    opts.chat_max_new_tokens = opts
        .tokenization
        .model()
        .and_then(|t| crate::serve::tokenizer::generation_max_new_tokens(t.dir()));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("listening on {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() && opts.api_key.is_none() {
            eprintln!(
                "warning: listening on {addr}, reachable from other machines, without --api-key: anyone who can connect can send requests"
            );
        }
        let d = &setup.deployment;
        eprintln!(
            "servesim serve: {} on {} × {} (TP{} PP{}) × {} replica(s), {:?}, {} KV blocks of {} tokens, max-model-len {}, speedup {}",
            model,
            d.num_gpus(),
            d.gpu().name,
            d.tp,
            d.pp,
            args.num_replicas,
            setup.engine.scheduler,
            setup.engine.num_gpu_blocks,
            setup.engine.block_size,
            setup.engine.max_model_len,
            args.speedup
        );
        eprintln!("latency model: {}", setup.latency.describe());
        eprintln!("tokens: {}", opts.tokenization.describe());
        eprintln!(
            "serving `{}` on http://{addr} (Ctrl-C to stop)",
            opts.served_model_names.join("`, `")
        );
        serve(listener, sim, opts, shutdown_signal()).await?;
        eprintln!("servesim serve: stopped");
        Ok(())
    })
}

/// The model's tokenizer (see `--tokenizer`), or the approximation when neither the flag
/// nor the model names one; an explicit `--tokenizer` that cannot be loaded is an error.
fn tokenization(explicit: Option<&str>, model: &str, paths: &DataPaths) -> Result<Tokenization> {
    let cache = crate::model::hf_folder::hub_cache_dir();
    let wanted = explicit.unwrap_or(model);
    let dir = match find_tokenizer_dir(explicit, model, cache.as_deref()) {
        Some(dir) => Some(dir),
        None => match (&paths.hub_download, cache.as_deref()) {
            // Downloads allowed and an `org/name` that is not a local path.
            (Some(hub), Some(cache))
                if wanted.contains('/') && !std::path::Path::new(wanted).exists() =>
            {
                let fetched = crate::model::hub_download::download_tokenizer(wanted, cache, hub);
                match (fetched, explicit) {
                    (Ok(dir), _) => Some(dir),
                    (Err(e), Some(_)) => return Err(e.into()),
                    (Err(e), None) => {
                        eprintln!("note: no tokenizer for `{wanted}`: {e}");
                        None
                    }
                }
            }
            _ => None,
        },
    };
    match (dir, explicit) {
        (Some(dir), _) => Ok(Tokenization::Model(Arc::new(
            ModelTokenizer::from_dir(&dir).with_context(|| format!("loading the tokenizer in {}", dir.display()))?,
        ))),
        (None, Some(t)) => anyhow::bail!(
            "--tokenizer {t}: no tokenizer.json there (give a folder holding one, or org/name in the HuggingFace cache; --allow-download fetches it)"
        ),
        (None, None) => Ok(Tokenization::Approximate),
    }
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    eprintln!("servesim serve: shutting down (finishing in-flight requests)");
}
