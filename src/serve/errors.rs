//! OpenAI-style error bodies: `{"error": {"message", "type", "param", "code"}}` with the
//! HTTP status that clients map to exception classes (the `openai` Python package picks
//! `BadRequestError`, `NotFoundError`, `RateLimitError`… from the status alone).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable explanation, saying how to fix the request where possible.
    pub message: String,
    /// OpenAI error type (`invalid_request_error`, `rate_limit_error`, `server_error`).
    pub kind: &'static str,
    /// The request field at fault, if one is.
    pub param: Option<&'static str>,
    /// A machine-readable code (`model_not_found`, `context_length_exceeded`, …).
    pub code: Option<&'static str>,
}

/// The JSON body of an error.
#[derive(Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub(crate) error: ErrorDetail<'a>,
}

/// The `error` object.
#[derive(Serialize)]
pub(crate) struct ErrorDetail<'a> {
    pub(crate) message: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) param: Option<&'a str>,
    pub(crate) code: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
        }
    }

    /// 400: the request is malformed or asks for something unsupported.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 400 naming the field at fault.
    pub fn bad_param(param: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            param: Some(param),
            ..Self::bad_request(message)
        }
    }

    /// 404: no model of that name is served.
    pub fn model_not_found(model: &str) -> Self {
        ApiError {
            param: Some("model"),
            code: Some("model_not_found"),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!("The model `{model}` does not exist (see GET /v1/models)."),
            )
        }
    }

    /// 400: the requested output alone exceeds the context window (`param`: the limit's
    /// field).
    pub fn context_length(param: &'static str, max_model_len: u32, max_tokens: u32) -> Self {
        ApiError {
            param: Some(param),
            code: Some("context_length_exceeded"),
            ..Self::bad_request(format!(
                "max_tokens={max_tokens} cannot be greater than max_model_len={max_model_len}. Please request fewer output tokens."
            ))
        }
    }

    /// 400: the prompt alone fills the context window.
    pub fn prompt_too_long(param: &'static str, max_model_len: u32, prompt: u64) -> Self {
        ApiError {
            param: Some(param),
            code: Some("context_length_exceeded"),
            ..Self::bad_request(format!(
                "This model's maximum context length is {max_model_len} tokens. However, your {param} has {prompt} tokens, which leaves no room for the completion. Please reduce the length of the {param}."
            ))
        }
    }

    /// An error with any status (e.g. a body the server could not read).
    pub fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        let kind = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        Self::new(status, kind, message)
    }

    /// 429: too many requests are waiting for admission.
    pub fn queue_full(waiting: usize) -> Self {
        ApiError {
            code: Some("queue_full"),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                format!("The server is overloaded: {waiting} requests are already waiting (--max-queue). Retry later."),
            )
        }
    }

    /// 503: the server is shutting down (or its engine stopped).
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            code: Some("service_unavailable"),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        let body = ErrorBody {
            error: ErrorDetail {
                message: &self.message,
                kind: self.kind,
                param: self.param,
                code: self.code,
            },
        };
        serde_json::to_string(&body).unwrap_or_else(|_| r#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#.into())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.kind,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.to_json(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_four_openai_fields() {
        let v: serde_json::Value =
            serde_json::from_str(&ApiError::model_not_found("x").to_json()).unwrap();
        let e = &v["error"];
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["param"], "model");
        assert_eq!(e["code"], "model_not_found");
        assert!(e["message"].as_str().unwrap().contains("`x`"));
        let v: serde_json::Value =
            serde_json::from_str(&ApiError::bad_request("bad").to_json()).unwrap();
        assert!(v["error"]["param"].is_null() && v["error"]["code"].is_null());
    }
}
