//! Where the shipped data lives: `model_configs/`, `perf_model/` and `traces/`.
//!
//! The library never reads the environment; the binary resolves a [`DataPaths`] once
//! (flag, then `SERVESIM_DATA_DIR`, then the source checkout the binary was built from,
//! then the current directory) and passes it down.

use crate::model::HubDownload;
use std::path::{Path, PathBuf};

/// A path written inside the config file `config`, resolved as every config's paths
/// are: relative to the folder the file is in (absolute paths stay as they are). Paths
/// given as flags are relative to the working directory, as for any command.
pub fn relative_to_config(config: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    match config.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
        _ => path.to_owned(),
    }
}

/// Roots of the data directories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPaths {
    /// Folder of HuggingFace `config.json` files, as `<org>/<name>.json`.
    pub model_configs: PathBuf,
    /// Folder of hardware specs and latency data.
    pub perf_model: PathBuf,
    /// Folder of sample traces.
    pub traces: PathBuf,
    /// Whether, and from where, a model config missing from the catalog and the local
    /// HuggingFace cache may be downloaded (`--allow-download`). `None`: never.
    pub hub_download: Option<HubDownload>,
}

impl DataPaths {
    /// Data directories under `root` (`root/model_configs`, `root/perf_model`).
    pub fn under(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        DataPaths {
            model_configs: root.join("model_configs"),
            perf_model: root.join("perf_model"),
            traces: root.join("traces"),
            hub_download: None,
        }
    }

    /// The data shipped in this crate's source tree (`CARGO_MANIFEST_DIR` at build time).
    /// Used by tests, examples and as the binary's fallback.
    pub fn builtin() -> Self {
        Self::under(env!("CARGO_MANIFEST_DIR"))
    }

    /// Resolve the data root: `explicit` if given, else `env_value` (the binary passes
    /// `SERVESIM_DATA_DIR`), else the source tree if it still exists, else `cwd`.
    pub fn resolve(explicit: Option<&Path>, env_value: Option<&Path>, cwd: &Path) -> Self {
        if let Some(p) = explicit.or(env_value) {
            return Self::under(p);
        }
        let builtin = Self::builtin();
        if builtin.perf_model.is_dir() && builtin.model_configs.is_dir() {
            builtin
        } else {
            Self::under(cwd)
        }
    }

    /// These paths, allowing model configs to be downloaded through `hub`.
    pub fn with_hub_download(mut self, hub: Option<HubDownload>) -> Self {
        self.hub_download = hub;
        self
    }

    /// Folder of hardware spec files.
    pub fn hardware_dir(&self) -> PathBuf {
        self.perf_model.join("hardware")
    }
}
