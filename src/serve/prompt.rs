//! How a request's prompt becomes tokens, and output tokens become text: with the
//! model's tokenizer when one was found ([`Tokenization::Model`]), else with the
//! approximation of [`super::openai`] ([`Tokenization::Approximate`]).

use super::errors::ApiError;
use super::openai::{chat_prompt_tokens, completion_prompt_tokens, filler, ChatMessage};
use super::tokenizer::ModelTokenizer;
use serde_json::Value;
use std::sync::Arc;

/// A request's prompt as the engine sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Its length in tokens.
    pub tokens: u64,
    /// Its token ids, when known (a tokenizer was loaded, or the client sent ids):
    /// they give the simulated prefix cache its block hashes.
    pub ids: Option<Vec<u32>>,
}

/// The server's tokenization.
#[derive(Clone, Debug)]
pub enum Tokenization {
    /// The model's own tokenizer.
    Model(Arc<ModelTokenizer>),
    /// No tokenizer: about four characters per token (see [`super::openai`]).
    Approximate,
}

impl Tokenization {
    /// One line for the start-up banner and `/v1/models`.
    pub fn describe(&self) -> String {
        match self {
            Tokenization::Model(t) => format!(
                "tokenizer {} ({} tokens{})",
                t.dir().display(),
                t.vocab_size(),
                if t.has_chat_template() {
                    ", chat template"
                } else {
                    ", no chat template"
                }
            ),
            Tokenization::Approximate => {
                "no tokenizer: prompt tokens approximated as characters / 4 (chat: + OpenAI's template overhead)"
                    .to_owned()
            }
        }
    }

    /// The tokenizer, when one is loaded.
    pub fn model(&self) -> Option<&ModelTokenizer> {
        match self {
            Tokenization::Model(t) => Some(t),
            Tokenization::Approximate => None,
        }
    }

    /// The prompt of a completions request (`prompt`: a string, token ids, or a
    /// one-element array of either); text gets the tokenizer's special tokens when
    /// `add_special_tokens` (vLLM's default for completions).
    pub fn completion_prompt(
        &self,
        prompt: &Value,
        add_special_tokens: bool,
    ) -> Result<Prompt, ApiError> {
        let count = completion_prompt_tokens(prompt)?;
        let Tokenization::Model(tok) = self else {
            return Ok(Prompt {
                tokens: count,
                ids: token_ids(prompt),
            });
        };
        if let Some(ids) = token_ids(prompt) {
            check_ids(tok, &ids)?;
            return Ok(Prompt {
                tokens: ids.len() as u64,
                ids: Some(ids),
            });
        }
        let text = prompt_text(prompt).unwrap_or_default();
        let ids = tok
            .encode(text, add_special_tokens)
            .map_err(|e| ApiError::bad_param("prompt", format!("cannot tokenize: {e}")))?;
        if ids.is_empty() {
            return Err(ApiError::bad_param("prompt", "the prompt cannot be empty"));
        }
        Ok(Prompt {
            tokens: ids.len() as u64,
            ids: Some(ids),
        })
    }

    /// The prompt of a chat request: the model's template applied to `messages`, then
    /// encoded without special tokens (the template writes them), as vLLM does.
    pub fn chat_prompt(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<Prompt, ApiError> {
        let count = chat_prompt_tokens(messages)?;
        let Tokenization::Model(tok) = self else {
            return Ok(Prompt {
                tokens: count,
                ids: None,
            });
        };
        let text = tok
            .render_chat(&template_messages(messages), add_generation_prompt)
            .map_err(|e| ApiError::bad_param("messages", e))?;
        let ids = tok
            .encode(&text, false)
            .map_err(|e| ApiError::bad_param("messages", format!("cannot tokenize: {e}")))?;
        Ok(Prompt {
            tokens: ids.len() as u64,
            ids: Some(ids),
        })
    }

    /// Text of output tokens `start..start + count` (`chat` only matters to the
    /// approximation, whose chat replies drop the first space).
    pub fn output_text(&self, start: u32, count: u32, chat: bool) -> String {
        match self {
            Tokenization::Model(t) => t.filler().text(start, count),
            Tokenization::Approximate => filler(start, count, chat),
        }
    }

    /// The text of the generated token (`alternative` 0, for `logprobs`), or of the
    /// `alternative`-th other token, which is never the generated one.
    pub fn token_text(&self, first: bool, alternative: u32) -> String {
        match self {
            Tokenization::Model(t) => {
                let f = t.filler();
                if alternative == 0 {
                    return if first { &f.first } else { &f.rest }.clone();
                }
                // The tokens after the filler's id (wrapping past the vocabulary).
                let id = (f.id + alternative) % t.vocab_size().max(1);
                t.decode(&[id], false).unwrap_or_default()
            }
            Tokenization::Approximate if alternative == 0 => filler(u32::from(!first), 1, true),
            Tokenization::Approximate => format!(" tok{alternative}"),
        }
    }
}

/// The ids of a token-id prompt (`[1, 2]` or `[[1, 2]]`).
fn token_ids(prompt: &Value) -> Option<Vec<u32>> {
    let items = match prompt {
        Value::Array(a) if a.len() == 1 && a[0].is_array() => a[0].as_array()?,
        Value::Array(a) => a,
        _ => return None,
    };
    items
        .iter()
        .map(|v| v.as_u64().and_then(|i| u32::try_from(i).ok()))
        .collect()
}

/// The text of a text prompt (`"…"` or `["…"]`).
fn prompt_text(prompt: &Value) -> Option<&str> {
    match prompt {
        Value::String(s) => Some(s),
        Value::Array(a) if a.len() == 1 => a[0].as_str(),
        _ => None,
    }
}

/// vLLM refuses ids outside the vocabulary.
fn check_ids(tok: &ModelTokenizer, ids: &[u32]) -> Result<(), ApiError> {
    match ids.iter().max() {
        Some(&max) if max >= tok.vocab_size() => Err(ApiError::bad_param(
            "prompt",
            format!(
                "Token id {max} is out of vocabulary (the tokenizer has {} tokens)",
                tok.vocab_size()
            ),
        )),
        _ => Ok(()),
    }
}

/// The messages as a chat template reads them: text parts joined by newlines into
/// one string (vLLM's "string" content format), other fields as sent.
pub(crate) fn template_messages(messages: &[ChatMessage]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|m| {
                let mut obj = m.extra.clone();
                obj.insert("role".into(), Value::String(m.role.clone()));
                let content = match &m.content {
                    Value::Array(parts) => Value::String(
                        parts
                            .iter()
                            .filter_map(|p| p.get("text").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    ),
                    other => other.clone(),
                };
                obj.insert("content".into(), content);
                if let Some(name) = &m.name {
                    obj.insert("name".into(), Value::String(name.clone()));
                }
                Value::Object(obj)
            })
            .collect(),
    )
}

/// Chained hashes of the prompt's blocks of [`crate::trace::DEFAULT_HASH_BLOCK_TOKENS`]
/// token ids (the last block may be partial): two prompts share a leading run of ids
/// exactly as far as they share a leading run of tokens, so the simulated prefix cache
/// finds what vLLM's would.
pub fn prefix_hash_ids(ids: &[u32]) -> Vec<u64> {
    // FNV-1a over the previous block's hash and this block's ids: stable across runs
    // and platforms.
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut prev = OFFSET;
    ids.chunks(crate::trace::DEFAULT_HASH_BLOCK_TOKENS as usize)
        .map(|block| {
            let mut h = OFFSET;
            for b in prev
                .to_le_bytes()
                .into_iter()
                .chain(block.iter().flat_map(|t| t.to_le_bytes()))
            {
                h = (h ^ u64::from(b)).wrapping_mul(PRIME);
            }
            prev = h;
            h
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_hashes_agree_exactly_as_far_as_the_prompts_do() {
        let a: Vec<u32> = (0..40).collect();
        let mut b = a.clone();
        b[20] = 999;
        let (ha, hb) = (prefix_hash_ids(&a), prefix_hash_ids(&b));
        assert_eq!(ha.len(), 3, "16 + 16 + 8 tokens");
        assert_eq!(ha[0], hb[0]);
        assert_ne!(ha[1], hb[1]);
        assert_ne!(
            ha[2], hb[2],
            "chained: a later block differs once an earlier one does"
        );
        assert_eq!(prefix_hash_ids(&a[..16]), ha[..1]);
        assert!(prefix_hash_ids(&[]).is_empty());
    }

    #[test]
    fn token_id_prompts_keep_their_ids() {
        let p = Tokenization::Approximate
            .completion_prompt(&serde_json::json!([[5, 6, 7]]), true)
            .unwrap();
        assert_eq!(p.tokens, 3);
        assert_eq!(p.ids, Some(vec![5, 6, 7]));
        let p = Tokenization::Approximate
            .completion_prompt(&serde_json::json!("abcdefgh"), true)
            .unwrap();
        assert_eq!((p.tokens, p.ids), (2, None));
    }
}
