//! Run a simulation end to end: replicas and a request source in; summary and output
//! files out.
//!
//! ```
//! use servesim::engine::{EngineConfig, Replica, SchedulerKind};
//! use servesim::perf::fixed::FixedLatency;
//! use servesim::sim::{RequestSource, Router};
//! use servesim::simulate::{run, RunOptions};
//! use servesim::trace::Request;
//! use servesim::units::SimTime;
//! use std::sync::Arc;
//!
//! let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1024, 4096);
//! let latency = Arc::new(FixedLatency::from_micros(1000, 10, 100));
//! let replica = Replica::new(0, cfg, latency).unwrap();
//! let requests = (0..3).map(|i| Ok(Request {
//!     id: i,
//!     arrival: SimTime::from_secs_f64(i as f64 * 0.01),
//!     input_tokens: 128,
//!     output_tokens: 16,
//!     session_id: None,
//!     prefix_hash_ids: vec![],
//!     hash_block_tokens: 16,
//! }));
//! let result = run(vec![replica], Router::default(), RequestSource::Open(Box::new(requests)), &RunOptions::default()).unwrap();
//! assert_eq!(result.summary.completed, 3);
//! assert!(result.summary.ttft_s.mean > 0.0);
//! ```

use crate::engine::{Replica, RequestRecord, RequestSink, TokenEvent};
use crate::error::{Error, Result};
use crate::metrics::slo_windows::SloWindows;
use crate::metrics::{
    Cdfs, EngineSummary, Recorder, Slo, Summary, ThroughputBin, TimeSeries, TimeSeriesRow,
};
use crate::report;
use crate::setup::ReplicaSetup;
use crate::sim::{NoObserver, RequestSource, RoutePolicy, Router, RunStats, Simulation};
use crate::trace::Request;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Finished requests per progress-bar update.
const PROGRESS_BATCH: u64 = 1024;

/// Bytes of `requests.csv` rows gathered before they are handed to the file in one write
/// (rows are formatted straight into this buffer: no per-row copy, few system calls).
const ROW_CHUNK_BYTES: usize = 1 << 18;

/// Options of a run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// SLOs for goodput.
    pub slo: Slo,
    /// SLO attainment per window of arrivals: (window length, s; attainment a window
    /// must reach), reported in the summary and as a `timeseries.csv` column.
    pub slo_window: Option<(f64, f64)>,
    /// What the fleet costs by the hour (None: no cost in the summary).
    pub fleet_price: Option<crate::cost::FleetPrice>,
    /// Folder for `requests.csv`, `timeseries.csv` and `summary.json` (None: no files).
    pub output_dir: Option<PathBuf>,
    /// Show a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// The link KV crosses from prefill to decode replicas (disaggregated serving).
    pub kv_transfer_link: Option<crate::hardware::LinkSpec>,
    /// The API server in front of the replicas (latencies as clients see them); none:
    /// clients talk to the engine directly.
    pub api_server: Option<crate::stack::ApiServer>,
    /// What clients do when the server is slow (timeouts, retries, abandonment; see
    /// [`crate::sim::client`]); none: they wait for every request.
    pub clients: Option<crate::sim::ClientPolicy>,
    /// When replicas fail and how long they take to restart (see
    /// [`crate::sim::failures`]); none: they never fail.
    pub failures: Option<crate::sim::failures::FailurePlan>,
    /// Scale the replicas with the load (see [`crate::sim::autoscale`]); the run's
    /// replicas are the policy's maximum. Its cost is in the summary's `autoscale`
    /// (the fleet price's `cost` would bill every replica for the whole run, and is
    /// left out).
    pub autoscale: Option<crate::sim::autoscale::AutoscalePolicy>,
    /// Keep every request's record and every second's time-series row in the result
    /// ([`RunResult::requests`], [`RunResult::timeseries`]), for callers that want
    /// them in memory (the Python package) rather than as files.
    pub keep_records: bool,
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The run summary (also written to `summary.json`).
    pub summary: Summary,
    /// The distributions as CDF points (also written to `distributions.csv`).
    pub cdfs: Cdfs,
    /// Requests finished and output tokens per second (also `throughput.csv`).
    pub throughput: Vec<ThroughputBin>,
    /// Kernel statistics.
    pub stats: RunStats,
    /// Every request's record, in the order they ended (`requests.csv`'s rows), when
    /// [`RunOptions::keep_records`]; else empty.
    pub requests: Vec<RequestRecord>,
    /// The time series (`timeseries.csv`'s rows without the optional columns), when
    /// [`RunOptions::keep_records`]; else empty.
    pub timeseries: Vec<TimeSeriesRow>,
}

/// The files a run writes into its folder (`config.json` and the report by the CLI);
/// an older run's are removed first, so a failed run never leaves some of them beside
/// another run's.
pub const RUN_FILES: [&str; 7] = [
    "requests.csv",
    "timeseries.csv",
    "summary.json",
    "config.json",
    "distributions.csv",
    "throughput.csv",
    "report.html",
];

/// Suffix of the per-request and per-second files while the run writes them; they take
/// their names only when the run succeeds.
const PARTIAL: &str = ".partial";

/// Remove an older run's outputs from `dir` (only the files a run writes).
fn clear_old_outputs(dir: &std::path::Path) -> Result<()> {
    let charts = dir.join("charts");
    let paths = RUN_FILES
        .iter()
        .map(|f| dir.join(f))
        .chain(report::charts::FILES.iter().map(|f| charts.join(f)));
    for path in paths {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(&path, e));
            }
            _ => {}
        }
    }
    // The charts folder goes too when nothing else is in it.
    let _ = std::fs::remove_dir(&charts);
    Ok(())
}

fn create(dir: &std::path::Path, name: &str, header: &str) -> Result<BufWriter<File>> {
    let path = dir.join(format!("{name}{PARTIAL}"));
    let mut w = BufWriter::new(File::create(&path).map_err(|e| Error::io(&path, e))?);
    writeln!(w, "{header}").map_err(|e| Error::io(&path, e))?;
    Ok(w)
}

/// Simulate `source` on `replicas` behind `router`. With an output folder, an older
/// run's files there are removed first, and a failed run leaves none of its own.
pub fn run(
    replicas: Vec<Replica>,
    router: Router,
    source: RequestSource<'_>,
    opts: &RunOptions,
) -> Result<RunResult> {
    if let Some(dir) = &opts.output_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        clear_old_outputs(dir)?;
    }
    let result = run_writing(replicas, router, source, opts);
    if let (Err(_), Some(dir)) = (&result, &opts.output_dir) {
        for name in ["requests.csv", "timeseries.csv"] {
            let _ = std::fs::remove_file(dir.join(format!("{name}{PARTIAL}")));
        }
        let _ = clear_old_outputs(dir);
    }
    result
}

/// [`run`] once the folder is ready.
fn run_writing(
    replicas: Vec<Replica>,
    router: Router,
    source: RequestSource<'_>,
    opts: &RunOptions,
) -> Result<RunResult> {
    let mut files = match &opts.output_dir {
        Some(dir) => Some((
            create(dir, "requests.csv", report::REQUESTS_HEADER)?,
            create(dir, "timeseries.csv", report::TIMESERIES_HEADER)?,
        )),
        None => None,
    };
    // No bar at all when hidden: even a hidden bar reads the clock on every `inc`.
    let progress = opts.progress.then(|| {
        let pb =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos} requests done, {per_sec} [{elapsed_precise}]",
            )
            .expect("valid template"),
        );
        pb
    });
    // Finished requests not yet added to the bar (it is advanced in batches).
    let mut unreported = 0u64;

    let mut io_error: Option<std::io::Error> = None;
    let (mut req_file, mut ts_file) = match files.as_mut() {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    };
    let mut rows: Vec<u8> = Vec::with_capacity(ROW_CHUNK_BYTES + 512);
    let mut kept_requests = Vec::new();
    let mut kept_timeseries = Vec::new();
    let keep = opts.keep_records;
    let mut write_request = |r: &RequestRecord| {
        if keep {
            kept_requests.push(r.clone());
        }
        if let Some(pb) = &progress {
            unreported += 1;
            if unreported == PROGRESS_BATCH {
                pb.inc(unreported);
                unreported = 0;
            }
        }
        if let Some(w) = req_file.as_mut() {
            report::push_request_row(&mut rows, r);
            if rows.len() >= ROW_CHUNK_BYTES {
                if let Err(e) = w.write_all(&rows) {
                    io_error.get_or_insert(e);
                }
                rows.clear();
            }
        }
    };
    let mut ts_error: Option<std::io::Error> = None;
    let mut write_ts = |row: &TimeSeriesRow| {
        if keep {
            kept_timeseries.push(*row);
        }
        if let Some(w) = ts_file.as_mut() {
            if let Err(e) = report::write_timeseries_row(*w, row) {
                ts_error.get_or_insert(e);
            }
        }
    };
    let mut recorder = Recorder::new(opts.slo).with_writer(&mut write_request);
    if let Some((window_s, target)) = opts.slo_window {
        recorder = recorder.with_slo_windows(SloWindows::new(window_s, target)?);
    }
    if opts.clients.is_some() {
        recorder = recorder.with_clients();
    }
    let mut timeseries = TimeSeries::new(Some(&mut write_ts));
    let mut sim = Simulation::new(replicas, router)?;
    if let Some(link) = &opts.kv_transfer_link {
        sim = sim.with_kv_transfer_link(link.clone());
    }
    if let Some(api) = &opts.api_server {
        sim = sim.with_api_server(api);
    }
    if let Some(policy) = opts.clients {
        sim = sim.with_clients(policy.checked()?);
    }
    if let Some(plan) = &opts.failures {
        sim = sim.with_failures(plan.clone())?;
    }
    if let Some(policy) = opts.autoscale {
        sim = sim.with_autoscaler(policy)?;
    }
    let stats = sim.run(source, &mut recorder, &mut timeseries)?;
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }

    let mut summary = recorder.summary();
    if opts.failures.is_some() {
        summary.failures = Some(crate::metrics::FailureSummary {
            outages: stats.outages,
            replica_down_s: stats.replica_down_s,
            failed_requests: summary.failures.map_or(0, |f| f.failed_requests),
        });
    }
    summary.engine = engine_summary(sim.replicas(), &timeseries);
    let gpus_per_replica =
        opts.fleet_price.as_ref().map_or(0, |f| f.gpus) / (sim.replicas().len() as u32).max(1);
    summary.autoscale = sim.autoscale_summary(
        gpus_per_replica.max(1),
        opts.fleet_price
            .as_ref()
            .filter(|f| f.gpus > 0)
            .map(|f| (f.rent_usd_per_hour + f.energy.map_or(0.0, |e| e.0)) / f64::from(f.gpus)),
    );
    let timeline = sim.autoscale_timeline().map(<[_]>::to_vec);
    summary.cost = opts
        .fleet_price
        .as_ref()
        .filter(|_| opts.autoscale.is_none())
        .map(|f| {
            f.run_cost(
                summary.duration_s,
                summary.output_tokens,
                summary.input_tokens + summary.output_tokens,
            )
        });
    let cdfs = recorder.cdfs();
    let throughput = recorder.throughput().to_vec();
    let windows = recorder.slo_windows().cloned();
    drop(recorder);
    drop(timeseries);
    if let Some(e) = io_error.or(ts_error) {
        return Err(Error::io(opts.output_dir.clone().unwrap_or_default(), e));
    }
    if let (Some(dir), Some((mut a, mut b))) = (&opts.output_dir, files) {
        a.write_all(&rows)
            .and_then(|()| a.flush())
            .map_err(|e| Error::io(dir.join("requests.csv"), e))?;
        b.flush()
            .map_err(|e| Error::io(dir.join("timeseries.csv"), e))?;
        let path = dir.join(format!("timeseries.csv{PARTIAL}"));
        if let Some(w) = &windows {
            report::add_timeseries_column(&path, report::SLO_WINDOW_COLUMN, |t| {
                w.attainment_at(t)
                    .map_or(String::new(), |a| report::fixed(a, 4))
            })?;
        }
        if let Some(tl) = &timeline {
            report::add_timeseries_column(&path, "replicas", |t| {
                crate::sim::autoscale::holding_at(tl, crate::units::SimTime::from_secs_f64(t))
                    .to_string()
            })?;
        }
        for name in ["requests.csv", "timeseries.csv"] {
            let from = dir.join(format!("{name}{PARTIAL}"));
            std::fs::rename(&from, dir.join(name)).map_err(|e| Error::io(&from, e))?;
        }
        report::write_json(&dir.join("summary.json"), &summary)?;
        report::write_cdfs(&dir.join("distributions.csv"), &cdfs)?;
        report::write_throughput(&dir.join("throughput.csv"), &throughput)?;
    }
    Ok(RunResult {
        summary,
        cdfs,
        throughput,
        stats,
        requests: kept_requests,
        timeseries: kept_timeseries,
    })
}

fn engine_summary(replicas: &[Replica], ts: &TimeSeries<'_>) -> EngineSummary {
    let mut e = EngineSummary::default();
    let (mut seqs, mut tokens) = (0u64, 0u64);
    for r in replicas {
        let c = r.counters();
        e.iterations += c.iterations;
        seqs += c.batch_seqs_sum;
        tokens += c.batch_tokens_sum;
        e.batch_size_max = e.batch_size_max.max(c.batch_seqs_max);
    }
    if e.iterations > 0 {
        e.batch_size_mean = seqs as f64 / e.iterations as f64;
        e.batch_tokens_mean = tokens as f64 / e.iterations as f64;
    }
    e.kv_usage_mean = ts.kv_usage_mean();
    e.kv_usage_max = ts.kv_usage_max();
    e.busy_fraction = ts.busy_fraction();
    e
}

/// Keeps every record and every inter-token gap of a run.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    /// Ended requests, in end order.
    pub(crate) records: Vec<RequestRecord>,
    /// Gaps between consecutive tokens of a request, s (tokens streamed together count
    /// as zero gaps, as in the metrics recorder).
    pub(crate) itls_s: Vec<f64>,
    /// Whether to keep the gaps.
    pub(crate) keep_itls: bool,
    /// Ids from this one on are not measured: their gaps are not kept.
    pub(crate) load_only_from_id: Option<u64>,
}

impl RequestSink for Collector {
    fn on_tokens(&mut self, e: &TokenEvent) {
        if !self.keep_itls || self.load_only_from_id.is_some_and(|f| e.request_id >= f) {
            return;
        }
        if !e.first {
            self.itls_s.push(e.gap.as_secs_f64());
        }
        self.itls_s
            .extend(std::iter::repeat_n(0.0, e.count.saturating_sub(1) as usize));
    }
    fn on_request_end(&mut self, record: RequestRecord) {
        self.records.push(record);
    }
    // The gaps are kept in the order requests produce them (their mean is a float sum).
    fn per_request_tokens(&self) -> bool {
        self.keep_itls
    }
    fn on_decode_tokens(
        &mut self,
        _replica: u32,
        _time: crate::units::SimTime,
        _gap: crate::units::SimDuration,
        _requests: u32,
    ) {
    }
}

/// How [`simulate_requests`] runs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReplayOptions {
    /// Cap on requests in flight (arrival times are then ignored, unless
    /// `hold_until_arrival`).
    pub closed_loop: Option<u32>,
    /// With `closed_loop`, each request also waits for its own arrival time: a capped
    /// open loop ([`RequestSource::CappedOpen`]).
    pub hold_until_arrival: bool,
    /// Keep every inter-token gap.
    pub keep_itls: bool,
    /// Requests with ids from this one on are replayed for their load only: their gaps
    /// are not kept (a sweep's earlier runs).
    pub load_only_from_id: Option<u64>,
    /// Bound on the run (see [`Simulation::with_max_iterations`]).
    pub max_iterations: Option<u64>,
    /// Put the serving stack's API server in front (latencies as clients see them).
    pub api_server: bool,
    /// Clients give up after this long (see [`Simulation::with_client_timeout`]).
    pub client_timeout: Option<crate::units::SimDuration>,
}

/// Run `requests` on `n` replicas of `setup` as `opts` says.
pub(crate) fn simulate_requests(
    setup: &ReplicaSetup,
    n: u32,
    requests: Vec<Request>,
    opts: ReplayOptions,
) -> Result<Collector> {
    let ReplayOptions {
        closed_loop,
        hold_until_arrival,
        keep_itls,
        load_only_from_id,
        max_iterations,
        api_server,
        client_timeout,
    } = opts;
    let policy = if n > 1 {
        RoutePolicy::LeastOutstanding
    } else {
        RoutePolicy::RoundRobin
    };
    let mut sim = Simulation::new(setup.replicas(n)?, Router::new(policy))?;
    if let Some(max) = max_iterations {
        sim = sim.with_max_iterations(max);
    }
    if api_server {
        sim = sim.with_api_server(&setup.deployment.stack.api_server);
    }
    if let Some(t) = client_timeout {
        sim = sim.with_client_timeout(t);
    }
    let it = Box::new(requests.into_iter().map(Ok));
    let source = match closed_loop {
        Some(c) if hold_until_arrival => RequestSource::CappedOpen {
            requests: it,
            concurrency: c,
        },
        Some(c) => RequestSource::ClosedLoop {
            requests: it,
            concurrency: c,
        },
        None => RequestSource::Open(it),
    };
    let mut sink = Collector {
        keep_itls,
        load_only_from_id,
        ..Collector::default()
    };
    sim.run(source, &mut sink, &mut NoObserver)?;
    Ok(sink)
}
