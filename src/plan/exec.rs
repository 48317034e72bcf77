//! Running grid points: a context loaded once (catalogs, trace, prices), one simulation
//! per point, and a deterministic parallel map over point indices.

use super::grid::{ConfigPoint, Grid, SweepConfig, WorkloadSpec};
use crate::deployment::{Deployment, DeploymentRequest};
use crate::engine::config::EngineOverrides;
use crate::error::{Error, Result};
use crate::hardware::{GpuSpec, HardwareCatalog};
use crate::memory::MemoryModel;
use crate::metrics::{DistStats, Slo};
use crate::model::{ModelCatalog, ModelSpec};
use crate::paths::DataPaths;
use crate::perf::LatencyModel;
use crate::perf::{select_latency_model, LatencyChoice};
use crate::setup::ReplicaSetup;
use crate::sim::RequestSource;
use crate::simulate::{run, RunOptions};
use crate::trace::synth::{ArrivalProcess, LengthModel, SynthConfig, SynthLimit, SynthTrace};
use crate::trace::{open_trace, Request, TraceOptions, TraceReader};
use crate::units::SimDuration;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a point's simulation measured.
#[derive(Clone, Debug, PartialEq)]
pub struct PointMetrics {
    /// Offered load, requests per second.
    pub offered_rps: f64,
    /// GPUs of the whole configuration (replicas × TP × PP).
    pub gpus: u32,
    /// Requests finished.
    pub completed: u64,
    /// Requests rejected.
    pub rejected: u64,
    /// Finished requests per second.
    pub throughput_rps: f64,
    /// Output tokens per second.
    pub output_tokens_per_s: f64,
    /// Requests meeting every SLO, per second.
    pub goodput_rps: f64,
    /// Fraction of all requests (finished or rejected) that met every SLO.
    pub slo_attainment: f64,
    /// TTFT distribution, s.
    pub ttft: DistStats,
    /// TPOT distribution, s.
    pub tpot: DistStats,
    /// E2E distribution, s.
    pub e2e: DistStats,
    /// Tokens in and out per second (completed requests).
    pub total_tokens_per_s: f64,
    /// Rent, USD per GPU-hour (None: unknown).
    pub price_usd_per_gpu_hour: Option<f64>,
    /// Electricity, USD per GPU-hour: None when not asked for (`--price-per-kwh`),
    /// `Some(None)` when asked for but the device's power is unknown.
    pub energy_usd_per_gpu_hour: Option<Option<f64>>,
    /// Set when the sweep's serving stack is a build for another vendor's GPUs
    /// ([`crate::stack::ServingStack::platform_note`]): the point's GPU runs a build
    /// the model does not describe.
    pub stack_note: Option<String>,
}

impl PointMetrics {
    /// USD per hour of the whole configuration.
    /// Rent plus electricity (when asked for; unknown power leaves the cost unknown).
    pub fn cost_usd_per_hour(&self) -> Option<f64> {
        let energy = match self.energy_usd_per_gpu_hour {
            None => 0.0,
            Some(e) => e?,
        };
        self.price_usd_per_gpu_hour
            .map(|p| (p + energy) * f64::from(self.gpus))
    }

    /// USD per million output tokens at the measured output rate.
    pub fn usd_per_million_output_tokens(&self) -> Option<f64> {
        crate::cost::usd_per_million_tokens(self.cost_usd_per_hour()?, self.output_tokens_per_s)
    }

    /// USD per million tokens in and out at the measured rate.
    pub fn usd_per_million_total_tokens(&self) -> Option<f64> {
        crate::cost::usd_per_million_tokens(self.cost_usd_per_hour()?, self.total_tokens_per_s)
    }
}

/// The outcome of one point.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Simulated.
    Ok(Box<PointMetrics>),
    /// Cannot run (does not fit, invalid parallelism): the reason.
    Infeasible(String),
}

/// Everything loaded once for a sweep or a plan.
pub struct SweepContext {
    /// The config as read.
    pub config: SweepConfig,
    /// The validated grid.
    pub grid: Grid,
    model: ModelSpec,
    gpus: BTreeMap<String, GpuSpec>,
    stack: Arc<crate::stack::ServingStack>,
    memory: MemoryModel,
    paths: DataPaths,
    /// Latency models by (GPU, TP, PP), built once and shared by every point that
    /// differs only in engine knobs or load (profiles are loaded from disk).
    latency_cache: Arc<LatencyCache>,
    trace: Option<(Arc<[Request]>, f64)>,
    /// Run-to-run speed factors (prefill, decode) of a replication (see
    /// [`SweepContext::replication`]).
    speed: Option<(f64, f64)>,
    /// Replaces the selected latency model (tests use a fixed-latency model).
    pub latency_override: Option<Arc<dyn LatencyModel>>,
    /// Electricity counted in every point's cost (`--price-per-kwh`, `--power-w`).
    pub energy: Option<crate::cost::EnergyPrice>,
}

/// Latency models by (GPU name, TP, PP).
type LatencyCache = std::sync::Mutex<BTreeMap<(String, u32, u32), Arc<dyn LatencyModel>>>;

impl std::fmt::Debug for SweepContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SweepContext")
            .field("grid", &self.grid)
            .finish_non_exhaustive()
    }
}

/// Parse `NAME=PRICE` entries (`h100=2.5`) into a map.
pub fn parse_price_overrides(entries: &[String]) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for e in entries {
        let bad = || {
            Error::input(
                "<command line>",
                Some("price-per-gpu-hour"),
                format!("`{e}`: expected NAME=USD, e.g. h100=2.5"),
            )
        };
        let (k, v) = e.split_once('=').ok_or_else(bad)?;
        let p: f64 = v.trim().parse().map_err(|_| bad())?;
        if !(p.is_finite() && p >= 0.0) {
            return Err(bad());
        }
        out.insert(k.trim().to_owned(), p);
    }
    Ok(out)
}

impl SweepContext {
    /// Load catalogs, the trace and prices. `file` names the config in errors;
    /// `prices` (hardware name or alias → USD per GPU-hour) override the file's
    /// `[prices]` table, which overrides the catalog's defaults.
    pub fn new(
        config: SweepConfig,
        file: &Path,
        paths: &DataPaths,
        prices: &BTreeMap<String, f64>,
    ) -> Result<Self> {
        let grid = config.grid(file, &paths.traces)?;
        let models = ModelCatalog::for_paths(paths)?;
        let catalog = HardwareCatalog::load(&paths.hardware_dir())?;
        let model = models.resolve(
            config
                .model
                .as_deref()
                .unwrap_or(crate::deployment::DEFAULT_MODEL),
        )?;
        let mut gpus = BTreeMap::new();
        for h in &grid.hardware {
            let g = catalog
                .resolve(h)
                .map_err(|e| Error::input(file, Some("grid.hardware"), e.to_string()))?;
            gpus.insert(h.clone(), g);
        }
        for (source, table) in [("prices", &config.prices), ("price-per-gpu-hour", prices)] {
            for (name, &p) in table {
                if !(p.is_finite() && p >= 0.0) {
                    return Err(Error::input(
                        file,
                        Some(source),
                        format!("{name}: price must be ≥ 0"),
                    ));
                }
                let canonical = catalog
                    .resolve(name)
                    .map_err(|e| Error::input(file, Some(source), e.to_string()))?
                    .name;
                for g in gpus.values_mut() {
                    if g.name == canonical {
                        g.price_usd_per_gpu_hour = Some(p);
                    }
                }
            }
        }
        let trace = match &grid.workload {
            WorkloadSpec::Trace {
                path, max_requests, ..
            } => {
                let opts = TraceOptions {
                    max_requests: *max_requests,
                    seed: config.seed.unwrap_or(0),
                    ..TraceOptions::default()
                };
                let reqs: Vec<Request> = open_trace(path, &opts)?.collect::<Result<_>>()?;
                if reqs.is_empty() {
                    return Err(Error::input(path, None, "the trace has no requests"));
                }
                let span =
                    reqs[reqs.len() - 1].arrival.as_secs_f64() - reqs[0].arrival.as_secs_f64();
                let base_rps = if span > 0.0 {
                    reqs.len() as f64 / span
                } else {
                    f64::INFINITY
                };
                Some((Arc::from(reqs), base_rps))
            }
            WorkloadSpec::Synthetic { .. } => None,
        };
        let stack_name = config.serving_stack.clone().or_else(|| {
            config
                .scheduler
                .map(|k| crate::stack::ServingStack::default_name_for(k).to_owned())
        });
        Ok(SweepContext {
            stack: Arc::new(crate::stack::ServingStack::load(
                paths,
                stack_name.as_deref(),
            )?),
            memory: MemoryModel::load(&paths.perf_model)?,
            paths: paths.clone(),
            latency_cache: Arc::new(std::sync::Mutex::new(BTreeMap::new())),
            speed: None,
            config,
            grid,
            model,
            gpus,
            trace,
            latency_override: None,
            energy: None,
        })
    }

    /// The SLO of the config file.
    pub fn slo(&self) -> Slo {
        Slo {
            ttft_s: self.config.slo_ttft_s,
            tpot_s: self.config.slo_tpot_s,
        }
    }

    /// The device of a configuration (with its effective price).
    pub fn gpu(&self, hardware: &str) -> Option<&GpuSpec> {
        self.gpus.get(hardware)
    }

    /// The offered rate (requests per second) of `load`.
    pub fn offered_rps(&self, load: f64) -> f64 {
        match &self.trace {
            Some((_, base)) => base * load,
            None => load,
        }
    }

    /// Replication `r` of this context (see [`crate::replicate`]): a recorded trace
    /// replaced by its block bootstrap in blocks of `block_s` seconds, a generator
    /// reseeded, and run-to-run speed factors drawn from `noise`, all from the sweep's
    /// seed plus `r`. Offered rates stay those of the trace as recorded.
    pub fn replication(&self, r: u32, block_s: f64, noise: &crate::replicate::RunNoise) -> Self {
        use rand::SeedableRng;
        let seed = self.config.seed.unwrap_or(0).wrapping_add(u64::from(r));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let trace = self.trace.as_ref().map(|(reqs, base)| {
            let boot = crate::replicate::block_bootstrap(reqs, block_s, &mut rng);
            (Arc::from(boot), *base)
        });
        let mut config = self.config.clone();
        config.seed = Some(seed);
        SweepContext {
            config,
            grid: self.grid.clone(),
            model: self.model.clone(),
            gpus: self.gpus.clone(),
            stack: self.stack.clone(),
            memory: self.memory.clone(),
            paths: self.paths.clone(),
            latency_cache: self.latency_cache.clone(),
            trace,
            speed: Some(noise.draw(&mut rng)),
            latency_override: self.latency_override.clone(),
            energy: self.energy,
        }
    }

    /// Where the data files are.
    pub fn paths(&self) -> &DataPaths {
        &self.paths
    }

    /// The requests of `load`.
    fn requests(&self, load: f64) -> Result<TraceReader> {
        match (&self.grid.workload, &self.trace) {
            (WorkloadSpec::Trace { .. }, Some((reqs, _))) => {
                let reqs = reqs.clone();
                let opts = TraceOptions {
                    rate_scale: load,
                    ..TraceOptions::default()
                };
                TraceReader::from_requests((0..reqs.len()).map(move |i| Ok(reqs[i].clone())), &opts)
            }
            (
                WorkloadSpec::Synthetic {
                    arrival,
                    cv,
                    input,
                    output,
                    duration_s,
                    num_requests,
                    ..
                },
                _,
            ) => {
                let arrival = match arrival.as_str() {
                    "constant" => ArrivalProcess::Constant { rate_rps: load },
                    "gamma" => ArrivalProcess::Gamma {
                        rate_rps: load,
                        cv: *cv,
                    },
                    _ => ArrivalProcess::Poisson { rate_rps: load },
                };
                let limit = match (num_requests, duration_s) {
                    (Some(n), _) => SynthLimit::Requests(*n),
                    (None, d) => {
                        SynthLimit::Duration(SimDuration::from_secs_f64(d.unwrap_or(60.0)))
                    }
                };
                let synth = SynthTrace::new(SynthConfig {
                    arrival,
                    lengths: LengthModel::Independent {
                        input: input.clone(),
                        output: output.clone(),
                    },
                    limit,
                    seed: self.config.seed.unwrap_or(0),
                })?;
                TraceReader::from_requests(synth.map(Ok), &TraceOptions::default())
            }
            _ => Err(Error::Config("trace not loaded".into())),
        }
    }

    /// Simulate configuration `c` at `load` with `replicas` replicas (overriding the
    /// configuration's count). Infeasible configurations are an [`Outcome`], not an
    /// error; an error is a failure to read input.
    pub fn evaluate(&self, c: &ConfigPoint, replicas: u32, load: f64) -> Result<Outcome> {
        let Some(gpu) = self.gpus.get(&c.hardware) else {
            return Ok(Outcome::Infeasible(format!(
                "unknown hardware {}",
                c.hardware
            )));
        };
        let req = DeploymentRequest {
            tensor_parallel_size: Some(c.tp),
            pipeline_parallel_size: Some(c.pp),
            dtype: self.config.dtype.clone(),
            quantization: self.config.quantization.clone(),
            kv_cache_dtype: self.config.kv_cache_dtype.clone(),
            max_model_len: self.config.max_model_len,
            gpu_memory_utilization: self.config.gpu_memory_utilization,
            enforce_eager: self.config.enforce_eager,
            disable_custom_all_reduce: self.config.disable_custom_all_reduce,
            ..DeploymentRequest::default()
        };
        let overrides = EngineOverrides {
            scheduler: self.config.scheduler,
            max_num_seqs: c.max_num_seqs,
            max_num_batched_tokens: c.max_num_batched_tokens,
            enable_chunked_prefill: c.enable_chunked_prefill,
            ..EngineOverrides::default()
        };
        let setup =
            Deployment::from_parts(self.model.clone(), gpu.clone(), self.stack.clone(), &req)
                .and_then(|d| {
                    let latency: Arc<dyn LatencyModel> = match &self.latency_override {
                        Some(l) => l.clone(),
                        None => {
                            // The same model `simulate` picks (measured, shape-based or roofline).
                            let key = (d.gpu().name.clone(), d.tp, d.pp);
                            let cached = self
                                .latency_cache
                                .lock()
                                .expect("cache lock")
                                .get(&key)
                                .cloned();
                            match cached {
                                Some(l) => l,
                                None => {
                                    // One serving stack (and one execution) per sweep,
                                    // so it need not be in the key.
                                    let l =
                                        select_latency_model(&d, &self.paths, LatencyChoice::Auto)?;
                                    self.latency_cache
                                        .lock()
                                        .expect("cache lock")
                                        .insert(key, l.clone());
                                    l
                                }
                            }
                        }
                    };
                    let latency: Arc<dyn LatencyModel> = match self.speed {
                        Some((prefill, decode)) => Arc::new(crate::replicate::Scaled {
                            inner: latency,
                            prefill,
                            decode,
                        }),
                        None => latency,
                    };
                    ReplicaSetup::with_latency(d, &overrides, &self.memory, latency)
                });
        let setup = match setup {
            Ok(s) => s,
            Err(e) => return Ok(Outcome::Infeasible(e.to_string())),
        };
        let n = replicas * setup.deployment.dp;
        let gpus_per_replica = setup.deployment.num_gpus();
        let cluster = crate::cluster::ClusterSpec::uniform(
            setup,
            replicas,
            self.config.route.unwrap_or_default(),
        );
        let reps = match cluster.nominal_replicas() {
            Ok(r) => r,
            Err(e) => return Ok(Outcome::Infeasible(e.to_string())),
        };
        let reader = self.requests(load)?;
        let opts = RunOptions {
            slo: self.slo(),
            api_server: Some(self.stack.api_server.clone()),
            ..RunOptions::default()
        };
        let s = run(
            reps,
            cluster.router(),
            RequestSource::Open(Box::new(reader)),
            &opts,
        )?
        .summary;
        let all = s.completed + s.rejected;
        Ok(Outcome::Ok(Box::new(PointMetrics {
            offered_rps: self.offered_rps(load),
            gpus: n * gpus_per_replica,
            completed: s.completed,
            rejected: s.rejected,
            throughput_rps: s.request_throughput_per_s,
            output_tokens_per_s: s.output_tokens_per_s,
            total_tokens_per_s: s.total_tokens_per_s,
            goodput_rps: s.goodput_requests_per_s,
            slo_attainment: if all > 0 {
                s.slo_attainment * s.completed as f64 / all as f64
            } else {
                0.0
            },
            ttft: s.ttft_s,
            tpot: s.tpot_s,
            e2e: s.e2e_s,
            price_usd_per_gpu_hour: gpu.price_usd_per_gpu_hour,
            energy_usd_per_gpu_hour: self.energy.map(|e| e.usd_per_gpu_hour(gpu.tdp_w)),
            stack_note: self.stack.platform_note(&gpu.vendor),
        })))
    }
}

/// The number of threads to use when none is given: the available cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Compute `f(i)` for every `i` in `items` on `jobs` threads (a shared atomic work
/// index hands out items), returning the results in the order of `items` whatever the
/// thread count. `tick` is called after each item (progress).
pub fn par_map<T, F>(items: &[usize], jobs: usize, f: F, tick: &(dyn Fn() + Sync)) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<T>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let jobs = jobs.clamp(1, items.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= items.len() {
                    break;
                }
                let out = f(items[k]);
                slots.lock().unwrap_or_else(|p| p.into_inner())[k] = Some(out);
                tick();
            });
        }
    });
    slots
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|x| x.expect("every slot is filled once the scope ends"))
        .collect()
}
