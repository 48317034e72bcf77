//! A content-addressed cache of fitted parameters, so that a run does not refit a law
//! it has fitted before on the same data.
//!
//! A fit is a pure function of its inputs. The cache keys each result by a 128-bit hash
//! of the fit's name, a format version, servesim's version and the exact bits of every
//! input number, and stores the exact bits of every output number: a cached result is
//! the fresh fit, bit for bit (a test holds it to that), so outputs never depend on
//! whether the cache was warm.
//!
//! Where: `$SERVESIM_CACHE_DIR` if set (an empty value turns the cache off), else
//! `$XDG_CACHE_HOME/servesim`, else `$HOME/.cache/servesim`; files under `fits/`. A
//! missing, unreadable or malformed entry is a miss; a cache that cannot be written is
//! silently skipped (the run just fits again next time).

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

/// Changes whenever the file layout or any cached fit's algorithm changes.
const FORMAT: u32 = 3;

/// The cache folder of fits, or None when the cache is off or no folder is known.
fn dir() -> Option<PathBuf> {
    Some(root()?.join("fits"))
}

/// servesim's cache folder (see the module docs), or None when the cache is off.
pub(crate) fn root() -> Option<PathBuf> {
    let root = match std::env::var_os("SERVESIM_CACHE_DIR") {
        Some(d) if d.is_empty() => return None,
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d).join("servesim"),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/servesim"),
        },
    };
    Some(root)
}

/// The key of a fit called `name` on `inputs`.
fn key(name: &str, inputs: &[f64]) -> String {
    let bits: Vec<u64> = inputs.iter().map(|x| x.to_bits()).collect();
    format!(
        "{name}-{}",
        hash128(&(FORMAT, env!("CARGO_PKG_VERSION"), name, bits))
    )
}

/// 128 bits of hash of `value` (two differently salted 64-bit hashes), as 32 hex digits:
/// the cache keys.
pub(crate) fn hash128(value: &impl Hash) -> String {
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, value).hash(&mut h);
        h.finish()
    };
    format!("{:016x}{:016x}", half(0), half(1))
}

/// `fit()`'s `N` numbers for `inputs`, from the cache when it holds them (the same bits
/// a fresh fit gives), otherwise fitted and stored.
pub(crate) fn cached<const N: usize>(
    name: &str,
    inputs: &[f64],
    fit: impl FnOnce() -> Option<[f64; N]>,
) -> Option<[f64; N]> {
    let Some(dir) = dir() else {
        return fit();
    };
    let path = dir.join(key(name, inputs));
    if let Some(v) = read(&path) {
        return Some(v);
    }
    let out = fit()?;
    write(&path, &out);
    Some(out)
}

/// The `N` numbers of an entry, one hexadecimal bit pattern per line.
fn read<const N: usize>(path: &std::path::Path) -> Option<[f64; N]> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut out = [0.0; N];
    let mut lines = text.lines();
    for x in &mut out {
        *x = f64::from_bits(u64::from_str_radix(lines.next()?, 16).ok()?);
    }
    lines.next().is_none().then_some(out)
}

/// Store an entry of `values` (one hexadecimal bit pattern per line).
fn write(path: &std::path::Path, values: &[f64]) {
    let text: String = values
        .iter()
        .map(|x| format!("{:016x}\n", x.to_bits()))
        .collect();
    write_atomic(path, text.as_bytes());
}

/// Store `bytes` at `path` through a temporary file and a rename, so a reader never sees
/// half of it; any failure leaves the cache as it was.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else {
        return;
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let ok = std::fs::create_dir_all(dir).is_ok()
        && std::fs::write(&tmp, bytes).is_ok()
        && std::fs::rename(&tmp, path).is_ok();
    if !ok {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_every_input_bit_and_the_name() {
        let a = key("gemm", &[1.0, 2.0]);
        assert_ne!(a, key("gemm", &[1.0, 2.000000000000001]));
        assert_ne!(a, key("gemm", &[2.0, 1.0]));
        assert_ne!(a, key("gemm", &[1.0, 2.0, 0.0]));
        assert_ne!(a, key("stream", &[1.0, 2.0]));
        assert_eq!(a, key("gemm", &[1.0, 2.0]));
    }

    #[test]
    fn entries_round_trip_exactly_and_malformed_ones_miss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let v = [0.1, -0.0, f64::MIN_POSITIVE, 1e300, f64::NAN];
        write(&path, &v);
        let back: [f64; 5] = read(&path).unwrap();
        assert_eq!(v.map(f64::to_bits), back.map(f64::to_bits));
        assert!(read::<4>(&path).is_none(), "too many lines");
        assert!(read::<6>(&path).is_none(), "too few lines");
        std::fs::write(&path, "zz\n").unwrap();
        assert!(read::<1>(&path).is_none());
    }
}
