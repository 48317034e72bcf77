//! Reading TOML data files with errors that name the file, the line and the key.
//!
//! `toml`'s own error carries a byte span and a message but no public key path, so the
//! key is recovered from the message (`missing field `x``), from the line the span
//! points at (`x = …` under a `[table]` header), or from the "in `a.b`" trailer the
//! error prints when it has no span.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Read a whole text file, mapping I/O failures to [`Error::Io`].
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Deserialize `text` (the contents of `path`) as TOML.
pub(crate) fn from_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| toml_error(path, text, &e))
}

/// An [`Error::Input`] for a value that parsed but is out of range, located at the line
/// that sets `key` inside `[table]` (top level when `table` is `None`).
pub(crate) fn invalid(
    path: &Path,
    text: &str,
    table: Option<&str>,
    key: &str,
    msg: impl Into<String>,
) -> Error {
    let field = match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    };
    match line_of_key(text, table, key) {
        Some(line) => Error::input_at(path, line, Some(&field), msg),
        None => Error::input(path, Some(&field), msg),
    }
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let msg = e.message().trim().to_owned();
    let span = e.span();
    let named = field_named_in(&msg);
    // A "missing field" error spans the whole enclosing table; its first line says
    // nothing useful, so the line is only reported for errors at a value or key.
    let missing = msg.starts_with("missing field");
    let line = span
        .as_ref()
        .filter(|_| !missing)
        .map(|s| line_of_offset(text, s.start));
    let table = span.as_ref().and_then(|s| table_at(text, s.start));
    let field = match (named, span.as_ref()) {
        (Some(f), _) => Some(qualify(table.as_deref(), &f)),
        (None, Some(s)) => key_at(text, s.start).map(|k| qualify(table.as_deref(), &k)),
        (None, None) => keys_from_display(&e.to_string()),
    };
    Error::Input {
        path: path.to_owned(),
        line,
        field,
        msg,
    }
}

fn qualify(table: Option<&str>, key: &str) -> String {
    match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_owned(),
    }
}

/// The name in "missing field `x`" / "unknown field `x`, expected …".
fn field_named_in(msg: &str) -> Option<String> {
    let rest = msg
        .strip_prefix("missing field `")
        .or_else(|| msg.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_owned)
}

/// The "in `a.b`" line that `toml` prints for errors without a span.
fn keys_from_display(shown: &str) -> Option<String> {
    shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("in `"))
        .and_then(|r| r.strip_suffix('`'))
        .map(str::to_owned)
}

/// 1-based line number of byte `offset`.
fn line_of_offset(text: &str, offset: usize) -> u64 {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1
}

/// The line containing byte `offset`.
fn line_at(text: &str, offset: usize) -> &str {
    let end = offset.min(text.len());
    let start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    let stop = text[start..].find('\n').map_or(text.len(), |i| start + i);
    &text[start..stop]
}

/// The key set on the line containing byte `offset`, if that line is `key = value`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let line = line_at(text, offset).trim_start();
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[') && !key.starts_with('#')).then(|| key.to_owned())
}

/// The name of the table header (`[a.b]` or `[[a]]`) in force at byte `offset`.
fn table_at(text: &str, offset: usize) -> Option<String> {
    let end = offset.min(text.len());
    let start_of_line = text[..end].rfind('\n').map_or(0, |i| i + 1);
    text[..start_of_line].lines().rev().find_map(header_name)
}

fn header_name(line: &str) -> Option<String> {
    let l = line.trim();
    let inner = l
        .strip_prefix("[[")
        .and_then(|r| r.split("]]").next())
        .or_else(|| l.strip_prefix('[').and_then(|r| r.split(']').next()))?;
    Some(inner.trim().to_owned())
}

/// 1-based line that sets `key` inside `[table]` (or at the top level).
fn line_of_key(text: &str, table: Option<&str>, key: &str) -> Option<u64> {
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(h) = header_name(line) {
            current = Some(h);
            continue;
        }
        if current.as_deref() != table {
            continue;
        }
        if let Some((k, _)) = line.trim_start().split_once('=') {
            if k.trim().trim_matches('"') == key {
                return Some(i as u64 + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        speed_gb_per_s: f64,
        #[serde(default)]
        links: std::collections::BTreeMap<String, Link>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Link {
        latency_us: f64,
    }

    fn err(text: &str) -> Error {
        from_toml::<Doc>(Path::new("x.toml"), text).unwrap_err()
    }

    #[test]
    fn wrong_type_names_line_and_key() {
        let e = err("name = \"a\"\nspeed_gb_per_s = \"fast\"\n");
        let Error::Input { line, field, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(*line, Some(2));
        assert_eq!(field.as_deref(), Some("speed_gb_per_s"));
        assert!(e
            .to_string()
            .starts_with("x.toml:2: field `speed_gb_per_s`"));
    }

    #[test]
    fn wrong_type_in_a_table_gives_the_key_path() {
        let e = err("name = \"a\"\nspeed_gb_per_s = 1\n[links.nv]\nlatency_us = \"x\"\n");
        let Error::Input { line, field, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(*line, Some(4));
        assert_eq!(field.as_deref(), Some("links.nv.latency_us"));
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let e = err("name = \"a\"\n");
        let Error::Input { field, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(field.as_deref(), Some("speed_gb_per_s"));
        let e = err("name = \"a\"\nspeed_gb_per_s = 1\nsped = 2\n");
        let Error::Input { line, field, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(field.as_deref(), Some("sped"));
        assert_eq!(*line, Some(3));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = err("name = \"a\"\nspeed_gb_per_s = = 1\n");
        let Error::Input { line, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(*line, Some(2));
    }

    #[test]
    fn invalid_points_at_the_key() {
        let text = "a = 1\n[links.x]\nlatency_us = -1\n";
        let e = invalid(
            Path::new("f.toml"),
            text,
            Some("links.x"),
            "latency_us",
            "bad",
        );
        assert_eq!(e.to_string(), "f.toml:3: field `links.x.latency_us`: bad");
        let e = invalid(Path::new("f.toml"), text, None, "a", "bad");
        assert_eq!(e.to_string(), "f.toml:1: field `a`: bad");
    }
}
