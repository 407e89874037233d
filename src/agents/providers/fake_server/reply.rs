//! What the fake server answers, and how each wire format writes it.

use std::fmt::Write as _;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

use super::{Api, FakeRequest};
use crate::agents::providers::{StopReason, Usage};

/// A scripted answer: a turn, an HTTP error or raw bytes, after an optional delay.
#[derive(Debug, Clone)]
pub struct FakeReply {
    pub kind: FakeReplyKind,
    /// How long the server waits before answering.
    pub delay: Duration,
}

#[derive(Debug, Clone)]
pub enum FakeReplyKind {
    Turn(FakeTurn),
    /// An error status; `body` replaces the API's usual error body when given.
    Status {
        status: u16,
        retry_after: Option<String>,
        message: String,
        body: Option<String>,
    },
    /// Bytes as they are (200 unless said otherwise).
    Raw {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// 200 with a body that is not the wire format (an event stream of broken events when
    /// the request streams).
    Malformed,
}

/// The model's turn.
#[derive(Debug, Clone, Default)]
pub struct FakeTurn {
    pub text: String,
    pub tool_calls: Vec<FakeToolCall>,
    /// `None`: `ToolUse` when there are tool calls, else `EndTurn`.
    pub stop: Option<StopReason>,
    pub usage: Usage,
    /// `None`: the model of the request.
    pub model: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FakeToolCall {
    /// `None`: numbered by the server (`toolu_fake_…`, `call_fake_…`).
    pub id: Option<String>,
    pub name: String,
    pub arguments: FakeArguments,
}

#[derive(Debug, Clone)]
pub enum FakeArguments {
    Json(Value),
    /// Argument text sent as it is, JSON or not. NOTE: Anthropic's whole (not streamed)
    /// replies carry arguments as JSON, so there it goes as a JSON string.
    Raw(String),
}

/// Usage of a turn that names none.
const DEFAULT_USAGE: Usage = Usage {
    input_tokens: 10,
    output_tokens: 5,
    cache_read_tokens: 0,
    cache_write_tokens: 0,
};

impl FakeReply {
    fn turn(turn: FakeTurn) -> Self {
        Self {
            kind: FakeReplyKind::Turn(turn),
            delay: Duration::ZERO,
        }
    }

    pub fn text(text: impl Into<String>) -> Self {
        Self::turn(FakeTurn {
            text: text.into(),
            usage: DEFAULT_USAGE,
            ..FakeTurn::default()
        })
    }

    pub fn tool_call(name: impl Into<String>, input: Value) -> Self {
        Self::text("").and_tool_call(name, input)
    }

    /// A tool call whose argument text is `raw` (e.g. not JSON).
    pub fn tool_call_raw(name: impl Into<String>, raw: impl Into<String>) -> Self {
        Self::text("").and_call(name.into(), FakeArguments::Raw(raw.into()))
    }

    /// An error status, with the API's error body.
    pub fn status(status: u16) -> Self {
        Self {
            kind: FakeReplyKind::Status {
                status,
                retry_after: None,
                message: format!("fake error {status}"),
                body: None,
            },
            delay: Duration::ZERO,
        }
    }

    pub fn malformed() -> Self {
        Self {
            kind: FakeReplyKind::Malformed,
            delay: Duration::ZERO,
        }
    }

    pub fn raw(status: u16, content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            kind: FakeReplyKind::Raw {
                status,
                content_type: content_type.into(),
                body: body.into(),
            },
            delay: Duration::ZERO,
        }
    }

    /// Adds a tool call to a turn (no effect on other replies).
    pub fn and_tool_call(self, name: impl Into<String>, input: Value) -> Self {
        self.and_call(name.into(), FakeArguments::Json(input))
    }

    fn and_call(mut self, name: String, arguments: FakeArguments) -> Self {
        if let FakeReplyKind::Turn(turn) = &mut self.kind {
            turn.tool_calls.push(FakeToolCall {
                id: None,
                name,
                arguments,
            });
        }
        self
    }

    /// Sets the tokens of a turn (no effect on other replies).
    pub fn with_usage(mut self, input_tokens: u64, output_tokens: u64) -> Self {
        if let FakeReplyKind::Turn(turn) = &mut self.kind {
            turn.usage.input_tokens = input_tokens;
            turn.usage.output_tokens = output_tokens;
        }
        self
    }

    /// Sets the cache tokens of a turn (Chat Completions reports only reads).
    pub fn with_cache(mut self, read_tokens: u64, write_tokens: u64) -> Self {
        if let FakeReplyKind::Turn(turn) = &mut self.kind {
            turn.usage.cache_read_tokens = read_tokens;
            turn.usage.cache_write_tokens = write_tokens;
        }
        self
    }

    pub fn with_stop(mut self, stop: StopReason) -> Self {
        if let FakeReplyKind::Turn(turn) = &mut self.kind {
            turn.stop = Some(stop);
        }
        self
    }

    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        if let FakeReplyKind::Turn(turn) = &mut self.kind {
            turn.model = Some(model.into());
        }
        self
    }

    /// The `retry-after` header of an error status, in seconds.
    pub fn retry_after_secs(self, secs: u64) -> Self {
        self.retry_after(secs.to_string())
    }

    /// The `retry-after` header of an error status, as it is (e.g. an HTTP date).
    pub fn retry_after(mut self, value: impl Into<String>) -> Self {
        if let FakeReplyKind::Status { retry_after, .. } = &mut self.kind {
            *retry_after = Some(value.into());
        }
        self
    }

    /// The message of an error status's body.
    pub fn with_message(mut self, text: impl Into<String>) -> Self {
        if let FakeReplyKind::Status { message, .. } = &mut self.kind {
            *message = text.into();
        }
        self
    }

    /// A body of an error status that replaces the API's error body.
    pub fn with_body(mut self, text: impl Into<String>) -> Self {
        if let FakeReplyKind::Status { body, .. } = &mut self.kind {
            *body = Some(text.into());
        }
        self
    }

    pub fn with_delay(mut self, millis: u64) -> Self {
        self.delay = Duration::from_millis(millis);
        self
    }
}

/// An error in `api`'s error body.
pub(super) fn error_response(api: Api, status: u16, message: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(error_body(api, status.as_u16(), message))
}

fn error_body(api: Api, status: u16, message: &str) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    match api {
        Api::Anthropic => json!({ "type": "error", "error": { "type": kind, "message": message } }),
        Api::OpenAi => {
            json!({ "error": { "message": message, "type": kind, "param": null, "code": null } })
        }
    }
}

pub(super) fn render(api: Api, request: &FakeRequest, reply: &FakeReply, id: u64) -> HttpResponse {
    match &reply.kind {
        FakeReplyKind::Turn(turn) => {
            let model = turn.model.as_deref().unwrap_or(&request.model);
            match (api, request.stream) {
                (Api::Anthropic, false) => {
                    HttpResponse::Ok().json(anthropic_message(turn, model, id))
                }
                (Api::Anthropic, true) => event_stream(anthropic_events(turn, model, id)),
                (Api::OpenAi, false) => HttpResponse::Ok().json(openai_completion(turn, model, id)),
                (Api::OpenAi, true) => {
                    let usage = request.body["stream_options"]["include_usage"] == true;
                    event_stream(openai_chunks(turn, model, id, usage))
                }
            }
        }
        FakeReplyKind::Status {
            status,
            retry_after,
            message,
            body,
        } => {
            let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = HttpResponse::build(code);
            if let Some(retry_after) = retry_after {
                response.insert_header(("retry-after", retry_after.as_str()));
            }
            match body {
                Some(body) => response.body(body.clone()),
                None => response.json(error_body(api, *status, message)),
            }
        }
        FakeReplyKind::Raw {
            status,
            content_type,
            body,
        } => HttpResponse::build(StatusCode::from_u16(*status).unwrap_or(StatusCode::OK))
            .content_type(content_type.as_str())
            .body(body.clone()),
        FakeReplyKind::Malformed if request.stream => {
            event_stream("event: message_start\ndata: {\"type\": \"message_st\n\n".to_owned())
        }
        FakeReplyKind::Malformed => HttpResponse::Ok()
            .content_type("application/json")
            .body("{\"id\": \"oops\", \"this is\": not the wire format"),
    }
}

fn event_stream(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .body(body)
}

fn stop_of(turn: &FakeTurn) -> StopReason {
    turn.stop.clone().unwrap_or(if turn.tool_calls.is_empty() {
        StopReason::EndTurn
    } else {
        StopReason::ToolUse
    })
}

fn call_id(call: &FakeToolCall, prefix: &str, id: u64, i: usize) -> String {
    call.id
        .clone()
        .unwrap_or_else(|| format!("{prefix}_fake_{id}_{i}"))
}

fn arguments_text(arguments: &FakeArguments) -> String {
    match arguments {
        FakeArguments::Json(value) => value.to_string(),
        FakeArguments::Raw(raw) => raw.clone(),
    }
}

/// `text` in pieces of a few characters, as streams deliver it.
fn pieces(text: &str, size: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (n, (at, _)) in text.char_indices().enumerate() {
        if n > 0 && n % size == 0 {
            pieces.push(&text[start..at]);
            start = at;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

fn anthropic_stop(stop: &StopReason) -> &str {
    match stop {
        StopReason::EndTurn => "end_turn",
        StopReason::ToolUse => "tool_use",
        StopReason::MaxTokens => "max_tokens",
        StopReason::Other(other) => other,
    }
}

fn anthropic_message(turn: &FakeTurn, model: &str, id: u64) -> Value {
    let mut content = Vec::new();
    if !turn.text.is_empty() {
        content.push(json!({ "type": "text", "text": turn.text }));
    }
    for (i, call) in turn.tool_calls.iter().enumerate() {
        let input = match &call.arguments {
            FakeArguments::Json(value) => value.clone(),
            FakeArguments::Raw(raw) => Value::String(raw.clone()),
        };
        content.push(json!({
            "type": "tool_use", "id": call_id(call, "toolu", id, i), "name": call.name, "input": input,
        }));
    }
    json!({
        "id": format!("msg_fake_{id}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": anthropic_stop(&stop_of(turn)),
        "stop_sequence": null,
        "usage": {
            "input_tokens": turn.usage.input_tokens,
            "output_tokens": turn.usage.output_tokens,
            "cache_creation_input_tokens": turn.usage.cache_write_tokens,
            "cache_read_input_tokens": turn.usage.cache_read_tokens,
        },
    })
}

fn anthropic_events(turn: &FakeTurn, model: &str, id: u64) -> String {
    let mut out = String::new();
    let mut event = |name: &str, data: Value| {
        let _ = write!(out, "event: {name}\ndata: {data}\n\n");
    };
    event(
        "message_start",
        json!({ "type": "message_start", "message": {
            "id": format!("msg_fake_{id}"), "type": "message", "role": "assistant",
            "content": [], "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": {
                "input_tokens": turn.usage.input_tokens,
                "cache_creation_input_tokens": turn.usage.cache_write_tokens,
                "cache_read_input_tokens": turn.usage.cache_read_tokens,
                "output_tokens": 1,
            },
        }}),
    );
    let mut index = 0;
    if !turn.text.is_empty() {
        event(
            "content_block_start",
            json!({ "type": "content_block_start", "index": index,
                    "content_block": { "type": "text", "text": "" } }),
        );
        event("ping", json!({ "type": "ping" }));
        for piece in pieces(&turn.text, 12) {
            event(
                "content_block_delta",
                json!({ "type": "content_block_delta", "index": index,
                        "delta": { "type": "text_delta", "text": piece } }),
            );
        }
        event(
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": index }),
        );
        index += 1;
    }
    for (i, call) in turn.tool_calls.iter().enumerate() {
        event(
            "content_block_start",
            json!({ "type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": call_id(call, "toolu", id, i), "name": call.name, "input": {},
            }}),
        );
        let arguments = arguments_text(&call.arguments);
        for piece in std::iter::once("").chain(pieces(&arguments, 10)) {
            event(
                "content_block_delta",
                json!({ "type": "content_block_delta", "index": index,
                        "delta": { "type": "input_json_delta", "partial_json": piece } }),
            );
        }
        event(
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": index }),
        );
        index += 1;
    }
    event(
        "message_delta",
        json!({ "type": "message_delta",
                "delta": { "stop_reason": anthropic_stop(&stop_of(turn)), "stop_sequence": null },
                "usage": { "output_tokens": turn.usage.output_tokens } }),
    );
    event("message_stop", json!({ "type": "message_stop" }));
    out
}

fn openai_finish(stop: &StopReason) -> &str {
    match stop {
        StopReason::EndTurn => "stop",
        StopReason::ToolUse => "tool_calls",
        StopReason::MaxTokens => "length",
        StopReason::Other(other) => other,
    }
}

fn openai_usage(usage: &Usage) -> Value {
    let prompt = usage.input_tokens + usage.cache_read_tokens;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": { "cached_tokens": usage.cache_read_tokens },
    })
}

fn openai_completion(turn: &FakeTurn, model: &str, id: u64) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": (!turn.text.is_empty()).then_some(&turn.text),
    });
    if !turn.tool_calls.is_empty() {
        let calls: Vec<Value> = turn
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, call)| {
                json!({
                    "id": call_id(call, "call", id, i),
                    "type": "function",
                    "function": { "name": call.name, "arguments": arguments_text(&call.arguments) },
                })
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": format!("chatcmpl-fake-{id}"),
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{
            "index": 0, "message": message, "logprobs": null,
            "finish_reason": openai_finish(&stop_of(turn)),
        }],
        "usage": openai_usage(&turn.usage),
    })
}

fn openai_chunks(turn: &FakeTurn, model: &str, id: u64, include_usage: bool) -> String {
    let mut out = String::new();
    let mut chunk = |choices: Value, usage: Option<Value>| {
        let mut data = json!({
            "id": format!("chatcmpl-fake-{id}"), "object": "chat.completion.chunk",
            "created": 1_700_000_000, "model": model, "choices": choices,
        });
        if include_usage {
            data["usage"] = usage.unwrap_or(Value::Null);
        }
        let _ = write!(out, "data: {data}\n\n");
    };
    let delta = |delta: Value| json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": null }]);
    chunk(delta(json!({ "role": "assistant", "content": "" })), None);
    for piece in pieces(&turn.text, 12) {
        chunk(delta(json!({ "content": piece })), None);
    }
    for (i, call) in turn.tool_calls.iter().enumerate() {
        chunk(
            delta(json!({ "tool_calls": [{
                "index": i, "id": call_id(call, "call", id, i), "type": "function",
                "function": { "name": call.name, "arguments": "" },
            }]})),
            None,
        );
        for piece in pieces(&arguments_text(&call.arguments), 10) {
            chunk(
                delta(
                    json!({ "tool_calls": [{ "index": i, "function": { "arguments": piece } }] }),
                ),
                None,
            );
        }
    }
    chunk(
        json!([{ "index": 0, "delta": {}, "logprobs": null,
                 "finish_reason": openai_finish(&stop_of(turn)) }]),
        None,
    );
    if include_usage {
        chunk(json!([]), Some(openai_usage(&turn.usage)));
    }
    out.push_str("data: [DONE]\n\n");
    out
}
