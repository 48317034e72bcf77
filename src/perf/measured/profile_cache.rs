//! A start-up cache of parsed operator profiles.
//!
//! Start-up reads every model's profile of the accelerator (a few MB of CSV for the
//! GPU-wide GEMM, bandwidth and attention laws), and parsing that text was most of a
//! short run's time. A TP folder's parse is a pure function of its files, so it is
//! stored in binary (postcard: every `f64` as its exact bits) under a key made of the
//! folder's path, each file's name, length and modification time, servesim's version
//! and a format number. A hit is the parse, value for value (a test holds it to that);
//! a changed, added or removed file changes the key. A missing, unreadable or
//! malformed entry is a miss, and a cache that cannot be written is skipped.
//!
//! The folder is `profiles/` beside the fit cache ([`super::fit_cache`]);
//! `SERVESIM_CACHE_DIR=` (empty) turns both off.

use super::profile::TpProfile;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// Changes whenever [`TpProfile`]'s layout or its parsing changes.
const FORMAT: u32 = 1;

/// The parsed profile of TP folder `dir`: the cached one when the folder's files are
/// unchanged, else `parse()`'s (stored for next time). Errors are never cached.
pub(super) fn cached(
    dir: &Path,
    tp: u32,
    parse: impl FnOnce() -> Result<TpProfile>,
) -> Result<TpProfile> {
    let Some(path) = entry(dir, tp) else {
        return parse();
    };
    if let Some(p) = read(&path) {
        return Ok(p);
    }
    let p = parse()?;
    write(&path, &p);
    Ok(p)
}

/// The cache file for `dir`, or None when the cache is off or the folder unreadable.
fn entry(dir: &Path, tp: u32) -> Option<PathBuf> {
    let root = super::fit_cache::root()?.join("profiles");
    Some(root.join(key(dir, tp)?))
}

/// The key of `dir`'s current files.
fn key(dir: &Path, tp: u32) -> Option<String> {
    let mut files: Vec<(String, u64, Option<std::time::SystemTime>)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            m.is_file().then(|| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    m.len(),
                    m.modified().ok(),
                )
            })
        })
        .collect();
    files.sort();
    let id = (FORMAT, env!("CARGO_PKG_VERSION"), tp, dir, files);
    Some(format!("tp-{}", super::fit_cache::hash128(&id)))
}

fn read(path: &Path) -> Option<TpProfile> {
    let bytes = std::fs::read(path).ok()?;
    postcard::from_bytes(&bytes).ok()
}

/// Store an entry (atomically: [`super::fit_cache::write_atomic`]).
fn write(path: &Path, p: &TpProfile) {
    if let Ok(bytes) = postcard::to_stdvec(p) {
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
        let a = key(dir.path(), 1).unwrap();
        assert_eq!(a, key(dir.path(), 1).unwrap());
        assert_ne!(a, key(dir.path(), 2).unwrap());
        std::fs::write(dir.path().join("ops.csv"), "ab").unwrap();
        let b = key(dir.path(), 1).unwrap();
        assert_ne!(a, b, "a longer file");
        std::fs::write(dir.path().join("skew.csv"), "").unwrap();
        assert_ne!(b, key(dir.path(), 1).unwrap(), "an added file");
    }

    #[test]
    fn a_malformed_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, [0xff, 0xff, 0xff]).unwrap();
        assert!(read(&path).is_none());
    }
}
