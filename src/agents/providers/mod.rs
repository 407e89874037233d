//! Model clients: one trait, [`ModelClient`], that takes a conversation and the tools on offer
//! and returns the model's next turn, with an implementation per wire format (`anthropic`,
//! `openai`) and the deterministic `simulated` one. The runner only ever sees this trait.

pub mod anthropic;
pub mod fake_server;
mod http;
pub mod openai;
pub mod simulated;
pub mod sse;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::domain::provider::{ProviderAccess, ProviderKind};

/// Who said a message of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// The arguments of a tool call as the model sent them.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolInput {
    /// Valid JSON (not necessarily an object: the runner checks the shape).
    Json(Value),
    /// Text that is not JSON (OpenAI sends arguments as a string); kept verbatim so the
    /// conversation can be replayed to the provider as it was.
    Malformed { raw: String, error: String },
}

/// One block of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: ToolInput,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        is_error: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
}

impl Message {
    pub fn user_text(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![Block::Text(text.into())],
        }
    }
}

/// A tool offered to the model: its name, what it does, and a JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// Facts about the run that only the `simulated` model reads (real models get the same facts
/// as prose in the prompt).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFacts {
    pub agent_name: String,
    /// Names of the agent's direct reports.
    pub direct_reports: Vec<String>,
    /// The task's prompt.
    pub task_prompt: String,
    /// Results of the task's finished subtasks (`(assignee name, result)`), when the run was
    /// woken because they finished.
    pub child_results: Vec<(String, String)>,
}

/// One call: the conversation so far and what the model may use.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    pub model: String,
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Arc<[ToolSpec]>,
    pub max_tokens: u32,
    pub facts: Arc<RunFacts>,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    /// Anything else the provider reported (e.g. `refusal`, `content_filter`).
    Other(String),
}

/// Tokens of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

/// The model's turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    /// The model name the provider reports (falls back to the requested one).
    pub model: String,
    pub content: Vec<Block>,
    pub stop: StopReason,
    pub usage: Usage,
}

/// A piece of the turn as it streams in.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Text(String),
}

/// Receives deltas while a turn streams.
pub type DeltaSink<'a> = &'a (dyn Fn(Delta) + Send + Sync);

/// Why a call failed. Messages never contain the API key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// 429: too many requests; `retry_after` from the `retry-after` header when given.
    #[error("rate limited by the provider: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// 5xx or 529 (overloaded): worth retrying.
    #[error("the provider failed (HTTP {status}): {message}")]
    Unavailable { status: u16, message: String },
    /// 401/403: the key is missing, wrong or lacks access.
    #[error("the provider refused the credentials (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    /// Any other 4xx: the request was wrong (unknown model, bad parameters).
    #[error("the provider rejected the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// The provider answered with something that is not its wire format.
    #[error("the provider's reply is malformed: {0}")]
    Malformed(String),
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    /// Connection refused, reset, DNS…
    #[error("cannot reach the provider: {0}")]
    Transport(String),
    /// The provider is not configured so that it can be called (e.g. no key).
    #[error("{0}")]
    Misconfigured(String),
}

impl ProviderError {
    /// Whether a retry of the same call can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Unavailable { .. }
                | ProviderError::Timeout(_)
                | ProviderError::Transport(_)
        )
    }
}

/// A model behind some wire format.
pub trait ModelClient: Send + Sync {
    /// Sends the conversation and returns the model's turn, streaming text to `sink` as it
    /// arrives (clients that do not stream call it once with the whole text). Retries of
    /// retryable failures happen inside, honouring `retry-after`.
    fn turn<'a>(
        &'a self,
        request: &'a ModelRequest,
        sink: DeltaSink<'a>,
    ) -> BoxFuture<'a, Result<ModelReply, ProviderError>>;
}

/// The client for a provider. `http` is shared (connection pools); timeouts and retries come
/// from the provider's `config`.
pub fn connect(access: &ProviderAccess, http: &reqwest::Client) -> Arc<dyn ModelClient> {
    match access.kind {
        ProviderKind::Anthropic => Arc::new(anthropic::AnthropicClient::new(access, http.clone())),
        ProviderKind::Openai => Arc::new(openai::OpenAiClient::new(access, http.clone())),
        ProviderKind::Simulated => Arc::new(simulated::SimulatedClient::new(access)),
    }
}
