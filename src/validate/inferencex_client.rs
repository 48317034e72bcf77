//! The benchmark client of InferenceX (github.com/SemiAnalysisAI/InferenceX), whose
//! results make up most of the AIConfigurator serving summary (the rows whose
//! `client` is `inferencex`; [`RowClient`](super::serving_summary::RowClient)).
//!
//! Its runs call a copy of vLLM's `benchmark_serving.py` on the `random` dataset with
//! `--random-range-ratio 0.8`, `--num-prompts` 10 × concurrency, `--max-concurrency`,
//! `--request-rate inf` and `--ignore-eos`: each request's prompt and output length is
//! drawn uniformly from `⌊0.8 × L⌋ ..= L`, every request is measured, and the
//! warm-up requests that later versions send finish before the measured ones start.
//! Drawn lengths matter beyond their mean: requests of one length started together
//! finish together, so a closed loop of exact lengths admits its clients in waves and
//! queues each wave's prompts behind one another; drawn lengths spread the finishes and
//! with them the arrivals. The figures live in `launch.toml` beside the table
//! (`[inferencex_client]`), with where they were read.

use crate::error::{Error, Result};
use crate::trace::Request;
use crate::trace::{ArrivalProcess, LengthDist, LengthModel, SynthConfig, SynthLimit, SynthTrace};
use serde::Deserialize;
use std::path::Path;

/// The seed of the drawn lengths (the client's own default seed is 0 too).
const SEED: u64 = 0;

/// How the client draws and counts its requests.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferenceXClient {
    /// Requests per client (`--num-prompts` over `--max-concurrency`), all measured.
    pub requests_per_client: u32,
    /// Each length is drawn from `⌊ratio × L⌋ ..= L` (`--random-range-ratio`).
    pub length_range_ratio: f64,
    /// Where these were read.
    pub source: String,
    /// The `--scheduler-recv-interval` InferenceX's SGLang scripts launch with, where
    /// they set one (`[inferencex_client.sglang_recv_interval]`).
    #[serde(default)]
    pub sglang_recv_interval: Option<RecvIntervalRule>,
}

/// SGLang's `--scheduler-recv-interval` in InferenceX's launch scripts: on which GPUs,
/// and what value by the row's concurrency (the scripts pick it from `CONC`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecvIntervalRule {
    /// The GPUs (catalog names, as `servesim list hardware` gives them) whose scripts
    /// pass the flag.
    pub gpus: Vec<String>,
    /// `[concurrency, interval]` pairs, concurrency ascending from 1: a row takes the
    /// interval of the last pair at or below its concurrency.
    pub by_concurrency: Vec<[u32; 2]>,
    /// The interval with attention data parallelism.
    pub attention_dp: u32,
    /// Where these were read.
    pub source: String,
}

impl RecvIntervalRule {
    /// Check the figures read from `path`; errors name the file and field.
    fn check(&self, path: &Path) -> Result<()> {
        let field = "inferencex_client.sglang_recv_interval.by_concurrency";
        let pairs = &self.by_concurrency;
        if pairs.first().is_none_or(|p| p[0] != 1) {
            return Err(Error::input(
                path,
                Some(field),
                "must start at concurrency 1",
            ));
        }
        if pairs.windows(2).any(|w| w[1][0] <= w[0][0]) {
            return Err(Error::input(path, Some(field), "concurrencies must ascend"));
        }
        if pairs.iter().any(|p| p[1] == 0) || self.attention_dp == 0 {
            return Err(Error::input(
                path,
                Some("inferencex_client.sglang_recv_interval"),
                "intervals must be at least 1",
            ));
        }
        Ok(())
    }

    /// The interval for a row on `gpu` at `concurrency` (None: the scripts of that GPU
    /// do not set it).
    pub fn interval(&self, gpu: &str, concurrency: u32, attention_dp: bool) -> Option<u32> {
        if !self.gpus.iter().any(|g| g.eq_ignore_ascii_case(gpu)) {
            return None;
        }
        if attention_dp {
            return Some(self.attention_dp);
        }
        self.by_concurrency
            .iter()
            .rev()
            .find(|p| p[0] <= concurrency)
            .map(|p| p[1])
    }
}

impl InferenceXClient {
    /// Check the figures read from `path`; errors name the file and field.
    pub fn check(&self, path: &Path) -> Result<()> {
        if self.requests_per_client == 0 {
            return Err(Error::input(
                path,
                Some("inferencex_client.requests_per_client"),
                "must be at least 1",
            ));
        }
        let r = self.length_range_ratio;
        if !(r > 0.0 && r <= 1.0) {
            return Err(Error::input(
                path,
                Some("inferencex_client.length_range_ratio"),
                format!("must be in (0, 1], got {r}"),
            ));
        }
        match &self.sglang_recv_interval {
            Some(rule) => rule.check(path),
            None => Ok(()),
        }
    }

    /// Requests of a row of `concurrency` clients.
    pub fn count(&self, concurrency: u32) -> u32 {
        concurrency.saturating_mul(self.requests_per_client)
    }

    /// The shortest length drawn for a row's `len` (at least 1).
    pub fn shortest(&self, len: u32) -> u32 {
        ((f64::from(len) * self.length_range_ratio).floor() as u32).clamp(1, len.max(1))
    }

    /// `n` requests with lengths drawn up to `isl` in and `osl` out, ids `0..n` in
    /// issue order, all at t = 0 (the closed loop issues them): a seeded synthetic
    /// trace ([`SynthTrace`]) of uniform lengths. Deterministic.
    pub fn requests(&self, isl: u32, osl: u32, n: u32) -> Result<Vec<Request>> {
        let uniform = |len: u32| LengthDist::Uniform {
            lo: self.shortest(len),
            hi: len.max(1),
        };
        let trace = SynthTrace::new(SynthConfig {
            arrival: ArrivalProcess::Burst,
            lengths: LengthModel::Independent {
                input: uniform(isl),
                output: uniform(osl),
            },
            limit: SynthLimit::Requests(u64::from(n)),
            seed: SEED,
        })?;
        Ok(trace.collect())
    }

    /// The client in words, for the validation's notes.
    pub fn describe(&self, rows: usize) -> String {
        let recv = self
            .sglang_recv_interval
            .as_ref()
            .map_or(String::new(), |r| {
                let by: Vec<String> = r
                    .by_concurrency
                    .iter()
                    .map(|[c, n]| format!("{n} from {c} clients"))
                    .collect();
                format!(
                ", except SGLang's --scheduler-recv-interval on {}: {} ({} with attention DP; {})",
                r.gpus.join(", "),
                by.join(", "),
                r.attention_dp,
                r.source
            )
            });
        format!(
            "{rows} rows measured by InferenceX's client ({}): {} requests per client, all measured, each prompt and output length drawn uniformly from {} × ISL (OSL) up to ISL (OSL); their engine flags are the launch rule's, an approximation (InferenceX launched each configuration with its own script){recv}",
            self.source, self.requests_per_client, self.length_range_ratio
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> InferenceXClient {
        InferenceXClient {
            requests_per_client: 10,
            length_range_ratio: 0.8,
            source: "test".into(),
            sglang_recv_interval: None,
        }
    }

    fn recv_rule() -> RecvIntervalRule {
        RecvIntervalRule {
            gpus: vec!["B200".into()],
            by_concurrency: vec![[1, 10], [16, 30]],
            attention_dp: 1,
            source: "test".into(),
        }
    }

    /// The interval follows the row's GPU, concurrency and attention DP; bad rules
    /// name the field.
    #[test]
    fn the_recv_interval_follows_gpu_and_concurrency() {
        let r = recv_rule();
        assert_eq!(r.interval("B200", 4, false), Some(10));
        assert_eq!(r.interval("b200", 16, false), Some(30));
        assert_eq!(r.interval("B200", 128, true), Some(1));
        assert_eq!(r.interval("H200", 64, false), None);
        let p = Path::new("launch.toml");
        let with = |rule: RecvIntervalRule| InferenceXClient {
            sglang_recv_interval: Some(rule),
            ..client()
        };
        assert!(with(recv_rule()).check(p).is_ok());
        for (bad, what) in [
            (vec![[2, 10]], "must start at concurrency 1"),
            (vec![[1, 10], [1, 30]], "concurrencies must ascend"),
            (vec![[1, 0]], "intervals must be at least 1"),
        ] {
            let e = with(RecvIntervalRule {
                by_concurrency: bad,
                ..recv_rule()
            })
            .check(p)
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("sglang_recv_interval") && e.contains(what),
                "{e}"
            );
        }
    }

    #[test]
    fn lengths_are_drawn_in_range_deterministically_and_spread() {
        let c = client();
        let a = c.requests(1024, 100, 400).unwrap();
        assert_eq!(a, c.requests(1024, 100, 400).unwrap());
        assert_eq!(a.len(), 400);
        assert!(a.iter().all(
            |r| (819..=1024).contains(&r.input_tokens) && (80..=100).contains(&r.output_tokens)
        ));
        assert!(a.iter().enumerate().all(|(i, r)| r.id == i as u64));
        let mean = a.iter().map(|r| f64::from(r.input_tokens)).sum::<f64>() / 400.0;
        assert!((mean - 921.5).abs() < 10.0, "{mean}");
        let outs: std::collections::BTreeSet<u32> = a.iter().map(|r| r.output_tokens).collect();
        assert!(outs.len() > 15, "{outs:?}");
        assert_eq!((c.shortest(1), c.shortest(0)), (1, 1));
        assert_eq!(c.count(8), 80);
    }

    #[test]
    fn bad_figures_name_the_field() {
        let p = Path::new("launch.toml");
        assert!(client().check(p).is_ok());
        let e = InferenceXClient {
            length_range_ratio: 1.5,
            ..client()
        }
        .check(p)
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("launch.toml") && e.contains("length_range_ratio"),
            "{e}"
        );
        let e = InferenceXClient {
            requests_per_client: 0,
            ..client()
        }
        .check(p)
        .unwrap_err()
        .to_string();
        assert!(e.contains("requests_per_client"), "{e}");
    }
}
