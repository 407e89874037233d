//! Chat Completions, the format of OpenAI and of most servers of open models (Ollama, vLLM,
//! LM Studio, OpenRouter): `POST {base}/chat/completions`, where the base includes the
//! version (`https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`); the key, when there is
//! one, as a bearer token. Config: `max_completion_tokens` (default false: send the limit as
//! `max_tokens`; newer OpenAI models want `max_completion_tokens`), besides those of
//! [`CallSettings`](super::http::CallSettings).
//!
//! NOTE: `Usage::input_tokens` counts the prompt tokens not read from the cache, as Anthropic
//! reports them: `prompt_tokens` includes `cached_tokens`, which go to `cache_read_tokens`.

use reqwest::header::AUTHORIZATION;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{Endpoint, StreamDecoder, WireClient, WireFormat, status_error};
use super::sse::SseEvent;
use super::{
    Block, Delta, DeltaSink, Message, ModelReply, ModelRequest, ProviderError, Role, StopReason,
    ToolInput, Usage,
};
use crate::domain::provider::ProviderAccess;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

pub type OpenAiClient = WireClient<OpenAiWire>;

impl WireClient<OpenAiWire> {
    pub fn new(access: &ProviderAccess, http: reqwest::Client) -> Self {
        let endpoint = Endpoint::new(
            access,
            http,
            DEFAULT_BASE_URL,
            "/chat/completions",
            |key| (AUTHORIZATION, format!("Bearer {key}")),
            &[],
        );
        Self {
            endpoint,
            wire: OpenAiWire {
                max_completion_tokens: access.config["max_completion_tokens"]
                    .as_bool()
                    .unwrap_or(false),
            },
        }
    }
}

pub struct OpenAiWire {
    max_completion_tokens: bool,
}

impl WireFormat for OpenAiWire {
    type Decoder = StreamState;

    fn body(&self, request: &ModelRequest, stream: bool) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(request.model));
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if !request.system.is_empty() {
            messages.push(json!({ "role": "system", "content": request.system }));
        }
        for message in &request.messages {
            push_wire_messages(message, &mut messages);
        }
        body.insert("messages".into(), Value::Array(messages));
        if !request.tools.is_empty() {
            let tools = request
                .tools
                .iter()
                .map(|t| {
                    json!({
                        "type": "function",
                        "function": {
                            "name": t.name,
                            "description": t.description,
                            "parameters": t.input_schema,
                        },
                    })
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        let limit = if self.max_completion_tokens {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(limit.into(), json!(request.max_tokens));
        body.insert("stream".into(), json!(stream));
        if stream {
            body.insert("stream_options".into(), json!({ "include_usage": true }));
        }
        Value::Object(body)
    }

    fn parse_reply(&self, body: &[u8], requested_model: &str) -> Result<ModelReply, ProviderError> {
        let reply: WireReply = serde_json::from_slice(body)
            .map_err(|e| ProviderError::Malformed(format!("not a Chat Completions reply: {e}")))?;
        let choice = reply.choices.into_iter().next().ok_or_else(|| {
            ProviderError::Malformed("a Chat Completions reply without choices".into())
        })?;
        let mut content = Vec::new();
        if let Some(text) = choice.message.content.filter(|t| !t.is_empty()) {
            content.push(Block::Text(text));
        }
        for (i, call) in choice.message.tool_calls.into_iter().enumerate() {
            content.push(Block::ToolUse {
                id: call.id.unwrap_or_else(|| format!("call_{i}")),
                name: call.function.name,
                input: tool_input(call.function.arguments.unwrap_or_default()),
            });
        }
        let stop = stop_reason(choice.finish_reason.as_deref(), &content);
        Ok(ModelReply {
            model: reply
                .model
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| requested_model.to_owned()),
            content,
            stop,
            usage: reply.usage.map(Usage::from).unwrap_or_default(),
        })
    }

    fn decoder(&self, requested_model: &str) -> StreamState {
        StreamState {
            model: requested_model.to_owned(),
            text: String::new(),
            calls: Vec::new(),
            finish_reason: None,
            usage: Usage::default(),
            done: false,
        }
    }
}

/// One message of the conversation as Chat Completions messages: tool results become `tool`
/// messages (first, since they must follow the assistant's calls), the rest one message.
fn push_wire_messages(message: &Message, out: &mut Vec<Value>) {
    let mut text = Vec::new();
    let mut calls = Vec::new();
    for block in &message.content {
        match block {
            Block::Text(t) if !t.is_empty() => text.push(t.as_str()),
            Block::Text(_) => {}
            Block::ToolUse { id, name, input } => {
                let arguments = match input {
                    ToolInput::Json(value) => value.to_string(),
                    // Sent back as the model wrote it, so the conversation is what it saw.
                    ToolInput::Malformed { raw, .. } => raw.clone(),
                };
                calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": { "name": name, "arguments": arguments },
                }));
            }
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                // NOTE: the format has no error flag; the model reads it in the content.
                let content = if *is_error {
                    format!("Error: {content}")
                } else {
                    content.clone()
                };
                out.push(
                    json!({ "role": "tool", "tool_call_id": tool_use_id, "content": content }),
                );
            }
        }
    }
    let text = text.join("\n\n");
    match message.role {
        Role::User if !text.is_empty() => out.push(json!({ "role": "user", "content": text })),
        Role::User => {}
        Role::Assistant if calls.is_empty() && text.is_empty() => {}
        Role::Assistant => {
            let mut m =
                json!({ "role": "assistant", "content": (!text.is_empty()).then_some(text) });
            if !calls.is_empty() {
                m["tool_calls"] = Value::Array(calls);
            }
            out.push(m);
        }
    }
}

/// Why the model stopped. NOTE: some servers (older Ollama) say `stop` after tool calls;
/// calls made mean the model waits for their results.
fn stop_reason(finish_reason: Option<&str>, content: &[Block]) -> StopReason {
    let called = content.iter().any(|b| matches!(b, Block::ToolUse { .. }));
    match finish_reason {
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        Some("stop") | None if called => StopReason::ToolUse,
        Some("stop") => StopReason::EndTurn,
        Some("length") => StopReason::MaxTokens,
        Some(other) => StopReason::Other(other.to_owned()),
        None => StopReason::Other("none".to_owned()),
    }
}

fn tool_input(arguments: String) -> ToolInput {
    // Models without arguments sometimes send an empty string rather than `{}`.
    if arguments.trim().is_empty() {
        return ToolInput::Json(json!({}));
    }
    match serde_json::from_str(&arguments) {
        Ok(value) => ToolInput::Json(value),
        Err(e) => ToolInput::Malformed {
            raw: arguments,
            error: e.to_string(),
        },
    }
}

#[derive(Deserialize)]
struct WireReply {
    model: Option<String>,
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        let cached = u
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        Usage {
            input_tokens: u.prompt_tokens.saturating_sub(cached),
            output_tokens: u.completion_tokens,
            cache_read_tokens: cached,
            cache_write_tokens: 0,
        }
    }
}

#[derive(Deserialize)]
struct WireChunk {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<WireUsage>,
    /// Some servers (OpenRouter, vLLM) report a failure inside the stream.
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: ChunkDelta,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct ChunkDelta {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ChunkToolCall>,
}

#[derive(Deserialize)]
struct ChunkToolCall {
    /// Which call a fragment belongs to; absent from servers that send each call whole.
    index: Option<usize>,
    id: Option<String>,
    function: Option<ChunkFunction>,
}

#[derive(Deserialize)]
struct ChunkFunction {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

pub struct StreamState {
    model: String,
    text: String,
    calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    usage: Usage,
    done: bool,
}

impl StreamDecoder for StreamState {
    fn feed(&mut self, event: &SseEvent, sink: DeltaSink<'_>) -> Result<bool, ProviderError> {
        if event.data.trim() == "[DONE]" {
            self.done = true;
            return Ok(true);
        }
        let chunk: WireChunk = serde_json::from_str(&event.data).map_err(|e| {
            ProviderError::Malformed(format!("a Chat Completions chunk is not valid: {e}"))
        })?;
        if let Some(error) = chunk.error {
            let status = error["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (400..600).contains(c))
                .unwrap_or(500);
            return Err(status_error(
                status,
                None,
                &json!({ "error": error }).to_string(),
            ));
        }
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.model = model;
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage.into();
        }
        // Only one choice is asked for (no `n`).
        for choice in chunk.choices {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                self.text.push_str(&text);
                sink(Delta::Text(text));
            }
            for call in choice.delta.tool_calls {
                let index = call.index.unwrap_or(self.calls.len());
                if index >= self.calls.len() {
                    self.calls.resize_with(index + 1, PartialCall::default);
                }
                let partial = &mut self.calls[index];
                if let Some(id) = call.id {
                    partial.id = id;
                }
                if let Some(function) = call.function {
                    if let Some(name) = function.name {
                        partial.name.push_str(&name);
                    }
                    if let Some(arguments) = function.arguments {
                        partial.arguments.push_str(&arguments);
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
        Ok(false)
    }

    fn finish(self) -> Result<ModelReply, ProviderError> {
        // NOTE: a server that ends the body without `[DONE]` but after a finish reason has
        // said all it will.
        if !self.done && self.finish_reason.is_none() {
            return Err(ProviderError::Transport(
                "the stream ended before the turn was complete".into(),
            ));
        }
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(Block::Text(self.text));
        }
        for (i, call) in self.calls.into_iter().enumerate() {
            if call.name.is_empty() {
                return Err(ProviderError::Malformed(format!(
                    "streamed tool call {i} has no function name"
                )));
            }
            content.push(Block::ToolUse {
                id: if call.id.is_empty() {
                    format!("call_{i}")
                } else {
                    call.id
                },
                name: call.name,
                input: tool_input(call.arguments),
            });
        }
        let stop = stop_reason(self.finish_reason.as_deref(), &content);
        Ok(ModelReply {
            model: self.model,
            content,
            stop,
            usage: self.usage,
        })
    }
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
