//! A request to the fake server in a wire-neutral form.

use std::time::Instant;

use actix_web::HttpRequest;
use serde_json::Value;

use super::Api;
use crate::agents::providers::{Block, Message, Role, ToolInput};

/// What the fake server received, whichever API it came through.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    pub api: Api,
    pub model: String,
    /// The system prompt (Anthropic's `system`, or the `system` messages of Chat Completions).
    pub system: String,
    /// The conversation; Chat Completions' `tool` messages become tool results of user
    /// messages, as in [`Message`].
    pub messages: Vec<Message>,
    /// Names of the tools on offer.
    pub tools: Vec<String>,
    pub max_tokens: Option<u64>,
    pub stream: bool,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as sent.
    pub body: Value,
    pub received_at: Instant,
}

impl FakeRequest {
    pub(super) fn parse(api: Api, http: &HttpRequest, body: &[u8]) -> Result<Self, String> {
        let received_at = Instant::now();
        let body: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let model = body["model"]
            .as_str()
            .ok_or("`model` is missing")?
            .to_owned();
        let wire_messages = body["messages"].as_array().ok_or("`messages` is missing")?;
        let (system, messages) = match api {
            Api::Anthropic => (text_of(&body["system"]), anthropic_messages(wire_messages)?),
            Api::OpenAi => openai_messages(wire_messages)?,
        };
        let tools = body["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t["name"].as_str().or(t["function"]["name"].as_str()))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let max_tokens = body["max_tokens"]
            .as_u64()
            .or(body["max_completion_tokens"].as_u64());
        let headers = http
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        Ok(Self {
            api,
            model,
            system,
            messages,
            tools,
            max_tokens,
            stream: body["stream"].as_bool().unwrap_or(false),
            headers,
            body,
            received_at,
        })
    }

    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The key the client sent: `x-api-key`, or the bearer token of `authorization`.
    pub fn api_key(&self) -> Option<&str> {
        self.header("x-api-key").or_else(|| {
            self.header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
        })
    }

    /// The text of the last user message that has some.
    pub fn last_user_text(&self) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .filter(|m| m.role == Role::User)
            .map(|m| {
                m.content
                    .iter()
                    .filter_map(|b| match b {
                        Block::Text(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .find(|t| !t.is_empty())
    }

    /// Every tool result of the conversation: `(tool_use_id, content, is_error)`.
    pub fn tool_results(&self) -> Vec<(&str, &str, bool)> {
        self.messages
            .iter()
            .flat_map(|m| &m.content)
            .filter_map(|b| match b {
                Block::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } => Some((tool_use_id.as_str(), content.as_str(), *is_error)),
                _ => None,
            })
            .collect()
    }
}

/// A string, or the text blocks (`{"type":"text","text":…}`) of an array, joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn role(value: &Value) -> Result<Role, String> {
    match value.as_str() {
        Some("user") => Ok(Role::User),
        Some("assistant") => Ok(Role::Assistant),
        other => Err(format!("unexpected role {other:?}")),
    }
}

fn anthropic_messages(wire: &[Value]) -> Result<Vec<Message>, String> {
    wire.iter()
        .map(|m| {
            let role = role(&m["role"])?;
            let content = match &m["content"] {
                Value::String(text) => vec![Block::Text(text.clone())],
                Value::Array(blocks) => blocks
                    .iter()
                    .map(anthropic_block)
                    .collect::<Result<_, _>>()?,
                _ => return Err("`content` is neither text nor blocks".to_owned()),
            };
            Ok(Message { role, content })
        })
        .collect()
}

fn anthropic_block(block: &Value) -> Result<Block, String> {
    let field = |name: &str| {
        block[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("a {} block without `{name}`", block["type"]))
    };
    match block["type"].as_str() {
        Some("text") => Ok(Block::Text(field("text")?)),
        Some("tool_use") => Ok(Block::ToolUse {
            id: field("id")?,
            name: field("name")?,
            input: ToolInput::Json(block["input"].clone()),
        }),
        Some("tool_result") => Ok(Block::ToolResult {
            tool_use_id: field("tool_use_id")?,
            content: text_of(&block["content"]),
            is_error: block["is_error"].as_bool().unwrap_or(false),
        }),
        other => Err(format!("unexpected block type {other:?}")),
    }
}

/// The system text and the conversation of Chat Completions messages.
fn openai_messages(wire: &[Value]) -> Result<(String, Vec<Message>), String> {
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    for m in wire {
        let (role, blocks) = match m["role"].as_str() {
            Some("system" | "developer") => {
                system.push(text_of(&m["content"]));
                continue;
            }
            Some("tool") => {
                let tool_use_id = m["tool_call_id"]
                    .as_str()
                    .ok_or("a tool message without `tool_call_id`")?;
                let result = Block::ToolResult {
                    tool_use_id: tool_use_id.to_owned(),
                    content: text_of(&m["content"]),
                    is_error: false,
                };
                (Role::User, vec![result])
            }
            _ => {
                let role = role(&m["role"])?;
                let mut blocks = Vec::new();
                let text = text_of(&m["content"]);
                if !text.is_empty() {
                    blocks.push(Block::Text(text));
                }
                for call in m["tool_calls"].as_array().into_iter().flatten() {
                    let raw = call["function"]["arguments"].as_str().unwrap_or_default();
                    let input = match serde_json::from_str(raw) {
                        Ok(value) => ToolInput::Json(value),
                        Err(e) => ToolInput::Malformed {
                            raw: raw.to_owned(),
                            error: e.to_string(),
                        },
                    };
                    blocks.push(Block::ToolUse {
                        id: call["id"].as_str().unwrap_or_default().to_owned(),
                        name: call["function"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        input,
                    });
                }
                (role, blocks)
            }
        };
        // Tool results and the user text after them read as one user turn.
        match messages.last_mut() {
            Some(last) if last.role == Role::User && role == Role::User => {
                last.content.extend(blocks)
            }
            _ => messages.push(Message {
                role,
                content: blocks,
            }),
        }
    }
    Ok((system.join("\n"), messages))
}
