//! Example: load-test `servesim serve` with many concurrent streaming clients.
//!
//! ```text
//!  N client tasks ──POST /v1/completions (stream)──► servesim serve ──► Simulation
//!        ▲                                               │
//!        └────────── SSE chunks, one per token ◄─────────┘
//! ```
//!
//! Each client sends `--requests-per-client` streaming completions one after another
//! (prompt of `--prompt-tokens` token ids, `--max-tokens` output tokens) and checks every
//! response: status 200, chunks that parse, exactly `--max-tokens` tokens, a final
//! `data: [DONE]`. The report gives errors, throughput, client-side TTFT, inter-chunk
//! and end-to-end latency percentiles, and compares the mean TTFT the client saw with
//! the simulated mean from the server's `/metrics` (divided by the speedup), which
//! shows how late the server releases tokens under this load.
//!
//! Against a running server:
//!
//! ```text
//! servesim serve --port 8000 &
//! cargo run --release --example serve_load -- --url http://127.0.0.1:8000 --clients 1000
//! ```
//!
//! Without `--url` it starts a server in-process (Llama-3.1-8B on one H100 from the
//! shipped data, `--speedup`, `--max-num-seqs`) on a loopback port, on its own runtime.
//!
//! Abuse checks, alongside the clients: `--slow-connections N` opens N connections that
//! trickle a request's headers one byte a second (slowloris) and reports how many the
//! server closed and when; `/health` is probed every 50 ms throughout and its latency
//! reported; with `--api-key KEY` the clients send the key, and one request without it
//! must get 401. For 10,000 clients plus 5,000 slow connections run the server as its
//! own process (each side then needs about 15,000 file descriptors):
//!
//! ```text
//! servesim serve --port 8000 --speedup 10 --api-key k &
//! cargo run --release --example serve_load -- --url http://127.0.0.1:8000 \
//!     --clients 10000 --slow-connections 5000 --api-key k --ramp-s 10
//! ```

use clap::Parser;
use serde_json::{json, Value};
use servesim::metrics::{DistStats, Distribution};
use std::time::{Duration, Instant};

/// Load-test an OpenAI-compatible streaming endpoint.
#[derive(Parser, Debug)]
struct Args {
    /// Server to load (default: start one in-process).
    #[arg(long)]
    url: Option<String>,
    /// Concurrent streaming clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Requests each client sends, one after another.
    #[arg(long, default_value_t = 1)]
    requests_per_client: usize,
    /// Prompt length in tokens (sent as token ids, so counted exactly).
    #[arg(long, default_value_t = 512)]
    prompt_tokens: usize,
    /// Output tokens per request.
    #[arg(long, default_value_t = 128)]
    max_tokens: u32,
    /// Spread the clients' first requests evenly over this many seconds (0: all at once).
    #[arg(long, default_value_t = 0.0)]
    ramp_s: f64,
    /// In-process server: simulated seconds per wall second.
    #[arg(long, default_value_t = 1.0)]
    speedup: f64,
    /// In-process server: --max-num-seqs.
    #[arg(long, default_value_t = 256)]
    max_num_seqs: u32,
    /// Connections that trickle a request's headers, one byte a second.
    #[arg(long, default_value_t = 0)]
    slow_connections: usize,
    /// Send this key as `Authorization: Bearer` (the in-process server requires it) and
    /// check that a request without it gets 401.
    #[arg(long)]
    api_key: Option<String>,
}

/// What one request measured.
#[derive(Default)]
struct Outcome {
    error: Option<String>,
    ttft: Duration,
    e2e: Duration,
    gaps: Vec<Duration>,
    tokens: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = match &args.url {
        Some(url) => {
            println!("target: {url}");
            None
        }
        None => Some(start_server(&args)?),
    };
    let url = match (&args.url, &server) {
        (Some(u), _) => u.clone(),
        (None, Some((addr, _))) => format!("http://{addr}"),
        (None, None) => unreachable!("a server was started"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(load(&args, &url))?;
    if let Some((_, stop)) = server {
        stop();
    }
    Ok(())
}

/// Start `servesim serve` in-process on its own runtime thread; returns its address
/// and a function that stops it.
fn start_server(args: &Args) -> anyhow::Result<(std::net::SocketAddr, impl FnOnce())> {
    use servesim::deployment::{Deployment, DeploymentRequest};
    use servesim::engine::config::EngineOverrides;
    use servesim::serve::{serve, ServeOptions};
    use servesim::setup::ReplicaSetup;
    use servesim::sim::{Router, Simulation};

    let paths = servesim::paths::DataPaths::builtin();
    let d = Deployment::resolve(
        &DeploymentRequest {
            max_model_len: Some(8192),
            ..DeploymentRequest::default()
        },
        &paths,
    )?;
    let overrides = EngineOverrides {
        max_num_seqs: Some(args.max_num_seqs),
        ..EngineOverrides::default()
    };
    let setup = ReplicaSetup::new(d, &overrides, &paths)?;
    let sim = Simulation::new(setup.replicas(1)?, Router::default())?;
    let mut opts = ServeOptions::new(setup.deployment.model.name.clone());
    opts.speedup = args.speedup;
    opts.api_key = args.api_key.clone();
    println!(
        "in-process server: {} on {}, {} KV blocks, max-num-seqs {}, speedup {}",
        setup.deployment.model.name,
        setup.deployment.gpu().name,
        setup.engine.num_gpu_blocks,
        args.max_num_seqs,
        args.speedup
    );
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            addr_tx.send(listener.local_addr()?)?;
            serve(listener, sim, opts, async {
                let _ = stop_rx.await;
            })
            .await?;
            Ok(())
        })
    });
    let addr = addr_rx.recv()?;
    Ok((addr, move || {
        let _ = stop_tx.send(());
        let _ = thread.join();
    }))
}

async fn load(args: &Args, url: &str) -> anyhow::Result<()> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = &args.api_key {
        let no_key = reqwest::Client::new()
            .get(format!("{url}/v1/models"))
            .send()
            .await?
            .status();
        println!("a request without the API key: status {no_key}");
        if no_key != 401 {
            anyhow::bail!("a request without the API key got {no_key}, not 401");
        }
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {key}").parse()?,
        );
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .default_headers(headers)
        .build()?;
    let models: Value = http
        .get(format!("{url}/v1/models"))
        .send()
        .await?
        .json()
        .await?;
    let model = models["data"][0]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no model in /v1/models: {models}"))?
        .to_owned();
    let prompt: Vec<u32> = (0..args.prompt_tokens as u32)
        .map(|i| 1000 + i % 5000)
        .collect();
    let body = json!({
        "model": model, "prompt": prompt, "max_tokens": args.max_tokens, "stream": true
    });
    let before = metrics(&http, url).await.unwrap_or_default();
    println!(
        "{} clients × {} streaming request(s): {} prompt tokens, {} output tokens each",
        args.clients, args.requests_per_client, args.prompt_tokens, args.max_tokens
    );

    let start = Instant::now();
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let slow = slow_connections(url, args.slow_connections, stop.clone());
    let probes = health_probes(&http, url, stop.clone());
    let mut tasks = Vec::with_capacity(args.clients);
    for c in 0..args.clients {
        let http = http.clone();
        let url = format!("{url}/v1/completions");
        let body = body.clone();
        let delay = Duration::from_secs_f64(args.ramp_s * c as f64 / args.clients as f64);
        let n = args.requests_per_client;
        let want = args.max_tokens;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(one_request(&http, &url, &body, want).await);
            }
            out
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.extend(t.await?);
    }
    let wall = start.elapsed();
    stop.notify_waiters();
    let health = probes.await?;
    let slow_closed = slow.await?;
    let after = metrics(&http, url).await.unwrap_or_default();

    let errors: Vec<&String> = outcomes.iter().filter_map(|o| o.error.as_ref()).collect();
    let ok: Vec<&Outcome> = outcomes.iter().filter(|o| o.error.is_none()).collect();
    let tokens: u64 = ok.iter().map(|o| o.tokens).sum();
    let (mut ttft, mut itl, mut e2e) = (
        Distribution::default(),
        Distribution::default(),
        Distribution::default(),
    );
    for o in &ok {
        ttft.record_secs(o.ttft.as_secs_f64());
        e2e.record_secs(o.e2e.as_secs_f64());
        for g in &o.gaps {
            itl.record_secs(g.as_secs_f64());
        }
    }
    println!("requests: {} ok, {} errors", ok.len(), errors.len());
    for e in errors.iter().take(5) {
        println!("  error: {e}");
    }
    println!(
        "wall {:.2} s: {:.1} requests/s, {:.0} output tokens/s (streamed chunks)",
        wall.as_secs_f64(),
        ok.len() as f64 / wall.as_secs_f64(),
        tokens as f64 / wall.as_secs_f64()
    );
    println!("client-side latency (wall clock), ms:");
    println!(
        "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "mean", "p50", "p90", "p99", "max"
    );
    for (name, d) in [
        ("TTFT", ttft.stats()),
        ("ITL", itl.stats()),
        ("E2E", e2e.stats()),
    ] {
        row(name, &d);
    }
    let sim_ttft = |m: &str| -> Option<(f64, f64)> {
        Some((
            sample(m, "vllm:time_to_first_token_seconds_sum")?,
            sample(m, "vllm:time_to_first_token_seconds_count")?,
        ))
    };
    if let (Some((s1, c1)), Some((s0, c0))) = (sim_ttft(&after), sim_ttft(&before)) {
        if c1 > c0 {
            let speedup = if args.url.is_some() {
                None
            } else {
                Some(args.speedup)
            };
            let sim_mean = (s1 - s0) / (c1 - c0);
            match speedup {
                Some(x) => println!(
                    "server (simulated) mean TTFT {:.1} ms → {:.1} ms of wall time at speedup {x}; the client saw {:.1} ms",
                    sim_mean * 1e3,
                    sim_mean * 1e3 / x,
                    ttft.stats().mean * 1e3
                ),
                None => println!(
                    "server (simulated) mean TTFT {:.1} ms; the client saw {:.1} ms (divide the former by the server's --speedup)",
                    sim_mean * 1e3,
                    ttft.stats().mean * 1e3
                ),
            }
        }
    }
    let h = health.stats();
    println!(
        "/health during the run: {} probes, mean {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        health.count(),
        h.mean * 1e3,
        h.p99 * 1e3,
        h.max * 1e3
    );
    if args.slow_connections > 0 {
        let mut closed = Distribution::default();
        for t in slow_closed.iter().flatten() {
            closed.record_secs(t.as_secs_f64());
        }
        let c = closed.stats();
        println!(
            "slow connections: {} of {} closed by the server (after {:.1} s median, {:.1} s max)",
            closed.count(),
            args.slow_connections,
            c.p50,
            c.max
        );
    }
    if !errors.is_empty() {
        anyhow::bail!("{} requests failed", errors.len());
    }
    Ok(())
}

/// `n` connections that send a request line and then one header byte a second until
/// the server closes them (or `stop`, then 30 s more); each one's time to be closed.
fn slow_connections(
    url: &str,
    n: usize,
    stop: std::sync::Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<Vec<Option<Duration>>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    tokio::spawn(async move {
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move {
                let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
                    return None;
                };
                let opened = Instant::now();
                if s.write_all(b"POST /v1/completions HTTP/1.1\r\nx-slow: ")
                    .await
                    .is_err()
                {
                    return Some(opened.elapsed());
                }
                let mut buf = [0u8; 1024];
                loop {
                    tokio::select! {
                        r = s.read(&mut buf) => match r {
                            Ok(0) | Err(_) => return Some(opened.elapsed()),
                            Ok(_) => {}
                        },
                        () = tokio::time::sleep(Duration::from_secs(1)) => {
                            if s.write_all(b"x").await.is_err() {
                                return Some(opened.elapsed());
                            }
                            if opened.elapsed() > Duration::from_secs(600) {
                                return None;
                            }
                        }
                    }
                }
            }));
        }
        stop.notified().await;
        let mut out = Vec::with_capacity(n);
        for t in tasks {
            let r = tokio::time::timeout(Duration::from_secs(30), t).await;
            out.push(r.ok().and_then(Result::ok).flatten());
        }
        out
    })
}

/// GET /health every 50 ms until `stop`, from a thread and runtime of its own (so the
/// clients' work does not delay the probe's own timing); the latency of each.
fn health_probes(
    http: &reqwest::Client,
    url: &str,
    stop: std::sync::Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<Distribution> {
    let _ = http;
    let url = format!("{url}/health");
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || -> Distribution {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a probe runtime");
        rt.block_on(async move {
            let http = reqwest::Client::new();
            let mut d = Distribution::default();
            tokio::pin!(done_rx);
            loop {
                let t = Instant::now();
                if let Ok(r) = http.get(&url).send().await {
                    if r.status() == 200 {
                        d.record_secs(t.elapsed().as_secs_f64());
                    }
                }
                tokio::select! {
                    _ = &mut done_rx => return d,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        })
    });
    tokio::spawn(async move {
        stop.notified().await;
        let _ = done_tx.send(());
        tokio::task::spawn_blocking(move || thread.join().unwrap_or_default())
            .await
            .unwrap_or_default()
    })
}

fn row(name: &str, d: &DistStats) {
    println!(
        "  {:<10} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
        name,
        d.mean * 1e3,
        d.p50 * 1e3,
        d.p90 * 1e3,
        d.p99 * 1e3,
        d.max * 1e3
    );
}

async fn metrics(http: &reqwest::Client, url: &str) -> Option<String> {
    http.get(format!("{url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// Sum of a metric's samples over engines.
fn sample(text: &str, name: &str) -> Option<f64> {
    let vals: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!vals.is_empty()).then(|| vals.iter().sum())
}

async fn one_request(http: &reqwest::Client, url: &str, body: &Value, want: u32) -> Outcome {
    let sent = Instant::now();
    let mut out = Outcome::default();
    let mut resp = match http.post(url).json(body).send().await {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(format!("connect/send: {e}"));
            return out;
        }
    };
    if resp.status() != 200 {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        out.error = Some(format!("status {status}: {text}"));
        return out;
    }
    let mut buf = String::new();
    let mut last = None;
    let mut done = false;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                out.error = Some(format!("read: {e}"));
                return out;
            }
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        // Handle every complete event; keep a partial one for the next read.
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let Some(data) = event.trim_end().strip_prefix("data: ") else {
                continue; // keep-alive comment
            };
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let v: Value = match serde_json::from_str(data) {
                Ok(v) => v,
                Err(e) => {
                    out.error = Some(format!("bad chunk {data:?}: {e}"));
                    return out;
                }
            };
            if v.get("error").is_some() {
                out.error = Some(format!("error chunk: {data}"));
                return out;
            }
            let text = v["choices"][0]["text"].as_str().unwrap_or("");
            let n = text.matches("tok").count() as u64;
            if n > 0 {
                let now = Instant::now();
                match last {
                    None => out.ttft = now - sent,
                    Some(prev) => out.gaps.push(now - prev),
                }
                last = Some(now);
                out.tokens += n;
            }
        }
    }
    out.e2e = sent.elapsed();
    if !done {
        out.error = Some("stream ended without [DONE]".into());
    } else if out.tokens != u64::from(want) {
        out.error = Some(format!("{} tokens, expected {want}", out.tokens));
    }
    out
}
