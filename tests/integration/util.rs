//! Helpers to run the `servesim` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (holds model_configs/, perf_model/, traces/, examples/).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run `servesim args…` in `cwd` with the shipped data.
pub fn servesim_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_servesim"))
        .args(args)
        .arg("--data-dir")
        .arg(root())
        .current_dir(cwd)
        .output()
        .expect("run servesim")
}

/// Run in a fresh temporary folder.
pub fn servesim(args: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    (servesim_in(dir.path(), args), dir)
}

/// A temporary folder holding one file `name` with `text`, and the file's path.
pub fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write the file");
    (dir, path)
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert success, showing stderr otherwise.
pub fn ok(o: &Output) {
    assert!(o.status.success(), "servesim failed: {}", stderr(o));
}

/// Assert a clean failure (exit code 2, no panic) whose stderr contains every needle.
pub fn fails_with(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2, stderr: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks `{n}`: {err}");
    }
}
