//! Responses: a whole JSON body once every choice has finished, or server-sent events
//! as the engine releases tokens, in OpenAI's (and vLLM's) formats. A request with
//! `n` choices runs as `n` simulated requests; their chunks interleave as released,
//! each naming its choice's `index`.

use super::engine_task::{RequestHandle, StreamEvent};
use super::errors::ApiError;
use super::openai::{
    logprob_of_rank, ChatChoice, ChatCompletion, ChatLogprobs, ChatTokenLogprob, Completion,
    CompletionChoice, CompletionLogprobs, Message, TopLogprob, Usage,
};
use super::prompt::Tokenization;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;

/// Which endpoint a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    Completions,
    Chat,
}

/// A validated request.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) api: Api,
    pub(crate) id: String,
    pub(crate) model: String,
    pub(crate) created: u64,
    pub(crate) prompt_tokens: u32,
    pub(crate) output_tokens: u32,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) continuous_usage: bool,
    /// `Some(k)`: log-probabilities of each token and of the `k` most likely.
    pub(crate) logprobs: Option<u32>,
    pub(crate) tokens: Tokenization,
    /// Report `usage.prompt_tokens_details.cached_tokens` (vLLM's
    /// `--enable-prompt-tokens-details`).
    pub(crate) prompt_tokens_details: bool,
}

/// Progress of one choice.
#[derive(Clone, Copy, Debug, Default)]
struct Choice {
    generated: u32,
    /// Characters of text so far (completions' `text_offset`).
    chars: u32,
    cached_tokens: u32,
    done: bool,
}

impl Job {
    /// Text and log-probabilities of the next `count` tokens of `choice`.
    fn tokens(&self, choice: &mut Choice, count: u32) -> (String, Option<Logprobs>) {
        let chat = self.api == Api::Chat;
        let text = self.tokens.output_text(choice.generated, count, chat);
        let logprobs = self.logprobs.map(|k| match self.api {
            Api::Completions => Logprobs::Completion(self.completion_logprobs(choice, count, k)),
            Api::Chat => Logprobs::Chat(self.chat_logprobs(choice.generated, count, k)),
        });
        choice.generated = choice.generated.saturating_add(count);
        choice.chars = choice.chars.saturating_add(text.chars().count() as u32);
        (text, logprobs)
    }

    fn completion_logprobs(&self, choice: &Choice, count: u32, k: u32) -> CompletionLogprobs {
        let mut lp = CompletionLogprobs::default();
        let mut offset = choice.chars;
        for i in choice.generated..choice.generated.saturating_add(count) {
            let text = self.tokens.token_text(i == 0, 0);
            lp.text_offset.push(offset);
            offset += text.chars().count() as u32;
            lp.token_logprobs.push(logprob_of_rank(0));
            let mut top = serde_json::Map::new();
            for rank in 0..k.max(1) {
                let t = self.tokens.token_text(i == 0, rank);
                top.entry(t).or_insert(Value::from(logprob_of_rank(rank)));
            }
            lp.top_logprobs.push(top);
            lp.tokens.push(text);
        }
        lp
    }

    fn chat_logprobs(&self, start: u32, count: u32, k: u32) -> ChatLogprobs {
        let content = (start..start.saturating_add(count))
            .map(|i| {
                let token = self.tokens.token_text(i == 0, 0);
                ChatTokenLogprob {
                    bytes: token.as_bytes().to_vec(),
                    logprob: logprob_of_rank(0),
                    top_logprobs: (0..k)
                        .map(|rank| {
                            let t = self.tokens.token_text(i == 0, rank);
                            TopLogprob {
                                bytes: t.as_bytes().to_vec(),
                                logprob: logprob_of_rank(rank),
                                token: t,
                            }
                        })
                        .collect(),
                    token,
                }
            })
            .collect();
        ChatLogprobs { content }
    }

    fn usage(&self, choices: &[Choice]) -> Usage {
        let generated = choices.iter().map(|c| c.generated).sum();
        let usage = Usage::new(self.prompt_tokens, generated);
        match choices.first() {
            Some(c) if self.prompt_tokens_details => usage.with_cached(c.cached_tokens),
            _ => usage,
        }
    }

    /// One response body (`whole`) or chunk; a usage chunk has no choices.
    fn body(&self, choices: Vec<ChoiceOut>, usage: Option<Usage>, whole: bool) -> String {
        let json = match self.api {
            Api::Completions => serde_json::to_string(&Completion {
                id: &self.id,
                object: "text_completion",
                created: self.created,
                model: &self.model,
                choices: choices
                    .into_iter()
                    .map(|c| CompletionChoice {
                        index: c.index,
                        text: c.text.unwrap_or_default(),
                        logprobs: match c.logprobs {
                            Some(Logprobs::Completion(l)) => Some(l),
                            _ => None,
                        },
                        finish_reason: c.finish,
                    })
                    .collect(),
                usage,
            }),
            Api::Chat => serde_json::to_string(&ChatCompletion {
                id: &self.id,
                object: if whole {
                    "chat.completion"
                } else {
                    "chat.completion.chunk"
                },
                created: self.created,
                model: &self.model,
                choices: choices
                    .into_iter()
                    .map(|c| {
                        let msg = Message {
                            role: (whole || c.role).then_some("assistant"),
                            content: c.text,
                        };
                        let (message, delta) = if whole {
                            (Some(msg), None)
                        } else {
                            (None, Some(msg))
                        };
                        ChatChoice {
                            index: c.index,
                            message,
                            delta,
                            logprobs: match c.logprobs {
                                Some(Logprobs::Chat(l)) => Some(l),
                                _ => None,
                            },
                            finish_reason: c.finish,
                        }
                    })
                    .collect(),
                usage,
            }),
        };
        // Plain structs of strings and numbers: serializing cannot fail.
        json.unwrap_or_default()
    }
}

/// Log-probabilities in the format of the job's endpoint.
enum Logprobs {
    Completion(CompletionLogprobs),
    Chat(ChatLogprobs),
}

/// One choice of a body or chunk.
struct ChoiceOut {
    index: u32,
    text: Option<String>,
    role: bool,
    finish: Option<&'static str>,
    logprobs: Option<Logprobs>,
}

/// Answer `job`, whose choices run as `handles` (one per choice).
pub(crate) async fn respond(
    job: Job,
    handles: Vec<RequestHandle>,
    keep_alive: std::time::Duration,
) -> Response {
    if job.stream {
        return stream_response(job, handles, keep_alive);
    }
    match whole_response(&job, handles).await {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Wait for every token of every choice, then answer one JSON body (choices in order,
/// usage of them all).
async fn whole_response(job: &Job, handles: Vec<RequestHandle>) -> Result<String, ApiError> {
    let mut choices = vec![Choice::default(); handles.len()];
    // The choices run together in the engine; waiting on them in turn loses nothing.
    for (choice, mut handle) in choices.iter_mut().zip(handles) {
        loop {
            match handle.next().await {
                Some(StreamEvent::Tokens { count }) => {
                    choice.generated = choice.generated.saturating_add(count)
                }
                Some(StreamEvent::Finished { cached_tokens }) => {
                    choice.cached_tokens = cached_tokens;
                    break;
                }
                Some(StreamEvent::Failed(e)) => return Err(e),
                Some(StreamEvent::Accepted) => {}
                None => return Err(ApiError::unavailable("the engine has stopped")),
            }
        }
    }
    let usage = job.usage(&choices);
    let outs: Vec<(String, Option<Logprobs>)> = choices
        .iter()
        .map(|c| job.tokens(&mut Choice::default(), c.generated))
        .collect();
    let list = outs
        .into_iter()
        .enumerate()
        .map(|(i, (text, logprobs))| ChoiceOut {
            index: i as u32,
            text: Some(text),
            role: true,
            finish: Some("length"),
            logprobs,
        })
        .collect();
    Ok(job.body(list, Some(usage), true))
}

/// State of one server-sent-event stream.
struct SseState {
    job: Job,
    choices: Vec<Choice>,
    pending: VecDeque<Event>,
    ended: bool,
}

impl SseState {
    fn push(&mut self, body: String) {
        self.pending.push_back(Event::default().data(body));
    }

    /// A chat stream opens with one `{"role": "assistant", "content": ""}` chunk per
    /// choice, as vLLM sends them when the request is accepted.
    fn open(&mut self) {
        if self.job.api != Api::Chat {
            return;
        }
        for index in 0..self.choices.len() {
            let role = ChoiceOut {
                index: index as u32,
                text: Some(String::new()),
                role: true,
                finish: None,
                logprobs: None,
            };
            let usage = self
                .job
                .continuous_usage
                .then(|| Usage::new(self.job.prompt_tokens, 0));
            let body = self.job.body(vec![role], usage, false);
            self.push(body);
        }
    }

    fn on_tokens(&mut self, index: usize, count: u32) {
        let mut choice = self.choices[index];
        let (text, logprobs) = self.job.tokens(&mut choice, count);
        self.choices[index] = choice;
        let last = choice.generated >= self.job.output_tokens;
        let usage = self
            .job
            .continuous_usage
            .then(|| Usage::new(self.job.prompt_tokens, choice.generated));
        let out = ChoiceOut {
            index: index as u32,
            text: Some(text),
            role: false,
            finish: last.then_some("length"),
            logprobs,
        };
        let body = self.job.body(vec![out], usage, false);
        self.push(body);
    }

    fn on_finished(&mut self, index: usize, cached_tokens: u32) {
        self.choices[index].cached_tokens = cached_tokens;
        self.choices[index].done = true;
        if self.choices.iter().all(|c| c.done) {
            if self.job.include_usage {
                let usage = self.job.usage(&self.choices);
                let body = self.job.body(Vec::new(), Some(usage), false);
                self.push(body);
            }
            self.pending.push_back(Event::default().data("[DONE]"));
            self.ended = true;
        }
    }

    fn fail(&mut self, e: ApiError) {
        self.pending.push_back(Event::default().data(e.to_json()));
        self.pending.push_back(Event::default().data("[DONE]"));
        self.ended = true;
    }
}

/// Stream the tokens as OpenAI chunks, as the engine releases them.
fn stream_response(
    job: Job,
    handles: Vec<RequestHandle>,
    keep_alive: std::time::Duration,
) -> Response {
    let n = handles.len();
    let events = futures_util::stream::select_all(handles.into_iter().enumerate().map(|(i, h)| {
        futures_util::stream::unfold(h, move |mut h| async move {
            h.next().await.map(|e| ((i, e), h))
        })
        .boxed()
    }));
    let mut state = SseState {
        job,
        choices: vec![Choice::default(); n],
        pending: VecDeque::new(),
        ended: false,
    };
    state.open();
    let stream = futures_util::stream::unfold((state, events), |(mut st, mut events)| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((Ok::<_, Infallible>(ev), (st, events)));
            }
            if st.ended {
                return None;
            }
            match events.next().await {
                Some((i, StreamEvent::Tokens { count })) => st.on_tokens(i, count),
                Some((i, StreamEvent::Finished { cached_tokens })) => {
                    st.on_finished(i, cached_tokens)
                }
                Some((_, StreamEvent::Failed(e))) => st.fail(e),
                Some((_, StreamEvent::Accepted)) => {}
                None => st.fail(ApiError::unavailable("the engine has stopped")),
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response()
}
