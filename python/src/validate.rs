//! `servesim validate` from Python: the comparison run once, kept native so that its
//! per-row values reach Python as columns and the CLI's files can be written later.

use crate::{command, fail, json, not_a, ServesimError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use servesim::cli::validate::{ValidateOutcome, Validated};
use servesim::cli::Command;
use servesim::validate::report::error_pct;
use std::path::PathBuf;

/// A validation, run: a measured run compared with its simulation, or a table's sets.
#[pyclass(module = "servesim._servesim", name = "Validation", frozen)]
pub struct Validation(Validated);

impl Validation {
    /// The comparison of set `name`, or of the run when `name` is None.
    fn find(&self, name: Option<&str>) -> PyResult<&servesim::validate::Validation> {
        match (&self.0.outcome, name) {
            (ValidateOutcome::Run { validation, .. }, None) => Ok(validation),
            (ValidateOutcome::Sets(s), Some(name)) => s
                .sets
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .ok_or_else(|| ServesimError::new_err(format!("no set named {name:?}"))),
            (ValidateOutcome::Run { .. }, Some(_)) => Err(ServesimError::new_err(
                "a measured run has no sets: leave out the name",
            )),
            (ValidateOutcome::Sets(_), None) => Err(ServesimError::new_err(
                "a table of sets: name the set (see sets())",
            )),
        }
    }
}

#[pymethods]
impl Validation {
    /// `run` (one measured run) or `sets` (a table validated set by set).
    fn kind(&self) -> &'static str {
        match self.0.outcome {
            ValidateOutcome::Run { .. } => "run",
            ValidateOutcome::Sets(_) => "sets",
        }
    }

    /// The validation's name.
    fn name(&self) -> &str {
        &self.0.name
    }

    /// `validation.json`'s text for a run, `summary.json`'s for a table of sets.
    fn summary(&self) -> PyResult<String> {
        match &self.0.outcome {
            ValidateOutcome::Run { validation, .. } => json(validation),
            ValidateOutcome::Sets(s) => Ok(s.summary.clone()),
        }
    }

    /// The names of the sets that ran, in the table's order (none for a run).
    fn sets(&self) -> Vec<String> {
        match &self.0.outcome {
            ValidateOutcome::Run { .. } => Vec::new(),
            ValidateOutcome::Sets(s) => s.sets.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    /// `validation.json`'s text of set `name` (None: the run).
    #[pyo3(signature = (name=None))]
    fn validation(&self, name: Option<&str>) -> PyResult<String> {
        json(self.find(name)?)
    }

    /// `comparison.csv`'s columns of set `name` (None: the run), one list per column:
    /// the key columns as text, the measured and simulated values and the error in %
    /// as floats (NaN where missing).
    #[pyo3(signature = (name=None))]
    fn comparison<'py>(&self, py: Python<'py>, name: Option<&str>) -> PyResult<Bound<'py, PyDict>> {
        let rows = &self.find(name)?.rows;
        let header = rows.header();
        let d = PyDict::new(py);
        let mut names = header.iter();
        for (k, col) in rows.key_columns.iter().enumerate() {
            names.next();
            let cells: Vec<&str> = rows.keys.iter().map(|r| r[k].as_str()).collect();
            d.set_item(*col, cells)?;
        }
        for (_, sim, meas) in &rows.metrics {
            let errors: Vec<f64> = sim
                .iter()
                .zip(meas)
                .map(|(&s, &m)| error_pct(s, m))
                .collect();
            for values in [meas, sim, &errors] {
                let name = names.next().expect("three columns per metric");
                d.set_item(name, values)?;
            }
        }
        Ok(d)
    }

    /// Write the CLI's files into `dir`: `validation.json`, `comparison.csv` and
    /// `validation.svg` for a run or for set `name`; `summary.json` and a folder per set
    /// for a whole table.
    #[pyo3(signature = (dir, name=None))]
    fn write(&self, py: Python<'_>, dir: PathBuf, name: Option<&str>) -> PyResult<()> {
        if name.is_none() {
            return py.detach(|| self.0.write(&dir)).map_err(fail);
        }
        let v = self.find(name)?;
        py.detach(|| v.write(&dir)).map_err(|e| fail(e.into()))
    }
}

/// `servesim validate ARGV…` without printing; the CLI's files are written too when
/// the command line (or its `--config` file) names an output folder.
#[pyfunction]
pub fn validate(py: Python<'_>, argv: Vec<String>) -> PyResult<Validation> {
    let (Command::Validate(args), paths) = command("validate", argv)? else {
        return Err(not_a("validate"));
    };
    py.detach(|| {
        let v = servesim::cli::validate::validate(*args, &paths)?;
        if let Some(dir) = &v.output_dir {
            v.write(dir)?;
        }
        Ok(Validation(v))
    })
    .map_err(fail)
}
