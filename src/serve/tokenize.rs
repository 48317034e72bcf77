//! vLLM's `POST /tokenize` and `POST /detokenize`, with the model's tokenizer.
//!
//! `/tokenize` takes `prompt` (a string, encoded with special tokens unless
//! `add_special_tokens` is false) or chat `messages` (rendered with the chat template,
//! `add_generation_prompt` default true, encoded without special tokens unless
//! `add_special_tokens` is true), and answers `{"count", "max_model_len", "tokens",
//! "token_strs"}` (`token_strs` only with `return_token_strs`). `/detokenize` takes
//! `tokens` and answers `{"prompt"}`. Without a tokenizer both answer 501.

use super::errors::ApiError;
use super::openai::ChatMessage;
use super::routes::parse;
use super::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

/// The body of `POST /tokenize`.
#[derive(Debug, Deserialize)]
struct TokenizeRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    messages: Option<Vec<ChatMessage>>,
    #[serde(default)]
    add_special_tokens: Option<bool>,
    #[serde(default)]
    add_generation_prompt: Option<bool>,
    #[serde(default)]
    return_token_strs: Option<bool>,
}

/// The body of `POST /detokenize`.
#[derive(Debug, Deserialize)]
struct DetokenizeRequest {
    #[serde(default)]
    model: Option<String>,
    tokens: Vec<u32>,
}

fn no_tokenizer() -> ApiError {
    ApiError::with_status(
        StatusCode::NOT_IMPLEMENTED,
        "this server has no tokenizer (start it with --tokenizer DIR, or a --model folder holding tokenizer.json)",
    )
}

pub(crate) async fn tokenize(
    State(app): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = (|| {
        let req: TokenizeRequest = parse(body)?;
        app.model(req.model)?;
        let tok = app.tokens.model().ok_or_else(no_tokenizer)?;
        let ids = match (&req.prompt, &req.messages) {
            (Some(text), None) => tok
                .encode(text, req.add_special_tokens.unwrap_or(true))
                .map_err(|e| ApiError::bad_param("prompt", e))?,
            (None, Some(messages)) => {
                let text = tok
                    .render_chat(
                        &super::prompt::template_messages(messages),
                        req.add_generation_prompt.unwrap_or(true),
                    )
                    .map_err(|e| ApiError::bad_param("messages", e))?;
                tok.encode(&text, req.add_special_tokens.unwrap_or(false))
                    .map_err(|e| ApiError::bad_param("messages", e))?
            }
            _ => {
                return Err(ApiError::bad_request(
                    "give exactly one of `prompt` and `messages`",
                ))
            }
        };
        let token_strs = req.return_token_strs.unwrap_or(false).then(|| {
            ids.iter()
                .map(|&id| tok.token_str(id).unwrap_or_default())
                .collect::<Vec<_>>()
        });
        Ok(serde_json::json!({
            "count": ids.len(),
            "max_model_len": app.max_model_len,
            "tokens": ids,
            "token_strs": token_strs,
        }))
    })();
    match answer {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn detokenize(
    State(app): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = (|| {
        let req: DetokenizeRequest = parse(body)?;
        app.model(req.model)?;
        let tok = app.tokens.model().ok_or_else(no_tokenizer)?;
        if let Some(&bad) = req.tokens.iter().find(|&&t| t >= tok.vocab_size()) {
            return Err(ApiError::bad_param(
                "tokens",
                format!("Token id {bad} is out of vocabulary"),
            ));
        }
        let text = tok
            .decode(&req.tokens, false)
            .map_err(|e| ApiError::bad_param("tokens", e))?;
        Ok(serde_json::json!({ "prompt": text }))
    })();
    match answer {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}
