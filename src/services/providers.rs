//! LLM providers: admins add, change, remove and test them; everyone in the tenant reads them.
//!
//! API keys are sealed here, with the tenant's data key and a context naming the provider
//! (`provider:<id>:api_key`), before anything reaches the repository; they are opened only by
//! [`access`], for a call to the provider. No key is ever in a response, an event, an audit
//! entry or an error message: those carry `api_key_set` and at most the last 4 characters.

use std::time::{Duration, Instant};

use serde::Serialize;
use zeroize::Zeroizing;

use super::{Scope, ServiceError};
use crate::agents::providers::{self as clients, Message, ModelRequest, ProviderError, RunFacts};
use crate::audit::Target;
use crate::domain::provider::{
    ApiKey, NewProvider, Provider, ProviderAccess, ProviderKind, ProviderPatch,
};
use crate::domain::{Page, PageRequest, now};
use crate::secrets::{SecretError, TenantKeys};
use crate::store::StoreError;
use crate::store::providers::{KeyChange, ProviderChanges};

/// How long a test call may take when the provider sets no `timeout_secs`.
const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest reply or error message a test returns (characters).
const MAX_TEST_TEXT_CHARS: usize = 500;

pub fn list(scope: &Scope, page: PageRequest) -> Result<Page<Provider>, ServiceError> {
    let rows = scope.store.providers(&page)?;
    Ok(Page::from_rows(rows, &page, |p| p.name.clone()))
}

pub fn get(scope: &Scope, id: &str) -> Result<Provider, ServiceError> {
    scope.store.provider(id).map_err(not_found)
}

pub fn create(
    scope: &Scope,
    keys: &TenantKeys,
    new: NewProvider,
) -> Result<Provider, ServiceError> {
    let new = new.validate()?;
    let at = now();
    let id = uuid::Uuid::now_v7().to_string();
    let sealed = new
        .api_key
        .as_ref()
        .map(|key| seal(scope, keys, &id, key))
        .transpose()?;
    let provider = Provider {
        api_key_set: new.api_key.is_some(),
        api_key_last4: new.api_key.as_ref().and_then(ApiKey::last4),
        id,
        kind: new.kind,
        name: new.name,
        base_url: new.base_url,
        default_model: new.default_model,
        prices: new.prices.unwrap_or_default(),
        config: new
            .config
            .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
        created_at: at,
        updated_at: at,
    };
    let audit = scope
        .audit("provider.created", Target::new("provider", &provider.id))
        .with_details(serde_json::json!({
            "name": provider.name,
            "kind": provider.kind.as_str(),
            "api_key_set": provider.api_key_set,
        }));
    scope
        .store
        .insert_provider(&provider, sealed.as_deref(), &audit)
        .map_err(|e| name_taken(e, &provider.name))?;
    scope.publish_value("provider.created", &provider);
    Ok(provider)
}

pub fn update(
    scope: &Scope,
    keys: &TenantKeys,
    id: &str,
    patch: ProviderPatch,
) -> Result<Provider, ServiceError> {
    let mut patch = patch.validate()?;
    let fields = patch.fields();
    let key = match patch.api_key.take() {
        None => KeyChange::Keep,
        Some(None) => KeyChange::Clear,
        Some(Some(key)) => {
            // Sealing needs the id to exist in this tenant; a missing one is a 404 either way.
            get(scope, id)?;
            KeyChange::Set {
                sealed: seal(scope, keys, id, &key)?,
                last4: key.last4(),
            }
        }
    };
    let changes = ProviderChanges {
        kind: patch.kind,
        name: patch.name.clone(),
        base_url: patch.base_url,
        key,
        default_model: patch.default_model,
        prices: patch.prices,
        config: patch.config,
    };
    let audit = scope
        .audit("provider.updated", Target::new("provider", id))
        .with_details(serde_json::json!({ "fields": fields }));
    let provider = scope
        .store
        .update_provider(id, &changes, now(), &audit)
        .map_err(|e| match e {
            StoreError::Conflict(_) => name_taken(e, patch.name.as_deref().unwrap_or("")),
            other => not_found(other),
        })?;
    scope.publish_value("provider.updated", &provider);
    Ok(provider)
}

pub fn delete(scope: &Scope, id: &str) -> Result<(), ServiceError> {
    let audit = scope.audit("provider.deleted", Target::new("provider", id));
    scope.store.delete_provider(id, &audit).map_err(not_found)?;
    scope.publish("provider.deleted", serde_json::json!({ "id": id }));
    Ok(())
}

/// Everything needed to call provider `id`, its key decrypted: what the agent runtime and
/// the test route use. Blocking (reads the tenant database, maybe the registry).
pub fn access(scope: &Scope, keys: &TenantKeys, id: &str) -> Result<ProviderAccess, ServiceError> {
    let (provider, sealed) = scope
        .store
        .provider_with_sealed_key(id)
        .map_err(not_found)?;
    let api_key = match sealed {
        None => None,
        Some(sealed) => {
            let key = data_key(scope, keys)?;
            let plain = key
                .open(&sealed, &key_context(id))
                .map_err(|e| secret_failure(scope, e))?;
            let text = String::from_utf8(plain.to_vec())
                .map_err(|_| secret_failure(scope, SecretError::Undecryptable))?;
            Some(Zeroizing::new(text))
        }
    };
    Ok(ProviderAccess {
        id: provider.id,
        name: provider.name,
        kind: provider.kind,
        base_url: provider.base_url,
        api_key,
        default_model: provider.default_model,
        prices: provider.prices,
        config: provider.config,
    })
}

/// What `POST /api/providers/{id}/test` answers: a provider that answers with an error is a
/// result (`ok: false`), not a failure of the call.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestResult {
    pub ok: bool,
    /// The model that answered (`ok: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Time to the whole reply, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The model's reply, cut to 500 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TestError>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestError {
    /// `transport`, `timeout`, `auth`, `rate_limited`, `unavailable`, `rejected`,
    /// `malformed` or `misconfigured`.
    pub kind: String,
    pub message: String,
}

/// Sends a minimal request ("Reply with the word OK.", 16 tokens, no tools) to the provider,
/// within its `timeout_secs` (default 30 s). Async: the key is decrypted on the blocking pool.
pub async fn test(
    scope: Scope,
    keys: std::sync::Arc<TenantKeys>,
    http: reqwest::Client,
    id: String,
) -> Result<TestResult, ServiceError> {
    let access = tokio::task::spawn_blocking(move || access(&scope, &keys, &id))
        .await
        .map_err(|e| StoreError::Internal(format!("provider lookup failed: {e}")))??;
    let Some(model) = access
        .default_model
        .clone()
        .or_else(|| (access.kind == ProviderKind::Simulated).then(|| "simulated".to_owned()))
    else {
        return Ok(failed(&ProviderError::Misconfigured(
            "the provider has no default_model to test with".into(),
        )));
    };
    let timeout = access
        .config
        .get("timeout_secs")
        .and_then(serde_json::Value::as_u64)
        .map_or(DEFAULT_TEST_TIMEOUT, Duration::from_secs);
    let client = clients::connect(&access, &http);
    let request = ModelRequest {
        model,
        system: String::new(),
        messages: vec![Message::user_text("Reply with the word OK.")],
        tools: std::sync::Arc::new([]),
        max_tokens: 16,
        facts: std::sync::Arc::new(RunFacts::default()),
    };
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, client.turn(&request, &|_| {})).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let result = match outcome {
        Err(_) => failed(&ProviderError::Timeout(timeout)),
        Ok(Err(e)) => failed(&e),
        Ok(Ok(reply)) => {
            let text: String = reply
                .content
                .iter()
                .filter_map(|b| match b {
                    clients::Block::Text(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("");
            TestResult {
                ok: true,
                model: Some(reply.model),
                latency_ms: Some(latency_ms),
                reply: Some(text.chars().take(MAX_TEST_TEXT_CHARS).collect()),
                error: None,
            }
        }
    };
    Ok(result)
}

fn failed(e: &ProviderError) -> TestResult {
    let kind = match e {
        ProviderError::RateLimited { .. } => "rate_limited",
        ProviderError::Unavailable { .. } => "unavailable",
        ProviderError::Auth { .. } => "auth",
        ProviderError::Rejected { .. } => "rejected",
        ProviderError::Malformed(_) => "malformed",
        ProviderError::Timeout(_) => "timeout",
        ProviderError::Transport(_) => "transport",
        ProviderError::Misconfigured(_) => "misconfigured",
    };
    TestResult {
        ok: false,
        model: None,
        latency_ms: None,
        reply: None,
        error: Some(TestError {
            kind: kind.into(),
            message: e.to_string().chars().take(MAX_TEST_TEXT_CHARS).collect(),
        }),
    }
}

/// What a provider's sealed key is bound to: a sealed key copied to another provider's row
/// (or another tenant's database) does not open.
fn key_context(id: &str) -> String {
    format!("provider:{id}:api_key")
}

fn seal(scope: &Scope, keys: &TenantKeys, id: &str, key: &ApiKey) -> Result<Vec<u8>, ServiceError> {
    data_key(scope, keys)?
        .seal(key.expose().as_bytes(), &key_context(id))
        .map_err(|e| secret_failure(scope, e))
}

fn data_key(
    scope: &Scope,
    keys: &TenantKeys,
) -> Result<std::sync::Arc<crate::secrets::DataKey>, ServiceError> {
    keys.data_key(scope.tenant)
        .map_err(|e| secret_failure(scope, e))
}

/// A key that cannot be sealed or opened is the operator's problem (a wrong or lost master
/// key), never the client's: a 500 with no detail, the cause in the log (it names no key).
fn secret_failure(scope: &Scope, e: SecretError) -> ServiceError {
    tracing::error!(tenant_id = %scope.tenant, error = %e, "provider secret unavailable");
    ServiceError::Store(StoreError::Internal(
        "a provider secret cannot be decrypted".into(),
    ))
}

/// The id is not repeated back: a path may carry anything, e.g. another tenant's ids.
fn not_found(e: StoreError) -> ServiceError {
    match e {
        StoreError::NotFound => ServiceError::not_found("no such provider in this tenant"),
        other => other.into(),
    }
}

fn name_taken(e: StoreError, name: &str) -> ServiceError {
    match e {
        StoreError::Conflict(_) => ServiceError::Conflict {
            message: format!("a provider named '{name}' already exists"),
            details: serde_json::json!({ "fields": { "name": "is taken" } }),
        },
        other => other.into(),
    }
}
