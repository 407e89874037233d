//! LLM providers as the runtime sees them: the kind of wire format, where to reach it, the key
//! (decrypted only for the call) and the price table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Anthropic Messages API.
    Anthropic,
    /// Any Chat-Completions-compatible API (OpenAI, Ollama, vLLM, LM Studio, OpenRouter).
    Openai,
    /// Deterministic, no network: for the demo and tests.
    Simulated,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Openai => "openai",
            ProviderKind::Simulated => "simulated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "anthropic" => Some(ProviderKind::Anthropic),
            "openai" => Some(ProviderKind::Openai),
            "simulated" => Some(ProviderKind::Simulated),
            _ => None,
        }
    }

    /// The base URL used when a provider of this kind names none.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Simulated => None,
        }
    }
}

/// Dollars per million tokens of one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelPrice {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// Prices by model name.
pub type Prices = BTreeMap<String, ModelPrice>;

/// Everything needed to call a provider, the key decrypted. Lives only for a run or a test
/// call; its `Debug` never shows the key.
#[derive(Clone)]
pub struct ProviderAccess {
    pub id: String,
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    pub api_key: Option<Zeroizing<String>>,
    pub default_model: Option<String>,
    pub prices: Prices,
    /// Kind-specific settings (e.g. `latency_ms` of `simulated`, `stream`, `timeout_secs`).
    pub config: serde_json::Value,
}

impl std::fmt::Debug for ProviderAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderAccess")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key_set", &self.api_key.is_some())
            .field("default_model", &self.default_model)
            .finish_non_exhaustive()
    }
}
