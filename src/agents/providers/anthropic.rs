//! The Anthropic Messages API: `POST {base}/v1/messages`, key in `x-api-key`, replies whole
//! or as a stream of typed events. Config: `anthropic_version` (default `2023-06-01`) and
//! `cache_prompt` (default true: marks the tools, the system prompt and the conversation so
//! far as cacheable, which later turns of a run read back at a tenth of the price), besides
//! those of [`CallSettings`](super::http::CallSettings).

use reqwest::header::HeaderName;
use serde::Deserialize;
use serde_json::{Map, Value, json};

mod stream;

use super::http::{Endpoint, WireClient, WireFormat};
use super::{
    Block, Message, ModelReply, ModelRequest, ProviderError, Role, StopReason, ToolInput, Usage,
};
use crate::domain::provider::ProviderAccess;
pub use stream::StreamState;

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_VERSION: &str = "2023-06-01";

pub type AnthropicClient = WireClient<AnthropicWire>;

impl WireClient<AnthropicWire> {
    pub fn new(access: &ProviderAccess, http: reqwest::Client) -> Self {
        let version = access.config["anthropic_version"]
            .as_str()
            .unwrap_or(DEFAULT_VERSION)
            .to_owned();
        let endpoint = Endpoint::new(
            access,
            http,
            DEFAULT_BASE_URL,
            "/v1/messages",
            |key| (HeaderName::from_static("x-api-key"), key.to_owned()),
            &[(HeaderName::from_static("anthropic-version"), version)],
        )
        .and_then(|endpoint| {
            if endpoint.has_key() {
                Ok(endpoint)
            } else {
                Err(format!("the provider {} has no API key", access.name))
            }
        });
        Self {
            endpoint,
            wire: AnthropicWire {
                cache_prompt: access.config["cache_prompt"].as_bool().unwrap_or(true),
            },
        }
    }
}

pub struct AnthropicWire {
    cache_prompt: bool,
}

impl WireFormat for AnthropicWire {
    type Decoder = StreamState;

    fn body(&self, request: &ModelRequest, stream: bool) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(request.model));
        body.insert("max_tokens".into(), json!(request.max_tokens));
        if !request.system.is_empty() {
            let mut system = json!({ "type": "text", "text": request.system });
            if self.cache_prompt {
                system["cache_control"] = json!({ "type": "ephemeral" });
            }
            body.insert("system".into(), json!([system]));
        }
        let mut messages = wire_messages(&request.messages);
        if self.cache_prompt
            && let Some(last) = messages
                .last_mut()
                .and_then(|m| m["content"].as_array_mut())
                .and_then(|c| c.last_mut())
        {
            last["cache_control"] = json!({ "type": "ephemeral" });
        }
        body.insert("messages".into(), Value::Array(messages));
        if !request.tools.is_empty() {
            let mut tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "description": t.description,
                        "input_schema": t.input_schema,
                    })
                })
                .collect();
            if self.cache_prompt
                && let Some(last) = tools.last_mut()
            {
                last["cache_control"] = json!({ "type": "ephemeral" });
            }
            body.insert("tools".into(), Value::Array(tools));
        }
        body.insert("stream".into(), json!(stream));
        Value::Object(body)
    }

    fn parse_reply(&self, body: &[u8], requested_model: &str) -> Result<ModelReply, ProviderError> {
        let reply: WireReply = serde_json::from_slice(body)
            .map_err(|e| ProviderError::Malformed(format!("not an Anthropic message: {e}")))?;
        let content = reply
            .content
            .into_iter()
            .filter_map(|block| match block {
                WireBlock::Text { text } => Some(Block::Text(text)),
                WireBlock::ToolUse { id, name, input } => Some(Block::ToolUse {
                    id,
                    name,
                    input: ToolInput::Json(input),
                }),
                WireBlock::Other => None,
            })
            .collect();
        Ok(ModelReply {
            model: reply.model.unwrap_or_else(|| requested_model.to_owned()),
            content,
            stop: stop_reason(reply.stop_reason.as_deref()),
            usage: reply.usage.unwrap_or_default().into(),
        })
    }

    fn decoder(&self, requested_model: &str) -> StreamState {
        StreamState::new(requested_model)
    }
}

/// The conversation as Anthropic wants it: tool results in user messages (first in their
/// message), no empty text, and consecutive messages of one role merged.
fn wire_messages(messages: &[Message]) -> Vec<Value> {
    let mut wire: Vec<(Role, Vec<Value>)> = Vec::new();
    for message in messages {
        for block in &message.content {
            let (role, value) = match block {
                Block::Text(text) if text.is_empty() => continue,
                Block::Text(text) => (message.role, json!({ "type": "text", "text": text })),
                Block::ToolUse { id, name, input } => {
                    let input = match input {
                        ToolInput::Json(value) if value.is_object() => value.clone(),
                        // The API takes only objects; what the model sent is in the tool
                        // result that follows.
                        _ => json!({}),
                    };
                    let block =
                        json!({ "type": "tool_use", "id": id, "name": name, "input": input });
                    (Role::Assistant, block)
                }
                Block::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } => {
                    let mut block = json!({
                        "type": "tool_result",
                        "tool_use_id": tool_use_id,
                        "content": content,
                    });
                    if *is_error {
                        block["is_error"] = json!(true);
                    }
                    (Role::User, block)
                }
            };
            match wire.last_mut() {
                Some((last_role, blocks)) if *last_role == role => blocks.push(value),
                _ => wire.push((role, vec![value])),
            }
        }
    }
    wire.into_iter()
        .map(|(role, mut blocks)| {
            if role == Role::User {
                // Stable: tool results keep their order, and so does the text after them.
                blocks.sort_by_key(|b| b["type"] != "tool_result");
            }
            let role = match role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({ "role": role, "content": blocks })
        })
        .collect()
}

fn stop_reason(reason: Option<&str>) -> StopReason {
    match reason {
        Some("end_turn") => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some(other) => StopReason::Other(other.to_owned()),
        None => StopReason::Other("none".to_owned()),
    }
}

#[derive(Deserialize)]
struct WireReply {
    model: Option<String>,
    content: Vec<WireBlock>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// `thinking` and the like: not part of the turn the runner sees.
    #[serde(other)]
    Other,
}

/// Every field optional: `message_delta` carries only some of them.
#[derive(Deserialize, Default)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        let mut usage = Usage::default();
        u.apply_to(&mut usage);
        usage
    }
}

impl WireUsage {
    /// Counts in a stream are running totals: a later event replaces what it carries.
    fn apply_to(&self, usage: &mut Usage) {
        let fields = [
            (self.input_tokens, &mut usage.input_tokens),
            (self.output_tokens, &mut usage.output_tokens),
            (
                self.cache_creation_input_tokens,
                &mut usage.cache_write_tokens,
            ),
            (self.cache_read_input_tokens, &mut usage.cache_read_tokens),
        ];
        for (value, slot) in fields {
            if let Some(value) = value {
                *slot = value;
            }
        }
    }
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
