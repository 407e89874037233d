//! Reading a streamed Anthropic reply: `message_start`, then per content block a start,
//! deltas and a stop, `message_delta` (stop reason, output tokens), `message_stop`; `ping`
//! and `error` may come at any point.

use serde::Deserialize;
use serde_json::json;

use super::{WireUsage, stop_reason};
use crate::agents::providers::http::{StreamDecoder, status_error};
use crate::agents::providers::sse::SseEvent;
use crate::agents::providers::{
    Block, Delta, DeltaSink, ModelReply, ProviderError, StopReason, ToolInput, Usage,
};

/// The events of a stream, as far as this client reads them.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: StartedMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: WireBlockStart,
    },
    ContentBlockDelta {
        index: usize,
        delta: WireDelta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDelta,
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: WireError,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartedMessage {
    model: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlockStart {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDelta {
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

/// A block being streamed.
enum PartialBlock {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        json: String,
    },
    /// A kind this client does not read; its deltas are dropped.
    Skipped,
}

pub struct StreamState {
    model: String,
    /// By the index the events give.
    blocks: Vec<PartialBlock>,
    stop: Option<StopReason>,
    usage: Usage,
    complete: bool,
}

impl StreamState {
    pub(super) fn new(requested_model: &str) -> Self {
        Self {
            model: requested_model.to_owned(),
            blocks: Vec::new(),
            stop: None,
            usage: Usage::default(),
            complete: false,
        }
    }

    fn block(&mut self, index: usize) -> Result<&mut PartialBlock, ProviderError> {
        self.blocks.get_mut(index).ok_or_else(|| {
            ProviderError::Malformed(format!("a delta for content block {index}, never started"))
        })
    }
}

impl StreamDecoder for StreamState {
    fn feed(&mut self, event: &SseEvent, sink: DeltaSink<'_>) -> Result<bool, ProviderError> {
        let parsed: WireEvent = serde_json::from_str(&event.data).map_err(|e| {
            ProviderError::Malformed(format!("an Anthropic stream event is not valid: {e}"))
        })?;
        match parsed {
            WireEvent::MessageStart { message } => {
                if let Some(model) = message.model {
                    self.model = model;
                }
                if let Some(usage) = message.usage {
                    usage.apply_to(&mut self.usage);
                }
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let block = match content_block {
                    WireBlockStart::Text { text } => {
                        if !text.is_empty() {
                            sink(Delta::Text(text.clone()));
                        }
                        PartialBlock::Text(text)
                    }
                    WireBlockStart::ToolUse { id, name } => PartialBlock::ToolUse {
                        id,
                        name,
                        json: String::new(),
                    },
                    WireBlockStart::Other => PartialBlock::Skipped,
                };
                if index >= self.blocks.len() {
                    self.blocks.resize_with(index + 1, || PartialBlock::Skipped);
                }
                self.blocks[index] = block;
            }
            WireEvent::ContentBlockDelta { index, delta } => match (self.block(index)?, delta) {
                (PartialBlock::Text(text), WireDelta::TextDelta { text: piece }) => {
                    text.push_str(&piece);
                    sink(Delta::Text(piece));
                }
                (
                    PartialBlock::ToolUse { json, .. },
                    WireDelta::InputJsonDelta { partial_json },
                ) => {
                    json.push_str(&partial_json);
                }
                _ => {}
            },
            // Blocks are read whole at the end; nothing to do when one closes.
            WireEvent::ContentBlockStop { index } => {
                self.block(index)?;
            }
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.stop = Some(stop_reason(Some(&reason)));
                }
                if let Some(usage) = usage {
                    usage.apply_to(&mut self.usage);
                }
            }
            WireEvent::MessageStop => {
                self.complete = true;
                return Ok(true);
            }
            WireEvent::Ping | WireEvent::Other => {}
            WireEvent::Error { error } => return Err(stream_error(error)),
        }
        Ok(false)
    }

    fn finish(self) -> Result<ModelReply, ProviderError> {
        if !self.complete {
            return Err(ProviderError::Transport(
                "the stream ended before message_stop".into(),
            ));
        }
        let content = self
            .blocks
            .into_iter()
            .filter_map(|block| match block {
                PartialBlock::Text(text) => Some(Block::Text(text)),
                PartialBlock::ToolUse { id, name, json } => Some(Block::ToolUse {
                    id,
                    name,
                    input: tool_input(json),
                }),
                PartialBlock::Skipped => None,
            })
            .collect();
        Ok(ModelReply {
            model: self.model,
            content,
            stop: self.stop.unwrap_or(StopReason::Other("none".into())),
            usage: self.usage,
        })
    }
}

/// The arguments streamed for a tool call; none at all means an empty object.
fn tool_input(json: String) -> ToolInput {
    if json.trim().is_empty() {
        return ToolInput::Json(json!({}));
    }
    match serde_json::from_str(&json) {
        Ok(value) => ToolInput::Json(value),
        Err(e) => ToolInput::Malformed {
            raw: json,
            error: e.to_string(),
        },
    }
}

/// An `error` event in a stream: the same errors as the statuses of a reply that failed
/// before streaming.
fn stream_error(error: WireError) -> ProviderError {
    let status = match error.kind.as_str() {
        "overloaded_error" => 529,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        _ => 400,
    };
    let body =
        json!({ "type": "error", "error": { "type": error.kind, "message": error.message } });
    status_error(status, None, &body.to_string())
}
