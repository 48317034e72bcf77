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
        Ok(())
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
        format!(
            "{rows} rows measured by InferenceX's client ({}): {} requests per client, all measured, each prompt and output length drawn uniformly from {} × ISL (OSL) up to ISL (OSL); their engine flags are the launch rule's, an approximation (InferenceX launched each configuration with its own script)",
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
