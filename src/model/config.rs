//! Typed access to the fields of a raw HuggingFace `config.json`.
//!
//! [`RawConfig`] wraps the parsed JSON object and the file it came from. Every accessor
//! returns an [`Error::Input`] naming the file and the field when a value is missing or
//! has the wrong type, so the user sees exactly what to fix. A JSON `null` counts as
//! absent (HF writes `"sliding_window": null` for "no window").

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// The largest integer a config field may hold (2^31). No real model has a dimension,
/// layer or expert count near it; the bound keeps products of two fields within `u64`
/// (see also the size check in `build`).
pub(crate) const MAX_CONFIG_INT: u64 = 1 << 31;

/// The defaults of transformers' `Gemma3TextConfig` for the fields servesim reads: a
/// Gemma 3 `text_config` leaves out whatever equals them.
const GEMMA3_TEXT_DEFAULTS: &[(&str, u64)] = &[
    ("num_attention_heads", 8),
    ("num_key_value_heads", 4),
    ("head_dim", 256),
    ("vocab_size", 262_208),
    ("max_position_embeddings", 131_072),
    ("sliding_window", 4096),
    ("sliding_window_pattern", 6),
];

/// A parsed `config.json` object (or a nested object such as `quantization_config`).
pub(crate) struct RawConfig<'a> {
    path: &'a Path,
    /// Prefix for field names of a nested object (`"quantization_config."`), else empty.
    prefix: String,
    map: Map<String, Value>,
}

impl<'a> RawConfig<'a> {
    /// Parse `text` (the contents of `path`) as a JSON object.
    pub(crate) fn parse(path: &'a Path, text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::input(path, None, format!("invalid JSON: {e}")))?;
        match value {
            Value::Object(map) => Ok(RawConfig {
                path,
                prefix: String::new(),
                map,
            }),
            other => Err(Error::input(
                path,
                None,
                format!(
                    "expected a JSON object (a HuggingFace config.json), found {}",
                    describe(&other)
                ),
            )),
        }
    }

    /// The file this config came from.
    pub(crate) fn path(&self) -> &Path {
        self.path
    }

    /// An [`Error::Input`] about `field` of this config.
    pub(crate) fn error(&self, field: &str, msg: impl Into<String>) -> Error {
        Error::input(self.path, Some(&format!("{}{field}", self.prefix)), msg)
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    /// True when `field` is present and not `null`.
    pub(crate) fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// The first of `fields` that is present, if any.
    pub(crate) fn first_present<'f>(&self, fields: &[&'f str]) -> Option<&'f str> {
        fields.iter().copied().find(|f| self.has(f))
    }

    fn missing(&self, field: &str) -> Error {
        self.error(field, "missing required field")
    }

    fn wrong_type(&self, field: &str, expected: &str, found: &Value) -> Error {
        self.error(
            field,
            format!("expected {expected}, found {}", describe(found)),
        )
    }

    /// `v` as an integer no larger than [`MAX_CONFIG_INT`].
    fn bounded_u64(&self, field: &str, v: &Value, expected: &str) -> Result<u64> {
        match v.as_u64() {
            Some(n) if n <= MAX_CONFIG_INT => Ok(n),
            Some(n) => Err(self.error(
                field,
                format!("{n} is implausibly large (the limit is {MAX_CONFIG_INT})"),
            )),
            None => Err(self.wrong_type(field, expected, v)),
        }
    }

    /// A non-negative integer, if present.
    pub(crate) fn opt_u64(&self, field: &str) -> Result<Option<u64>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => self
                .bounded_u64(field, v, "a non-negative integer")
                .map(Some),
        }
    }

    /// A positive integer, if present.
    pub(crate) fn opt_positive(&self, field: &str) -> Result<Option<u64>> {
        let expected = "a positive integer";
        match self.get(field) {
            None => Ok(None),
            Some(v) => match self.bounded_u64(field, v, expected)? {
                0 => Err(self.wrong_type(field, expected, v)),
                n => Ok(Some(n)),
            },
        }
    }

    /// A required positive integer.
    pub(crate) fn req_positive(&self, field: &str) -> Result<u64> {
        self.opt_positive(field)?.ok_or_else(|| self.missing(field))
    }

    /// A boolean, if present.
    pub(crate) fn opt_bool(&self, field: &str) -> Result<Option<bool>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.wrong_type(field, "true or false", v)),
        }
    }

    /// A number, if present.
    pub(crate) fn opt_f64(&self, field: &str) -> Result<Option<f64>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.wrong_type(field, "a number", v)),
        }
    }

    /// A string, if present.
    pub(crate) fn opt_str(&self, field: &str) -> Result<Option<&str>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.wrong_type(field, "a string", v)),
        }
    }

    /// A list of strings, if present.
    pub(crate) fn opt_str_list(&self, field: &str) -> Result<Option<Vec<&str>>> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let expected = "a list of strings";
        let items = v
            .as_array()
            .ok_or_else(|| self.wrong_type(field, expected, v))?;
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| self.wrong_type(field, expected, item))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// A list of non-negative integers, if present.
    pub(crate) fn opt_u64_list(&self, field: &str) -> Result<Option<Vec<u64>>> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let expected = "a list of non-negative integers";
        let items = v
            .as_array()
            .ok_or_else(|| self.wrong_type(field, expected, v))?;
        items
            .iter()
            .map(|item| self.bounded_u64(field, item, expected))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// The object's keys, sorted.
    pub(crate) fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.map.keys().cloned().collect();
        k.sort();
        k
    }

    /// A nested object, if present; its errors name `field.inner`.
    pub(crate) fn opt_object(&self, field: &str) -> Result<Option<RawConfig<'a>>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(RawConfig {
                path: self.path,
                prefix: format!("{}{field}.", self.prefix),
                map: map.clone(),
            })),
            Some(v) => Err(self.wrong_type(field, "an object", v)),
        }
    }

    /// The language model's config: a multimodal checkpoint (Llama 4, Gemma 3) nests it
    /// in `text_config`; the top-level `torch_dtype`, `dtype`, `quantization_config` and
    /// `tie_word_embeddings` apply to it unless it sets its own. Others: unchanged.
    pub(crate) fn language_model(self) -> Result<RawConfig<'a>> {
        if self.has("hidden_size") {
            return Ok(self);
        }
        let Some(mut text) = self.opt_object("text_config")? else {
            return Ok(self);
        };
        for key in [
            "torch_dtype",
            "dtype",
            "quantization_config",
            "tie_word_embeddings",
        ] {
            if let (false, Some(v)) = (text.has(key), self.get(key)) {
                text.map.insert(key.to_owned(), v.clone());
            }
        }
        // Gemma 3's published text_config omits every value equal to its class default.
        if text.opt_str("model_type")? == Some("gemma3_text") {
            for (key, value) in GEMMA3_TEXT_DEFAULTS {
                if !text.has(key) {
                    text.map.insert((*key).to_owned(), Value::from(*value));
                }
            }
        }
        Ok(text)
    }

    /// Copy each `(alias, name)` value to `name` when only the alias is present: the
    /// older field names of GPT-J, BLOOM and Falcon (`n_embd`, `n_layer`, `n_head`).
    pub(crate) fn with_aliases(mut self, aliases: &[(&str, &str)]) -> Self {
        for &(alias, name) in aliases {
            if !self.has(name) {
                if let Some(v) = self.get(alias).cloned() {
                    self.map.insert(name.to_owned(), v);
                }
            }
        }
        self
    }
}

/// A short description of a JSON value for error messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(path: &'a Path, text: &str) -> RawConfig<'a> {
        RawConfig::parse(path, text).unwrap()
    }

    #[test]
    fn missing_and_wrong_type_name_file_and_field() {
        let p = Path::new("model_configs/x.json");
        let c = raw(p, r#"{"hidden_size": "4096", "n": 0, "q": {"bits": "x"}}"#);
        assert_eq!(
            c.req_positive("num_hidden_layers").unwrap_err().to_string(),
            "model_configs/x.json: field `num_hidden_layers`: missing required field"
        );
        assert_eq!(
            c.req_positive("hidden_size").unwrap_err().to_string(),
            "model_configs/x.json: field `hidden_size`: expected a positive integer, found string \"4096\""
        );
        assert!(c.req_positive("n").is_err());
        let big = raw(p, r#"{"hidden_size": 4294967296}"#);
        assert!(big
            .req_positive("hidden_size")
            .unwrap_err()
            .to_string()
            .contains("implausibly large"));
        assert_eq!(c.opt_u64("n").unwrap(), Some(0));
        let q = c.opt_object("q").unwrap().unwrap();
        assert_eq!(
            q.opt_u64("bits").unwrap_err().to_string(),
            "model_configs/x.json: field `q.bits`: expected a non-negative integer, found string \"x\""
        );
    }

    #[test]
    fn null_is_absent_and_bad_json_is_reported() {
        let p = Path::new("c.json");
        let c = raw(p, r#"{"sliding_window": null, "l": ["a", "b"]}"#);
        assert_eq!(c.opt_positive("sliding_window").unwrap(), None);
        assert!(!c.has("sliding_window"));
        assert_eq!(c.opt_str_list("l").unwrap(), Some(vec!["a", "b"]));
        let e = RawConfig::parse(p, "{ nope").err().unwrap().to_string();
        assert!(e.starts_with("c.json: invalid JSON:"), "{e}");
        let e = RawConfig::parse(p, "[1]").err().unwrap().to_string();
        assert!(e.contains("expected a JSON object"), "{e}");
    }
}
