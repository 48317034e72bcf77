//! The library's error type.
//!
//! Every variant that comes from user input names what the user has to fix: the file,
//! the line where there is one, and the field. Capacity outcomes that the simulation
//! handles (a full KV cache, a request that must wait) are values, not errors.

use std::path::PathBuf;

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened or read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said: part of the message, not a separate cause (printed with its
        /// causes, the error would say it twice).
        error: std::io::Error,
    },

    /// A value in an input file is malformed or out of range.
    ///
    /// Displayed as `file:line: field `name`: message` (line and field when known).
    #[error("{}{}{}: {msg}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), field.as_ref().map(|f| format!(": field `{f}`")).unwrap_or_default())]
    Input {
        /// The file (or a pseudo-path such as `<command line>`).
        path: PathBuf,
        /// 1-based line number, where the format has lines.
        line: Option<u64>,
        /// The field, column or key at fault.
        field: Option<String>,
        /// What is wrong and, where possible, how to fix it.
        msg: String,
    },

    /// A name (model, hardware, policy) that matches nothing known.
    #[error("unknown {kind} `{name}`{}", suggestion_text(suggestions))]
    Unknown {
        /// What kind of thing was looked up ("model", "hardware").
        kind: &'static str,
        /// The name as given.
        name: String,
        /// The closest known names, best first.
        suggestions: Vec<String>,
    },

    /// An `org/name` model id found in no catalog, file, folder or local cache, while
    /// downloads are not allowed.
    #[error("unknown model `{name}` (not shipped, not a file or folder, not in the local HuggingFace cache; --allow-download or SERVESIM_ALLOW_DOWNLOAD=1 fetches its config.json from the Hub){}", suggestion_text(suggestions))]
    NotDownloaded {
        /// The id as given.
        name: String,
        /// The closest shipped ids, best first.
        suggestions: Vec<String>,
    },

    /// A name that matches more than one known entry.
    #[error("{kind} name `{name}` is ambiguous: it matches {}; use the full name", candidates.join(", "))]
    Ambiguous {
        /// What kind of thing was looked up.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// Every entry it matches.
        candidates: Vec<String>,
    },

    /// A combination of settings that cannot work (for example a model that does not fit,
    /// or a tensor-parallel size that does not divide the attention heads).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A run given an iteration limit
    /// ([`Simulation::with_max_iterations`](crate::sim::Simulation::with_max_iterations))
    /// reached it before every request ended.
    #[error("the simulation stopped at its limit of engine iterations: {iterations} iterations, {simulated_s:.3} s simulated, {outstanding} requests unfinished")]
    IterationLimit {
        /// Iterations started.
        iterations: u64,
        /// Simulated time reached, s.
        simulated_s: f64,
        /// Requests still waiting or running.
        outstanding: u64,
    },

    /// A latency model gave no usable time (not finite, negative or zero) for an
    /// iteration: a fault in the model or in the data it was built from.
    #[error("latency model {model} gave an invalid iteration time for {shape}: not a finite, positive number of seconds; its data or parameters are broken")]
    InvalidStepTime {
        /// The model's description.
        model: String,
        /// The iteration's batch shape.
        shape: String,
    },
}

fn suggestion_text(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", s.join(", "))
    }
}

impl Error {
    /// An [`Error::Input`] for a whole file (no line).
    pub fn input(path: impl Into<PathBuf>, field: Option<&str>, msg: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            line: None,
            field: field.map(str::to_owned),
            msg: msg.into(),
        }
    }

    /// An [`Error::Input`] at a line of a file.
    pub fn input_at(
        path: impl Into<PathBuf>,
        line: u64,
        field: Option<&str>,
        msg: impl Into<String>,
    ) -> Self {
        Error::Input {
            path: path.into(),
            line: Some(line),
            field: field.map(str::to_owned),
            msg: msg.into(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// Read and parse the TOML file at `path`; errors name the file (and the line and key
/// of a parse error).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))
}

/// An [`Error::Input`] from a TOML parse error, with the 1-based line of its span and
/// the key it names where toml reports one.
pub fn toml_error(path: &std::path::Path, text: &str, err: &toml::de::Error) -> Error {
    let line = err
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() as u64 + 1);
    let msg = err.message().to_owned();
    let field = msg
        .split('`')
        .nth(1)
        .filter(|_| msg.contains("field") || msg.contains("key"))
        .map(str::to_owned)
        .or_else(|| err.span().and_then(|s| key_at(text, s.start)));
    Error::Input {
        path: path.to_owned(),
        line,
        field,
        msg,
    }
}

/// The dotted key (`table.key`) of the `key = value` line holding byte `at` of a TOML
/// `text`, where that line is one.
fn key_at(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let (key, _) = text[start..end].split_once('=')?;
    let key = key.trim();
    let bare = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if !bare(key) {
        return None;
    }
    let table = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match table {
        Some(t) if bare(t) => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}

/// The `n` known names closest to `name` (edit distance on lowercase strings, with a
/// bonus for substring matches), best first. Used for "did you mean" suggestions.
pub fn closest_names<'a>(
    name: &str,
    known: impl IntoIterator<Item = &'a str>,
    n: usize,
) -> Vec<String> {
    let needle = name.to_ascii_lowercase();
    let mut scored: Vec<(usize, String)> = known
        .into_iter()
        .map(|k| {
            let hay = k.to_ascii_lowercase();
            let mut d = edit_distance(&needle, &hay);
            if hay.contains(&needle) || needle.contains(&hay) {
                d = d.min(hay.len().abs_diff(needle.len()) / 2);
            }
            (d, k.to_owned())
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    let limit = needle.len().max(3);
    scored
        .into_iter()
        .filter(|(d, _)| *d <= limit)
        .take(n)
        .map(|(_, k)| k)
        .collect()
}

/// Levenshtein distance between two strings, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_error_names_file_line_and_field() {
        let e = Error::input_at(
            "traces/x.csv",
            7,
            Some("input_tokens"),
            "not a number: `abc`",
        );
        assert_eq!(
            e.to_string(),
            "traces/x.csv:7: field `input_tokens`: not a number: `abc`"
        );
        let e = Error::input("m.json", Some("hidden_size"), "missing");
        assert_eq!(e.to_string(), "m.json: field `hidden_size`: missing");
    }

    #[test]
    fn toml_type_errors_name_the_key_of_their_line() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Host {
            step_us: f64,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Doc {
            name: String,
            host: Host,
        }
        let text = "name = \"a\"\n\n[host]\n# comment\nstep_us = \"fast\"\n";
        let err = toml::from_str::<Doc>(text).unwrap_err();
        let e = toml_error(std::path::Path::new("s.toml"), text, &err).to_string();
        assert!(e.starts_with("s.toml:5: field `host.step_us`: "), "{e}");
        let text = "name = 3\n";
        let err = toml::from_str::<Doc>(text).unwrap_err();
        let e = toml_error(std::path::Path::new("s.toml"), text, &err).to_string();
        assert!(e.starts_with("s.toml:1: field `name`: "), "{e}");
    }

    #[test]
    fn suggestions_prefer_close_names() {
        let known = [
            "llama-3.1-8b",
            "llama-3.1-70b",
            "qwen3-8b",
            "mistral-7b-v0.1",
        ];
        let s = closest_names("lama-3.1-8b", known, 2);
        assert_eq!(s[0], "llama-3.1-8b");
        let e = Error::Unknown {
            kind: "model",
            name: "x".into(),
            suggestions: vec!["a".into(), "b".into()],
        };
        assert_eq!(e.to_string(), "unknown model `x`; did you mean a, b?");
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
