//! LLM providers as the runtime sees them: the kind of wire format, where to reach it, the key
//! (decrypted only for the call) and the price table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Invalid;
use super::text;

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
#[serde(deny_unknown_fields)]
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

// ---- The provider as the API shows and takes it -------------------------------------------

/// Longest provider name (characters).
pub const MAX_PROVIDER_NAME_CHARS: usize = 100;
/// Longest API key (characters).
pub const MAX_API_KEY_CHARS: usize = 4096;
/// Longest base URL (characters).
pub const MAX_BASE_URL_CHARS: usize = 2048;
/// Most models in a price table.
pub const MAX_PRICED_MODELS: usize = 500;
/// A key shorter than this shows no last characters at all (they would be too much of it).
pub const MIN_KEY_CHARS_FOR_LAST4: usize = 12;

/// A provider as responses show it: the API key never, only whether one is set and at most
/// its last 4 characters.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Provider {
    pub id: String,
    pub kind: ProviderKind,
    /// Unique in the tenant.
    pub name: String,
    /// Where the API is (default: the kind's public endpoint).
    pub base_url: Option<String>,
    pub api_key_set: bool,
    /// The key's last 4 characters; null without a key or when it is shorter than 12.
    pub api_key_last4: Option<String>,
    pub default_model: Option<String>,
    /// Dollars per million tokens, by model.
    #[schema(value_type = Object)]
    pub prices: Prices,
    /// Kind-specific settings: `latency_ms`, `stream`, `timeout_secs`, `max_retries`,
    /// `anthropic_version`, `max_tokens`.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A page of providers, by name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderPage {
    pub items: Vec<Provider>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<super::Page<Provider>> for ProviderPage {
    fn from(page: super::Page<Provider>) -> Self {
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

/// An API key as a client sent it: wiped from memory when dropped, never in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(Zeroizing::new(key.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// 1 – 4096 printable characters (no control characters, not blank).
    fn validate(&self) -> Result<(), Invalid> {
        let n = self.0.chars().count();
        if n == 0 || self.0.trim().is_empty() {
            return Err(Invalid::new("api_key", "must not be empty"));
        }
        if n > MAX_API_KEY_CHARS {
            return Err(Invalid::new(
                "api_key",
                format!("must be at most {MAX_API_KEY_CHARS} characters"),
            ));
        }
        if self.0.chars().any(char::is_control) {
            return Err(Invalid::new("api_key", "must be printable characters only"));
        }
        Ok(())
    }

    /// What responses may show of the key: its last 4 characters, for keys of 12 or more.
    pub fn last4(&self) -> Option<String> {
        let n = self.0.chars().count();
        (n >= MIN_KEY_CHARS_FOR_LAST4).then(|| self.0.chars().skip(n - 4).collect())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl<'de> Deserialize<'de> for ApiKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(ApiKey::new)
    }
}

/// `POST /api/providers`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    pub kind: ProviderKind,
    pub name: String,
    pub base_url: Option<String>,
    /// Write-only: stored encrypted, never shown again.
    #[schema(value_type = Option<String>)]
    pub api_key: Option<ApiKey>,
    pub default_model: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub prices: Option<Prices>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
}

impl NewProvider {
    pub fn validate(mut self) -> Result<Self, Invalid> {
        self.name = text::short_required("name", self.name.trim(), MAX_PROVIDER_NAME_CHARS)?;
        if let Some(url) = &self.base_url {
            self.base_url = Some(validate_base_url(url)?);
        }
        if let Some(key) = &self.api_key {
            key.validate()?;
        }
        if let Some(model) = &self.default_model {
            self.default_model = Some(validate_model(model)?);
        }
        if let Some(prices) = &self.prices {
            validate_prices(prices)?;
        }
        if let Some(config) = &self.config {
            validate_config(config)?;
        }
        Ok(self)
    }
}

/// `PATCH /api/providers/{id}`: fields left out stay; `null` clears `base_url`, `api_key`,
/// `default_model`; `prices` and `config` are replaced whole.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderPatch {
    pub kind: Option<ProviderKind>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub base_url: Option<Option<String>>,
    /// Write-only; `null` removes the key.
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub api_key: Option<Option<ApiKey>>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub default_model: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    pub prices: Option<Prices>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
}

impl ProviderPatch {
    pub fn validate(mut self) -> Result<Self, Invalid> {
        if let Some(name) = &self.name {
            self.name = Some(text::short_required(
                "name",
                name.trim(),
                MAX_PROVIDER_NAME_CHARS,
            )?);
        }
        if let Some(Some(url)) = &self.base_url {
            self.base_url = Some(Some(validate_base_url(url)?));
        }
        if let Some(Some(key)) = &self.api_key {
            key.validate()?;
        }
        if let Some(Some(model)) = &self.default_model {
            self.default_model = Some(Some(validate_model(model)?));
        }
        if let Some(prices) = &self.prices {
            validate_prices(prices)?;
        }
        if let Some(config) = &self.config {
            validate_config(config)?;
        }
        Ok(self)
    }

    /// The names of the fields set (what the audit entry records; never a value).
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("kind", self.kind.is_some()),
            ("name", self.name.is_some()),
            ("base_url", self.base_url.is_some()),
            ("api_key", self.api_key.is_some()),
            ("default_model", self.default_model.is_some()),
            ("prices", self.prices.is_some()),
            ("config", self.config.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// http or https with a host. Loopback and private addresses are allowed on purpose: local
/// models (Ollama, vLLM, LM Studio) are a main use, and only tenant admins set providers.
fn validate_base_url(url: &str) -> Result<String, Invalid> {
    let url = text::short_required("base_url", url.trim(), MAX_BASE_URL_CHARS)?;
    let parsed =
        url::Url::parse(&url).map_err(|e| Invalid::new("base_url", format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Invalid::new(
            "base_url",
            "must be an http:// or https:// URL",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Invalid::new("base_url", "must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Invalid::new(
            "base_url",
            "must not contain credentials; set api_key instead",
        ));
    }
    Ok(url)
}

fn validate_model(model: &str) -> Result<String, Invalid> {
    text::short_required("default_model", model.trim(), text::MAX_SHORT_CHARS)
}

fn validate_prices(prices: &Prices) -> Result<(), Invalid> {
    if prices.len() > MAX_PRICED_MODELS {
        return Err(Invalid::new(
            "prices",
            format!("at most {MAX_PRICED_MODELS} models"),
        ));
    }
    for (model, price) in prices {
        if model.trim().is_empty()
            || model.chars().count() > text::MAX_SHORT_CHARS
            || model.chars().any(char::is_control)
        {
            return Err(Invalid::new(
                "prices",
                format!(
                    "model names must be 1 – {} printable characters",
                    text::MAX_SHORT_CHARS
                ),
            ));
        }
        for (field, value) in [
            ("input_per_mtok", price.input_per_mtok),
            ("output_per_mtok", price.output_per_mtok),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(Invalid::new(
                    format!("prices.{model}.{field}"),
                    "must be a finite number ≥ 0",
                ));
            }
        }
    }
    Ok(())
}

/// The known keys of `config` and their ranges; any other key is refused.
fn validate_config(config: &serde_json::Value) -> Result<(), Invalid> {
    let Some(map) = config.as_object() else {
        return Err(Invalid::new("config", "must be an object"));
    };
    let int = |key: &str, value: &serde_json::Value, min: u64, max: u64| match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(Invalid::new(
            format!("config.{key}"),
            format!("must be an integer from {min} to {max}"),
        )),
    };
    for (key, value) in map {
        match key.as_str() {
            "latency_ms" => int(key, value, 0, 600_000)?,
            "timeout_secs" => int(key, value, 1, 600)?,
            "max_retries" => int(key, value, 0, 10)?,
            "max_tokens" => int(key, value, 1, 200_000)?,
            "stream" if value.is_boolean() => {}
            "stream" => return Err(Invalid::new("config.stream", "must be true or false")),
            "anthropic_version" => match value.as_str() {
                Some(v) if !v.trim().is_empty() && v.chars().count() <= 64 => {
                    text::short("config.anthropic_version", v, 64)?;
                }
                _ => {
                    return Err(Invalid::new(
                        "config.anthropic_version",
                        "must be a string of 1 – 64 characters",
                    ));
                }
            },
            _ => {
                return Err(Invalid::new(
                    format!("config.{key}"),
                    "unknown setting (known: latency_ms, stream, timeout_secs, max_retries, \
                     anthropic_version, max_tokens)",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(json: serde_json::Value) -> Result<NewProvider, String> {
        serde_json::from_value::<NewProvider>(json)
            .map_err(|e| e.to_string())?
            .validate()
            .map_err(|e| e.field.into_owned())
    }

    #[test]
    fn a_full_provider_validates() {
        let p = new(serde_json::json!({
            "kind": "openai", "name": " local ", "base_url": "http://127.0.0.1:11434/v1",
            "api_key": "sk-0123456789abcdef", "default_model": "llama3",
            "prices": {"llama3": {"input_per_mtok": 0.0, "output_per_mtok": 1.5}},
            "config": {"stream": true, "timeout_secs": 30, "max_retries": 2, "latency_ms": 0,
                       "anthropic_version": "2023-06-01", "max_tokens": 1024}
        }))
        .unwrap();
        assert_eq!(p.name, "local");
        assert_eq!(p.api_key.unwrap().last4().as_deref(), Some("cdef"));
    }

    #[test]
    fn bad_fields_are_named() {
        let base = |extra: serde_json::Value| {
            let mut v = serde_json::json!({"kind": "anthropic", "name": "a"});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            new(v)
        };
        assert_eq!(base(serde_json::json!({"name": ""})).unwrap_err(), "name");
        assert_eq!(
            base(serde_json::json!({"name": "x".repeat(101)})).unwrap_err(),
            "name"
        );
        for url in [
            "ftp://x",
            "file:///etc/passwd",
            "not a url",
            "http://u:p@h/",
        ] {
            assert_eq!(
                base(serde_json::json!({"base_url": url})).unwrap_err(),
                "base_url"
            );
        }
        assert_eq!(
            base(serde_json::json!({"api_key": ""})).unwrap_err(),
            "api_key"
        );
        assert_eq!(
            base(serde_json::json!({"api_key": "a\u{7}b"})).unwrap_err(),
            "api_key"
        );
        assert_eq!(
            base(serde_json::json!({"prices": {"m": {"input_per_mtok": -1.0, "output_per_mtok": 1.0}}}))
                .unwrap_err(),
            "prices.m.input_per_mtok"
        );
        assert_eq!(
            base(serde_json::json!({"config": {"colour": 1}})).unwrap_err(),
            "config.colour"
        );
        assert_eq!(
            base(serde_json::json!({"config": {"timeout_secs": 0}})).unwrap_err(),
            "config.timeout_secs"
        );
        assert_eq!(
            base(serde_json::json!({"config": []})).unwrap_err(),
            "config"
        );
        assert!(base(serde_json::json!({"kind": "gemini"})).is_err());
        assert!(base(serde_json::json!({"api_key_set": true})).is_err());
    }

    #[test]
    fn only_long_keys_show_their_last_four_and_debug_hides_keys() {
        assert_eq!(ApiKey::new("short-key").last4(), None);
        assert_eq!(ApiKey::new("0123456789ab").last4().as_deref(), Some("89ab"));
        assert_eq!(
            format!("{:?}", ApiKey::new("sk-secret")),
            "ApiKey([redacted])"
        );
        let patch: ProviderPatch =
            serde_json::from_str(r#"{"api_key": "sk-secret-value"}"#).unwrap();
        assert!(!format!("{patch:?}").contains("sk-secret"));
        assert_eq!(patch.fields(), vec!["api_key"]);
    }
}
