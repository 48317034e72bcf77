//! A start-up cache of parsed measurement files.
//!
//! Start-up reads every model's profile of the accelerator (a few MB of CSV for the
//! GPU-wide GEMM, bandwidth and attention laws) and the engine-measured kernel grids,
//! and parsing that text was most of a short run's time. A parse is a pure function of
//! its files, so it is stored in binary (postcard: every `f64` as its exact bits) under
//! a key made of what was parsed (`kind` and its arguments), each file's path, length
//! and modification time, servesim's version and a format number. A hit is the parse,
//! value for value (tests hold it to that); a changed, added or removed file changes
//! the key. A missing, unreadable or malformed entry is a miss, and a cache that cannot
//! be written is skipped.
//!
//! The folder is `profiles/` beside the fit cache ([`super::fit_cache`]);
//! `SERVESIM_CACHE_DIR=` (empty) turns both off.

use super::profile::TpProfile;
use crate::error::Result;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::Hash;
use std::path::{Path, PathBuf};

/// Changes whenever a cached type's layout or its parsing changes.
const FORMAT: u32 = 2;

/// The parsed profile of TP folder `dir` (every file in it): the cached one when the
/// folder's files are unchanged, else `parse()`'s (stored for next time). Errors are
/// never cached.
pub(super) fn cached(
    dir: &Path,
    tp: u32,
    parse: impl FnOnce() -> Result<TpProfile>,
) -> Result<TpProfile> {
    match folder_files(dir) {
        Some(files) => cached_parse("tp", &files, tp, parse),
        None => parse(),
    }
}

/// `parse()` of `files`, called `kind` with arguments `args`: the cached value when
/// the files are unchanged, else the fresh parse (stored for next time). Errors are
/// never cached.
pub(super) fn cached_parse<T: Serialize + DeserializeOwned>(
    kind: &str,
    files: &[PathBuf],
    args: impl Hash,
    parse: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let Some(path) = entry(kind, files, args) else {
        return parse();
    };
    if let Some(v) = read(&path) {
        return Ok(v);
    }
    let v = parse()?;
    write(&path, &v);
    Ok(v)
}

/// The files of `dir`, sorted; None when it cannot be read.
fn folder_files(dir: &Path) -> Option<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    files.sort();
    Some(files)
}

/// The cache file, or None when the cache is off or a file cannot be read.
fn entry(kind: &str, files: &[PathBuf], args: impl Hash) -> Option<PathBuf> {
    let root = super::fit_cache::root()?.join("profiles");
    Some(root.join(key(kind, files, args)?))
}

/// The key of `kind(args)` over the current state of `files`.
fn key(kind: &str, files: &[PathBuf], args: impl Hash) -> Option<String> {
    let stamps = files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some((f, m.len(), m.modified().ok()))
        })
        .collect::<Option<Vec<_>>>()?;
    let id = (FORMAT, env!("CARGO_PKG_VERSION"), kind, args, stamps);
    Some(format!("{kind}-{}", super::fit_cache::hash128(&id)))
}

fn read<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    postcard::from_bytes(&bytes).ok()
}

/// Store an entry (atomically: [`super::fit_cache::write_atomic`]).
fn write<T: Serialize>(path: &Path, v: &T) {
    if let Ok(bytes) = postcard::to_stdvec(v) {
        super::fit_cache::write_atomic(path, &bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::DataPaths;

    /// Every shipped TP folder read back from its cache entry equals its fresh parse.
    #[test]
    fn cached_profiles_equal_fresh_parses_of_every_shipped_folder() {
        let profiles = DataPaths::builtin().perf_model.join("profiles");
        let mut folders = 0;
        for gpu in std::fs::read_dir(&profiles).unwrap().flatten() {
            for tp_dir in walk_tp_dirs(&gpu.path()) {
                let tp: u32 = tp_dir.file_name().unwrap().to_str().unwrap()[2..]
                    .parse()
                    .unwrap();
                let fresh = super::super::profile::parse_tp(&tp_dir, tp).unwrap();
                let bytes = postcard::to_stdvec(&fresh).unwrap();
                let back: TpProfile = postcard::from_bytes(&bytes).unwrap();
                assert_eq!(back, fresh, "{}", tp_dir.display());
                // Exact bits, NaN and signed zeros included (PartialEq would let
                // -0.0 == 0.0 through).
                assert_eq!(postcard::to_stdvec(&back).unwrap(), bytes);
                folders += 1;
            }
        }
        assert!(folders > 50, "{folders}");
    }

    fn walk_tp_dirs(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            let is_tp = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("tp") && n[2..].parse::<u32>().is_ok());
            if is_tp {
                out.push(p);
            } else {
                out.extend(walk_tp_dirs(&p));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn the_key_follows_the_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ops.csv"), "a").unwrap();
        let k = |tp: u32| key("tp", &folder_files(dir.path()).unwrap(), tp).unwrap();
        let a = k(1);
        assert_eq!(a, k(1));
        assert_ne!(a, k(2));
        assert_ne!(
            a,
            key("gemm", &folder_files(dir.path()).unwrap(), 1u32).unwrap(),
            "another kind"
        );
        std::fs::write(dir.path().join("ops.csv"), "ab").unwrap();
        let b = k(1);
        assert_ne!(a, b, "a longer file");
        std::fs::write(dir.path().join("skew.csv"), "").unwrap();
        assert_ne!(b, k(1), "an added file");
        let gone = [dir.path().join("missing.csv")];
        assert!(
            key("gemm", &gone, 0u32).is_none(),
            "an unreadable file: no entry"
        );
    }

    #[test]
    fn a_malformed_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, [0xff, 0xff, 0xff]).unwrap();
        assert!(read::<TpProfile>(&path).is_none());
    }
}
