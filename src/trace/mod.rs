//! Request traces: readers for the supported formats, a streaming transformation
//! adapter, synthetic generators ([`synth`]) and summary statistics ([`stats`]).
//!
//! This module owns *what arrives when*: it never decides how requests are served.
//!
//! # Formats
//!
//! [`open_trace`] detects the format from the file's first line (or a `.json`
//! extension) and returns a [`TraceReader`], an iterator of [`Result<Request>`]:
//!
//! | format | recognised by | arrival | notes |
//! |---|---|---|---|
//! | [native CSV](TraceFormat::Native) | header has `arrival_time_s` | seconds, as written | optional `request_id`, `session_id`, `prefix_hash_ids` (space-separated), `hash_block_tokens`; columns in any order; unknown columns ignored |
//! | [Azure LLM 2023](TraceFormat::Azure2023) | `TIMESTAMP,ContextTokens,GeneratedTokens` | wall clock `YYYY-MM-DD HH:MM:SS.fffffff`, offset from the first row | Splitwise trace |
//! | [Mooncake CSV](TraceFormat::Mooncake) | header has `timestamp_ms` | milliseconds | `hash_ids` are 512-token blocks |
//! | [Mooncake JSONL](TraceFormat::MooncakeJsonl) | first line is an object with `input_length` | `timestamp` in ms | the upstream FAST'25 release format |
//! | [LLMServingSim `requests.jsonl`](TraceFormat::LlmServingSimJsonl) | first line is an object with `input_toks` | `queued_ts` − earliest `queued_ts` | measured vLLM runs; sorted within a 1 s window (see below) |
//! | [vLLM `benchmark_serving` JSON](TraceFormat::VllmBenchJson) | `.json` extension, or a JSON document that is not JSONL | regenerated, see below | not streamed |
//!
//! The vLLM result file stores `input_lens` and `output_lens` but not when each
//! request was sent. Unless the file has a per-request time list (`start_times`,
//! `arrival_times` or `timestamps`, in seconds), arrivals are **regenerated** from its
//! `request_rate` (and `burstiness`, a Gamma shape as in vLLM) with our own RNG seeded by
//! [`TraceOptions::seed`]: the same sequence as `servesim trace gen --arrival poisson`
//! with that seed, **not** the times vLLM used. `request_rate: "inf"` puts every request at
//! time zero. Requests with a non-empty `errors` entry are skipped.
//!
//! # Streaming and validation
//!
//! Every reader except the vLLM JSON one reads one row at a time into a reused buffer,
//! so memory does not grow with the trace. Each row is checked as it is read and the
//! first problem ends the stream with an [`Error::Input`] naming the file, the 1-based
//! line and the field: a missing or non-numeric value, a negative number, `input_tokens`
//! or `output_tokens` below 1, more prefix hashes than the prompt has blocks, or an
//! arrival earlier than the previous row's (the engine needs non-decreasing arrivals, so
//! unsorted files are rejected rather than sorted). The one exception is LLMServingSim's
//! `queued_ts`, an engine-side time that data-parallel engines record up to about a
//! millisecond out of file order: that reader sorts rows within a 1 s window (holding only
//! the rows inside it) and rejects larger inversions.
//!
//! # Transformations
//!
//! [`TraceOptions`] rescales and cuts a trace while it streams: keep a time window,
//! scale time, cap the request count.
//!
//! ```
//! use servesim::trace::{TraceOptions, TraceReader, Request};
//! use servesim::units::SimTime;
//!
//! let reqs = (0..10u64).map(|i| Ok(Request::new(i, SimTime::from_secs_f64(i as f64), 100, 10)));
//! let opts = TraceOptions { rate_scale: 2.0, max_requests: Some(3), ..TraceOptions::default() };
//! let out: Vec<_> = TraceReader::from_requests(reqs, &opts).unwrap().collect::<Result<_, _>>().unwrap();
//! assert_eq!(out.len(), 3);
//! assert_eq!(out[2].arrival, SimTime::from_secs_f64(1.0)); // 2 s at twice the rate
//! ```

use crate::error::{Error, Result};
use crate::units::SimTime;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

mod csv_trace;
mod jsonl;
mod parse;
pub mod stats;
pub mod synth;
mod transform;
pub(crate) mod vllm;
mod write;

pub use stats::{LengthStats, StatsBuilder, TraceStats};
pub use synth::{ArrivalProcess, LengthDist, LengthModel, SynthConfig, SynthLimit, SynthTrace};
pub use write::{format_secs, NativeWriter};

/// Block size, in tokens, of native-format prefix hashes when the file does not say
/// (vLLM's default KV block size).
pub const DEFAULT_HASH_BLOCK_TOKENS: u32 = 16;
/// Block size, in tokens, of Mooncake `hash_ids`.
pub const MOONCAKE_HASH_BLOCK_TOKENS: u32 = 512;

/// One request of a trace: when it arrives and how many tokens it reads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    /// Identifier: the trace's own id where the format has a numeric one (native
    /// `request_id`), else the 0-based position of the request among the file's requests
    /// (header excluded), counted before any [`TraceOptions`] cut. Not checked for
    /// uniqueness; an engine that needs dense indices should number requests itself.
    pub id: u64,
    /// Arrival time, from the start of the trace (after [`TraceOptions`]).
    pub arrival: SimTime,
    /// Prompt length in tokens (at least 1).
    pub input_tokens: u32,
    /// Tokens to generate, the first one included (at least 1).
    pub output_tokens: u32,
    /// Conversation this request is a turn of, where the trace says (native
    /// `session_id`). Turns of one session share a prompt prefix.
    pub session_id: Option<u64>,
    /// Chained hashes of the prompt's leading blocks of [`hash_block_tokens`] tokens, as
    /// the trace provides them (Mooncake `hash_ids`, native `prefix_hash_ids`). Two
    /// requests whose lists start with the same ids share that KV prefix. At most
    /// `ceil(input_tokens / hash_block_tokens)` entries (the last block may be partial);
    /// empty when the trace has none.
    ///
    /// [`hash_block_tokens`]: Request::hash_block_tokens
    pub prefix_hash_ids: Vec<u64>,
    /// Tokens per block that [`prefix_hash_ids`](Request::prefix_hash_ids) refer to: 512
    /// for Mooncake; for the native format the `hash_block_tokens` column, else
    /// [`TraceOptions::native_hash_block_tokens`] (default 16). Formats without hashes
    /// carry the native default.
    pub hash_block_tokens: u32,
}

impl Request {
    /// A request with no session and no prefix hashes.
    pub fn new(id: u64, arrival: SimTime, input_tokens: u32, output_tokens: u32) -> Self {
        Request {
            id,
            arrival,
            input_tokens,
            output_tokens,
            session_id: None,
            prefix_hash_ids: Vec::new(),
            hash_block_tokens: DEFAULT_HASH_BLOCK_TOKENS,
        }
    }
}

/// The file formats [`open_trace`] reads. See the [module docs](self) for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceFormat {
    /// servesim's CSV: `arrival_time_s,input_tokens,output_tokens` plus optional
    /// `request_id`, `session_id`, `prefix_hash_ids`, `hash_block_tokens`.
    Native,
    /// Azure LLM inference trace 2023: `TIMESTAMP,ContextTokens,GeneratedTokens`.
    #[serde(rename = "azure-2023")]
    Azure2023,
    /// Mooncake FAST'25 trace as CSV: `timestamp_ms,input_tokens,output_tokens,hash_ids`.
    Mooncake,
    /// Mooncake FAST'25 trace as released (JSONL: `timestamp`, `input_length`,
    /// `output_length`, `hash_ids`).
    MooncakeJsonl,
    /// LLMServingSim bench `requests.jsonl` (`input_toks`, `output_toks`, `queued_ts`).
    #[serde(rename = "llmservingsim-jsonl")]
    LlmServingSimJsonl,
    /// vLLM `benchmark_serving` / `vllm bench serve` result JSON (`--save-result
    /// --save-detailed`).
    VllmBenchJson,
}

impl TraceFormat {
    /// Every format.
    pub const ALL: [TraceFormat; 6] = [
        TraceFormat::Native,
        TraceFormat::Azure2023,
        TraceFormat::Mooncake,
        TraceFormat::MooncakeJsonl,
        TraceFormat::LlmServingSimJsonl,
        TraceFormat::VllmBenchJson,
    ];

    /// Short name, as used on the command line and in output.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Native => "native",
            TraceFormat::Azure2023 => "azure-2023",
            TraceFormat::Mooncake => "mooncake",
            TraceFormat::MooncakeJsonl => "mooncake-jsonl",
            TraceFormat::LlmServingSimJsonl => "llmservingsim-jsonl",
            TraceFormat::VllmBenchJson => "vllm-bench-json",
        }
    }

    /// The format of the file at `path`, from its extension (`.json`) or first line.
    pub fn detect(path: &Path) -> Result<TraceFormat> {
        let mut first = String::new();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        std::io::BufReader::new(file)
            .read_line(&mut first)
            .map_err(|e| Error::io(path, e))?;
        let ext_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        detect_from_first_line(path, &first, ext_json)
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TraceFormat {
    type Err = Error;

    /// A format by its [`name`](TraceFormat::name), ignoring case.
    fn from_str(s: &str) -> Result<Self> {
        TraceFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::Unknown {
                kind: "trace format",
                name: s.to_owned(),
                suggestions: crate::error::closest_names(
                    s,
                    TraceFormat::ALL.iter().map(|f| f.name()),
                    2,
                ),
            })
    }
}

const EXPECTED_FORMATS: &str = "expected a CSV header of the native format \
(`arrival_time_s,input_tokens,output_tokens`), the Azure LLM 2023 trace \
(`TIMESTAMP,ContextTokens,GeneratedTokens`) or Mooncake (`timestamp_ms,input_tokens,output_tokens,hash_ids`), \
a JSONL file (LLMServingSim `requests.jsonl` or Mooncake), or a vLLM benchmark `.json`";

fn detect_from_first_line(path: &Path, first: &str, ext_json: bool) -> Result<TraceFormat> {
    let line = first.trim_start_matches('\u{feff}').trim();
    if ext_json {
        return Ok(TraceFormat::VllmBenchJson);
    }
    if line.is_empty() {
        return Err(Error::input_at(
            path,
            1,
            None,
            format!("empty first line: {EXPECTED_FORMATS}"),
        ));
    }
    if line.starts_with('{') {
        // One complete object on the first line: JSONL, told apart by its keys. Anything
        // else starting with `{` is a (pretty-printed or single-line) vLLM result.
        if let Ok(serde_json::Value::Object(obj)) = serde_json::from_str(line) {
            if obj.contains_key("input_toks") {
                return Ok(TraceFormat::LlmServingSimJsonl);
            }
            if obj.contains_key("input_length") {
                return Ok(TraceFormat::MooncakeJsonl);
            }
            if obj.contains_key("input_lens") {
                return Ok(TraceFormat::VllmBenchJson);
            }
            return Err(Error::input_at(
                path,
                1,
                None,
                format!(
                    "a JSON object with none of the keys `input_toks` (LLMServingSim), \
                     `input_length` (Mooncake) or `input_lens` (vLLM benchmark); {EXPECTED_FORMATS}"
                ),
            ));
        }
        return Ok(TraceFormat::VllmBenchJson);
    }
    let cols: Vec<String> = line
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let has = |name: &str| cols.iter().any(|c| c == name);
    if has("timestamp") && has("contexttokens") && has("generatedtokens") {
        Ok(TraceFormat::Azure2023)
    } else if has("timestamp_ms") {
        Ok(TraceFormat::Mooncake)
    } else if has("arrival_time_s") {
        Ok(TraceFormat::Native)
    } else {
        Err(Error::input_at(
            path,
            1,
            None,
            format!("unrecognised trace header `{line}`: {EXPECTED_FORMATS}"),
        ))
    }
}

/// How to cut and rescale a trace while it streams.
///
/// Applied in this order: keep the arrivals in [`time_window`](Self::time_window)
/// (trace time, before scaling) and shift them to start at 0; multiply arrival times by
/// `time_scale / rate_scale`; stop after [`max_requests`](Self::max_requests).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceOptions {
    /// Multiply every arrival time by this (positive, finite; 2 = half the rate).
    pub time_scale: f64,
    /// Divide every arrival time by this (positive, finite; 2 = twice the rate).
    pub rate_scale: f64,
    /// Stop after this many requests (after the window cut).
    pub max_requests: Option<u64>,
    /// Keep arrivals in `[start_s, end_s)` of the trace's own time, then shift them so
    /// `start_s` is 0. `end_s` may be infinite.
    pub time_window: Option<(f64, f64)>,
    /// Seed for formats whose arrivals must be generated (vLLM benchmark JSON).
    pub seed: u64,
    /// Block size of native `prefix_hash_ids` when the file has no `hash_block_tokens`
    /// column.
    pub native_hash_block_tokens: u32,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            time_scale: 1.0,
            rate_scale: 1.0,
            max_requests: None,
            time_window: None,
            seed: 0,
            native_hash_block_tokens: DEFAULT_HASH_BLOCK_TOKENS,
        }
    }
}

impl TraceOptions {
    /// Check the options: scales positive and finite, a window with `0 ≤ start < end`,
    /// a block size of at least 1.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "trace option `{name}` must be positive and finite, got {v}"
                )))
            }
        };
        positive("time_scale", self.time_scale)?;
        positive("rate_scale", self.rate_scale)?;
        if let Some((start, end)) = self.time_window {
            if !(start.is_finite() && start >= 0.0) {
                return Err(Error::Config(format!(
                    "trace option `time_window` start must be finite and non-negative, got {start}"
                )));
            }
            if end.is_nan() || end <= start {
                return Err(Error::Config(format!(
                    "trace option `time_window` end must be after its start, got {start}..{end}"
                )));
            }
        }
        if self.native_hash_block_tokens == 0 {
            return Err(Error::Config(
                "trace option `native_hash_block_tokens` must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The boxed request stream under a [`TraceReader`].
type Inner = Box<dyn Iterator<Item = Result<Request>> + Send>;

/// A stream of requests from a trace file (or any request iterator), with
/// [`TraceOptions`] applied. Yields `Err` at most once, and then ends.
pub struct TraceReader {
    format: Option<TraceFormat>,
    max_concurrency: Option<u32>,
    closed_loop: bool,
    inner: transform::Transform<Inner>,
}

impl fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceReader")
            .field("format", &self.format)
            .field("max_concurrency", &self.max_concurrency)
            .finish_non_exhaustive()
    }
}

impl TraceReader {
    /// Apply `opts` to any request stream (a [`SynthTrace`] mapped through `Ok`, an
    /// in-memory list). Arrivals must already be non-decreasing; they are not re-checked.
    pub fn from_requests<I>(requests: I, opts: &TraceOptions) -> Result<Self>
    where
        I: IntoIterator<Item = Result<Request>>,
        I::IntoIter: Send + 'static,
    {
        opts.validate()?;
        Ok(TraceReader {
            format: None,
            max_concurrency: None,
            closed_loop: false,
            inner: transform::Transform::new(Box::new(requests.into_iter()), opts),
        })
    }

    /// The file format, or `None` for a stream built with [`from_requests`](Self::from_requests).
    pub fn format(&self) -> Option<TraceFormat> {
        self.format
    }

    /// The client concurrency cap the trace was recorded under, where the file says (vLLM
    /// `max_concurrency`). The arrivals do not reflect it: an engine that wants to
    /// reproduce the run should cap requests in flight at this number.
    pub fn max_concurrency(&self) -> Option<u32> {
        self.max_concurrency
    }

    /// The number of clients of a closed-loop recording (vLLM's client with no rate
    /// limit and `max_concurrency`): each sent its next request when one ended, so the
    /// run is reproduced as a closed loop of that many clients, not at the times it
    /// recorded.
    pub fn closed_loop_clients(&self) -> Option<u32> {
        self.max_concurrency.filter(|_| self.closed_loop)
    }
}

impl Iterator for TraceReader {
    type Item = Result<Request>;
    fn next(&mut self) -> Option<Result<Request>> {
        self.inner.next()
    }
}

/// Open the trace at `path`, detecting its format ([`TraceFormat::detect`]), and stream
/// its requests with `opts` applied.
pub fn open_trace(path: &Path, opts: &TraceOptions) -> Result<TraceReader> {
    let format = TraceFormat::detect(path)?;
    open_trace_as(path, format, opts)
}

/// Like [`open_trace`] with the format given rather than detected.
pub fn open_trace_as(path: &Path, format: TraceFormat, opts: &TraceOptions) -> Result<TraceReader> {
    opts.validate()?;
    let (mut max_concurrency, mut closed_loop) = (None, false);
    let inner: Inner = match format {
        TraceFormat::Native | TraceFormat::Azure2023 | TraceFormat::Mooncake => Box::new(
            csv_trace::CsvTrace::open(path, format, opts.native_hash_block_tokens)?,
        ),
        TraceFormat::MooncakeJsonl | TraceFormat::LlmServingSimJsonl => Box::new(
            jsonl::JsonlTrace::open(path, format, opts.native_hash_block_tokens)?,
        ),
        TraceFormat::VllmBenchJson => {
            let t = vllm::read(path, opts.seed, opts.native_hash_block_tokens)?;
            max_concurrency = t.max_concurrency;
            closed_loop = t.closed_loop;
            Box::new(t.requests.into_iter().map(Ok))
        }
    };
    Ok(TraceReader {
        format: Some(format),
        max_concurrency,
        closed_loop,
        inner: transform::Transform::new(inner, opts),
    })
}

/// Row checks shared by the readers: token counts at least 1, no more prefix hashes
/// than prompt blocks, arrivals non-decreasing.
struct RowChecker {
    path: PathBuf,
    /// The previous row's arrival and position.
    last: Option<(SimTime, u64)>,
    /// The request ids read so far.
    ids: SeenIds,
}

/// Request ids read so far. While they only increase (the usual case, and always for
/// ids numbered by position) they are kept in order and a new id is new when it is
/// larger than the last; at the first step back they move into a set.
#[derive(Debug)]
enum SeenIds {
    Increasing(Vec<u64>),
    Set(std::collections::HashSet<u64>),
}

impl SeenIds {
    /// Record `id`; false if it was already there.
    fn insert(&mut self, id: u64) -> bool {
        match self {
            SeenIds::Increasing(v) => match v.last() {
                Some(&last) if id <= last => {
                    if v.binary_search(&id).is_ok() {
                        return false;
                    }
                    let mut set: std::collections::HashSet<u64> = v.drain(..).collect();
                    set.insert(id);
                    *self = SeenIds::Set(set);
                    true
                }
                _ => {
                    v.push(id);
                    true
                }
            },
            SeenIds::Set(set) => set.insert(id),
        }
    }
}

/// Where a row is, for error messages: a line of a text file or an index into a JSON array.
#[derive(Clone, Copy)]
enum RowAt {
    Line(u64),
    Index(u64),
    /// Entry `index` of the per-request lists of the result object on `line` (a
    /// JSON-lines file of results).
    LineIndex {
        line: u64,
        index: u64,
    },
}

impl RowChecker {
    fn new(path: &Path) -> Self {
        RowChecker {
            path: path.to_owned(),
            last: None,
            ids: SeenIds::Increasing(Vec::new()),
        }
    }

    fn err(&self, at: RowAt, field: &str, msg: String) -> Error {
        match at {
            RowAt::Line(l) => Error::input_at(&self.path, l, Some(field), msg),
            RowAt::Index(i) => Error::input(&self.path, Some(&format!("{field}[{i}]")), msg),
            RowAt::LineIndex { line, index } => {
                Error::input_at(&self.path, line, Some(&format!("{field}[{index}]")), msg)
            }
        }
    }

    /// Check `req`; `fields` are the format's own names of the arrival, input, output and
    /// hash columns, in that order.
    fn check(&mut self, req: &Request, at: RowAt, fields: [&str; 4]) -> Result<()> {
        self.check_lengths(req, at, fields)?;
        self.check_order(req, at, fields[0])?;
        if !self.ids.insert(req.id) {
            return Err(self.err(
                at,
                "request_id",
                format!(
                    "request id {} appears more than once: every request needs its own id",
                    req.id
                ),
            ));
        }
        Ok(())
    }

    /// Token counts at least 1, no more prefix hashes than prompt blocks.
    fn check_lengths(&self, req: &Request, at: RowAt, fields: [&str; 4]) -> Result<()> {
        let [_, input_f, output_f, hashes_f] = fields;
        if req.input_tokens == 0 {
            return Err(self.err(at, input_f, "must be at least 1, got 0".into()));
        }
        if req.output_tokens == 0 {
            return Err(self.err(at, output_f, "must be at least 1, got 0".into()));
        }
        let blocks = req.input_tokens.div_ceil(req.hash_block_tokens.max(1)) as usize;
        if req.prefix_hash_ids.len() > blocks {
            return Err(self.err(
                at,
                hashes_f,
                format!(
                    "{} hash ids but the {}-token prompt has only {blocks} block(s) of {} tokens",
                    req.prefix_hash_ids.len(),
                    req.input_tokens,
                    req.hash_block_tokens
                ),
            ));
        }
        Ok(())
    }

    /// Arrival not earlier than the previous checked request's.
    fn check_order(&mut self, req: &Request, at: RowAt, arrival_f: &str) -> Result<()> {
        let pos = match at {
            RowAt::Line(l) | RowAt::Index(l) | RowAt::LineIndex { index: l, .. } => l,
        };
        if let Some((last, last_pos)) = self.last {
            if req.arrival < last {
                let where_ = match at {
                    RowAt::Line(_) => format!("line {last_pos}"),
                    RowAt::Index(_) | RowAt::LineIndex { .. } => format!("index {last_pos}"),
                };
                return Err(self.err(
                    at,
                    arrival_f,
                    format!(
                        "arrival at {} s is earlier than the previous request's {} s ({where_}); \
                         arrivals must be non-decreasing: sort the file by arrival time",
                        format_secs(req.arrival),
                        format_secs(last)
                    ),
                ));
            }
        }
        self.last = Some((req.arrival, pos));
        Ok(())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod seen_ids_tests {
    use super::SeenIds;
    use proptest::prelude::*;

    proptest! {
        /// The two-mode record answers as a plain set does, on any sequence of ids.
        #[test]
        fn seen_ids_answer_as_a_set(ids in proptest::collection::vec(0u64..50, 0..80), sorted in any::<bool>()) {
            let mut ids = ids;
            if sorted {
                ids.sort_unstable();
            }
            let mut seen = SeenIds::Increasing(Vec::new());
            let mut oracle = std::collections::HashSet::new();
            for id in ids {
                prop_assert_eq!(seen.insert(id), oracle.insert(id));
            }
        }
    }
}
