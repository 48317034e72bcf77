//! From a deployment and engine settings to runnable replicas: size the KV cache with
//! the memory plan, pick the latency model, and build the engine configuration.

use crate::deployment::Deployment;
use crate::engine::config::{EngineConfig, EngineOverrides};
use crate::engine::Replica;
use crate::error::{Error, Result};
use crate::memory::{self, MemoryModel, MemoryOptions, MemoryPlan};
use crate::paths::DataPaths;
use crate::perf::{select_latency_model, LatencyChoice, LatencyModel};
use std::sync::Arc;

/// Everything needed to build identical replicas.
#[derive(Clone)]
pub struct ReplicaSetup {
    /// The deployment of each replica.
    pub deployment: Deployment,
    /// Its engine settings, with the KV cache sized.
    pub engine: EngineConfig,
    /// Its memory plan.
    pub memory: MemoryPlan,
    /// Its latency model.
    pub latency: Arc<dyn LatencyModel>,
}

impl std::fmt::Debug for ReplicaSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaSetup")
            .field("deployment", &self.deployment.summary())
            .field("engine", &self.engine)
            .field("latency", &self.latency.describe())
            .finish()
    }
}

impl ReplicaSetup {
    /// Size and configure a replica of `d` with `overrides`, using the data under `paths`
    /// and the best latency model they support ([`LatencyChoice::Auto`]).
    pub fn new(d: Deployment, overrides: &EngineOverrides, paths: &DataPaths) -> Result<Self> {
        Self::with_choice(d, overrides, paths, LatencyChoice::Auto)
    }

    /// As [`ReplicaSetup::new`] with the latency model chosen by `choice`.
    pub fn with_choice(
        d: Deployment,
        overrides: &EngineOverrides,
        paths: &DataPaths,
        choice: LatencyChoice,
    ) -> Result<Self> {
        let mm = MemoryModel::load(&paths.perf_model)?;
        let d = d.for_engine(overrides);
        let latency = select_latency_model(&d, paths, choice)?;
        Self::with_latency(d, overrides, &mm, latency)
    }

    /// As [`ReplicaSetup::new`] with a given memory model and latency model.
    pub fn with_latency(
        d: Deployment,
        overrides: &EngineOverrides,
        mm: &MemoryModel,
        latency: Arc<dyn LatencyModel>,
    ) -> Result<Self> {
        let mut engine = overrides.resolve_unsized(
            &d.stack.scheduler,
            d.max_model_len,
            d.model.has_sliding_window(),
        );
        if engine.block_size != d.kv_block_size() {
            // The latency model was built for the deployment's block size.
            return Err(Error::Config(format!(
                "KV block size {} for the engine but {} for its latency model: build the deployment with Deployment::for_engine",
                engine.block_size,
                d.kv_block_size()
            )));
        }
        if overrides.kv_reservation == Some(true) && engine.kv_reservation.is_none() {
            return Err(Error::Config(format!(
                "--kv-reservation true: the {} stack's {} scheduler keeps no KV for running outputs (its file has no [scheduler.kv_reservation]); the sglang and trtllm stacks do",
                d.stack.name, engine.scheduler
            )));
        }
        let plan = memory::plan(
            &d,
            mm,
            &MemoryOptions {
                block_size: engine.block_size,
                max_num_batched_tokens: engine.max_num_batched_tokens,
                max_num_seqs: engine.max_num_seqs,
                seq_len: None,
            },
        );
        engine.num_gpu_blocks = match overrides.num_gpu_blocks_override {
            Some(n) => n,
            None => {
                if !plan.fits {
                    return Err(Error::Config(format!(
                        "{} does not fit on {} × {} (TP{} PP{}) with --max-model-len {}: {:.2} GiB more per GPU needed; use more GPUs, a smaller --max-model-len or a lower-precision --quantization/--kv-cache-dtype (see `servesim memory --min-gpus`)",
                        plan.model,
                        d.num_gpus(),
                        plan.hardware,
                        d.tp,
                        d.pp,
                        d.max_model_len,
                        plan.shortfall_bytes_per_gpu / crate::units::BYTES_PER_GIB
                    )));
                }
                u32::try_from(plan.num_gpu_blocks).unwrap_or(u32::MAX)
            }
        };
        engine.kv_bytes_per_token = plan.kv_bytes_per_token_per_gpu;
        engine.pipeline_stages = d.pp;
        engine.swap_bandwidth_bytes_per_s = d
            .gpu()
            .host_link()
            .map_or(0.0, |l| l.effective_pair_bandwidth_bytes_per_s());
        engine.validate()?;
        Ok(ReplicaSetup {
            deployment: d,
            engine,
            memory: plan,
            latency,
        })
    }

    /// `n` identical replicas with ids `0..n`. With attention data parallelism and
    /// expert parallelism, each run of `dp` consecutive replicas is one DP group,
    /// stepping in lock-step (see [`Replica::with_lockstep`]).
    pub fn replicas(&self, n: u32) -> Result<Vec<Replica>> {
        (0..n)
            .map(|i| {
                Ok(Replica::new(i, self.engine.clone(), self.latency.clone())?
                    .with_lockstep(self.lockstep_group(i)))
            })
            .collect()
    }

    /// The lock-step group of the `i`-th replica of [`ReplicaSetup::replicas`]: its
    /// DP group's first index, when the ranks share experts.
    pub fn lockstep_group(&self, i: u32) -> Option<u32> {
        let d = &self.deployment;
        (d.dp > 1 && d.ep > 1).then(|| i - i % d.dp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::DeploymentRequest;

    /// A latency model is built for one KV block size (vLLM V0 picks its decode kernel
    /// by it), so an engine with another is refused until the deployment carries it.
    #[test]
    fn an_engine_block_size_the_latency_model_was_not_built_for_is_refused() {
        let paths = DataPaths::builtin();
        let req = DeploymentRequest {
            serving_stack: Some("vllm-0.6".into()),
            ..Default::default()
        };
        let d = Deployment::resolve(&req, &paths).unwrap();
        let mm = MemoryModel::load(&paths.perf_model).unwrap();
        let latency = select_latency_model(&d, &paths, LatencyChoice::Auto).unwrap();
        let eight = EngineOverrides {
            block_size: Some(8),
            ..Default::default()
        };
        let e = ReplicaSetup::with_latency(d.clone(), &eight, &mm, latency)
            .unwrap_err()
            .to_string();
        assert!(e.contains("KV block size 8") && e.contains("16"), "{e}");
        let d8 = d.for_engine(&eight);
        let latency8 = select_latency_model(&d8, &paths, LatencyChoice::Auto).unwrap();
        let s = ReplicaSetup::with_latency(d8, &eight, &mm, latency8).unwrap();
        assert_eq!((s.engine.block_size, s.deployment.kv_block_size()), (8, 8));
        // Without an override the stack's block size serves both.
        let s = ReplicaSetup::new(
            Deployment::resolve(&req, &paths).unwrap(),
            &EngineOverrides::default(),
            &paths,
        )
        .unwrap();
        assert_eq!(s.deployment.kv_block_size(), 16);
    }
}
