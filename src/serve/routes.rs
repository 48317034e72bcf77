//! HTTP routes: request validation, submission to the engine task, and the JSON or
//! server-sent-event responses.

use super::engine_task::{Command, NewRequest, RequestHandle};
use super::errors::ApiError;
use super::metrics::RequestParams;
use super::openai::{
    ChatCompletionRequest, CompletionRequest, ModelCard, ModelList, StreamOptions,
    DEFAULT_COMPLETION_MAX_TOKENS, MAX_LOGPROBS,
};
use super::prompt::Prompt;
use super::respond::{respond, Api, Job};
use super::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// Largest request body accepted.
const BODY_LIMIT_BYTES: usize = 16 * 1024 * 1024;

/// The server's routes.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/tokenize", post(super::tokenize::tokenize))
        .route("/detokenize", post(super::tokenize::detokenize))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/version", get(version))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ))
        .with_state(state)
}

/// With `--api-key`, every `/v1` route needs `Authorization: Bearer <key>`; others
/// (`/health`, `/metrics`, `/version`) stay open, as in vLLM.
async fn require_api_key(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(key) = &state.api_key {
        if req.uri().path().starts_with("/v1") {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !given.is_some_and(|g| key.matches(g)) {
                let mut r = ApiError::with_status(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized: this server needs `Authorization: Bearer <key>` with its --api-key",
                )
                .into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                return r;
            }
        }
    }
    next.run(req).await
}

/// A validated request before submission: the job and how to run its choices.
struct Plan {
    job: Job,
    /// Choices (simulated requests).
    n: u32,
    prompt: Prompt,
    /// The `max_tokens` the client sent, if any (for `/metrics`).
    max_tokens_param: Option<u32>,
}

pub(crate) fn parse<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|r| ApiError::with_status(r.status(), r.body_text()))?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl AppState {
    pub(crate) fn model(&self, requested: Option<String>) -> Result<String, ApiError> {
        match requested {
            None => Ok(self.model_names[0].clone()),
            Some(m) if self.model_names.contains(&m) => Ok(m),
            Some(m) => Err(ApiError::model_not_found(&m)),
        }
    }

    /// Output length: the request's limit (clamped to the rest of the context window),
    /// else the server default, else `fallback(remaining context)`.
    fn output_tokens(
        &self,
        requested: Option<u32>,
        prompt: u64,
        param: &'static str,
        fallback: impl Fn(u64) -> u64,
    ) -> Result<(u32, u32), ApiError> {
        let max = u64::from(self.max_model_len);
        if prompt >= max {
            return Err(ApiError::prompt_too_long(param, self.max_model_len, prompt));
        }
        let remaining = max - prompt;
        let out = match requested {
            Some(0) => {
                return Err(ApiError::bad_param(
                    "max_tokens",
                    "max_tokens must be at least 1",
                ))
            }
            // As vLLM (0.11 and later): a limit beyond the context window is an error,
            // one that only the prompt makes too long is clamped to what fits.
            Some(n) if n > self.max_model_len => {
                return Err(ApiError::context_length(
                    "max_tokens",
                    self.max_model_len,
                    n,
                ))
            }
            Some(n) => u64::from(n).min(remaining),
            None => match self.default_max_tokens {
                Some(d) => u64::from(d).min(remaining),
                None => fallback(remaining).clamp(1, remaining),
            },
        };
        // Both fit in u32: they are below max_model_len.
        Ok((prompt as u32, out as u32))
    }

    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        api: Api,
        model: String,
        prompt: Prompt,
        output_tokens: u32,
        (n, logprobs): (u32, Option<u32>),
        stream: Option<bool>,
        opts: Option<StreamOptions>,
        max_tokens_param: Option<u32>,
    ) -> Plan {
        let sim_id = self.next_id.load(Ordering::Relaxed);
        let prefix = match api {
            Api::Completions => "cmpl",
            Api::Chat => "chatcmpl",
        };
        let include_usage = opts.and_then(|o| o.include_usage).unwrap_or(false);
        Plan {
            job: Job {
                api,
                id: format!("{prefix}-{sim_id:016x}"),
                model,
                created: unix_now(),
                // Below max_model_len (checked), so it fits.
                prompt_tokens: prompt.tokens as u32,
                output_tokens,
                stream: stream.unwrap_or(false),
                include_usage,
                continuous_usage: include_usage
                    && opts.and_then(|o| o.continuous_usage_stats).unwrap_or(false),
                prompt_tokens_details: self.prompt_tokens_details,
                logprobs,
                tokens: self.tokens.clone(),
            },
            n,
            prompt,
            max_tokens_param,
        }
    }
}

/// Most choices a request may ask for.
const MAX_N: u32 = 128;

/// `n`, which vLLM refuses above 1 with greedy sampling (temperature ≈ 0).
fn check_n(n: Option<u32>, temperature: Option<f64>) -> Result<u32, ApiError> {
    match n.unwrap_or(1) {
        n @ 2..=MAX_N if temperature.is_some_and(|t| t < 1e-5) => Err(ApiError::bad_param(
            "n",
            format!("n must be 1 when using greedy sampling, got {n}."),
        )),
        n @ 1..=MAX_N => Ok(n),
        n => Err(ApiError::bad_param(
            "n",
            format!("n must be between 1 and {MAX_N}, got {n}"),
        )),
    }
}

/// vLLM refuses `stream_options` on a request that does not stream.
fn check_stream_options(stream: Option<bool>, opts: Option<StreamOptions>) -> Result<(), ApiError> {
    if opts.is_some() && stream != Some(true) {
        return Err(ApiError::bad_param(
            "stream_options",
            "Stream options can only be defined when `stream=True`.",
        ));
    }
    Ok(())
}

fn check_logprobs(param: &'static str, k: Option<u32>) -> Result<Option<u32>, ApiError> {
    match k {
        Some(k) if k > MAX_LOGPROBS => Err(ApiError::bad_param(
            param,
            format!("{param} must be at most {MAX_LOGPROBS} (vLLM's --max-logprobs), got {k}"),
        )),
        k => Ok(k),
    }
}

async fn completions(
    State(app): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let received = Instant::now();
    let plan = (|| {
        let req: CompletionRequest = parse(body)?;
        let model = app.model(req.model)?;
        let n = check_n(req.n, req.temperature)?;
        check_stream_options(req.stream, req.stream_options)?;
        let logprobs = check_logprobs("logprobs", req.logprobs)?;
        if req.echo == Some(true) {
            return Err(ApiError::bad_param("echo", "echo is not supported"));
        }
        let prompt = app
            .tokens
            .completion_prompt(&req.prompt, req.add_special_tokens.unwrap_or(true))?;
        let (_, out) = app.output_tokens(req.max_tokens, prompt.tokens, "prompt", |_| {
            u64::from(DEFAULT_COMPLETION_MAX_TOKENS)
        })?;
        Ok(app.plan(
            Api::Completions,
            model,
            prompt,
            out,
            (n, logprobs),
            req.stream,
            req.stream_options,
            req.max_tokens,
        ))
    })();
    run(&app, plan, received).await
}

async fn chat_completions(
    State(app): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let received = Instant::now();
    let plan = (|| {
        let req: ChatCompletionRequest = parse(body)?;
        let model = app.model(req.model)?;
        let n = check_n(req.n, req.temperature)?;
        check_stream_options(req.stream, req.stream_options)?;
        let top = check_logprobs("top_logprobs", req.top_logprobs)?;
        let logprobs = match (req.logprobs.unwrap_or(false), top) {
            (true, k) => Some(k.unwrap_or(0)),
            (false, Some(k)) if k > 0 => {
                return Err(ApiError::bad_param(
                    "top_logprobs",
                    "top_logprobs needs logprobs: true",
                ))
            }
            (false, _) => None,
        };
        let prompt = app
            .tokens
            .chat_prompt(&req.messages, req.add_generation_prompt.unwrap_or(true))?;
        let limit = req.max_completion_tokens.or(req.max_tokens);
        let model_limit = app.chat_max_new_tokens.map(u64::from);
        let (_, out) = app.output_tokens(limit, prompt.tokens, "messages", |remaining| {
            model_limit.map_or(remaining, |m| m.min(remaining))
        })?;
        Ok(app.plan(
            Api::Chat,
            model,
            prompt,
            out,
            (n, logprobs),
            req.stream,
            req.stream_options,
            limit,
        ))
    })();
    run(&app, plan, received).await
}

/// Submit the plan's choices (one simulated request each, all arriving when the HTTP
/// request was received) and answer.
async fn run(app: &AppState, plan: Result<Plan, ApiError>, received: Instant) -> Response {
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let hashes = plan
        .prompt
        .ids
        .as_deref()
        .map(super::prompt::prefix_hash_ids)
        .unwrap_or_default();
    let mut handles = Vec::with_capacity(plan.n as usize);
    for i in 0..plan.n {
        let req = NewRequest {
            id: app.next_id.fetch_add(1, Ordering::Relaxed),
            prompt_tokens: plan.job.prompt_tokens,
            output_tokens: plan.job.output_tokens,
            prefix_hash_ids: hashes.clone(),
            received,
            params: RequestParams {
                // The request's parameters are counted once, with its first choice.
                n: (i == 0).then_some(plan.n),
                max_tokens: plan.max_tokens_param.filter(|_| i == 0),
                max_generation_tokens: plan.job.output_tokens,
            },
        };
        match RequestHandle::submit(&app.commands, req).await {
            Ok(h) => handles.push(h),
            // Dropping the handles aborts the choices already submitted.
            Err(e) => return e.into_response(),
        }
    }
    respond(plan.job, handles, app.keep_alive).await
}

async fn models(State(app): State<Arc<AppState>>) -> Response {
    let tokenizer = app.tokens.describe();
    let list = ModelList {
        object: "list",
        data: app
            .model_names
            .iter()
            .map(|name| ModelCard {
                id: name,
                object: "model",
                created: app.created,
                owned_by: "servesim",
                root: &app.root_model,
                parent: None,
                max_model_len: app.max_model_len,
                servesim_tokenizer: &tokenizer,
            })
            .collect(),
    };
    axum::Json(list).into_response()
}

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn version() -> Response {
    axum::Json(serde_json::json!({ "version": env!("CARGO_PKG_VERSION") })).into_response()
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let (tx, rx) = oneshot::channel();
    if app.commands.send(Command::Metrics(tx)).is_err() {
        return ApiError::unavailable("the engine has stopped").into_response();
    }
    match rx.await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => ApiError::unavailable("the engine has stopped").into_response(),
    }
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::with_status(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
