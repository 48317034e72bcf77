//! Data-parallel sharding of model states: DeepSpeed ZeRO stages 0–3 and their PyTorch
//! FSDP equivalents, and CPU offload.
//!
//! ZeRO paper (Rajbhandari et al. 2020, §5, Figure 1): with `N` data-parallel GPUs,
//! stage 1 (P_os) shards the optimizer states, stage 2 (P_os+g) also the gradients, and
//! stage 3 (P_os+g+p) also the parameters. Unsharded parts are replicated on every GPU, so
//! without sharding (stage 0, plain DDP) more GPUs never lower the memory per GPU.
//! Activations are per micro-batch and are never sharded by ZeRO.

use crate::error::{Error, Result};
use serde::Serialize;

/// A DeepSpeed ZeRO stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "u8")]
pub enum ZeroStage {
    /// No sharding (DDP): every GPU holds all model states.
    Stage0,
    /// Optimizer states sharded.
    Stage1,
    /// Optimizer states and gradients sharded.
    Stage2,
    /// Optimizer states, gradients and parameters sharded.
    Stage3,
}

impl From<ZeroStage> for u8 {
    fn from(s: ZeroStage) -> u8 {
        s.number()
    }
}

impl TryFrom<u8> for ZeroStage {
    type Error = Error;
    fn try_from(n: u8) -> Result<Self> {
        Ok(match n {
            0 => ZeroStage::Stage0,
            1 => ZeroStage::Stage1,
            2 => ZeroStage::Stage2,
            3 => ZeroStage::Stage3,
            _ => {
                return Err(Error::Config(format!(
                    "--zero must be 0, 1, 2 or 3, got {n}"
                )))
            }
        })
    }
}

impl ZeroStage {
    /// The stage number.
    pub fn number(self) -> u8 {
        match self {
            ZeroStage::Stage0 => 0,
            ZeroStage::Stage1 => 1,
            ZeroStage::Stage2 => 2,
            ZeroStage::Stage3 => 3,
        }
    }

    /// True when optimizer states (and the master copy) are sharded.
    pub fn shards_optimizer(self) -> bool {
        self >= ZeroStage::Stage1
    }

    /// True when gradients are sharded.
    pub fn shards_gradients(self) -> bool {
        self >= ZeroStage::Stage2
    }

    /// True when parameters are sharded.
    pub fn shards_params(self) -> bool {
        self >= ZeroStage::Stage3
    }
}

/// PyTorch FSDP sharding strategies, by the ZeRO stage they correspond to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FsdpStrategy {
    /// `FULL_SHARD`: parameters, gradients and optimizer states (ZeRO-3).
    FullShard,
    /// `SHARD_GRAD_OP`: gradients and optimizer states (ZeRO-2).
    ShardGradOp,
    /// `NO_SHARD`: nothing (DDP, ZeRO-0).
    NoShard,
}

impl FsdpStrategy {
    /// The equivalent ZeRO stage.
    pub fn zero_stage(self) -> ZeroStage {
        match self {
            FsdpStrategy::FullShard => ZeroStage::Stage3,
            FsdpStrategy::ShardGradOp => ZeroStage::Stage2,
            FsdpStrategy::NoShard => ZeroStage::Stage0,
        }
    }
}

/// Model-state bytes: weights, gradients and optimizer states (the master copy included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ModelStates {
    /// Parameters (frozen and trainable), bytes.
    pub weights: f64,
    /// Gradients of the trainable parameters, bytes.
    pub gradients: f64,
    /// Optimizer states and master weights, bytes.
    pub optimizer: f64,
}

impl ModelStates {
    /// The sum.
    pub fn total(&self) -> f64 {
        self.weights + self.gradients + self.optimizer
    }

    /// What one of `num_gpus` data-parallel GPUs holds at `stage` (shards are `1/N` each,
    /// rounding ignored).
    pub fn sharded(&self, stage: ZeroStage, num_gpus: u32) -> ModelStates {
        let n = f64::from(num_gpus.max(1));
        let part = |sharded: bool, bytes: f64| if sharded { bytes / n } else { bytes };
        ModelStates {
            weights: part(stage.shards_params(), self.weights),
            gradients: part(stage.shards_gradients(), self.gradients),
            optimizer: part(stage.shards_optimizer(), self.optimizer),
        }
    }
}

/// What moves to host memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Offload {
    /// Optimizer states and master weights live in host memory and the optimizer step runs
    /// on the CPU (DeepSpeed ZeRO-Offload `offload_optimizer`, stage ≥ 1).
    pub optimizer: bool,
    /// Parameter shards live in host memory and are fetched per layer (DeepSpeed
    /// ZeRO-Infinity `offload_param`, stage 3 only).
    pub params: bool,
}

impl Offload {
    /// DeepSpeed's rules: optimizer offload needs a ZeRO stage, parameter offload stage 3.
    pub fn validate(&self, stage: ZeroStage) -> Result<()> {
        if self.optimizer && !stage.shards_optimizer() {
            return Err(Error::Config(
                "--offload-optimizer needs a ZeRO stage of at least 1 (--zero 1|2|3 or --fsdp \
                 shard-grad-op|full-shard); DeepSpeed offloads only sharded optimizer states"
                    .into(),
            ));
        }
        if self.params && !stage.shards_params() {
            return Err(Error::Config(
                "--offload-params needs ZeRO stage 3 (--zero 3 or --fsdp full-shard); \
                 DeepSpeed offloads parameters only at stage 3"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: f64 = 1e9;

    /// ZeRO paper, Figure 1 and Table 1: Ψ = 7.5B parameters, mixed-precision Adam
    /// (K = 12), N_d = 64 GPUs: 120 GB per GPU at baseline, 31.4 GB with P_os, 16.6 GB with
    /// P_os+g, 1.9 GB with P_os+g+p. Table 1's N_d = 1024 column for 7.5B: 30.1, 15.1,
    /// 0.12 GB (model states only, decimal GB as the paper uses). Within 10 %.
    #[test]
    fn zero_paper_7_5b_stages() {
        let psi = 7.5e9;
        let full = ModelStates {
            weights: 2.0 * psi,
            gradients: 2.0 * psi,
            optimizer: 12.0 * psi,
        };
        let cases = [
            (64, ZeroStage::Stage0, 120.0),
            (64, ZeroStage::Stage1, 31.4),
            (64, ZeroStage::Stage2, 16.6),
            (64, ZeroStage::Stage3, 1.9),
            (1024, ZeroStage::Stage1, 30.1),
            (1024, ZeroStage::Stage2, 15.1),
            (1024, ZeroStage::Stage3, 0.12),
        ];
        for (n, stage, published) in cases {
            let got = full.sharded(stage, n).total() / GB;
            assert!(
                (got - published).abs() / published < 0.1,
                "stage {} on {n}: {got} GB vs {published} GB",
                stage.number()
            );
        }
    }

    #[test]
    fn stage_3_falls_as_one_over_n_and_stage_0_never() {
        let full = ModelStates {
            weights: 3.0,
            gradients: 5.0,
            optimizer: 7.0,
        };
        for n in [1, 2, 8, 100] {
            let s = full.sharded(ZeroStage::Stage3, n).total();
            assert!((s * f64::from(n) - full.total()).abs() < 1e-9);
            assert_eq!(full.sharded(ZeroStage::Stage0, n), full);
        }
    }

    #[test]
    fn fsdp_maps_to_zero_and_errors_name_flags() {
        assert_eq!(FsdpStrategy::FullShard.zero_stage(), ZeroStage::Stage3);
        assert_eq!(FsdpStrategy::ShardGradOp.zero_stage(), ZeroStage::Stage2);
        assert_eq!(FsdpStrategy::NoShard.zero_stage(), ZeroStage::Stage0);
        assert!(ZeroStage::try_from(4)
            .unwrap_err()
            .to_string()
            .contains("--zero"));
        let off = Offload {
            optimizer: false,
            params: true,
        };
        let err = off.validate(ZeroStage::Stage2).unwrap_err().to_string();
        assert!(err.contains("--offload-params"), "{err}");
        let off = Offload {
            optimizer: true,
            params: false,
        };
        assert!(off.validate(ZeroStage::Stage0).is_err());
        assert!(off.validate(ZeroStage::Stage1).is_ok());
    }
}
