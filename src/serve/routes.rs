//! HTTP routes: request validation, submission to the engine task, and the JSON or
//! server-sent-event responses.

use super::engine_task::{Command, RequestHandle, StreamEvent};
use super::errors::ApiError;
use super::openai::{
    chat_prompt_tokens, completion_prompt_tokens, filler, ChatChoice, ChatCompletion,
    ChatCompletionRequest, Completion, CompletionChoice, CompletionRequest, Message, ModelCard,
    ModelList, StreamOptions, Usage, DEFAULT_COMPLETION_MAX_TOKENS,
};
use super::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Largest request body accepted.
const BODY_LIMIT_BYTES: usize = 16 * 1024 * 1024;

/// The server's routes.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
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

/// Which endpoint a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    Completions,
    Chat,
}

/// A validated request.
#[derive(Debug)]
struct Job {
    api: Api,
    id: String,
    sim_id: u64,
    model: String,
    created: u64,
    prompt_tokens: u32,
    output_tokens: u32,
    stream: bool,
    include_usage: bool,
}

fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
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
    fn model(&self, requested: Option<String>) -> Result<String, ApiError> {
        match requested {
            None => Ok(self.model_names[0].clone()),
            Some(m) if self.model_names.contains(&m) => Ok(m),
            Some(m) => Err(ApiError::model_not_found(&m)),
        }
    }

    /// Output length: the request's limit, else the server default, else
    /// `fallback(remaining context)`; checked against the context window.
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
            Some(n) => {
                let n = u64::from(n);
                if n > remaining {
                    return Err(ApiError::context_length(
                        param,
                        self.max_model_len,
                        prompt,
                        n,
                    ));
                }
                n
            }
            None => match self.default_max_tokens {
                Some(d) => u64::from(d).min(remaining),
                None => fallback(remaining).clamp(1, remaining),
            },
        };
        // Both fit in u32: they are below max_model_len.
        Ok((prompt as u32, out as u32))
    }

    fn job(
        &self,
        api: Api,
        model: String,
        (prompt_tokens, output_tokens): (u32, u32),
        stream: Option<bool>,
        opts: Option<StreamOptions>,
    ) -> Job {
        let sim_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let prefix = match api {
            Api::Completions => "cmpl",
            Api::Chat => "chatcmpl",
        };
        Job {
            api,
            id: format!("{prefix}-{sim_id:016x}"),
            sim_id,
            model,
            created: unix_now(),
            prompt_tokens,
            output_tokens,
            stream: stream.unwrap_or(false),
            include_usage: opts.and_then(|o| o.include_usage).unwrap_or(false),
        }
    }
}

fn check_n(n: Option<u32>) -> Result<(), ApiError> {
    match n {
        None | Some(1) => Ok(()),
        Some(_) => Err(ApiError::bad_param(
            "n",
            "only n = 1 is supported: send one request per choice",
        )),
    }
}

async fn completions(
    State(app): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let job = (|| {
        let req: CompletionRequest = parse(body)?;
        let model = app.model(req.model)?;
        check_n(req.n)?;
        if req.echo == Some(true) {
            return Err(ApiError::bad_param("echo", "echo is not supported"));
        }
        let prompt = completion_prompt_tokens(&req.prompt)?;
        let lens = app.output_tokens(req.max_tokens, prompt, "prompt", |_| {
            u64::from(DEFAULT_COMPLETION_MAX_TOKENS)
        })?;
        Ok(app.job(
            Api::Completions,
            model,
            lens,
            req.stream,
            req.stream_options,
        ))
    })();
    respond(&app, job).await
}

async fn chat_completions(
    State(app): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let job = (|| {
        let req: ChatCompletionRequest = parse(body)?;
        let model = app.model(req.model)?;
        check_n(req.n)?;
        let prompt = chat_prompt_tokens(&req.messages)?;
        let limit = req.max_completion_tokens.or(req.max_tokens);
        let lens = app.output_tokens(limit, prompt, "messages", |remaining| remaining)?;
        Ok(app.job(Api::Chat, model, lens, req.stream, req.stream_options))
    })();
    respond(&app, job).await
}

async fn respond(app: &AppState, job: Result<Job, ApiError>) -> Response {
    let job = match job {
        Ok(j) => j,
        Err(e) => return e.into_response(),
    };
    let handle = match RequestHandle::submit(
        &app.commands,
        job.sim_id,
        job.prompt_tokens,
        job.output_tokens,
    )
    .await
    {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    if job.stream {
        stream_response(job, handle, app.keep_alive).into_response()
    } else {
        match whole_response(&job, handle).await {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => e.into_response(),
        }
    }
}

/// Wait for every token, then answer one JSON body.
async fn whole_response(job: &Job, mut handle: RequestHandle) -> Result<String, ApiError> {
    let mut generated = 0u32;
    loop {
        match handle.next().await {
            Some(StreamEvent::Tokens { count }) => generated += count,
            Some(StreamEvent::Finished) => break,
            Some(StreamEvent::Failed(e)) => return Err(e),
            Some(StreamEvent::Accepted) => {}
            None => return Err(ApiError::unavailable("the engine has stopped")),
        }
    }
    let usage = Some(Usage::new(job.prompt_tokens, generated));
    let finish = Some("length");
    let json = match job.api {
        Api::Completions => {
            let text = filler(0, generated, false);
            serde_json::to_string(&Completion {
                id: &job.id,
                object: "text_completion",
                created: job.created,
                model: &job.model,
                choices: vec![CompletionChoice {
                    index: 0,
                    text: &text,
                    logprobs: None,
                    finish_reason: finish,
                }],
                usage,
            })
        }
        Api::Chat => {
            let text = filler(0, generated, true);
            serde_json::to_string(&ChatCompletion {
                id: &job.id,
                object: "chat.completion",
                created: job.created,
                model: &job.model,
                choices: vec![ChatChoice {
                    index: 0,
                    message: Some(Message {
                        role: Some("assistant"),
                        content: Some(&text),
                    }),
                    delta: None,
                    logprobs: None,
                    finish_reason: finish,
                }],
                usage,
            })
        }
    };
    json.map_err(|e| ApiError::unavailable(format!("could not encode the response: {e}")))
}

/// State of one server-sent-event stream.
struct SseState {
    job: Job,
    handle: RequestHandle,
    generated: u32,
    pending: VecDeque<Event>,
    ended: bool,
}

impl SseState {
    fn push_json(&mut self, value: Result<String, serde_json::Error>) {
        match value {
            Ok(s) => self.pending.push_back(Event::default().data(s)),
            Err(e) => self.fail(ApiError::unavailable(format!(
                "could not encode a chunk: {e}"
            ))),
        }
    }

    fn chunk(
        &mut self,
        text: Option<&str>,
        role: bool,
        finish: Option<&str>,
        usage: Option<Usage>,
    ) {
        let j = &self.job;
        let choices_empty = usage.is_some();
        let json = match j.api {
            Api::Completions => serde_json::to_string(&Completion {
                id: &j.id,
                object: "text_completion",
                created: j.created,
                model: &j.model,
                choices: if choices_empty {
                    Vec::new()
                } else {
                    vec![CompletionChoice {
                        index: 0,
                        text: text.unwrap_or(""),
                        logprobs: None,
                        finish_reason: finish,
                    }]
                },
                usage,
            }),
            Api::Chat => serde_json::to_string(&ChatCompletion {
                id: &j.id,
                object: "chat.completion.chunk",
                created: j.created,
                model: &j.model,
                choices: if choices_empty {
                    Vec::new()
                } else {
                    vec![ChatChoice {
                        index: 0,
                        message: None,
                        delta: Some(Message {
                            role: role.then_some("assistant"),
                            content: text,
                        }),
                        logprobs: None,
                        finish_reason: finish,
                    }]
                },
                usage,
            }),
        };
        self.push_json(json);
    }

    fn on_tokens(&mut self, count: u32) {
        let start = self.generated;
        self.generated = self.generated.saturating_add(count);
        let chat = self.job.api == Api::Chat;
        if chat && start == 0 {
            self.chunk(Some(""), true, None, None);
        }
        let text = filler(start, count, chat);
        let last = self.generated >= self.job.output_tokens;
        self.chunk(Some(&text), false, last.then_some("length"), None);
    }

    fn finish(&mut self) {
        if self.job.include_usage {
            let usage = Usage::new(self.job.prompt_tokens, self.generated);
            self.chunk(None, false, None, Some(usage));
        }
        self.pending.push_back(Event::default().data("[DONE]"));
        self.ended = true;
    }

    fn fail(&mut self, e: ApiError) {
        self.pending.push_back(Event::default().data(e.to_json()));
        self.pending.push_back(Event::default().data("[DONE]"));
        self.ended = true;
    }
}

/// Stream the tokens as OpenAI chunks, as the engine releases them.
fn stream_response(job: Job, handle: RequestHandle, keep_alive: std::time::Duration) -> Response {
    let state = SseState {
        job,
        handle,
        generated: 0,
        pending: VecDeque::new(),
        ended: false,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((Ok::<_, Infallible>(ev), st));
            }
            if st.ended {
                return None;
            }
            match st.handle.next().await {
                Some(StreamEvent::Tokens { count }) => st.on_tokens(count),
                Some(StreamEvent::Finished) => st.finish(),
                Some(StreamEvent::Failed(e)) => st.fail(e),
                Some(StreamEvent::Accepted) => {}
                None => st.fail(ApiError::unavailable("the engine has stopped")),
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response()
}

async fn models(State(app): State<Arc<AppState>>) -> Response {
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
