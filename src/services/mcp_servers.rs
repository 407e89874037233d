//! MCP server configurations: admins add, change, remove and ping them; everyone reads them.
//!
//! A server's target is checked whenever it is saved and again when it is pinged (DNS may have
//! changed in between): an `http`/`sse` URL must pass the SSRF guard, and `stdio` servers (a
//! command line run on this host, without a shell) exist only where the instance allows them.

use std::time::Duration;

use super::{Scope, ServiceError};
use crate::audit::Target;
use crate::config::McpSettings;
use crate::domain::mcp_server::{
    MAX_ERROR_CHARS, McpProtocol, McpServer, McpServerPatch, McpStatus, NewMcpServer, PingResult,
};
use crate::domain::{Invalid, Page, PageRequest, now};
use crate::net::mcp::{self, PingSettings, Transport};
use crate::net::ssrf;
use crate::store::{StoreError, blocking};

pub fn list(scope: &Scope, page: PageRequest) -> Result<Page<McpServer>, ServiceError> {
    let rows = scope.store.mcp_servers(&page)?;
    Ok(Page::from_rows(rows, &page, |s| s.name.clone()))
}

pub fn get(scope: &Scope, id: &str) -> Result<McpServer, ServiceError> {
    scope.store.mcp_server(id).map_err(not_found)
}

/// Adds a server after checking its target. Blocking: resolves the URL's host.
pub fn create(
    scope: &Scope,
    new: NewMcpServer,
    settings: &McpSettings,
) -> Result<McpServer, ServiceError> {
    let new = new.validate()?;
    check_target(new.protocol, &new.uri, settings)?;
    let at = now();
    let server = McpServer {
        id: uuid::Uuid::now_v7().to_string(),
        name: new.name,
        protocol: new.protocol,
        uri: new.uri,
        status: McpStatus::Disconnected,
        tool_count: 0,
        last_ping_at: None,
        error_message: None,
        consecutive_failures: 0,
        icon_name: new.icon_name,
        icon_color: new.icon_color,
        created_at: at,
        updated_at: at,
    };
    let audit = scope
        .audit("mcp_server.created", Target::new("mcp_server", &server.id))
        .with_details(serde_json::json!({
            "name": server.name,
            "protocol": server.protocol.as_str(),
        }));
    scope
        .store
        .insert_mcp_server(&server, &audit)
        .map_err(|e| name_taken(e, &server.name))?;
    scope.publish_value("mcp_server.created", &server);
    Ok(server)
}

/// Changes a server; a new protocol or uri is checked as a whole (the one with the other) and
/// resets what the last ping found. Blocking: resolves the URL's host.
pub fn update(
    scope: &Scope,
    id: &str,
    patch: McpServerPatch,
    settings: &McpSettings,
) -> Result<McpServer, ServiceError> {
    let patch = patch.validate()?;
    if patch.protocol.is_some() || patch.uri.is_some() {
        let current = get(scope, id)?;
        let protocol = patch.protocol.unwrap_or(current.protocol);
        let uri = patch.uri.as_deref().unwrap_or(&current.uri);
        check_target(protocol, uri, settings)?;
    }
    let audit = scope
        .audit("mcp_server.updated", Target::new("mcp_server", id))
        .with_details(serde_json::json!({ "fields": patch.fields() }));
    let server = scope
        .store
        .update_mcp_server(id, &patch, now(), &audit)
        .map_err(|e| match e {
            StoreError::Conflict(_) => name_taken(e, patch.name.as_deref().unwrap_or("")),
            other => not_found(other),
        })?;
    scope.publish_value("mcp_server.updated", &server);
    Ok(server)
}

pub fn delete(scope: &Scope, id: &str) -> Result<(), ServiceError> {
    let audit = scope.audit("mcp_server.deleted", Target::new("mcp_server", id));
    scope
        .store
        .delete_mcp_server(id, &audit)
        .map_err(not_found)?;
    scope.publish("mcp_server.deleted", serde_json::json!({ "id": id }));
    Ok(())
}

/// Pings a server (MCP handshake and tool listing), records what it found and returns the
/// updated server. A server that cannot be reached is not an error of this call: the result
/// is recorded (`status: error`, `error_message`, one more `consecutive_failures`) and
/// returned like a success, because the ping itself did its job.
pub async fn ping(
    scope: Scope,
    id: String,
    settings: McpSettings,
) -> Result<McpServer, ServiceError> {
    let server = {
        let (store, key) = (scope.store.clone(), id.clone());
        blocking(move || store.mcp_server(&key))
            .await
            .map_err(not_found)?
    };
    let result = match ping_target(&server, &settings).await {
        Ok(tool_count) => PingResult::Connected { tool_count },
        Err(error) => PingResult::Failed {
            error: error.chars().take(MAX_ERROR_CHARS).collect(),
        },
    };
    let audit = scope
        .audit("mcp_server.pinged", Target::new("mcp_server", &id))
        .with_details(match &result {
            PingResult::Connected { tool_count } => {
                serde_json::json!({ "status": "connected", "tool_count": tool_count })
            }
            PingResult::Failed { error } => {
                serde_json::json!({ "status": "error", "error": error })
            }
        });
    let updated = {
        let (store, key) = (scope.store.clone(), id.clone());
        blocking(move || store.record_mcp_ping(&key, &result, now(), &audit))
            .await
            // Deleted while it was being pinged.
            .map_err(not_found)?
    };
    scope.publish_value("mcp_server.status", &updated);
    Ok(updated)
}

/// Pings the server's target: its tool count, or why that failed.
async fn ping_target(server: &McpServer, settings: &McpSettings) -> Result<u32, String> {
    let transport = match server.protocol {
        McpProtocol::Http => Transport::StreamableHttp,
        McpProtocol::Sse => Transport::Sse,
        McpProtocol::Stdio if !settings.allow_stdio => {
            return Err("stdio servers are disabled on this instance (mcp.allow_stdio)".into());
        }
        McpProtocol::Stdio => Transport::Stdio,
    };
    let ping = PingSettings {
        policy: guard(settings),
        timeout: Duration::from_millis(settings.ping_timeout_ms),
        max_response_bytes: settings.max_response_bytes,
    };
    mcp::ping(transport, &server.uri, ping)
        .await
        .map(|report| report.tool_count)
        .map_err(|e| e.to_string())
}

fn guard(settings: &McpSettings) -> ssrf::Policy {
    ssrf::Policy {
        allow_private_networks: settings.allow_private_networks,
    }
}

/// Whether the instance lets a server of `protocol` point at `uri`.
fn check_target(protocol: McpProtocol, uri: &str, settings: &McpSettings) -> Result<(), Invalid> {
    match protocol {
        McpProtocol::Stdio if !settings.allow_stdio => Err(Invalid::new(
            "protocol",
            "stdio servers (commands run on the server) are disabled on this instance; an \
             operator can allow them with mcp.allow_stdio",
        )),
        McpProtocol::Stdio => {
            mcp::check_command_line(uri).map_err(|message| Invalid::new("uri", message))
        }
        McpProtocol::Http | McpProtocol::Sse => ssrf::check_blocking(uri, guard(settings))
            .map(|_| ())
            .map_err(|e| Invalid::new("uri", e.0)),
    }
}

/// The id is not repeated back: a path may carry anything, e.g. another tenant's ids.
fn not_found(e: StoreError) -> ServiceError {
    match e {
        StoreError::NotFound => ServiceError::not_found("no such MCP server in this tenant"),
        other => other.into(),
    }
}

fn name_taken(e: StoreError, name: &str) -> ServiceError {
    match e {
        StoreError::Conflict(_) => ServiceError::Conflict {
            message: format!("an MCP server named '{name}' already exists"),
            details: serde_json::json!({ "fields": { "name": "is taken" } }),
        },
        other => other.into(),
    }
}
