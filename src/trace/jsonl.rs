//! Readers of the JSON-lines formats: LLMServingSim `requests.jsonl` and Mooncake's
//! released JSONL. One line is read (into a reused buffer) and parsed at a time.
//!
//! LLMServingSim's arrival is the engine's `queued_ts`. With several data-parallel
//! engines, requests can be queued slightly out of submission (file) order: the
//! RTX PRO 6000 Qwen3-30B-A3B DP2 run has 29 such swaps of up to 0.7 ms. This reader
//! therefore sorts by `queued_ts` within a [`REORDER_WINDOW_S`] window, holding only the
//! rows inside it; a row earlier than that behind the latest one is an error. Mooncake
//! rows must be sorted, as in the other formats.

use super::csv_trace::Lines;
use super::{parse, Request, RowAt, RowChecker, TraceFormat, MOONCAKE_HASH_BLOCK_TOKENS};
use crate::error::{Error, Result};
use crate::units::{checked_secs_to_nanos, SimTime};
use serde_json::{Map, Value};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

/// How far (seconds of `queued_ts`) LLMServingSim rows may be out of file order.
pub(crate) const REORDER_WINDOW_S: f64 = 1.0;

/// A row waiting in the reorder window, ordered by (absolute time, line).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    abs_ns: u64,
    line: u64,
    input_tokens: u32,
    output_tokens: u32,
    id: u64,
}

/// A streaming reader of one JSONL trace.
pub(crate) struct JsonlTrace {
    path: PathBuf,
    lines: Lines,
    format: TraceFormat,
    line: u64,
    index: u64,
    default_block: u32,
    checker: RowChecker,
    /// LLMServingSim: rows inside the reorder window, earliest first.
    pending: BinaryHeap<Reverse<Pending>>,
    /// LLMServingSim: the latest absolute time read.
    newest_ns: u64,
    /// LLMServingSim: the earliest absolute time, fixed at the first emitted row.
    origin_ns: Option<u64>,
    /// LLMServingSim: absolute time and line of the last emitted row.
    emitted: Option<(u64, u64)>,
    window_ns: u64,
    eof: bool,
    done: bool,
}

impl JsonlTrace {
    /// Open `path` as `format` (one of the JSONL formats).
    pub(crate) fn open(path: &Path, format: TraceFormat, default_block: u32) -> Result<Self> {
        Ok(JsonlTrace {
            path: path.to_owned(),
            lines: Lines::open(path)?,
            format,
            line: 0,
            index: 0,
            default_block,
            checker: RowChecker::new(path),
            pending: BinaryHeap::new(),
            newest_ns: 0,
            origin_ns: None,
            emitted: None,
            window_ns: checked_secs_to_nanos(REORDER_WINDOW_S).unwrap_or(0),
            eof: false,
            done: false,
        })
    }

    /// The next line as a JSON object (`None` at the end of the file).
    fn next_object(&mut self) -> Result<Option<Map<String, Value>>> {
        let Some((line, text)) = self.lines.next_line()? else {
            return Ok(None);
        };
        self.line = line;
        match serde_json::from_str::<Value>(text.trim()) {
            Ok(Value::Object(obj)) => Ok(Some(obj)),
            Ok(_) => Err(Error::input_at(
                &self.path,
                line,
                None,
                "expected a JSON object on each line",
            )),
            Err(e) => Err(Error::input_at(
                &self.path,
                line,
                None,
                format!("invalid JSON: {e}"),
            )),
        }
    }

    fn mooncake_row(&mut self, obj: &Map<String, Value>) -> Result<Request> {
        let (path, line) = (&self.path, self.line);
        let err = |field: &str, msg: String| Error::input_at(path, line, Some(field), msg);
        let ns = match obj.get("timestamp") {
            None => return Err(err("timestamp", "missing".into())),
            Some(Value::Number(n)) => {
                parse::time_nanos(&n.to_string(), 1_000_000).map_err(|m| err("timestamp", m))?
            }
            Some(v) => return Err(err("timestamp", format!("not a number: {v}"))),
        };
        let mut r = Request::new(
            self.index,
            SimTime::from_nanos(ns),
            tokens(obj, "input_length").map_err(|m| err("input_length", m))?,
            tokens(obj, "output_length").map_err(|m| err("output_length", m))?,
        );
        r.hash_block_tokens = MOONCAKE_HASH_BLOCK_TOKENS;
        match obj.get("hash_ids") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                r.prefix_hash_ids.reserve(items.len());
                for (i, v) in items.iter().enumerate() {
                    let id = v.as_u64().ok_or_else(|| {
                        err(
                            "hash_ids",
                            format!("item {}: not a non-negative integer: {v}", i + 1),
                        )
                    })?;
                    r.prefix_hash_ids.push(id);
                }
            }
            Some(v) => return Err(err("hash_ids", format!("not a list: {v}"))),
        }
        self.checker.check(
            &r,
            RowAt::Line(line),
            ["timestamp", "input_length", "output_length", "hash_ids"],
        )?;
        self.index += 1;
        Ok(r)
    }

    /// Name of the arrival field of an LLMServingSim row: `queued_ts`, or
    /// `arrival_time` in files that lack it.
    fn lss_arrival_field(obj: &Map<String, Value>) -> &'static str {
        if obj.contains_key("queued_ts") || !obj.contains_key("arrival_time") {
            "queued_ts"
        } else {
            "arrival_time"
        }
    }

    /// Parse an LLMServingSim row into the reorder window.
    fn lss_push(&mut self, obj: &Map<String, Value>) -> Result<()> {
        let (path, line) = (&self.path, self.line);
        let err = |field: &str, msg: String| Error::input_at(path, line, Some(field), msg);
        let arrival_f = Self::lss_arrival_field(obj);
        let t = seconds(obj, arrival_f).map_err(|m| err(arrival_f, m))?;
        let abs_ns =
            checked_secs_to_nanos(t).ok_or_else(|| err(arrival_f, format!("too large: {t}")))?;
        let mut probe = Request::new(
            self.index,
            SimTime::ZERO,
            tokens(obj, "input_toks").map_err(|m| err("input_toks", m))?,
            tokens(obj, "output_toks").map_err(|m| err("output_toks", m))?,
        );
        probe.hash_block_tokens = self.default_block;
        self.checker.check_lengths(
            &probe,
            RowAt::Line(line),
            [arrival_f, "input_toks", "output_toks", ""],
        )?;
        if let Some((last_ns, last_line)) = self.emitted {
            if abs_ns < last_ns {
                return Err(err(
                    arrival_f,
                    format!(
                        "{t} is {:.6} s earlier than line {last_line}'s, more than the \
                         {REORDER_WINDOW_S} s window this reader sorts within; sort the file by {arrival_f}",
                        (last_ns - abs_ns) as f64 / 1e9
                    ),
                ));
            }
        }
        self.newest_ns = self.newest_ns.max(abs_ns);
        self.pending.push(Reverse(Pending {
            abs_ns,
            line,
            input_tokens: probe.input_tokens,
            output_tokens: probe.output_tokens,
            id: self.index,
        }));
        self.index += 1;
        Ok(())
    }

    /// The earliest pending LLMServingSim row, once nothing later in the file can come
    /// before it.
    fn lss_pop(&mut self) -> Option<Request> {
        let Reverse(min) = self.pending.peek()?;
        if !self.eof && self.newest_ns - min.abs_ns < self.window_ns {
            return None;
        }
        let Reverse(p) = self.pending.pop()?;
        let origin = *self.origin_ns.get_or_insert(p.abs_ns);
        self.emitted = Some((p.abs_ns, p.line));
        let mut r = Request::new(
            p.id,
            SimTime::from_nanos(p.abs_ns - origin),
            p.input_tokens,
            p.output_tokens,
        );
        r.hash_block_tokens = self.default_block;
        Some(r)
    }

    fn next_item(&mut self) -> Option<Result<Request>> {
        if self.format != TraceFormat::LlmServingSimJsonl {
            return match self.next_object() {
                Ok(None) => None,
                Ok(Some(obj)) => Some(self.mooncake_row(&obj)),
                Err(e) => Some(Err(e)),
            };
        }
        loop {
            if let Some(r) = self.lss_pop() {
                return Some(Ok(r));
            }
            if self.eof {
                return None;
            }
            match self.next_object() {
                Ok(None) => self.eof = true,
                Ok(Some(obj)) => {
                    if let Err(e) = self.lss_push(&obj) {
                        return Some(Err(e));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl Iterator for JsonlTrace {
    type Item = Result<Request>;

    fn next(&mut self) -> Option<Result<Request>> {
        if self.done {
            return None;
        }
        let item = self.next_item();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// A token count field of a JSON object.
pub(super) fn tokens(obj: &Map<String, Value>, key: &str) -> Result<u32, String> {
    match obj.get(key) {
        None => Err("missing".into()),
        Some(v) => json_tokens(v),
    }
}

/// A JSON value as a token count.
pub(super) fn json_tokens(v: &Value) -> Result<u32, String> {
    match v {
        Value::Number(n) => parse::tokens(&n.to_string()),
        other => Err(format!("not a number: {other}")),
    }
}

/// A time field in seconds (a finite, non-negative JSON number).
fn seconds(obj: &Map<String, Value>, key: &str) -> Result<f64, String> {
    match obj.get(key) {
        None => Err("missing".into()),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) if t.is_finite() && t >= 0.0 => Ok(t),
            Some(t) if t < 0.0 => Err(format!("negative: {n}")),
            _ => Err(format!("not a finite number: {n}")),
        },
        Some(v) => Err(format!("not a number: {v}")),
    }
}
