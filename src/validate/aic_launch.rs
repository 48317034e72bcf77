//! How AIConfigurator launched the engines behind its serving measurements: the rule
//! its generator applies to benchmark deployments, read from `launch.toml` beside the
//! summary table (`perf_model/measurements/serving-aiconfigurator-silicon/`), so that
//! [`closed_loop`](super::closed_loop) replays each row with the flags its run had
//! rather than the engine's defaults. Without the file the defaults stand.
//!
//! Per row, with `batch` the row's batch per attention-DP rank (the generator's
//! `max_batch_size`) and `margin` the rule's prefill margin:
//! * every engine: at most `batch` running requests (`--max-num-seqs`,
//!   `--max_batch_size`, `--max-running-requests`);
//! * vLLM and TensorRT-LLM: a token budget of `batch + ISL + margin` per iteration
//!   (`--max-num-batched-tokens`, `--max_num_tokens`);
//! * SGLang: `--max-prefill-tokens ISL + margin` and `--enable-mixed-chunk` for the
//!   engine versions whose launch template emits it (the rule asks for it for every
//!   version, but the generic template and 0.5.1.post1's spell the key
//!   `enable-mix-chunk`, which the rule never sets);
//! * CUDA graphs captured for every batch size up to the group's largest batch.
//!
//! and the benchmark client (`aiperf`, from the generator's `bench_run.sh`): each of
//! the `concurrency` clients sends `warmup_requests_per_client` requests left out of
//! the figures, then `requests_per_client` measured ones, all exactly ISL in and OSL
//! out (`ignore_eos`).
//!
//! Flags given on the command line win over the rule.

use super::inferencex_client::InferenceXClient;
use crate::engine::config::{EngineConfig, EngineOverrides};
use crate::engine::SchedulerKind;
use crate::error::Result;
use crate::stack::{GraphMode, ServingStack};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file beside a summary table that holds its launch rule.
pub const FILE: &str = "launch.toml";

/// The generator's launch rule for benchmark deployments.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AicLaunch {
    /// Tokens beyond the prompt (and the batch's decodes) in a prefill budget.
    pub prefill_margin_tokens: u32,
    /// The SGLang versions launched with `--enable-mixed-chunk`.
    pub sglang_mixed_chunk_versions: Vec<String>,
    /// CUDA graphs are captured for every batch size up to the deployment's batch.
    pub capture_every_batch_size: bool,
    /// Measured requests per client.
    pub requests_per_client: u32,
    /// Warm-up requests per client, sent first and left out.
    pub warmup_requests_per_client: u32,
    /// Where the rule was read.
    pub source: String,
    /// The client of the rows InferenceX measured (`client` = `inferencex`), whose
    /// engines ran InferenceX's own flags, not this rule's.
    #[serde(default)]
    pub inferencex_client: Option<InferenceXClient>,
    /// The file it was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

impl AicLaunch {
    /// The rule beside `table` (`launch.toml` in its folder), if there is one.
    pub fn beside(table: &Path) -> Result<Option<Self>> {
        let path = table.parent().unwrap_or(Path::new(".")).join(FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let mut rule: AicLaunch = crate::error::read_toml(&path)?;
        if let Some(c) = &rule.inferencex_client {
            c.check(&path)?;
        }
        rule.path = path;
        Ok(Some(rule))
    }

    /// The engine settings of a row of engine version `version` with prompts of `isl`
    /// tokens and `batch` requests per rank, from the group's `base`; `flags` (the
    /// command line) win.
    pub fn engine(
        &self,
        base: &EngineConfig,
        flags: &EngineOverrides,
        version: &str,
        isl: u32,
        batch: u32,
    ) -> EngineConfig {
        let mut e = base.clone();
        let batch = batch.max(1);
        let prefill = isl.saturating_add(self.prefill_margin_tokens);
        if flags.max_num_seqs.is_none() {
            e.max_num_seqs = batch;
        }
        if e.scheduler == SchedulerKind::Sglang {
            if flags.max_prefill_tokens.is_none() {
                e.max_prefill_tokens = Some(prefill);
            }
            if flags.enable_mixed_chunk.is_none() {
                e.enable_mixed_chunk = self
                    .sglang_mixed_chunk_versions
                    .iter()
                    .any(|v| v == version);
            }
        } else if flags.max_num_batched_tokens.is_none() {
            e.max_num_batched_tokens = batch.saturating_add(prefill);
        }
        e
    }

    /// `stack` with CUDA graphs captured for every batch size up to `max_batch` (where
    /// the rule says so and the stack runs graphs at all).
    pub fn stack(&self, stack: &ServingStack, max_batch: u32) -> ServingStack {
        let mut s = stack.clone();
        if self.capture_every_batch_size && s.execution.graph_mode != GraphMode::None {
            s.execution = stack
                .execution
                .with_capture_sizes((1..=max_batch.max(1)).collect());
        }
        s
    }

    /// The rule in words, for the validation's notes; `with_client`: whether its client
    /// replays any row.
    pub fn describe(&self, with_client: bool) -> String {
        let client = if with_client {
            format!(
                "each client sends {} warm-up requests, left out, then {} measured ones",
                self.warmup_requests_per_client, self.requests_per_client
            )
        } else {
            "its client replays no row of this group".to_owned()
        };
        format!(
            "engine flags by the source's launch rule ({}; {}): at most the row's batch_size running requests per rank; vLLM and TensorRT-LLM a token budget of batch_size + ISL + {m} per iteration; SGLang --max-prefill-tokens ISL + {m}, and --enable-mixed-chunk for versions {}; CUDA graphs {}; KV cache sized with the stack's defaults; {client}",
            self.path.display(),
            self.source,
            self.sglang_mixed_chunk_versions.join(", "),
            if self.capture_every_batch_size {
                "captured for every batch size up to the group's largest batch (--cuda-graph-sizes or --max-cuda-graph-size win)"
            } else {
                "as the stack captures them"
            },
            m = self.prefill_margin_tokens,
        )
    }

    /// The requests a row of `concurrency` clients is replayed with: (warm-up, measured).
    pub fn requests(&self, concurrency: u32) -> (u32, u32) {
        (
            concurrency.saturating_mul(self.warmup_requests_per_client),
            concurrency.saturating_mul(self.requests_per_client.max(1)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> AicLaunch {
        AicLaunch {
            prefill_margin_tokens: 1500,
            sglang_mixed_chunk_versions: vec!["0.5.6.post2".into()],
            capture_every_batch_size: true,
            requests_per_client: 50,
            warmup_requests_per_client: 2,
            source: "test".into(),
            inferencex_client: None,
            path: PathBuf::from("launch.toml"),
        }
    }

    #[test]
    fn rows_get_the_rules_budgets_unless_flags_say_otherwise() {
        let none = EngineOverrides::default();
        let v1 = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
        let e = rule().engine(&v1, &none, "0.12.0", 1024, 8);
        assert_eq!((e.max_num_seqs, e.max_num_batched_tokens), (8, 2532));
        assert!(!e.enable_mixed_chunk && e.max_prefill_tokens.is_none());
        let flags = EngineOverrides {
            max_num_batched_tokens: Some(4096),
            ..none
        };
        let e = rule().engine(&v1, &flags, "0.12.0", 1024, 8);
        assert_eq!((e.max_num_seqs, e.max_num_batched_tokens), (8, 2048));
        let sg = EngineConfig::defaults_for(SchedulerKind::Sglang, 1000, 4096);
        let e = rule().engine(&sg, &none, "0.5.6.post2", 1024, 0);
        assert_eq!(e.max_num_seqs, 1);
        assert_eq!(e.max_num_batched_tokens, sg.max_num_batched_tokens);
        assert_eq!(e.max_prefill_tokens, Some(2524));
        assert!(e.enable_mixed_chunk);
        e.validate().unwrap();
        // Versions launched through a template that drops the flag.
        assert!(
            !rule()
                .engine(&sg, &none, "0.5.6", 1024, 8)
                .enable_mixed_chunk
        );
    }

    #[test]
    fn the_rule_is_read_from_beside_the_table_and_bad_keys_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("summary.csv");
        assert_eq!(AicLaunch::beside(&table).unwrap(), None);
        let path = dir.path().join(FILE);
        std::fs::write(
            &path,
            "prefill_margin_tokens = 1500\nsglang_mixed_chunk_versions = []\ncapture_every_batch_size = false\nrequests_per_client = 50\nwarmup_requests_per_client = 2\nsource = \"s\"\n",
        )
        .unwrap();
        let r = AicLaunch::beside(&table).unwrap().unwrap();
        assert_eq!((r.prefill_margin_tokens, r.path), (1500, path.clone()));
        std::fs::write(&path, "prefill_margin_tokens = 1500\nmargin = 3\n").unwrap();
        let e = AicLaunch::beside(&table).unwrap_err().to_string();
        assert!(e.contains("launch.toml") && e.contains("margin"), "{e}");
    }

    /// The InferenceX set replays as the AIConfigurator set's InferenceX rows: its
    /// `launch.toml` repeats that rule and client.
    #[test]
    fn the_inferencex_sets_share_the_aiconfigurator_rule() {
        let m = crate::paths::DataPaths::builtin()
            .perf_model
            .join("measurements");
        let read = |set: &str| {
            let mut r = AicLaunch::beside(&m.join(set).join("serving_summary.csv"))
                .unwrap()
                .unwrap();
            r.path = PathBuf::new();
            r
        };
        let aic = read("serving-aiconfigurator-silicon");
        assert!(aic.inferencex_client.is_some());
        assert_eq!(read("serving-inferencex"), aic);
        assert_eq!(read("serving-inferencex-history"), aic);
    }
}
