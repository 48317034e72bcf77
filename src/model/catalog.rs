//! The shipped model configs and name resolution.
//!
//! A catalog is a folder of `<org>/<name>.json` HF configs. A model is named by its full
//! id (`meta-llama/Llama-3.1-8B`), its short name (`llama-3.1-8b`), a unique prefix of
//! either (all case-insensitive), or the path of any `config.json`.

use super::spec::ModelSpec;
use crate::error::{closest_names, Error, Result};
use std::path::{Path, PathBuf};

/// How many "did you mean" suggestions an unknown name gets.
const SUGGESTIONS: usize = 3;

/// One parsed config of a catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogEntry {
    /// `org/name`, as the file is named.
    pub id: String,
    /// The parsed architecture.
    pub spec: ModelSpec,
}

impl CatalogEntry {
    /// The part of the id after the organization (`Llama-3.1-8B`).
    pub fn short_name(&self) -> &str {
        short_name(&self.id)
    }
}

fn short_name(id: &str) -> &str {
    id.rsplit_once('/').map_or(id, |(_, s)| s)
}

/// The model configs of one folder, parsed, sorted by id.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelCatalog {
    dir: PathBuf,
    entries: Vec<CatalogEntry>,
}

impl ModelCatalog {
    /// Parse every `<org>/<name>.json` under `dir` (other files are ignored).
    ///
    /// Fails on an unreadable folder or on the first malformed config, naming its file
    /// and field.
    pub fn load(dir: &Path) -> Result<ModelCatalog> {
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
                let id = format!("{org_name}/{name}");
                let spec = ModelSpec::from_file_named(&file, id.clone())?;
                entries.push(CatalogEntry { id, spec });
            }
        }
        entries.sort_by(|a, b| {
            (a.id.to_ascii_lowercase(), &a.id).cmp(&(b.id.to_ascii_lowercase(), &b.id))
        });
        Ok(ModelCatalog {
            dir: dir.to_owned(),
            entries,
        })
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

    /// The spec `name` denotes: a catalog entry (see [`Self::get`]) or, when no entry
    /// matches exactly, the path of a config file (an existing file, or any name ending
    /// in `.json`).
    pub fn resolve(&self, name: &str) -> Result<ModelSpec> {
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
        }
        self.get(name).map(|e| e.spec.clone())
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
