//! `servesim trace`: generate synthetic traces, summarise and convert trace files.

use crate::trace::{
    open_trace, open_trace_as, ArrivalProcess, LengthDist, LengthModel, NativeWriter, Request,
    SynthConfig, SynthLimit, SynthTrace, TraceFormat, TraceOptions, TraceReader, TraceStats,
    DEFAULT_HASH_BLOCK_TOKENS,
};
use crate::units::{checked_secs_to_nanos, SimDuration};
use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Generate, summarise and convert request traces.
#[derive(Debug, Args)]
pub struct TraceCommand {
    /// What to do with traces.
    #[command(subcommand)]
    pub command: TraceSubcommand,
}

/// `servesim trace` subcommands.
#[derive(Debug, Subcommand)]
pub enum TraceSubcommand {
    /// Generate a seeded synthetic trace as native CSV (same flags and seed: same bytes).
    Gen(GenArgs),
    /// Print summary statistics of a trace file (any supported format).
    Stats(StatsArgs),
    /// Convert a trace file (any supported format) to native CSV, optionally cut and
    /// rescaled.
    Convert(ConvertArgs),
}

/// Arrival processes on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArrivalKind {
    /// Poisson process at --rate-rps (exponential gaps).
    Poisson,
    /// Gamma-distributed gaps at --rate-rps with coefficient of variation --cv.
    Gamma,
    /// Evenly spaced at --rate-rps.
    Constant,
    /// Every request at time 0.
    Burst,
    /// --concurrency clients, each sending a request when its previous one finishes.
    ClosedLoop,
}

/// Flags of `servesim trace gen`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("limit").required(true).args(["num_requests", "duration_s"])))]
pub struct GenArgs {
    /// Arrival process. The first request arrives at time 0. closed-loop writes every
    /// arrival as 0: the simulator issues the first --concurrency requests at once and
    /// each later one when an earlier one finishes.
    #[arg(long, value_enum, default_value_t = ArrivalKind::Poisson)]
    pub arrival: ArrivalKind,

    /// Mean arrival rate in requests per second (poisson, gamma, constant).
    #[arg(long, value_name = "R")]
    pub rate_rps: Option<f64>,

    /// Coefficient of variation of the inter-arrival gaps (gamma only): 1 is Poisson,
    /// above 1 burstier, below 1 more regular.
    #[arg(long, value_name = "C")]
    pub cv: Option<f64>,

    /// Number of clients of a closed loop (closed-loop only).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,

    /// Number of requests to generate.
    #[arg(long, value_name = "N")]
    pub num_requests: Option<u64>,

    /// Generate the arrivals in [0, S) seconds (poisson, gamma, constant).
    #[arg(long, value_name = "S")]
    pub duration_s: Option<f64>,

    /// Prompt lengths in tokens: fixed:N (or N), uniform:LO:HI (inclusive), or
    /// lognormal:MEAN:CV[:MAX] (arithmetic mean and coefficient of variation, rounded,
    /// clamped to [1, MAX]).
    #[arg(
        long,
        value_name = "SPEC",
        required_unless_present = "resample_from",
        conflicts_with = "resample_from"
    )]
    pub input_len: Option<LengthDist>,

    /// Output lengths in tokens, same forms as --input-len.
    #[arg(
        long,
        value_name = "SPEC",
        required_unless_present = "resample_from",
        conflicts_with = "resample_from"
    )]
    pub output_len: Option<LengthDist>,

    /// Draw (input, output) length pairs, with replacement, from the requests of this
    /// trace (any supported format) instead of --input-len and --output-len.
    #[arg(long, value_name = "FILE")]
    pub resample_from: Option<PathBuf>,

    /// Seed of every random draw (arrivals, input lengths and output lengths use
    /// independent streams of it).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// File to write (default: standard output).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Output formats of `servesim trace stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    /// Aligned text for people.
    Table,
    /// One JSON object for scripts.
    Json,
}

/// Flags of `servesim trace stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Trace file: native CSV, Azure LLM 2023 CSV, Mooncake CSV or JSONL, LLMServingSim
    /// requests.jsonl, or vLLM benchmark result .json (detected from the first line).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// How to print the statistics.
    #[arg(long, value_enum, default_value_t = StatsFormat::Table)]
    pub format: StatsFormat,

    /// How to cut and rescale the trace first.
    #[command(flatten)]
    pub opts: TraceOptsArgs,
}

/// Flags of `servesim trace convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Trace file to read (any supported format, detected from the first line).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// File to write (default: standard output).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Always write the session_id, prefix_hash_ids and hash_block_tokens columns (by
    /// default they are written when the first request has a session or prefix hashes).
    #[arg(long)]
    pub extended: bool,

    /// How to cut and rescale the trace first.
    #[command(flatten)]
    pub opts: TraceOptsArgs,
}

/// Trace reading, cutting and rescaling flags (applied in this order: window, scale, cap).
#[derive(Debug, Args)]
pub struct TraceOptsArgs {
    /// Read the file as this format instead of detecting it: native, azure-2023,
    /// mooncake, mooncake-jsonl, llmservingsim-jsonl or vllm-bench-json.
    #[arg(long, value_name = "FORMAT")]
    pub trace_format: Option<TraceFormat>,

    /// Keep the arrivals in [START, END) seconds of the trace's own time and shift them
    /// to start at 0. END may be left out (`600:`).
    #[arg(long, value_name = "START:END", value_parser = parse_window)]
    pub time_window: Option<(f64, f64)>,

    /// Multiply arrival times by this factor (2 halves the request rate).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub time_scale: f64,

    /// Divide arrival times by this factor (2 doubles the request rate).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub rate_scale: f64,

    /// Keep at most this many requests (after the window).
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,

    /// Seed for arrivals that must be generated: vLLM benchmark JSON files do not record
    /// send times, so they are redrawn from the file's request_rate.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Block size in tokens of native prefix_hash_ids when the file has no
    /// hash_block_tokens column.
    #[arg(long, value_name = "TOKENS", default_value_t = DEFAULT_HASH_BLOCK_TOKENS)]
    pub hash_block_tokens: u32,
}

impl TraceOptsArgs {
    /// Open `file` with these flags.
    fn open(&self, file: &Path) -> crate::Result<TraceReader> {
        let opts = self.to_options();
        match self.trace_format {
            Some(format) => open_trace_as(file, format, &opts),
            None => open_trace(file, &opts),
        }
    }

    fn to_options(&self) -> TraceOptions {
        TraceOptions {
            time_scale: self.time_scale,
            rate_scale: self.rate_scale,
            max_requests: self.max_requests,
            time_window: self.time_window,
            seed: self.seed,
            native_hash_block_tokens: self.hash_block_tokens,
        }
    }
}

/// `START:END` or `START:` in seconds.
fn parse_window(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("expected START:END in seconds, got `{s}`"))?;
    let start: f64 = a
        .trim()
        .parse()
        .map_err(|_| format!("start `{a}` is not a number"))?;
    let end: f64 = match b.trim() {
        "" => f64::INFINITY,
        b => b
            .parse()
            .map_err(|_| format!("end `{b}` is not a number"))?,
    };
    if !(start.is_finite() && start >= 0.0) {
        return Err(format!(
            "start must be finite and non-negative, got {start}"
        ));
    }
    if end.is_nan() || end <= start {
        return Err(format!("end must be after start, got {start}:{end}"));
    }
    Ok((start, end))
}

/// Run a `servesim trace` command.
pub fn run(cmd: TraceCommand) -> Result<()> {
    match cmd.command {
        TraceSubcommand::Gen(args) => gen(args),
        TraceSubcommand::Stats(args) => stats(args),
        TraceSubcommand::Convert(args) => convert(args),
    }
}

fn arrival_process(a: &GenArgs) -> Result<ArrivalProcess> {
    let needs_rate = matches!(
        a.arrival,
        ArrivalKind::Poisson | ArrivalKind::Gamma | ArrivalKind::Constant
    );
    let name = a
        .arrival
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned());
    if !needs_rate && a.rate_rps.is_some() {
        bail!("--rate-rps does not apply to --arrival {name}");
    }
    if a.arrival != ArrivalKind::Gamma && a.cv.is_some() {
        bail!("--cv applies only to --arrival gamma");
    }
    if a.arrival != ArrivalKind::ClosedLoop && a.concurrency.is_some() {
        bail!("--concurrency applies only to --arrival closed-loop");
    }
    let rate = || {
        a.rate_rps
            .with_context(|| format!("--arrival {name} needs --rate-rps"))
    };
    Ok(match a.arrival {
        ArrivalKind::Poisson => ArrivalProcess::Poisson { rate_rps: rate()? },
        ArrivalKind::Gamma => ArrivalProcess::Gamma {
            rate_rps: rate()?,
            cv: a.cv.context("--arrival gamma needs --cv")?,
        },
        ArrivalKind::Constant => ArrivalProcess::Constant { rate_rps: rate()? },
        ArrivalKind::Burst => ArrivalProcess::Burst,
        ArrivalKind::ClosedLoop => ArrivalProcess::ClosedLoop {
            concurrency: a
                .concurrency
                .context("--arrival closed-loop needs --concurrency")?,
        },
    })
}

fn gen(a: GenArgs) -> Result<()> {
    let arrival = arrival_process(&a)?;
    let lengths = match (&a.resample_from, &a.input_len, &a.output_len) {
        (Some(path), _, _) => LengthModel::resample_from(path, &TraceOptions::default())
            .with_context(|| format!("reading lengths to resample from {}", path.display()))?,
        (None, Some(input), Some(output)) => LengthModel::Independent {
            input: input.clone(),
            output: output.clone(),
        },
        _ => bail!("give --input-len and --output-len, or --resample-from"),
    };
    let limit = match (a.num_requests, a.duration_s) {
        (Some(n), None) => SynthLimit::Requests(n),
        (None, Some(s)) => match checked_secs_to_nanos(s) {
            Some(ns) if ns > 0 => SynthLimit::Duration(SimDuration::from_nanos(ns)),
            _ => bail!("--duration-s must be positive and finite, got {s}"),
        },
        _ => bail!("give exactly one of --num-requests and --duration-s"),
    };
    let trace = SynthTrace::new(SynthConfig {
        arrival,
        lengths,
        limit,
        seed: a.seed,
    })?;
    if let Some(c) = trace.arrival_process().closed_loop_concurrency() {
        eprintln!(
            "note: closed-loop trace: every arrival is written as 0; simulate it with a \
             closed loop of {c} clients"
        );
    }
    write_native(a.output.as_deref(), false, trace.map(Ok))
}

fn stats(a: StatsArgs) -> Result<()> {
    let reader = a.opts.open(&a.file)?;
    let format = reader.format().unwrap_or(TraceFormat::Native);
    let max_concurrency = reader.max_concurrency();
    let s = TraceStats::from_requests(reader)?;
    let mut out = io::stdout().lock();
    match a.format {
        StatsFormat::Json => {
            /// `trace stats --format json` output, fields in this order.
            #[derive(serde::Serialize)]
            struct Output<'a> {
                file: String,
                format: &'a str,
                max_concurrency: Option<u32>,
                stats: &'a TraceStats,
            }
            let v = Output {
                file: a.file.display().to_string(),
                format: format.name(),
                max_concurrency,
                stats: &s,
            };
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        StatsFormat::Table => write_table(&mut out, &a.file, format, &s)?,
    }
    out.flush()?;
    Ok(())
}

fn write_table(
    out: &mut impl Write,
    file: &Path,
    format: TraceFormat,
    s: &TraceStats,
) -> io::Result<()> {
    writeln!(out, "trace          {} ({format})", file.display())?;
    writeln!(out, "requests       {}", s.count)?;
    writeln!(out, "span           {:.3} s", s.span_s)?;
    match s.mean_rate_rps {
        Some(r) => writeln!(out, "mean rate      {r:.3} req/s")?,
        None => writeln!(out, "mean rate      n/a (all arrivals at one instant)")?,
    }
    writeln!(
        out,
        "{:<14} {:>10} {:>8} {:>8} {:>8} {:>8} {:>14}",
        "tokens", "mean", "p50", "p90", "p99", "max", "total"
    )?;
    for (name, l, total) in [
        ("input", &s.input_tokens, s.total_input_tokens),
        ("output", &s.output_tokens, s.total_output_tokens),
    ] {
        writeln!(
            out,
            "{name:<14} {:>10.1} {:>8} {:>8} {:>8} {:>8} {:>14}",
            l.mean, l.p50, l.p90, l.p99, l.max, total
        )?;
    }
    writeln!(out, "{:<14} {:>61}", "all", s.total_tokens)
}

fn convert(a: ConvertArgs) -> Result<()> {
    let mut reader = a.opts.open(&a.file)?.peekable();
    let extended = a.extended
        || matches!(reader.peek(), Some(Ok(r)) if r.session_id.is_some() || !r.prefix_hash_ids.is_empty());
    write_native(a.output.as_deref(), extended, reader)
}

/// Write `requests` as native CSV to `path` (standard output if `None`). A file left
/// half-written by an error is removed.
fn write_native(
    path: Option<&Path>,
    extended: bool,
    requests: impl Iterator<Item = crate::Result<Request>>,
) -> Result<()> {
    fn pump<W: Write>(
        out: W,
        extended: bool,
        requests: impl Iterator<Item = crate::Result<Request>>,
    ) -> Result<()> {
        let mut w = NativeWriter::new(out, extended);
        for r in requests {
            w.write(&r?)?;
        }
        w.finish()?;
        Ok(())
    }
    match path {
        None => pump(BufWriter::new(io::stdout().lock()), extended, requests),
        Some(p) => {
            let file = File::create(p).with_context(|| format!("creating {}", p.display()))?;
            let result = pump(BufWriter::new(file), extended, requests)
                .with_context(|| format!("writing {}", p.display()));
            if result.is_err() {
                let _ = std::fs::remove_file(p);
            }
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn run_args(args: &[&str]) -> Result<()> {
        let cli = crate::cli::Cli::try_parse_from(
            std::iter::once("servesim").chain(args.iter().copied()),
        )?;
        crate::cli::run(cli)
    }

    #[test]
    fn gen_is_byte_identical_per_seed() {
        let dir = tempfile::tempdir().unwrap();
        let out = |name: &str, seed: &str| {
            let p = dir.path().join(name);
            run_args(&[
                "trace",
                "gen",
                "--arrival",
                "gamma",
                "--rate-rps",
                "7",
                "--cv",
                "3",
                "--num-requests",
                "2000",
                "--input-len",
                "lognormal:900:1.1:8192",
                "--output-len",
                "uniform:1:400",
                "--seed",
                seed,
                "-o",
                p.to_str().unwrap(),
            ])
            .unwrap();
            std::fs::read(p).unwrap()
        };
        let a = out("a.csv", "5");
        assert_eq!(a, out("b.csv", "5"));
        assert_ne!(a, out("c.csv", "6"));
        assert!(
            a.starts_with(b"request_id,arrival_time_s,input_tokens,output_tokens\n0,0.000000000,")
        );
        assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 2001);
    }

    #[test]
    fn gen_rejects_flags_that_do_not_apply() {
        let base = [
            "trace",
            "gen",
            "--num-requests",
            "3",
            "--input-len",
            "5",
            "--output-len",
            "5",
        ];
        let with = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            run_args(&v).unwrap_err().to_string()
        };
        assert_eq!(
            with(&["--rate-rps", "1", "--cv", "2"]),
            "--cv applies only to --arrival gamma"
        );
        assert_eq!(
            with(&["--arrival", "closed-loop"]),
            "--arrival closed-loop needs --concurrency"
        );
        assert_eq!(
            with(&["--arrival", "burst", "--rate-rps", "2"]),
            "--rate-rps does not apply to --arrival burst"
        );
        assert_eq!(
            with(&["--arrival", "poisson"]),
            "--arrival poisson needs --rate-rps"
        );
        assert!(with(&["--rate-rps=-1"]).contains("`rate_rps` must be positive and finite, got -1"));
    }

    #[test]
    fn convert_cuts_and_keeps_hash_columns() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.csv");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/mooncake_conv_first1000.csv");
        run_args(&[
            "trace",
            "convert",
            src.to_str().unwrap(),
            "--time-window",
            "60:120",
            "--rate-scale",
            "2",
            "-o",
            out.to_str().unwrap(),
        ])
        .unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("request_id,arrival_time_s,input_tokens,output_tokens,session_id,prefix_hash_ids,hash_block_tokens\n"));
        let reqs: Vec<Request> = open_trace(&out, &TraceOptions::default())
            .unwrap()
            .collect::<crate::Result<_>>()
            .unwrap();
        assert!(!reqs.is_empty());
        assert!(reqs
            .iter()
            .all(|r| r.hash_block_tokens == 512 && r.arrival.as_secs_f64() < 30.0));
    }

    #[test]
    fn a_failed_convert_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("bad.csv");
        std::fs::write(
            &src,
            "arrival_time_s,input_tokens,output_tokens\n0,1,1\n0,x,1\n",
        )
        .unwrap();
        let out = dir.path().join("out.csv");
        let e = run_args(&[
            "trace",
            "convert",
            src.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(
            format!("{e:#}")
                .ends_with("bad.csv:3: field `input_tokens`: not a non-negative integer: `x`"),
            "{e:#}"
        );
        assert!(!out.exists());
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("60:120"), Ok((60.0, 120.0)));
        assert_eq!(parse_window("60:"), Ok((60.0, f64::INFINITY)));
        assert!(parse_window("60").is_err());
        assert!(parse_window("-1:5").is_err());
        assert!(parse_window("5:5").is_err());
        assert!(parse_window("a:5").is_err());
    }
}
