//! `servesim._servesim`: the native half of the Python package.
//!
//! Every function takes a command line *after* `servesim` (the Python wrapper builds it
//! from keyword arguments, so names and defaults are the CLI's own), parses it with the
//! CLI's clap definitions ([`servesim::cli::Cli`]) and runs the command's library
//! function with the GIL released. Results come back as JSON text (summaries, rows) and
//! as per-column lists that the wrapper turns into Arrow tables; errors are
//! `ServesimError` with the CLI's message (file, line and field where it has them).

use clap::Parser;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use servesim::cli::{Cli, Command};
use servesim::engine::RequestRecord;
use servesim::metrics::TimeSeriesRow;
use std::ffi::OsString;

mod plan;
mod validate;

pyo3::create_exception!(
    _servesim,
    ServesimError,
    PyException,
    "An error servesim reported: bad input (naming file, line and field, or flag), an impossible deployment, a failed run."
);

/// The command line `servesim ARGV…`, parsed as the binary parses it (vLLM's short
/// flags such as `-tp` included).
fn parse(argv: Vec<String>) -> PyResult<Cli> {
    let args =
        std::iter::once(OsString::from("servesim")).chain(argv.into_iter().map(OsString::from));
    let expanded = servesim::cli::args::expand_vllm_short_flags(args);
    Cli::try_parse_from(expanded).map_err(|e| ServesimError::new_err(e.render().to_string()))
}

/// `servesim NAME ARGV…` parsed, with its data paths.
pub(crate) fn command(
    name: &str,
    argv: Vec<String>,
) -> PyResult<(Command, servesim::paths::DataPaths)> {
    let cli = parse(std::iter::once(name.to_owned()).chain(argv).collect())?;
    let paths = servesim::cli::data_paths(&cli).map_err(fail)?;
    Ok((cli.command, paths))
}

/// The error for a command line that parsed as another command (a `--` trick).
pub(crate) fn not_a(name: &str) -> PyErr {
    ServesimError::new_err(format!("not a {name} command line"))
}

pub(crate) fn fail(e: anyhow::Error) -> PyErr {
    ServesimError::new_err(format!("{e:#}"))
}

pub(crate) fn json(v: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| ServesimError::new_err(e.to_string()))
}

/// `d[name] = [f(row) for row in rows]` for each `name => f`.
macro_rules! columns {
    ($d:expr, $rows:expr, { $($name:literal => $f:expr),+ $(,)? }) => {
        $( $d.set_item($name, $rows.iter().map($f).collect::<Vec<_>>())?; )+
    };
}

/// `requests.csv`'s columns, one list per column.
fn request_columns<'py>(py: Python<'py>, rows: &[RequestRecord]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    columns!(d, rows, {
        "request_id" => |r| r.request_id,
        "replica" => |r| r.replica,
        "arrival_time_s" => |r| r.arrival_time_s,
        "input_tokens" => |r| r.input_tokens,
        "output_tokens" => |r| r.output_tokens,
        "scheduled_time_s" => |r| r.scheduled_time_s,
        "first_token_time_s" => |r| r.first_token_time_s,
        "finish_time_s" => |r| r.finish_time_s,
        "ttft_s" => |r| r.ttft_s,
        "tpot_s" => |r| r.tpot_s,
        "e2e_s" => |r| r.e2e_s,
        "queue_s" => |r| r.queue_s,
        "preemptions" => |r| r.preemptions,
        "prefix_hit_tokens" => |r| r.prefix_hit_tokens,
        "status" => |r| r.status.as_str(),
        "attempts" => |r| r.attempts,
    });
    Ok(d)
}

/// `timeseries.csv`'s base columns, one list per column.
fn timeseries_columns<'py>(
    py: Python<'py>,
    rows: &[TimeSeriesRow],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    columns!(d, rows, {
        "time_s" => |r| r.time_s,
        "running" => |r| r.running,
        "waiting" => |r| r.waiting,
        "kv_blocks_used" => |r| r.kv_blocks_used,
        "batch_tokens" => |r| r.batch_tokens,
    });
    Ok(d)
}

/// `servesim simulate ARGV…` without printing: a dict with `summary_json`,
/// `requests` and `timeseries` (column lists), `run_name` and `output_dir`.
#[pyfunction]
fn simulate(py: Python<'_>, argv: Vec<String>) -> PyResult<Py<PyDict>> {
    let (Command::Simulate(args), paths) = command("simulate", argv)? else {
        return Err(not_a("simulate"));
    };
    let out = py
        .detach(|| servesim::cli::simulate::simulate(*args, &paths, true))
        .map_err(fail)?;
    let d = PyDict::new(py);
    d.set_item("summary_json", json(&out.result.summary)?)?;
    d.set_item("requests", request_columns(py, &out.result.requests)?)?;
    d.set_item(
        "timeseries",
        timeseries_columns(py, &out.result.timeseries)?,
    )?;
    d.set_item("run_name", &out.run_name)?;
    d.set_item(
        "output_dir",
        out.output_dir.as_ref().map(|p| p.display().to_string()),
    )?;
    Ok(d.unbind())
}

/// `servesim list ARGV…`: the rows `--format json` prints, as JSON text.
#[pyfunction]
fn list(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    let (Command::List(args), paths) = command("list", argv)? else {
        return Err(not_a("list"));
    };
    py.detach(|| servesim::cli::list::rows_json(&args, &paths))
        .map_err(fail)
}

/// `servesim sweep ARGV…`: `points.json`'s text (one object per point); the CLI's
/// files too when `write` (into `--output-dir`, default output/sweep-NAME/).
#[pyfunction]
fn sweep(py: Python<'_>, argv: Vec<String>, write: bool) -> PyResult<String> {
    let (Command::Sweep(args), paths) = command("sweep", argv)? else {
        return Err(not_a("sweep"));
    };
    py.detach(|| {
        let out = servesim::cli::sweep::points(&args, &paths)?;
        if write {
            servesim::cli::sweep::write(&args, &out)?;
        }
        Ok(servesim::plan::table::points_json(&out.rows))
    })
    .map_err(fail)
}

/// `servesim estimate ARGV…`: what `--format json` prints (an object for one batch,
/// an array for a sweep of batches).
#[pyfunction]
fn estimate(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    let (Command::Estimate(args), paths) = command("estimate", argv)? else {
        return Err(not_a("estimate"));
    };
    py.detach(|| servesim::cli::estimate::json(&args, &paths))
        .map_err(fail)
}

/// `servesim memory ARGV…`: what `--format json` prints (a record, an array of
/// devices, or a ranking), with `--chart` drawn. A plan that does not fit is a result
/// (`fits` false) rather than the command's error.
#[pyfunction]
fn memory(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    let (Command::Memory(args), paths) = command("memory", argv)? else {
        return Err(not_a("memory"));
    };
    py.detach(|| servesim::cli::memory::json(&args, &paths))
        .map_err(fail)
}

/// The version of the servesim library this module was built from.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _servesim(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ServesimError", m.py().get_type::<ServesimError>())?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(list, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(estimate, m)?)?;
    m.add_function(wrap_pyfunction!(memory, m)?)?;
    m.add_function(wrap_pyfunction!(plan::plan, m)?)?;
    m.add_class::<plan::Plan>()?;
    m.add_function(wrap_pyfunction!(validate::validate, m)?)?;
    m.add_class::<validate::Validation>()?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    Ok(())
}
