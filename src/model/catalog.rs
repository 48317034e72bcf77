//! The shipped model configs and name resolution.
//!
//! A catalog is a folder of `<org>/<name>.json` HF configs. A model is named, in the
//! order [`ModelCatalog::resolve`] tries them, by a shipped full id
//! (`meta-llama/Llama-3.1-8B`) or short name (`llama-3.1-8b`), the path of any config
//! file, a checkpoint folder holding `config.json`, an `org/name` in the local
//! HuggingFace hub cache ([`super::hf_folder`]), or a unique prefix of a shipped id or
//! short name (all names case-insensitive).

use super::spec::ModelSpec;
use crate::error::{closest_names, Error, Result};
use std::path::{Path, PathBuf};

/// How many "did you mean" suggestions an unknown name gets.
const SUGGESTIONS: usize = 3;

/// One config of a catalog, parsed when first needed (at once by [`ModelCatalog::load`],
/// on demand in a catalog from [`ModelCatalog::for_paths`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogEntry {
    /// `org/name`, as the file is named.
    pub id: String,
    /// The config file.
    pub path: PathBuf,
    spec: std::sync::OnceLock<ModelSpec>,
}

impl CatalogEntry {
    /// The part of the id after the organization (`Llama-3.1-8B`).
    pub fn short_name(&self) -> &str {
        short_name(&self.id)
    }

    /// The parsed architecture; an error names the file and field.
    pub fn spec(&self) -> Result<&ModelSpec> {
        if let Some(s) = self.spec.get() {
            return Ok(s);
        }
        let parsed = ModelSpec::from_file_named(&self.path, self.id.clone())?;
        Ok(self.spec.get_or_init(|| parsed))
    }
}

/// `org/name` with both parts non-empty and safe as a path component.
fn is_repo_id(name: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    matches!(name.trim().split_once('/'), Some((org, repo)) if ok(org) && ok(repo))
}

fn short_name(id: &str) -> &str {
    id.rsplit_once('/').map_or(id, |(_, s)| s)
}

/// The model configs of one folder, sorted by id.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelCatalog {
    dir: PathBuf,
    entries: Vec<CatalogEntry>,
    /// Where a model found nowhere else may be downloaded from (`None`: never).
    hub_download: Option<super::HubDownload>,
}

impl ModelCatalog {
    /// Parse every `<org>/<name>.json` under `dir` (other files are ignored).
    ///
    /// Fails on an unreadable folder or on the first malformed config, naming its file
    /// and field.
    pub fn load(dir: &Path) -> Result<ModelCatalog> {
        let catalog = Self::list(dir)?;
        for e in &catalog.entries {
            e.spec()?;
        }
        Ok(catalog)
    }

    /// The files of `dir`, each parsed only when a command needs it.
    fn list(dir: &Path) -> Result<ModelCatalog> {
        let mut entries = Vec::new();
        for org in sorted_children(dir)? {
            if !org.is_dir() {
                continue;
            }
            let Some(org_name) = file_name(&org) else {
                continue;
            };
            for file in sorted_children(&org)? {
                let Some(name) = file_name(&file).and_then(|n| n.strip_suffix(".json")) else {
                    continue;
                };
                if !file.is_file() {
                    continue;
                }
                entries.push(CatalogEntry {
                    id: format!("{org_name}/{name}"),
                    path: file,
                    spec: std::sync::OnceLock::new(),
                });
            }
        }
        entries.sort_by(|a, b| {
            (a.id.to_ascii_lowercase(), &a.id).cmp(&(b.id.to_ascii_lowercase(), &b.id))
        });
        Ok(ModelCatalog {
            dir: dir.to_owned(),
            entries,
            hub_download: None,
        })
    }

    /// The catalog of `paths.model_configs`, downloading unknown `org/name` configs from
    /// the Hub when `paths.hub_download` allows it. Only the configs a command resolves
    /// are parsed (a run reads one of the ~100 files), so a malformed file is reported
    /// when it is named.
    pub fn for_paths(paths: &crate::paths::DataPaths) -> Result<ModelCatalog> {
        let mut catalog = Self::list(&paths.model_configs)?;
        catalog.hub_download = paths.hub_download.clone();
        Ok(catalog)
    }

    /// The folder the catalog was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All entries, sorted by id (case-insensitively).
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The catalog entry `name` denotes: an exact id, else an exact short name, else a
    /// unique prefix of an id or short name (all case-insensitive).
    ///
    /// Several matches at the first level that matches give [`Error::Ambiguous`]; none
    /// gives [`Error::Unknown`] with the closest names.
    pub fn get(&self, name: &str) -> Result<&CatalogEntry> {
        match self.lookup(name) {
            Lookup::One(e) => Ok(e),
            Lookup::Many(candidates) => Err(self.ambiguous(name, candidates)),
            Lookup::None => Err(self.unknown(name)),
        }
    }

    /// The spec `name` denotes: a shipped id or short name; else the path of a config
    /// file (an existing file, or any name ending in `.json`); else a folder holding
    /// `config.json`; else `org/name` in the HuggingFace hub cache
    /// ([`super::hf_folder::hub_cache_dir`]); else a unique prefix of a shipped name
    /// (see [`Self::get`]); else, when downloads are allowed ([`Self::for_paths`]), the
    /// `config.json` of `org/name` fetched from the Hub into that cache.
    pub fn resolve(&self, name: &str) -> Result<ModelSpec> {
        self.resolve_with_cache(name, super::hf_folder::hub_cache_dir().as_deref())
    }

    /// [`Self::resolve`] with the hub cache at `hub_cache` (`None`: no cache).
    pub fn resolve_with_cache(&self, name: &str, hub_cache: Option<&Path>) -> Result<ModelSpec> {
        let exact = |e: &CatalogEntry| {
            e.id.eq_ignore_ascii_case(name.trim())
                || e.short_name().eq_ignore_ascii_case(name.trim())
        };
        if !self.entries.iter().any(exact) {
            let path = Path::new(name);
            // A name ending in `.json` is a path even when missing: report the I/O error.
            if path.is_file() || name.ends_with(".json") {
                return ModelSpec::from_file(path);
            }
            if path.is_dir() {
                return super::hf_folder::from_folder(path, None);
            }
            if let Some(snapshot) =
                hub_cache.and_then(|c| super::hf_folder::cached_snapshot(c, name))
            {
                return super::hf_folder::from_folder(&snapshot, Some(name.trim()));
            }
        }
        match self.get(name) {
            Ok(e) => e.spec().cloned(),
            Err(Error::Unknown { .. }) if self.downloadable(name) => {
                self.download(name.trim(), hub_cache)
            }
            Err(Error::Unknown {
                name: unknown,
                suggestions,
                ..
            }) if is_repo_id(name) => Err(Error::NotDownloaded {
                name: unknown,
                suggestions,
            }),
            Err(e) => Err(e),
        }
    }

    fn downloadable(&self, name: &str) -> bool {
        self.hub_download.is_some() && is_repo_id(name)
    }

    fn download(&self, id: &str, hub_cache: Option<&Path>) -> Result<ModelSpec> {
        let hub = self.hub_download.as_ref().expect("checked by downloadable");
        let cache = hub_cache.ok_or_else(|| {
            Error::Config(format!(
                "cannot download `{id}`: no HuggingFace cache folder (set HF_HOME or HF_HUB_CACHE)"
            ))
        })?;
        let snapshot = super::hub_download::download_config(id, cache, hub)?;
        super::hf_folder::from_folder(&snapshot, Some(id))
    }

    fn lookup(&self, name: &str) -> Lookup<'_> {
        let needle = name.trim().to_ascii_lowercase();
        let levels: [&dyn Fn(&CatalogEntry) -> bool; 3] = [
            &|e| e.id.to_ascii_lowercase() == needle,
            &|e| e.short_name().to_ascii_lowercase() == needle,
            &|e| {
                !needle.is_empty()
                    && (e.id.to_ascii_lowercase().starts_with(&needle)
                        || e.short_name().to_ascii_lowercase().starts_with(&needle))
            },
        ];
        for matches in levels {
            let found: Vec<&CatalogEntry> = self.entries.iter().filter(|e| matches(e)).collect();
            match found.as_slice() {
                [] => continue,
                [one] => return Lookup::One(one),
                many => return Lookup::Many(many.iter().map(|e| e.id.clone()).collect()),
            }
        }
        Lookup::None
    }

    fn ambiguous(&self, name: &str, candidates: Vec<String>) -> Error {
        Error::Ambiguous {
            kind: "model",
            name: name.to_owned(),
            candidates,
        }
    }

    fn unknown(&self, name: &str) -> Error {
        // Compare like with like: full ids when the name has an org, else short names.
        let suggestions = if name.contains('/') {
            closest_names(
                name,
                self.entries.iter().map(|e| e.id.as_str()),
                SUGGESTIONS,
            )
        } else {
            closest_names(
                name,
                self.entries.iter().map(|e| e.short_name()),
                SUGGESTIONS,
            )
            .into_iter()
            .flat_map(|s| {
                self.entries
                    .iter()
                    .filter(move |e| e.short_name() == s)
                    .map(|e| e.id.clone())
            })
            .take(SUGGESTIONS)
            .collect()
        };
        Error::Unknown {
            kind: "model",
            name: name.to_owned(),
            suggestions,
        }
    }
}

/// Which catalog entries a listing keeps (`servesim list models --family --min-params
/// --max-params`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelFilter {
    /// A family name: matches the config's `model_type` by prefix (`qwen3` keeps
    /// `qwen3` and `qwen3_moe`) or the id by substring (`llama` keeps CodeLlama),
    /// case-insensitively, with `-` and `_` alike.
    pub family: Option<String>,
    /// Smallest total parameter count kept, billions.
    pub min_params_b: Option<f64>,
    /// Largest total parameter count kept, billions.
    pub max_params_b: Option<f64>,
}

impl ModelFilter {
    /// Whether `e` passes every given condition.
    pub fn matches(&self, e: &CatalogEntry) -> bool {
        let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
        let family_ok = self.family.as_deref().is_none_or(|f| {
            let f = norm(f.trim());
            e.spec().is_ok_and(|s| norm(&s.model_type).starts_with(&f)) || norm(&e.id).contains(&f)
        });
        let b = e.spec().map_or(0.0, |s| s.params().total as f64 / 1e9);
        family_ok
            && self.min_params_b.is_none_or(|m| b >= m)
            && self.max_params_b.is_none_or(|m| b <= m)
    }
}

enum Lookup<'a> {
    One(&'a CatalogEntry),
    Many(Vec<String>),
    None,
}

fn file_name(p: &Path) -> Option<&str> {
    p.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.starts_with('.'))
}

fn sorted_children(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        out.push(entry.map_err(|e| Error::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::catalog;
    use crate::paths::DataPaths;

    #[test]
    fn resolves_full_ids_short_names_and_prefixes() {
        let cat = catalog();
        assert_eq!(cat.entries().len(), 96);
        let ids: Vec<&str> = cat.entries().iter().map(|e| e.id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort_by_key(|s| s.to_ascii_lowercase());
        assert_eq!(ids, sorted);

        // Full id, any case.
        let s = cat.resolve("META-LLAMA/llama-3.1-8b").unwrap();
        assert_eq!(s.name, "meta-llama/Llama-3.1-8B");
        // Exact short name wins over being a prefix of `Llama-3.1-8B-Instruct`.
        assert_eq!(
            cat.resolve("llama-3.1-8b").unwrap().name,
            "meta-llama/Llama-3.1-8B"
        );
        assert_eq!(cat.resolve("qwen2.5-72b").unwrap().name, "Qwen/Qwen2.5-72B");
        // A unique prefix.
        assert_eq!(
            cat.resolve("gpt-oss-12").unwrap().name,
            "openai/gpt-oss-120b"
        );
        assert_eq!(
            cat.resolve("Mixtral-8x7").unwrap().name,
            "mistralai/Mixtral-8x7B-v0.1"
        );
        assert_eq!(
            cat.get("deepseek-ai/DeepSeek-V3").unwrap().id,
            "deepseek-ai/DeepSeek-V3"
        );
    }

    #[test]
    fn ambiguous_and_unknown_names() {
        let cat = catalog();
        match cat.resolve("llama-3.1-8") {
            Err(Error::Ambiguous { candidates, .. }) => assert_eq!(
                candidates,
                [
                    "meta-llama/Llama-3.1-8B",
                    "meta-llama/Llama-3.1-8B-Instruct"
                ]
            ),
            other => panic!("{other:?}"),
        }
        let e = cat.resolve("qwen3").unwrap_err().to_string();
        assert!(e.starts_with("model name `qwen3` is ambiguous: it matches Qwen/Qwen3-0.6B, Qwen/Qwen3-1.7B, Qwen/Qwen3-14B, Qwen/Qwen3-235B-A22B, "), "{e}");

        match cat.resolve("lama-3.1-8b") {
            Err(Error::Unknown {
                kind, suggestions, ..
            }) => {
                assert_eq!(kind, "model");
                assert_eq!(suggestions[0], "meta-llama/Llama-3.1-8B");
            }
            other => panic!("{other:?}"),
        }
        let e = cat
            .resolve("meta-lama/Llama-3.1-70B")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("unknown model `meta-lama/Llama-3.1-70B` (not shipped")
                && e.contains("--allow-download")
                && e.contains("; did you mean meta-llama/Llama-3.1-70B"),
            "{e}"
        );
        assert!(matches!(cat.resolve(""), Err(Error::Unknown { .. })));
    }

    #[test]
    fn resolves_paths_to_config_files() {
        let cat = catalog();
        let path = DataPaths::builtin()
            .model_configs
            .join("microsoft/phi-2.json");
        let by_path = cat.resolve(path.to_str().unwrap()).unwrap();
        assert_eq!(by_path.name, "phi-2");
        assert_eq!(by_path.params(), cat.resolve("phi-2").unwrap().params());

        let dir = tempfile::tempdir().unwrap();
        let model_dir = dir.path().join("my-model");
        std::fs::create_dir(&model_dir).unwrap();
        let config = model_dir.join("config.json");
        std::fs::copy(&path, &config).unwrap();
        assert_eq!(
            cat.resolve(config.to_str().unwrap()).unwrap().name,
            "my-model"
        );

        let missing = dir.path().join("nope.json");
        match cat.resolve(missing.to_str().unwrap()) {
            Err(Error::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn same_short_name_in_two_orgs_is_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let src = DataPaths::builtin()
            .model_configs
            .join("microsoft/phi-2.json");
        for org in ["a", "b"] {
            std::fs::create_dir(dir.path().join(org)).unwrap();
            std::fs::copy(&src, dir.path().join(org).join("m.json")).unwrap();
        }
        std::fs::write(dir.path().join("README.md"), "not a config").unwrap();
        let cat = ModelCatalog::load(dir.path()).unwrap();
        assert_eq!(cat.entries().len(), 2);
        assert!(matches!(cat.get("m"), Err(Error::Ambiguous { .. })));
        assert_eq!(cat.get("B/M").unwrap().id, "b/m");

        // A broken config fails the load, naming its file and field.
        let bad = dir.path().join("a").join("bad.json");
        std::fs::write(&bad, r#"{"hidden_size": true}"#).unwrap();
        let e = ModelCatalog::load(dir.path()).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: field `hidden_size`: expected a positive integer, found boolean true",
                bad.display()
            )
        );
        // A command's catalog parses only what it resolves: the broken file does not
        // stop a run that names another model, and is reported when named.
        let lazy = ModelCatalog::for_paths(&DataPaths {
            model_configs: dir.path().to_owned(),
            ..DataPaths::builtin()
        })
        .unwrap();
        assert_eq!(lazy.resolve("b/m").unwrap().name, "b/m");
        let e = lazy.resolve("a/bad").unwrap_err().to_string();
        assert!(e.contains("field `hidden_size`"), "{e}");
    }
}
