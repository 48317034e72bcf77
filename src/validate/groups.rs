//! Validation of grouped tables: each group of a table gets its own deployment (the
//! group's mapping fills what the flags leave open) and its own [`Validation`]; a group
//! that cannot be simulated is an `Err` in its slot, not the end of the run. Groups of
//! the row-replayed tables (offline throughput, serving summaries) run on all available
//! cores; the results do not depend on how many.
//!
//! [`GroupRun`] is what a row-by-row replay of one group needs besides its rows, and
//! builds the group's [`Validation`] from the compared rows ([`GroupRun::finish`]).

use super::report::{ComparisonRows, ReplayMode, Validation, ValidationKind};
use super::serving_summary::{SummaryGroup, SummaryTable};
use super::throughput_table::{CapacityPolicy, EngineFlow, ThroughputGroup, ThroughputTable};
use super::{
    batch, closed_loop, offline, params_note, sample_status, setup_for, Settings, StaticTable,
    TableGroup,
};
use crate::deployment::{Deployment, DeploymentRequest};
use crate::engine::config::EngineOverrides;
use crate::error::{Error, Result};
use crate::paths::DataPaths;
use crate::setup::ReplicaSetup;
use crate::stack::KvCacheBudget;
use std::path::Path;

/// What a row-by-row replay of one group needs besides the rows.
#[derive(Clone, Debug)]
pub struct GroupRun<'a> {
    /// Name of the validation (the group's slug).
    pub name: &'a str,
    /// The table file.
    pub source: &'a Path,
    /// The replicas' setup (the group's deployment).
    pub setup: &'a ReplicaSetup,
    /// Replicas simulated (attention-DP ranks).
    pub replicas: u32,
    /// Notes from resolving the deployment.
    pub notes: Vec<String>,
}

impl GroupRun<'_> {
    /// The group's validation from its compared `rows`.
    pub fn finish(
        &self,
        kind: ValidationKind,
        replay: Option<ReplayMode>,
        notes: Vec<String>,
        rows: ComparisonRows,
    ) -> Validation {
        Validation {
            name: self.name.to_owned(),
            kind,
            source: self.source.to_owned(),
            deployment: self.setup.deployment.summary(),
            engine: Some(self.setup.engine.clone()),
            num_replicas: self.replicas,
            latency_model: self.setup.latency.describe(),
            replay,
            metrics: rows.reports(),
            throughput: None,
            notes,
            sample: None,
            rows,
        }
    }
}

/// `one` over every group on all cores, in group order; `done` is called with each
/// group and its wall time as it finishes (progress; never part of the results).
fn par_groups<'g, G: Sync, T: Send>(
    groups: Vec<&'g G>,
    one: impl Fn(&G) -> T + Sync,
    done: &(dyn Fn(&G, std::time::Duration) + Sync),
) -> Vec<(&'g G, T)> {
    let items: Vec<usize> = (0..groups.len()).collect();
    let results = crate::plan::exec::par_map(
        &items,
        crate::plan::exec::default_jobs(),
        |i| {
            let start = std::time::Instant::now();
            let out = one(groups[i]);
            done(groups[i], start.elapsed());
            out
        },
        &|| {},
    );
    groups.into_iter().zip(results).collect()
}

/// The deployment request of a table group: `base` (flags) wins; the group's mapped
/// model, device, TP ([`TableGroup::tensor_parallel_size`]: the table's device count
/// times the catalog devices in each) and `max_model_len` fill the gaps, with `float16`
/// as the measured dtype, the engine's offline defaults ([`DeploymentRequest::offline`]),
/// the setting the table varies for the group (weight and KV formats, pipeline stages,
/// expert parallelism: [`super::table_settings::GroupSetting`]; its block size goes to
/// the engine in [`validate_table`]) and the device's serving stack in the table
/// ([`super::mapping::HardwareMapping::serving_stack`], else [`TABLE_STACK`]).
pub fn group_request(group: &TableGroup, base: &DeploymentRequest) -> DeploymentRequest {
    let mut r = base.clone();
    r.model.get_or_insert_with(|| group.model.model.clone());
    r.hardware
        .get_or_insert_with(|| group.hardware.hardware.clone());
    r.tensor_parallel_size
        .get_or_insert(group.tensor_parallel_size());
    if r.max_model_len.is_none() {
        r.max_model_len = group.model.max_model_len;
    }
    r.dtype.get_or_insert_with(|| "float16".into());
    // The engine setting the table varies for this group ([`super::table_settings`]).
    let setting = &group.key.setting;
    if r.quantization.is_none() {
        r.quantization.clone_from(&setting.quantization);
    }
    if r.kv_cache_dtype.is_none() {
        r.kv_cache_dtype.clone_from(&setting.kv_cache_dtype);
    }
    if r.pipeline_parallel_size.is_none() {
        r.pipeline_parallel_size = setting.pipeline_parallel_size;
    }
    r.enable_expert_parallel |= setting.expert_parallel;
    // Static batches run through the engine as a library (vLLM's benchmark_latency).
    r.offline = true;
    if r.serving_stack.is_none() {
        r.serving_stack = Some(device_stack(group).into());
    }
    r
}

/// The stack of the device's build in the table
/// ([`super::mapping::HardwareMapping::serving_stack`]), else [`TABLE_STACK`].
fn device_stack(group: &TableGroup) -> &str {
    group
        .hardware
        .serving_stack
        .as_deref()
        .unwrap_or(TABLE_STACK)
}

/// The serving stack a group of `table` is replayed on when no flag names one: the
/// stack of the table's engine where it is not vLLM ([`framework_stack`]), else the
/// device's ([`group_request`]'s fallback).
pub fn group_stack(table: &StaticTable, group: &TableGroup) -> Result<String> {
    Ok(framework_stack(table)?
        .unwrap_or_else(|| device_stack(group))
        .to_owned())
}

/// The deployment request of a group of a static table of `kind` ([`group_request`]),
/// with the execution its engine had at the table's date where that is known: the
/// Splitwise table ran eagerly and through NCCL ([`SPLITWISE_ENGINE_NOTE`]), and so did
/// the builds of devices that capture no graphs
/// ([`super::mapping::HardwareMapping::eager_build`]). `base` (flags) wins.
pub fn table_request(
    kind: super::TableKind,
    group: &TableGroup,
    base: &DeploymentRequest,
) -> DeploymentRequest {
    let mut r = group_request(group, base);
    if kind == super::TableKind::Splitwise || group.hardware.eager_build {
        r.enforce_eager.get_or_insert(true);
        r.disable_custom_all_reduce.get_or_insert(true);
    }
    r
}

/// How the Splitwise table is replayed, and why: its engine is not named, but the
/// paper's characterization predates CUDA graphs and the custom all-reduce in vLLM, and
/// an engine of that date run from PyTorch launched its kernels one by one.
pub const SPLITWISE_ENGINE_NOTE: &str = "Splitwise's characterization (arXiv 2311.18677 v1, 2023-11-30) predates vLLM's CUDA graphs (vllm-project/vllm#1926, v0.2.6, 2023-12-17) and custom all-reduce (#2192, v0.3.0, 2024-01); the engine is not named, so it is replayed as vLLM ran then: every iteration eager (--enforce-eager) and every all-reduce through NCCL (--disable-custom-all-reduce); either flag set to false overrides";

/// The engine settings a static table's runs were made with: `base` (flags) wins. The
/// Argonne tables come from vLLM's `benchmark_latency.py` (adapted in the
/// LLM-Inference-Bench repository), whose `--enable-chunked-prefill` is a `store_true`
/// flag: the script passes chunked prefill off explicitly, so vLLM's own default for
/// long-context models (chunked prefill above 32,768 tokens, `[scheduler.long_context]`
/// of the V0 stacks) never applied to those runs.
pub fn table_overrides(kind: super::TableKind, base: &EngineOverrides) -> EngineOverrides {
    let mut ov = *base;
    if matches!(
        kind,
        super::TableKind::Argonne | super::TableKind::ArgonneTtft
    ) {
        ov.enable_chunked_prefill.get_or_insert(false);
    }
    ov
}

/// The serving stack static-batch tables are replayed on unless a flag, the table's
/// engine ([`framework_stack`]) or the device's build in the table
/// ([`super::mapping::HardwareMapping::serving_stack`]: Argonne's A100 rows ran vLLM
/// ~0.6.1, its GH200 rows 0.5.3, its AMD rows the ROCm build) names another: vLLM
/// 0.5's V0 loop, for the rows of V0-era engines without a stack of their own
/// (Splitwise's engine of late 2023, the Mixtral pull requests' 0.3–0.4, the Intel rows'
/// XPU build of 0.5.2).
pub const TABLE_STACK: &str = "vllm-0.5";

/// Validate each group of `table` that `keep` accepts, each with its own deployment
/// (`settings` first, the group's mapping fills the gaps), returning `(group slug,
/// outcome)` in group order: a group that cannot be simulated (the model does not fit,
/// say) is an `Err` there, not the end of the run. The default serving stack is
/// [`TABLE_STACK`]: the tables were measured with vLLM ≤ 0.6 (see its docs).
pub fn validate_table(
    table: &StaticTable,
    settings: &Settings,
    paths: &DataPaths,
    mut keep: impl FnMut(&TableGroup) -> bool,
) -> Result<Vec<(String, Result<Validation>)>> {
    let ov = table_overrides(table.kind, &settings.engine);
    let mut base = settings.deployment.clone();
    let mut engine_note = None;
    if base.serving_stack.is_none() {
        if let (Some(stack), Some(fw)) = (framework_stack(table)?, &table.framework) {
            base.serving_stack = Some(stack.to_owned());
            engine_note = Some(format!(
                "the table's {fw} rows, replayed on that engine's stack `{stack}` (--serving-stack overrides)"
            ));
        }
    }
    let one = |g: &TableGroup| -> Result<Validation> {
        let req = table_request(table.kind, g, &base);
        let d = Deployment::resolve(&req, paths)?;
        let mut ov = ov;
        if ov.block_size.is_none() {
            ov.block_size = g.key.setting.block_size;
        }
        let setup = setup_for(d, &ov, paths, settings.roofline.as_ref())?;
        let mut v = batch::validate_group(&g.slug(), &table.source, table.kind, g, &setup)?;
        v.sample = Some(sample_status(&setup, settings, paths, &table.source));
        if table.kind == super::TableKind::Splitwise
            && req.enforce_eager == Some(true)
            && req.disable_custom_all_reduce == Some(true)
        {
            v.notes.push(SPLITWISE_ENGINE_NOTE.into());
        }
        v.notes.extend(engine_note.iter().cloned());
        v.notes.extend(table.notes.iter().cloned());
        v.notes
            .extend(params_note(&setup, paths, settings.roofline.is_some()));
        Ok(v)
    };
    Ok(table
        .groups
        .iter()
        .filter(|g| keep(g))
        .map(|g| (g.slug(), one(g)))
        .collect())
}

/// The engines of Argonne's tables that have a serving stack of their own besides vLLM
/// (whose rows take [`TABLE_STACK`] or the device's build), with that stack. Each
/// stack's `framework` key names the same engine (checked by a test).
pub const FRAMEWORK_STACKS: &[(&str, &str)] = &[("TensorRT-LLM", "trtllm-0.11")];

/// The stack the rows of `table` replay on where the flags name none: the stack of the
/// engine whose rows were kept from a table of several engines (Argonne's), none for
/// vLLM rows and tables of one engine (the group's device decides). An engine that no
/// stack stands for is an error, not a replay on vLLM's.
pub fn framework_stack(table: &StaticTable) -> Result<Option<&'static str>> {
    let Some(fw) = table.framework.as_deref() else {
        return Ok(None);
    };
    if fw.eq_ignore_ascii_case(crate::stack::DEFAULT_FRAMEWORK) {
        return Ok(None);
    }
    match FRAMEWORK_STACKS
        .iter()
        .find(|(f, _)| f.eq_ignore_ascii_case(fw))
    {
        Some((_, stack)) => Ok(Some(stack)),
        None => Err(Error::input(
            &table.source,
            Some("Framework"),
            format!(
                "no serving stack stands for `{fw}` (stacks exist for {}, {}); pass --serving-stack to replay its rows on one",
                crate::stack::DEFAULT_FRAMEWORK,
                FRAMEWORK_STACKS
                    .iter()
                    .map(|(f, _)| *f)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Whether the model `name` (as the catalog resolves it) has mixture-of-experts layers,
/// and its longest context (`max_position_embeddings`).
fn moe_and_positions(name: &str, paths: &DataPaths) -> Result<(bool, u64)> {
    let model = crate::model::ModelCatalog::for_paths(paths)?.resolve(name)?;
    let moe = model
        .layers
        .iter()
        .any(|l| matches!(l.ffn, crate::model::FfnSpec::Moe { .. }));
    Ok((moe, model.max_position_embeddings))
}

/// `group` without the rows longer than `positions` tokens (a TensorRT engine may be
/// built past a RoPE model's configured context; servesim deploys no further), and a
/// note naming them; `None` when none is longer.
fn within_positions(group: &ThroughputGroup, positions: u64) -> Option<(ThroughputGroup, String)> {
    let (long, kept): (Vec<_>, Vec<_>) = group
        .rows
        .iter()
        .cloned()
        .partition(|r| u64::from(r.isl) + u64::from(r.osl) > positions);
    if long.is_empty() {
        return None;
    }
    let lengths: Vec<String> = long
        .iter()
        .map(|r| format!("{}/{}", r.isl, r.osl))
        .collect();
    let note = format!(
        "rows longer than the model's {positions} positions left out (ISL/OSL {}): the engine ran them past the configured context, servesim deploys no further",
        lengths.join(", ")
    );
    Some((
        ThroughputGroup {
            rows: kept,
            ..group.clone()
        },
        note,
    ))
}

/// Validate each group of an offline throughput `table` that `keep` accepts (see the
/// module docs for how a row is replayed), returning `(group, outcome)` in group order
/// (the validation is named by the group's slug); a group that cannot be simulated is
/// an `Err` there. `settings` win over every mapped choice; a given `--max-num-seqs`
/// also turns off the per-row KV cap. Groups run on all available cores; the results do
/// not depend on how many.
pub fn validate_throughput<'a>(
    table: &'a ThroughputTable,
    settings: &Settings,
    paths: &DataPaths,
    mut keep: impl FnMut(&ThroughputGroup) -> bool,
) -> Vec<(&'a ThroughputGroup, Result<Validation>)> {
    let ov = offline::engine_overrides(&settings.engine);
    let one = |g: &ThroughputGroup| -> Result<Validation> {
        let model = settings
            .deployment
            .model
            .clone()
            .unwrap_or_else(|| g.model.model.clone());
        let (moe, positions) = moe_and_positions(&model, paths)?;
        let mut notes = Vec::new();
        let trimmed = within_positions(g, positions);
        let g = match &trimmed {
            Some((kept, note)) if !kept.rows.is_empty() => {
                notes.push(note.clone());
                kept
            }
            _ => g,
        };
        let mut req = offline::group_request(g, &settings.deployment, moe);
        if moe && g.key.tp > 1 && g.key.flow() == EngineFlow::PyTorch {
            notes.push(format!(
                "MoE run with --ep and attention DP (the EP size is not listed): the listed TP{} is read as {} attention data-parallel ranks of TP1 (simulated replicas) with the routed experts spread over all their GPUs",
                g.key.tp, g.key.tp
            ));
        }
        if req.gpu_memory_utilization.is_none() {
            // The runs' KV cache: TRT-LLM's share of the memory the model leaves free,
            // whatever stack times the steps.
            let (f, whence) = match g.run.kv_cache_free_gpu_mem_fraction {
                Some(f) => (f, "the table's"),
                None => (
                    offline::KV_CACHE_FREE_GPU_MEM_FRACTION,
                    "the README's usual value",
                ),
            };
            req.gpu_memory_utilization = Some(f);
            req.kv_cache_budget = Some(KvCacheBudget::Free);
            notes.push(format!(
                "kv_cache_free_gpu_mem_fraction {f} ({whence}) of the memory left after weights, activations and runtime"
            ));
        }
        let max_utilization = g.run.scheduler_policy == Some(CapacityPolicy::MaxUtilization);
        if max_utilization {
            notes.push("MAX_UTILIZATION capacity scheduler (the table's): requests admitted while KV blocks last, the newest paused and recomputed when the cache runs short, as the simulated engine's recompute preemption; no per-row KV cap".into());
        }
        let d = Deployment::resolve(&req, paths)?;
        let replicas = settings.num_replicas.unwrap_or(d.dp);
        let setup = setup_for(d, &ov, paths, settings.roofline.as_ref())?;
        notes.extend(params_note(&setup, paths, settings.roofline.is_some()));
        let mut v = offline::validate_group(
            GroupRun {
                name: &g.key.slug(),
                source: &table.source,
                setup: &setup,
                replicas,
                notes,
            },
            offline::RowLimits {
                cap_to_kv: settings.engine.max_num_seqs.is_none() && !max_utilization,
                run_limits: settings.engine.max_num_seqs.is_none()
                    && settings.engine.max_num_batched_tokens.is_none(),
            },
            g,
        )?;
        v.sample = Some(sample_status(&setup, settings, paths, &table.source));
        Ok(v)
    };
    let groups: Vec<&ThroughputGroup> = table.groups.iter().filter(|g| keep(g)).collect();
    par_groups(groups, one, &|_, _| {})
}

/// Validate each group of a serving summary `table` that `keep` accepts, each row a
/// closed loop ([`closed_loop`]), returning `(group, outcome)` in group order; a group
/// that cannot be simulated is an `Err` there. `settings` win over every mapped choice
/// (`--serving-stack` over the engine's stack). `done` hears of each group as it
/// finishes, with its wall time. A launch rule beside the table
/// ([`super::aic_launch`]) that cannot be read is an error before any group runs.
pub fn validate_summary<'a>(
    table: &'a SummaryTable,
    settings: &Settings,
    paths: &DataPaths,
    mut keep: impl FnMut(&SummaryGroup) -> bool,
    done: &(dyn Fn(&SummaryGroup, std::time::Duration) + Sync),
) -> Result<Vec<(&'a SummaryGroup, Result<Validation>)>> {
    let ov = closed_loop::engine_overrides(&settings.engine);
    let rule = super::aic_launch::AicLaunch::beside(&table.source)?;
    let one = |g: &SummaryGroup| -> Result<Validation> {
        let req = closed_loop::group_request(g, &settings.deployment);
        let mut d = Deployment::resolve(&req, paths)?;
        // The rule's capture list, unless the command line gave one.
        let graph_flags = &settings.deployment.graphs;
        if let Some(r) = rule
            .as_ref()
            .filter(|_| graph_flags.sizes.is_none() && graph_flags.max_size.is_none())
        {
            let most = g.rows.iter().map(|x| x.batch_size).max().unwrap_or(1);
            d.stack = std::sync::Arc::new(r.stack(&d.stack, most));
        }
        let replicas = settings.num_replicas.unwrap_or(d.dp);
        let mut notes: Vec<String> = Vec::new();
        if d.stack.kv_cache_budget == KvCacheBudget::Free && req.gpu_memory_utilization.is_none() {
            notes.push(format!(
                "KV cache: {} of the memory free after the model ({}'s meaning of the memory fraction at its default; the runs' value is not recorded)",
                d.gpu_memory_utilization, d.stack.name
            ));
        }
        let setup = setup_for(d, &ov, paths, settings.roofline.as_ref())?;
        notes.extend(params_note(&setup, paths, settings.roofline.is_some()));
        let mut v = closed_loop::validate_group(
            GroupRun {
                name: &g.slug,
                source: &table.source,
                setup: &setup,
                replicas,
                notes,
            },
            g,
            rule.as_ref().map(|rule| closed_loop::Launch {
                rule,
                flags: &settings.engine,
                version: &g.key.version,
            }),
        )?;
        v.sample = Some(sample_status(&setup, settings, paths, &table.source));
        Ok(v)
    };
    let groups: Vec<&SummaryGroup> = table.groups.iter().filter(|g| keep(g)).collect();
    Ok(par_groups(groups, one, done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::mapping::{trtllm_hardware, trtllm_model};
    use crate::validate::throughput_table::{Precision, ThroughputKey, ThroughputRow};

    /// A table's varied setting reaches the group's deployment request; a flag wins.
    #[test]
    fn a_groups_setting_reaches_its_request_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,kv_cache_dtype,Parallelism Type,Latency\n\
             Nvidia A100 GPU,4,vLLM,mistralai/Mixtral-8x7B-v0.1,128,1,\"Weight = int8, KV Cache = fp8\",EP,1.0\n\
             Nvidia A100 GPU,4,vLLM,meta-llama/Llama-2-7b-hf,128,1,\"Weight = fp16, KV Cache = fp16\",PP,1.0\n",
        )
        .unwrap();
        let t = crate::validate::tables::read(&p, None).unwrap();
        let base = DeploymentRequest::default();
        let ep = group_request(&t.groups[1], &base);
        assert_eq!(ep.quantization.as_deref(), Some("int8"));
        assert_eq!(ep.kv_cache_dtype.as_deref(), Some("fp8"));
        assert!(ep.enable_expert_parallel);
        assert_eq!(ep.tensor_parallel_size, Some(4));
        let pp = group_request(&t.groups[0], &base);
        assert_eq!(
            (pp.tensor_parallel_size, pp.pipeline_parallel_size),
            (Some(1), Some(4))
        );
        assert_eq!((pp.quantization, pp.kv_cache_dtype), (None, None));
        let flags = DeploymentRequest {
            kv_cache_dtype: Some("auto".into()),
            ..Default::default()
        };
        assert_eq!(
            group_request(&t.groups[1], &flags)
                .kv_cache_dtype
                .as_deref(),
            Some("auto")
        );
    }

    /// Rows past the model's configured context are left out, and said so; a group
    /// within it is kept whole.
    #[test]
    fn rows_past_the_models_context_are_left_out_and_named() {
        let row = |line, isl, osl| ThroughputRow {
            line,
            isl,
            osl,
            num_requests: 10,
            output_tokens_per_s: 1.0,
            engine_limits: None,
        };
        let g = ThroughputGroup {
            key: ThroughputKey {
                model: "GPTJ 6B".into(),
                gpu: "L40S".into(),
                num_gpus: 1,
                tp: 1,
                pp: 1,
                precision: Precision::Fp8,
                engine_version: Some("0.12.0".into()),
            },
            model: trtllm_model("GPTJ 6B").unwrap(),
            hardware: trtllm_hardware("L40S").unwrap(),
            rows: vec![row(2, 128, 128), row(3, 128, 2048), row(4, 2048, 2048)],
            run: Default::default(),
        };
        let (kept, note) = within_positions(&g, 2048).unwrap();
        assert_eq!(kept.rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2]);
        assert!(note.contains("2048 positions"), "{note}");
        assert!(note.contains("128/2048, 2048/2048"), "{note}");
        assert!(within_positions(&g, 4096).is_none());
    }
}
