//! OpenAI request and response bodies, and the prompt approximation used when no
//! tokenizer is loaded.
//!
//! # Token counts
//!
//! With the model's tokenizer ([`super::tokenizer`]) prompts count exactly as vLLM
//! counts them. Without one, prompt lengths are approximated:
//!
//! * **Text** counts ⌈characters ÷ 4⌉ tokens (OpenAI's rule of thumb for English), at
//!   least 1. Characters are Unicode scalar values.
//! * **Token ids** (`prompt` given as an array of integers) count exactly: one token per
//!   id (checked against the vocabulary only when a tokenizer is loaded).
//! * **Chat** messages count their text content (string, or the `text` of `text`
//!   parts; other parts such as images count nothing) plus 3 template tokens and 1 role
//!   token per message, a `name`'s text plus 1, and 3 for the assistant header that
//!   primes the reply (the accounting of OpenAI's cookbook for its chat format).
//!
//! # Output length
//!
//! Output length is `max_tokens` (chat: `max_completion_tokens`, else `max_tokens`),
//! clamped to the rest of the context window as vLLM does (a limit above the whole
//! window is an error). No end-of-sequence token is simulated, so every request
//! generates exactly that many tokens, as vLLM does with `ignore_eos: true`;
//! `ignore_eos`, `min_tokens`, `stop` and other sampling fields are accepted and have no
//! effect (`temperature` only refuses `n` > 1 with greedy sampling, as vLLM), and
//! `finish_reason` is always `"length"`. When the limit is absent the default is the
//! server's `--default-max-tokens` if set, else 16 for completions (OpenAI's and vLLM's
//! default) and the rest of the context window (`max_model_len − prompt`) for chat
//! (vLLM's default). Unknown fields are ignored.
//!
//! The generated text repeats one token: with a tokenizer, an ordinary vocabulary token
//! whose repetitions re-encode to exactly as many tokens; without, `" tok"` per token
//! (chat drops the first space), which the approximation counts as one token each.
//! `logprobs` are synthetic ([`logprob_of_rank`]).

use super::errors::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default `max_tokens` of `/v1/completions` (OpenAI's and vLLM's).
pub const DEFAULT_COMPLETION_MAX_TOKENS: u32 = 16;
/// Template tokens around each chat message.
pub const TOKENS_PER_MESSAGE: u64 = 3;
/// Extra tokens for a message's `name` (besides its text).
pub const TOKENS_PER_NAME: u64 = 1;
/// Tokens of the assistant header that primes the reply.
pub const REPLY_PRIMING_TOKENS: u64 = 3;
/// Characters per token of the text approximation.
pub const CHARS_PER_TOKEN: u64 = 4;

/// `stream_options`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the `usage` of the whole request.
    #[serde(default)]
    pub include_usage: Option<bool>,
    /// With `include_usage`, every chunk also carries the usage so far (vLLM's
    /// extension).
    #[serde(default)]
    pub continuous_usage_stats: Option<bool>,
}

/// The body of `POST /v1/completions` (the fields that matter to the simulation).
#[derive(Clone, Debug, Deserialize)]
pub struct CompletionRequest {
    /// Served model name; absent means the (first) served model, as vLLM allows.
    #[serde(default)]
    pub model: Option<String>,
    /// A string, an array of token ids, or a one-element array of either.
    pub prompt: Value,
    /// Tokens to generate.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Choices per prompt (each a simulated request of its own).
    #[serde(default)]
    pub n: Option<u32>,
    /// Echo the prompt (not supported).
    #[serde(default)]
    pub echo: Option<bool>,
    /// Log-probabilities of this many most likely tokens per position (0–20;
    /// synthetic values, see [`logprob_of_rank`]).
    #[serde(default)]
    pub logprobs: Option<u32>,
    /// Encode a text prompt with the tokenizer's special tokens (default true).
    #[serde(default)]
    pub add_special_tokens: Option<bool>,
    /// Sampling temperature (only checked: `n` > 1 needs a non-greedy one, as vLLM).
    #[serde(default)]
    pub temperature: Option<f64>,
}

/// One chat message.
#[derive(Clone, Debug, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`, …
    pub role: String,
    /// A string, an array of content parts, or null.
    #[serde(default)]
    pub content: Value,
    /// Optional participant name.
    #[serde(default)]
    pub name: Option<String>,
    /// Other fields (`tool_calls`, `tool_call_id`, …), passed to the chat template.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// The body of `POST /v1/chat/completions` (the fields that matter to the simulation).
#[derive(Clone, Debug, Deserialize)]
pub struct ChatCompletionRequest {
    /// Served model name; absent means the (first) served model.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Tokens to generate (deprecated by OpenAI in favour of `max_completion_tokens`).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Tokens to generate; wins over `max_tokens`.
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Choices (each a simulated request of its own).
    #[serde(default)]
    pub n: Option<u32>,
    /// Return the log-probability of each generated token (synthetic values).
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// With `logprobs`, also this many most likely tokens per position (0–20).
    #[serde(default)]
    pub top_logprobs: Option<u32>,
    /// Append the assistant header to the prompt (default true).
    #[serde(default)]
    pub add_generation_prompt: Option<bool>,
    /// Sampling temperature (only checked: `n` > 1 needs a non-greedy one, as vLLM).
    #[serde(default)]
    pub temperature: Option<f64>,
}

/// Approximate tokens of `text`: ⌈chars ÷ 4⌉ (0 for empty text).
pub fn text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(CHARS_PER_TOKEN)
}

/// Prompt tokens of a completions `prompt`.
pub fn completion_prompt_tokens(prompt: &Value) -> Result<u64, ApiError> {
    let bad = |m: &str| Err(ApiError::bad_param("prompt", m));
    match prompt {
        Value::String(s) => Ok(text_tokens(s).max(1)),
        Value::Array(items) if items.is_empty() => bad("`prompt` must not be empty"),
        Value::Array(items) if items.iter().all(Value::is_u64) => Ok(items.len() as u64),
        Value::Array(items) if items.len() == 1 => match &items[0] {
            Value::String(_) | Value::Array(_) => completion_prompt_tokens(&items[0]),
            _ => bad("`prompt` must be a string, an array of token ids (non-negative integers), or a one-element array of either"),
        },
        Value::Array(_) if prompt_is_batch(prompt) => bad("batched prompts (several prompts in one request) are not supported: send one request per prompt"),
        _ => bad("`prompt` must be a string, an array of token ids (non-negative integers), or a one-element array of either"),
    }
}

fn prompt_is_batch(prompt: &Value) -> bool {
    prompt
        .as_array()
        .is_some_and(|a| a.iter().all(|p| p.is_string() || p.is_array()))
}

/// Prompt tokens of a chat conversation.
pub fn chat_prompt_tokens(messages: &[ChatMessage]) -> Result<u64, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::bad_param(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
    let mut total = REPLY_PRIMING_TOKENS;
    for (i, m) in messages.iter().enumerate() {
        total += TOKENS_PER_MESSAGE + 1;
        if let Some(name) = &m.name {
            total += text_tokens(name) + TOKENS_PER_NAME;
        }
        total += match &m.content {
            Value::Null => 0,
            Value::String(s) => text_tokens(s),
            Value::Array(parts) => parts
                .iter()
                .map(|p| p.get("text").and_then(Value::as_str).map_or(0, text_tokens))
                .sum(),
            _ => {
                return Err(ApiError::bad_param(
                    "messages",
                    format!(
                    "messages[{i}].content must be a string, an array of content parts, or null"
                ),
                ))
            }
        };
    }
    Ok(total)
}

/// Token usage of a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens (the model's tokenizer, or approximated: see the module docs).
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// Their sum.
    pub total_tokens: u32,
    /// Prompt tokens served from the (simulated) prefix cache, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// `usage.prompt_tokens_details`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens whose KV came from the prefix cache.
    pub cached_tokens: u32,
}

impl Usage {
    /// Usage of `prompt` plus `completion` tokens.
    pub fn new(prompt: u32, completion: u32) -> Self {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            prompt_tokens_details: None,
        }
    }

    /// With `cached` prompt tokens from the prefix cache.
    pub fn with_cached(mut self, cached: u32) -> Self {
        self.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: cached,
        });
        self
    }
}

/// Most tokens per position `logprobs` / `top_logprobs` may ask for (vLLM's default
/// `--max-logprobs`).
pub const MAX_LOGPROBS: u32 = 20;

/// The synthetic log-probability of the token of rank `rank` at every position: the
/// generated token is rank 0 (−0.1, probability 0.905), alternatives fall by 2.5 nats
/// per rank, so the listed probabilities sum to less than 1.
pub fn logprob_of_rank(rank: u32) -> f32 {
    -0.1 - 2.5 * rank as f32
}

/// Filler text for output tokens `start..start + count`: `" tok"` each, without the
/// leading space of token 0 when `trim_first` (chat).
pub fn filler(start: u32, count: u32, trim_first: bool) -> String {
    let mut s = String::with_capacity(4 * count as usize);
    for i in start..start.saturating_add(count) {
        s.push_str(if i == 0 && trim_first { "tok" } else { " tok" });
    }
    s
}

/// A choice of a (non-streamed or streamed) text completion.
#[derive(Serialize)]
pub(crate) struct CompletionChoice<'a> {
    pub(crate) index: u32,
    pub(crate) text: String,
    pub(crate) logprobs: Option<CompletionLogprobs>,
    pub(crate) finish_reason: Option<&'a str>,
}

/// `logprobs` of a text completion choice (the legacy completions format).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct CompletionLogprobs {
    /// Character offset of each token in the choice's text.
    pub(crate) text_offset: Vec<u32>,
    /// Log-probability of each generated token.
    pub(crate) token_logprobs: Vec<f32>,
    /// Text of each generated token.
    pub(crate) tokens: Vec<String>,
    /// The most likely tokens at each position, text to log-probability.
    pub(crate) top_logprobs: Vec<serde_json::Map<String, Value>>,
}

/// `logprobs` of a chat choice.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct ChatLogprobs {
    /// One entry per generated token.
    pub(crate) content: Vec<ChatTokenLogprob>,
}

/// A generated token with its log-probability and the most likely alternatives.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct ChatTokenLogprob {
    pub(crate) token: String,
    pub(crate) logprob: f32,
    pub(crate) bytes: Vec<u8>,
    pub(crate) top_logprobs: Vec<TopLogprob>,
}

/// One of the most likely tokens at a position.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct TopLogprob {
    pub(crate) token: String,
    pub(crate) logprob: f32,
    pub(crate) bytes: Vec<u8>,
}

/// A completion response or streamed chunk, text or chat (`C` is the choice type).
#[derive(Serialize)]
pub(crate) struct CompletionResponse<'a, C> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: Vec<C>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) usage: Option<Usage>,
}

/// A text completion (`object: "text_completion"`), whole or one streamed chunk.
pub(crate) type Completion<'a> = CompletionResponse<'a, CompletionChoice<'a>>;

/// An assistant message or streamed delta.
#[derive(Serialize)]
pub(crate) struct Message {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<String>,
}

/// A chat choice: `message` when whole, `delta` when streamed.
#[derive(Serialize)]
pub(crate) struct ChatChoice<'a> {
    pub(crate) index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) delta: Option<Message>,
    pub(crate) logprobs: Option<ChatLogprobs>,
    pub(crate) finish_reason: Option<&'a str>,
}

/// A chat completion (`chat.completion`) or chunk (`chat.completion.chunk`).
pub(crate) type ChatCompletion<'a> = CompletionResponse<'a, ChatChoice<'a>>;

/// `GET /v1/models` entry.
#[derive(Serialize)]
pub(crate) struct ModelCard<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) owned_by: &'static str,
    pub(crate) root: &'a str,
    pub(crate) parent: Option<&'a str>,
    pub(crate) max_model_len: u32,
    /// How this server counts tokens (servesim's own field).
    pub(crate) servesim_tokenizer: &'a str,
}

/// `GET /v1/models` body.
#[derive(Serialize)]
pub(crate) struct ModelList<'a> {
    pub(crate) object: &'static str,
    pub(crate) data: Vec<ModelCard<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_four_characters_per_token() {
        assert_eq!(text_tokens(""), 0);
        assert_eq!(text_tokens("abcd"), 1);
        assert_eq!(text_tokens("abcde"), 2);
        assert_eq!(text_tokens("ééé"), 1, "characters, not bytes");
        assert_eq!(completion_prompt_tokens(&json!("")).unwrap(), 1);
        assert_eq!(completion_prompt_tokens(&json!("Hello world!")).unwrap(), 3);
    }

    #[test]
    fn token_ids_count_exactly() {
        assert_eq!(completion_prompt_tokens(&json!([1, 2, 3])).unwrap(), 3);
        assert_eq!(completion_prompt_tokens(&json!([[1, 2, 3, 4]])).unwrap(), 4);
        assert_eq!(completion_prompt_tokens(&json!(["abcdefgh"])).unwrap(), 2);
    }

    #[test]
    fn bad_prompts_are_400() {
        for p in [
            json!([]),
            json!(7),
            json!(null),
            json!([1, -2]),
            json!([{"a": 1}]),
        ] {
            let e = completion_prompt_tokens(&p).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{p}");
            assert_eq!(e.param, Some("prompt"));
        }
        let e = completion_prompt_tokens(&json!(["a", "b"])).unwrap_err();
        assert!(e.message.contains("batched"));
    }

    #[test]
    fn chat_adds_template_tokens() {
        let msgs: Vec<ChatMessage> = serde_json::from_value(json!([
            {"role": "system", "content": "abcdefgh"},
            {"role": "user", "content": [{"type": "text", "text": "abcd"}, {"type": "image_url"}], "name": "bob"},
        ]))
        .unwrap();
        // 3 priming + (3 template + 1 role + 2 content) + (3 + 1 + 1 content + 1 name + 1).
        assert_eq!(chat_prompt_tokens(&msgs).unwrap(), 3 + 6 + 7);
        assert!(chat_prompt_tokens(&[]).is_err());
        let msgs: Vec<ChatMessage> =
            serde_json::from_value(json!([{"role": "user", "content": 5}])).unwrap();
        assert_eq!(chat_prompt_tokens(&msgs).unwrap_err().status.as_u16(), 400);
    }

    #[test]
    fn filler_has_one_word_per_token() {
        assert_eq!(filler(0, 3, false), " tok tok tok");
        assert_eq!(filler(0, 2, true), "tok tok");
        assert_eq!(filler(2, 1, true), " tok");
    }
}
