//! How each wire format writes a [`FakeReply`]: whole, or as the event stream the real API
//! sends.

use std::fmt::Write as _;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

use super::reply::{FakeArguments, FakeReply, FakeReplyKind, FakeToolCall, FakeTurn};
use super::{Api, FakeRequest};
use crate::agents::providers::{StopReason, Usage};

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
