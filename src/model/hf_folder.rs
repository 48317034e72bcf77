//! Model configs outside the shipped catalog: a checkpoint folder holding `config.json`
//! (and NVIDIA ModelOpt's `hf_quant_config.json`), and the local HuggingFace hub cache.
//!
//! The hub cache keeps a downloaded repository `org/name` under
//! `<cache>/models--org--name/snapshots/<revision>/`, with `refs/main` naming the
//! revision the `main` branch pointed at. `<cache>` is `$HF_HUB_CACHE`, else
//! `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
//! `~/.cache/huggingface/hub` (the `huggingface_hub` library's order).

use super::spec::ModelSpec;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The config file of a checkpoint folder.
const CONFIG: &str = "config.json";
/// ModelOpt's quantization description, beside `config.json` in FP8/NVFP4 checkpoints
/// exported before `config.json` carried a `quantization_config`.
const MODELOPT_QUANT: &str = "hf_quant_config.json";

/// The hub cache folder from the environment (see the module docs); `None` without a
/// home directory.
pub fn hub_cache_dir() -> Option<PathBuf> {
    hub_cache_dir_from(&|k| std::env::var_os(k).filter(|v| !v.is_empty()))
}

fn hub_cache_dir_from(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    if let Some(p) = env("HF_HUB_CACHE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = env("HF_HOME") {
        return Some(PathBuf::from(p).join("hub"));
    }
    let cache = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("huggingface").join("hub"))
}

/// The snapshot folder of the repository `id` (`org/name`) in the hub cache `cache`
/// that holds a `config.json`: the revision `refs/main` names, else the last one in
/// name order. `None` when `id` is not `org/name` or the cache does not hold it.
pub fn cached_snapshot(cache: &Path, id: &str) -> Option<PathBuf> {
    cached_snapshot_with(cache, id, CONFIG)
}

/// [`cached_snapshot`] for a snapshot that holds `file` (e.g. `tokenizer.json`).
pub fn cached_snapshot_with(cache: &Path, id: &str, file: &str) -> Option<PathBuf> {
    let (org, name) = id.trim().split_once('/')?;
    if org.is_empty() || name.is_empty() || name.contains('/') {
        return None;
    }
    let repo = cache.join(format!("models--{org}--{name}"));
    let snapshots = repo.join("snapshots");
    let main = std::fs::read_to_string(repo.join("refs").join("main"))
        .ok()
        .map(|r| snapshots.join(r.trim()))
        .filter(|d| d.join(file).is_file());
    if main.is_some() {
        return main;
    }
    let mut revisions: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|d| d.join(file).is_file())
        .collect();
    revisions.sort();
    revisions.pop()
}

/// The model of the checkpoint folder `dir`, named `name` (default: the folder's
/// name). A `hf_quant_config.json` beside a `config.json` without
/// `quantization_config` supplies it (ModelOpt's `quant_algo`).
pub fn from_folder(dir: &Path, name: Option<&str>) -> Result<ModelSpec> {
    let config = dir.join(CONFIG);
    if !config.is_file() {
        return Err(Error::input(
            dir,
            None,
            format!("a model folder must hold {CONFIG}; there is none"),
        ));
    }
    let name = name.map(str::to_owned).unwrap_or_else(|| {
        dir.file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_owned()
    });
    let text = std::fs::read_to_string(&config).map_err(|e| Error::io(&config, e))?;
    let quant = dir.join(MODELOPT_QUANT);
    if !quant.is_file() {
        return ModelSpec::from_json(name, &config, &text);
    }
    let merged = with_modelopt_quantization(&config, &text, &quant)?;
    ModelSpec::from_json(name, &config, &merged)
}

/// `config.json`'s text with a `quantization_config` built from ModelOpt's
/// `hf_quant_config.json` (`quantization.quant_algo`, `exclude_modules`), unless it
/// has one already.
fn with_modelopt_quantization(config: &Path, text: &str, quant: &Path) -> Result<String> {
    let parse = |path: &Path, text: &str| -> Result<serde_json::Value> {
        serde_json::from_str(text).map_err(|e| {
            Error::input_at(path, e.line() as u64, None, format!("not valid JSON: {e}"))
        })
    };
    let mut cfg = parse(config, text)?;
    let Some(obj) = cfg.as_object_mut() else {
        return Ok(text.to_owned());
    };
    if obj.contains_key("quantization_config") {
        return Ok(text.to_owned());
    }
    let qtext = std::fs::read_to_string(quant).map_err(|e| Error::io(quant, e))?;
    let q = parse(quant, &qtext)?;
    let section = q.get("quantization").unwrap_or(&q);
    let Some(algo) = section.get("quant_algo").and_then(|v| v.as_str()) else {
        return Err(Error::input(
            quant,
            Some("quantization.quant_algo"),
            "missing required field",
        ));
    };
    let mut qc = serde_json::Map::new();
    qc.insert("quant_method".into(), "modelopt".into());
    qc.insert("quant_algo".into(), algo.into());
    if let Some(ex) = section.get("exclude_modules") {
        qc.insert("exclude_modules".into(), ex.clone());
    }
    obj.insert("quantization_config".into(), serde_json::Value::Object(qc));
    Ok(cfg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn cache_dir_follows_the_hub_librarys_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let all = env(&[
            ("HF_HUB_CACHE", "/a"),
            ("HF_HOME", "/b"),
            ("XDG_CACHE_HOME", "/c"),
            ("HOME", "/d"),
        ]);
        assert_eq!(hub_cache_dir_from(&all), Some(PathBuf::from("/a")));
        let home = env(&[("HF_HOME", "/b"), ("HOME", "/d")]);
        assert_eq!(hub_cache_dir_from(&home), Some(PathBuf::from("/b/hub")));
        let xdg = env(&[("XDG_CACHE_HOME", "/c"), ("HOME", "/d")]);
        assert_eq!(
            hub_cache_dir_from(&xdg),
            Some(PathBuf::from("/c/huggingface/hub"))
        );
        let plain = env(&[("HOME", "/d")]);
        assert_eq!(
            hub_cache_dir_from(&plain),
            Some(PathBuf::from("/d/.cache/huggingface/hub"))
        );
        assert_eq!(hub_cache_dir_from(&env(&[])), None);
    }

    #[test]
    fn snapshots_prefer_refs_main() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("models--org--m");
        for rev in ["aaa", "bbb"] {
            let d = repo.join("snapshots").join(rev);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(CONFIG), "{}").unwrap();
        }
        assert_eq!(
            cached_snapshot(dir.path(), "org/m"),
            Some(repo.join("snapshots/bbb"))
        );
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "aaa\n").unwrap();
        assert_eq!(
            cached_snapshot(dir.path(), "org/m"),
            Some(repo.join("snapshots/aaa"))
        );
        assert_eq!(cached_snapshot(dir.path(), "org/other"), None);
        assert_eq!(cached_snapshot(dir.path(), "no-org"), None);
        assert_eq!(cached_snapshot(dir.path(), "a/b/c"), None);
    }
}
