//! In-sample or out-of-sample: whether any parameter a validation used was fitted on
//! the measurements it is scored on.
//!
//! Fitted parameters say what they were fitted on: a serving stack's constants list
//! their sets in `fitted_on` (`ServingStack::fitted_sections`), and a roofline
//! parameter file written by `servesim calibrate` names its data files in its header, a
//! calibrated link (`profiles/<gpu>/network/link_calibration.toml`) in its source.
//! A validation set is known by the folders its measurement lies in (the set's folder
//! under `validation/`, as in `../shared/validation/blis-vllm015-h100/<run>.json`) and
//! the file's own name; the validation is **in-sample** when one of those names is among
//! the fitting data of a parameter it used.

use crate::stack::ServingStack;
use serde::Serialize;
use std::path::Path;

/// Whether a validation is scored on data its parameters were fitted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SampleStatus {
    /// True when at least one parameter used was fitted on this measurement's set.
    pub in_sample: bool,
    /// The fitted parameters used, each with the sets it was fitted on.
    pub fitted_parameters: Vec<(String, Vec<String>)>,
    /// The names the measurement is known by (its folders and file stem).
    pub set_names: Vec<String>,
}

impl SampleStatus {
    /// One line for reports.
    pub fn describe(&self) -> String {
        let used: Vec<String> = self
            .fitted_parameters
            .iter()
            .filter(|(_, sets)| !sets.is_empty())
            .map(|(p, sets)| format!("{p} [fitted on {}]", sets.join(", ")))
            .collect();
        match (self.in_sample, used.is_empty()) {
            (true, _) => format!(
                "IN-SAMPLE: a parameter used was fitted on this set ({})",
                used.join("; ")
            ),
            (false, true) => {
                "OUT-OF-SAMPLE: no parameter used was fitted on any validation set".into()
            }
            (false, false) => format!(
                "OUT-OF-SAMPLE: the fitted parameters used were fitted on other sets ({})",
                used.join("; ")
            ),
        }
    }
}

/// The names `source` is known by: every folder above it and its file stem, lowercase.
fn set_names(source: &Path) -> Vec<String> {
    let mut names: Vec<String> = source
        .ancestors()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .collect();
    if let Some(stem) = source.file_stem() {
        names.push(stem.to_string_lossy().to_ascii_lowercase());
    }
    // Folders that hold sets are not set names themselves.
    names.retain(|n| !n.is_empty() && n != "." && n != ".." && n != "validation");
    names.sort();
    names.dedup();
    names
}

/// The sets a fitted parameter file names as its data (a calibrated roofline file's
/// `# Data:` lines, a link calibration's source: paths with the set's folder).
fn file_sets(path: &Path, candidates: &[String]) -> Vec<String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_default()
        .to_ascii_lowercase();
    candidates
        .iter()
        .filter(|c| text.contains(&format!("/{c}/")))
        .cloned()
        .collect()
}

/// Whether the fitted parameter file `file` (a link calibration) was fitted on the set
/// the measurement at `source` belongs to: it then describes the very system that
/// measurement ran on.
pub(crate) fn fitted_on_source(file: &Path, source: &Path) -> bool {
    !file_sets(file, &set_names(source)).is_empty()
}

/// The status of a validation of `source` that used `stack` and the fitted parameter
/// files `files` (a calibrated roofline file, a calibrated link).
pub fn status(stack: &ServingStack, files: &[std::path::PathBuf], source: &Path) -> SampleStatus {
    let names = set_names(source);
    let mut params: Vec<(String, Vec<String>)> = stack
        .fitted_sections()
        .into_iter()
        .map(|(section, sets)| (format!("{} {section}", stack.name), sets.to_vec()))
        .collect();
    for f in files {
        params.push((f.display().to_string(), file_sets(f, &names)));
    }
    let in_sample = params.iter().any(|(_, sets)| {
        sets.iter()
            .any(|s| names.iter().any(|n| n.eq_ignore_ascii_case(s)))
    });
    SampleStatus {
        in_sample,
        fitted_parameters: params,
        set_names: names,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::DataPaths;

    #[test]
    fn a_set_named_in_fitted_on_is_in_sample() {
        let mut stack = ServingStack::load(&DataPaths::builtin(), None).unwrap();
        stack.execution.host.fitted_on = vec!["blis-vllm015-h100".into()];
        stack.api_server.fitted_on.clear();
        let inside = Path::new("../shared/validation/blis-vllm015-h100/run.json");
        let s = status(&stack, &[], inside);
        assert!(s.in_sample, "{s:?}");
        assert!(s.describe().starts_with("IN-SAMPLE"), "{}", s.describe());
        let other = Path::new("../shared/validation/llmservingsim-vllm-bench/RTX4090_x");
        let s = status(&stack, &[], other);
        assert!(!s.in_sample);
        assert!(
            s.describe().contains("fitted on other sets"),
            "{}",
            s.describe()
        );
        // A figure chosen by reading a set makes a replay of that set in-sample too.
        stack.execution.host.chosen_on = vec!["runs_of_one_release".into()];
        let read = Path::new("measurements/some-folder/runs_of_one_release.csv");
        let s = status(&stack, &[], read);
        assert!(s.in_sample, "{s:?}");
        assert!(
            s.describe().contains("chosen by reading"),
            "{}",
            s.describe()
        );
        stack.execution.host.chosen_on.clear();
        stack.execution.host.fitted_on.clear();
        let s = status(&stack, &[], other);
        assert!(
            s.describe().contains("no parameter used was fitted"),
            "{}",
            s.describe()
        );
    }

    #[test]
    fn a_calibrated_roofline_file_names_its_sets_in_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a100.toml");
        std::fs::write(
            &f,
            "# Data:\n#   ../shared/validation/argonne-llm-inference-bench/All_results.csv\n",
        )
        .unwrap();
        let mut stack = ServingStack::load(&DataPaths::builtin(), None).unwrap();
        stack.execution.host.fitted_on.clear();
        stack.api_server.fitted_on.clear();
        let src = Path::new("x/argonne-llm-inference-bench/All_results.csv");
        assert!(status(&stack, std::slice::from_ref(&f), src).in_sample);
        let src = Path::new("x/splitwise-perf-model/perf_model.csv");
        assert!(!status(&stack, std::slice::from_ref(&f), src).in_sample);
    }
}
