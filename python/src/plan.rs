//! `servesim plan` from Python: the searches run once, kept native so that the CLI's
//! files can be written later into any folder.

use crate::{command, fail, not_a};
use pyo3::prelude::*;
use servesim::cli::plan::PlanOutcome;
use servesim::cli::Command;
use std::path::PathBuf;

/// A plan's searches, run: their rows as JSON, and the CLI's files on demand.
#[pyclass(module = "servesim._servesim", name = "Plan", frozen)]
pub struct Plan(PlanOutcome);

#[pymethods]
impl Plan {
    /// `name`, `slo` (in words), `tolerance`, `target_rps`, `headroom`, and the rows of
    /// `max_rate.csv` and `target.csv` (null without a target), as JSON text.
    fn json(&self) -> PyResult<String> {
        self.0.json().map_err(fail)
    }

    /// Write `max_rate.csv`, `target.csv` (with a target) and `frontier.svg` into `dir`.
    fn write(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        py.detach(|| self.0.write(&dir)).map_err(fail)
    }
}

/// `servesim plan ARGV…` without printing; the CLI's files are written too when the
/// command line names `--output-dir`.
#[pyfunction]
pub fn plan(py: Python<'_>, argv: Vec<String>) -> PyResult<Plan> {
    let (Command::Plan(args), paths) = command("plan", argv)? else {
        return Err(not_a("plan"));
    };
    py.detach(|| {
        let out = servesim::cli::plan::setup(&args, &paths)?.run()?;
        if let Some(dir) = &args.output_dir {
            out.write(dir)?;
        }
        Ok(Plan(out))
    })
    .map_err(fail)
}
