//! MCP server configurations: the MCP servers a tenant's agents may use, and what the last
//! ping found out about each.
//!
//! Whether a server's `uri` is acceptable depends on the instance's configuration (the SSRF
//! guard, `mcp.allow_stdio`), so that check lives in `services::mcp_servers`; the shape checks
//! are here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Invalid;
use super::text::{self, MAX_NAME_CHARS};

/// Longest `uri` (characters).
pub const MAX_URI_CHARS: usize = 2048;
/// Longest icon name or colour (characters).
const MAX_ICON_CHARS: usize = 64;
/// Longest recorded ping error (characters); longer messages are cut.
pub const MAX_ERROR_CHARS: usize = 1000;

/// How the platform talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum McpProtocol {
    /// A command line run on this host, speaking MCP on stdin/stdout (only when the instance
    /// allows it: `mcp.allow_stdio`).
    Stdio,
    /// The older HTTP+SSE transport: `uri` is the event-stream URL.
    Sse,
    /// Streamable HTTP: `uri` is the server's MCP endpoint.
    Http,
}

impl McpProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            McpProtocol::Stdio => "stdio",
            McpProtocol::Sse => "sse",
            McpProtocol::Http => "http",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stdio" => Some(McpProtocol::Stdio),
            "sse" => Some(McpProtocol::Sse),
            "http" => Some(McpProtocol::Http),
            _ => None,
        }
    }
}

/// What the last ping found: `disconnected` until the first ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum McpStatus {
    Connected,
    Disconnected,
    Error,
}

impl McpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            McpStatus::Connected => "connected",
            McpStatus::Disconnected => "disconnected",
            McpStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "connected" => Some(McpStatus::Connected),
            "disconnected" => Some(McpStatus::Disconnected),
            "error" => Some(McpStatus::Error),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct McpServer {
    pub id: String,
    /// Unique in the tenant.
    pub name: String,
    pub protocol: McpProtocol,
    /// The server's URL (`http`, `sse`) or command line (`stdio`).
    pub uri: String,
    pub status: McpStatus,
    /// Tools the server listed at the last successful ping.
    pub tool_count: u32,
    #[serde(serialize_with = "super::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_ping_at: Option<DateTime<Utc>>,
    /// Why the last ping failed (null after a successful one).
    pub error_message: Option<String>,
    /// Failed pings since the last successful one.
    pub consecutive_failures: u32,
    pub icon_name: Option<String>,
    pub icon_color: Option<String>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

/// A page of MCP servers, by name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct McpServerPage {
    pub items: Vec<McpServer>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<super::Page<McpServer>> for McpServerPage {
    fn from(page: super::Page<McpServer>) -> Self {
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

/// `POST /api/mcp-servers`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMcpServer {
    pub name: String,
    pub protocol: McpProtocol,
    pub uri: String,
    pub icon_name: Option<String>,
    pub icon_color: Option<String>,
}

impl NewMcpServer {
    /// Checks the shape of every field (the uri's target is checked by the service).
    pub fn validate(mut self) -> Result<Self, Invalid> {
        self.name = text::short_required("name", self.name.trim(), MAX_NAME_CHARS)?;
        self.uri = text::short_required("uri", self.uri.trim(), MAX_URI_CHARS)?;
        if let Some(icon) = &self.icon_name {
            text::short("icon_name", icon, MAX_ICON_CHARS)?;
        }
        if let Some(color) = &self.icon_color {
            text::short("icon_color", color, MAX_ICON_CHARS)?;
        }
        Ok(self)
    }
}

/// `PATCH /api/mcp-servers/{id}`: fields left out stay as they are; `null` clears an icon.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServerPatch {
    pub name: Option<String>,
    pub protocol: Option<McpProtocol>,
    pub uri: Option<String>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub icon_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub icon_color: Option<Option<String>>,
}

impl McpServerPatch {
    pub fn validate(mut self) -> Result<Self, Invalid> {
        if let Some(name) = &self.name {
            self.name = Some(text::short_required("name", name.trim(), MAX_NAME_CHARS)?);
        }
        if let Some(uri) = &self.uri {
            self.uri = Some(text::short_required("uri", uri.trim(), MAX_URI_CHARS)?);
        }
        if let Some(Some(icon)) = &self.icon_name {
            text::short("icon_name", icon, MAX_ICON_CHARS)?;
        }
        if let Some(Some(color)) = &self.icon_color {
            text::short("icon_color", color, MAX_ICON_CHARS)?;
        }
        Ok(self)
    }

    /// The names of the fields set (what the audit entry records).
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("protocol", self.protocol.is_some()),
            ("uri", self.uri.is_some()),
            ("icon_name", self.icon_name.is_some()),
            ("icon_color", self.icon_color.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// What a ping found, as recorded on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingResult {
    Connected { tool_count: u32 },
    Failed { error: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris_are_required_and_bounded() {
        let new = |name: &str, uri: &str| NewMcpServer {
            name: name.into(),
            protocol: McpProtocol::Http,
            uri: uri.into(),
            icon_name: None,
            icon_color: None,
        };
        assert!(
            new("files", "https://mcp.example.com/mcp")
                .validate()
                .is_ok()
        );
        assert_eq!(new(" ", "https://x").validate().unwrap_err().field, "name");
        assert_eq!(new("files", "").validate().unwrap_err().field, "uri");
        let long = format!("https://x/{}", "a".repeat(MAX_URI_CHARS));
        assert_eq!(new("files", &long).validate().unwrap_err().field, "uri");
    }

    #[test]
    fn unknown_protocols_and_fields_are_refused() {
        assert!(
            serde_json::from_str::<NewMcpServer>(
                r#"{"name": "a", "protocol": "grpc", "uri": "x"}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<McpServerPatch>(r#"{"status": "connected"}"#).is_err());
    }
}
