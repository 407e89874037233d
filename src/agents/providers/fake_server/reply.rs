//! What the fake server answers (how each wire format writes it is in `render`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::agents::providers::{StopReason, Usage};

/// A scripted answer: a turn, an HTTP error or raw bytes, after an optional delay.
#[derive(Debug, Clone)]
pub struct FakeReply {
    pub kind: FakeReplyKind,
    /// How long the server waits before answering.
    pub delay: Duration,
    /// What the server waits for before answering (see [`FakeReply::until`]).
    pub until: Option<Gate>,
}

/// A condition the server polls, off its worker, before it answers.
#[derive(Clone)]
pub struct Gate(pub Arc<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
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
            until: None,
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
            until: None,
        }
    }

    pub fn malformed() -> Self {
        Self {
            kind: FakeReplyKind::Malformed,
            delay: Duration::ZERO,
            until: None,
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
            until: None,
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

    /// Answers only once `ready` holds (polled every millisecond, for at most 30 s), while
    /// the server goes on answering other requests: to order a reply after something the
    /// test can observe.
    pub fn until(mut self, ready: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.until = Some(Gate(Arc::new(ready)));
        self
    }
}
