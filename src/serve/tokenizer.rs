//! The model's own tokenizer: prompt counts, chat templates and output text as vLLM
//! would produce them.
//!
//! A checkpoint folder holds `tokenizer.json` (the Hugging Face `tokenizers` format,
//! loaded with the `tokenizers` crate) and usually `tokenizer_config.json`, whose
//! `chat_template` (or a `chat_template.jinja` file beside it) turns chat messages into
//! the prompt, and whose `bos_token`/`eos_token` the template may use. As vLLM does:
//!
//! * a completions prompt is encoded **with** the tokenizer's special tokens (Llama 3
//!   adds `<|begin_of_text|>`);
//! * a chat conversation is rendered with the template (`add_generation_prompt` true,
//!   Jinja with `trim_blocks` and `lstrip_blocks`, Python string methods, and
//!   `raise_exception` / `strftime_now`, as `transformers` provides them), then encoded
//!   **without** special tokens (the template writes its own).
//!
//! The generated text repeats one ordinary token of the vocabulary (the *filler*),
//! chosen at load time so that re-encoding the text of `k` generated tokens gives
//! exactly `k` tokens, for any `k`: a client that counts output tokens with the same
//! tokenizer counts what the simulation generated.

use crate::error::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// The tokenizer file of a checkpoint folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Its settings (special tokens, chat template).
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
/// A chat template kept as a file of its own (newer checkpoints).
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";

/// Words tried first as the filler (common English words of most vocabularies).
const FILLER_WORDS: &[&str] = &[" the", " and", " of", " to", " a", " in", " is", " it"];
/// Output lengths the filler is checked at: re-encoding must give exactly this many.
const FILLER_CHECKS: &[usize] = &[1, 2, 3, 7, 16, 64, 255];

/// The model's tokenizer with its chat template.
pub struct ModelTokenizer {
    tokenizer: Tokenizer,
    dir: PathBuf,
    template: Option<minijinja::Environment<'static>>,
    bos_token: String,
    eos_token: String,
    filler: Filler,
    vocab_size: u32,
}

impl std::fmt::Debug for ModelTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelTokenizer")
            .field("dir", &self.dir)
            .field("vocab_size", &self.vocab_size)
            .field("chat_template", &self.template.is_some())
            .field("filler", &self.filler)
            .finish()
    }
}

/// The repeated output token and the text it decodes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filler {
    /// Its id.
    pub id: u32,
    /// The text of the first generated token (a tokenizer may drop its leading space).
    pub first: String,
    /// The text each later token adds.
    pub rest: String,
}

impl Filler {
    /// Text of output tokens `start..start + count`.
    pub fn text(&self, start: u32, count: u32) -> String {
        let mut s = String::with_capacity(self.rest.len() * count as usize);
        for i in start..start.saturating_add(count) {
            s.push_str(if i == 0 { &self.first } else { &self.rest });
        }
        s
    }
}

fn tok_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::input(path, None, e.to_string())
}

impl ModelTokenizer {
    /// Load the tokenizer of the checkpoint folder `dir` (see the module docs).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let file = dir.join(TOKENIZER_FILE);
        if !file.is_file() {
            return Err(Error::input(
                dir,
                None,
                format!("a tokenizer folder must hold {TOKENIZER_FILE}; there is none"),
            ));
        }
        let tokenizer = Tokenizer::from_file(&file).map_err(|e| tok_err(&file, e))?;
        let cfg_path = dir.join(TOKENIZER_CONFIG_FILE);
        let cfg: Value = if cfg_path.is_file() {
            let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
            serde_json::from_str(&text).map_err(|e| tok_err(&cfg_path, e))?
        } else {
            Value::Null
        };
        let special = |field: &str| -> String {
            match cfg.get(field) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                None => String::new(),
            }
        };
        let (bos_token, eos_token) = (special("bos_token"), special("eos_token"));
        let template_file = dir.join(CHAT_TEMPLATE_FILE);
        let template = if template_file.is_file() {
            let t = std::fs::read_to_string(&template_file)
                .map_err(|e| Error::io(&template_file, e))?;
            Some(compile_template(t, &template_file)?)
        } else {
            chat_template_source(&cfg)
                .map(|t| compile_template(t, &cfg_path))
                .transpose()?
        };
        let vocab_size = tokenizer.get_vocab_size(true) as u32;
        let filler = find_filler(&tokenizer).ok_or_else(|| {
            tok_err(
                &file,
                "no vocabulary token re-encodes to itself when repeated, so output text could not match the simulated token counts",
            )
        })?;
        Ok(ModelTokenizer {
            tokenizer,
            dir: dir.to_owned(),
            template,
            bos_token,
            eos_token,
            filler,
            vocab_size,
        })
    }

    /// The folder it was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Tokens in the vocabulary, added tokens included; valid ids are below it.
    pub fn vocab_size(&self) -> u32 {
        self.vocab_size
    }

    /// The repeated output token.
    pub fn filler(&self) -> &Filler {
        &self.filler
    }

    /// Whether the folder has a chat template.
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    /// Token ids of `text`, with the tokenizer's special tokens when
    /// `add_special_tokens` (a completions prompt) or without (a rendered chat prompt).
    pub fn encode(
        &self,
        text: &str,
        add_special_tokens: bool,
    ) -> std::result::Result<Vec<u32>, String> {
        self.tokenizer
            .encode(text, add_special_tokens)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| e.to_string())
    }

    /// Text of `ids` (special tokens kept unless `skip_special_tokens`).
    pub fn decode(
        &self,
        ids: &[u32],
        skip_special_tokens: bool,
    ) -> std::result::Result<String, String> {
        self.tokenizer
            .decode(ids, skip_special_tokens)
            .map_err(|e| e.to_string())
    }

    /// The vocabulary string of token `id` (byte-level tokens keep their `Ġ` marks).
    pub fn token_str(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// The chat prompt `messages` make under the model's template, with the assistant
    /// header appended when `add_generation_prompt`. `messages` are the request's,
    /// content parts already joined into text.
    pub fn render_chat(
        &self,
        messages: &Value,
        add_generation_prompt: bool,
    ) -> std::result::Result<String, String> {
        let env = self
            .template
            .as_ref()
            .ok_or_else(|| "the model's tokenizer has no chat template (tokenizer_config.json `chat_template` or chat_template.jinja)".to_owned())?;
        let tmpl = env.get_template("chat").map_err(|e| e.to_string())?;
        tmpl.render(minijinja::context! {
            messages => minijinja::Value::from(minijinja::value::Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        })
        .map_err(|e| format!("the chat template failed: {e:#}"))
    }
}

/// `chat_template` of a tokenizer config: a string, or a list of named templates of
/// which `default` is used (else the first).
fn chat_template_source(cfg: &Value) -> Option<String> {
    match cfg.get("chat_template")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => {
            let named = |n: &str| {
                list.iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some(n))
            };
            named("default")
                .or_else(|| list.first())
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        }
        _ => None,
    }
}

/// A Jinja environment as `transformers` builds one for chat templates.
fn compile_template(source: String, path: &Path) -> Result<minijinja::Environment<'static>> {
    let mut env = minijinja::Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| tok_err(path, e))?;
    env.set_syntax(syntax);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_function("strftime_now", |fmt: String| {
        strftime_utc(&fmt, crate::units::unix_days_now())
    });
    env.add_template_owned("chat", source)
        .map_err(|e| tok_err(path, format!("field `chat_template`: {e:#}")))?;
    Ok(env)
}

/// `%d`, `%b`, `%B`, `%m`, `%Y`, `%y` and `%%` of the UTC date `days` after the
/// epoch (what chat templates ask `strftime_now` for); other text is kept.
fn strftime_utc(fmt: &str, days: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (year, month, day) = crate::units::civil_from_days(days);
    let name = MONTHS[(month - 1) as usize];
    let (month, day) = (i64::from(month), i64::from(day));
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('b') => out.push_str(&name[..3]),
            Some('B') => out.push_str(name),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// The first token (common words first, then the vocabulary in id order) whose
/// repeated text re-encodes to exactly as many tokens (see [`FILLER_CHECKS`]).
fn find_filler(tok: &Tokenizer) -> Option<Filler> {
    let words = FILLER_WORDS.iter().filter_map(|w| {
        let ids = tok.encode(*w, false).ok()?.get_ids().to_vec();
        (ids.len() == 1).then(|| ids[0])
    });
    let vocab = (0..tok.get_vocab_size(false) as u32).filter(|&id| {
        tok.decode(&[id], true).is_ok_and(|s| {
            s.len() >= 2 && s.starts_with(' ') && s[1..].chars().all(|c| c.is_ascii_alphabetic())
        })
    });
    words.chain(vocab).find_map(|id| filler_of(tok, id))
}

/// `id` as the filler, if its repeated text re-encodes to as many tokens and decoding
/// `k` of them is the first text plus `k − 1` times the rest.
fn filler_of(tok: &Tokenizer, id: u32) -> Option<Filler> {
    let first = tok.decode(&[id], true).ok()?;
    let two = tok.decode(&[id, id], true).ok()?;
    let rest = two.strip_prefix(first.as_str())?.to_owned();
    if first.is_empty() || rest.is_empty() {
        return None;
    }
    let filler = Filler { id, first, rest };
    FILLER_CHECKS
        .iter()
        .all(|&k| {
            let text = filler.text(0, k as u32);
            let decoded = tok.decode(&vec![id; k], true).ok();
            let ids = tok.encode(text.as_str(), false).ok();
            decoded.as_deref() == Some(text.as_str())
                && ids
                    .is_some_and(|e| e.get_ids().len() == k && e.get_ids().iter().all(|&t| t == id))
        })
        .then_some(filler)
}

/// `max_new_tokens` of the checkpoint folder's `generation_config.json`, if any: vLLM
/// (`--generation-config auto`) takes it as the output limit of chat requests that set
/// none.
pub fn generation_max_new_tokens(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join("generation_config.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.get("max_new_tokens")?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
}

/// Where a model's tokenizer is: `explicit` (a folder, or `org/name` in the hub
/// cache) if given, else the `--model` value when it names such a folder or cached
/// repository. `None` when neither holds a `tokenizer.json`.
pub fn find_tokenizer_dir(
    explicit: Option<&str>,
    model: &str,
    hub_cache: Option<&Path>,
) -> Option<PathBuf> {
    let look = |name: &str| -> Option<PathBuf> {
        let p = Path::new(name);
        if p.is_dir() {
            return p.join(TOKENIZER_FILE).is_file().then(|| p.to_owned());
        }
        crate::model::hf_folder::cached_snapshot_with(hub_cache?, name, TOKENIZER_FILE)
    };
    match explicit {
        Some(e) => look(e),
        None => look(model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/llama3-style-bpe2k")
    }

    #[test]
    fn the_filler_re_encodes_to_exactly_its_count() {
        let t = ModelTokenizer::from_dir(&fixture()).unwrap();
        let f = t.filler().clone();
        assert_eq!(f.first, " the", "a common word is tried first");
        for k in [1u32, 2, 10, 100, 1000] {
            let text = f.text(0, k);
            assert_eq!(t.encode(&text, false).unwrap().len(), k as usize);
            // Chunks concatenate to the whole text.
            assert_eq!(f.text(0, 3) + &f.text(3, k), f.text(0, k + 3));
        }
    }

    #[test]
    fn bad_folders_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let e = ModelTokenizer::from_dir(dir).unwrap_err().to_string();
        assert!(e.contains("tokenizer.json"), "{e}");
        std::fs::write(dir.join(TOKENIZER_FILE), "{not json").unwrap();
        let e = ModelTokenizer::from_dir(dir).unwrap_err().to_string();
        assert!(
            e.contains(&dir.join(TOKENIZER_FILE).display().to_string()),
            "{e}"
        );
        std::fs::copy(fixture().join(TOKENIZER_FILE), dir.join(TOKENIZER_FILE)).unwrap();
        std::fs::write(
            dir.join(TOKENIZER_CONFIG_FILE),
            r#"{"chat_template": "{% if %}"}"#,
        )
        .unwrap();
        let e = ModelTokenizer::from_dir(dir).unwrap_err().to_string();
        assert!(
            e.contains("tokenizer_config.json") && e.contains("chat_template"),
            "{e}"
        );
    }

    #[test]
    fn strftime_renders_civil_dates() {
        // 2024-07-26 is day 19,930 after the epoch.
        assert_eq!(strftime_utc("%d %b %Y", 19_930), "26 Jul 2024");
        assert_eq!(
            strftime_utc("%Y-%m-%d %B %y %%", 0),
            "1970-01-01 January 70 %"
        );
        assert_eq!(strftime_utc("%d %b %Y", 11_016), "29 Feb 2000");
    }

    #[test]
    fn templates_take_a_string_or_the_default_of_a_list() {
        let cfg = serde_json::json!({"chat_template": "a"});
        assert_eq!(chat_template_source(&cfg).as_deref(), Some("a"));
        let cfg = serde_json::json!({"chat_template": [
            {"name": "tool_use", "template": "t"}, {"name": "default", "template": "d"}]});
        assert_eq!(chat_template_source(&cfg).as_deref(), Some("d"));
        assert_eq!(chat_template_source(&serde_json::json!({})), None);
    }
}
