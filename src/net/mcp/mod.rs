//! A small MCP client that "pings" a configured server: it connects, runs the `initialize`
//! handshake and lists the server's tools, and reports how many there are, or why it failed.
//!
//! Three transports are spoken (MCP specification 2025-03-26 and later):
//! - Streamable HTTP (`http`): every JSON-RPC message is a POST to the server's one URL; the
//!   reply is `application/json` or a `text/event-stream` carrying it; the session id the
//!   server hands out in `Mcp-Session-Id` goes on every later request.
//! - HTTP+SSE, the older transport (`sse`): a GET opens an event stream whose first `endpoint`
//!   event names where to POST; replies arrive on the stream.
//! - stdio: the server is a command run on this host, one JSON-RPC message per line on its
//!   stdin and stdout (see `stdio.rs` for how it is run).
//!
//! Over HTTP every connection goes only to the addresses the SSRF guard checked (a resolver
//! that knows nothing else), redirects are not followed; every ping has a deadline and every
//! response is read up to a size cap.

mod http;
mod stdio;

use std::time::Duration;

use serde_json::{Value, json};

use super::ssrf::{self, Policy};

/// The protocol version the client asks for (servers answer with the one they speak).
pub const PROTOCOL_VERSION: &str = "2025-03-26";
/// Pages of `tools/list` followed before giving up (a server that pages forever).
const MAX_TOOL_PAGES: usize = 50;

/// Which transport a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    StreamableHttp,
    Sse,
    /// `uri` is a command line, run without a shell.
    Stdio,
}

/// How a ping runs.
#[derive(Debug, Clone, Copy)]
pub struct PingSettings {
    /// What the SSRF guard allows (HTTP transports).
    pub policy: Policy,
    /// Deadline of the whole ping.
    pub timeout: Duration,
    /// Most bytes read from any one response (or from a stream in all).
    pub max_response_bytes: usize,
}

/// What a successful ping learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingReport {
    pub tool_count: u32,
    /// `serverInfo.name` from the handshake, if the server gave one.
    pub server_name: Option<String>,
}

/// Why a ping failed; the message is what the server's `error_message` shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PingError {
    #[error("refused by the SSRF guard: the uri {0}")]
    Refused(String),
    #[error("no answer within {0} ms")]
    Timeout(u64),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("cannot start the command: {0}")]
    Spawn(String),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the server's response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the server broke the MCP protocol: {0}")]
    Protocol(String),
    #[error("the server returned JSON-RPC error {code}: {message}")]
    Rpc { code: i64, message: String },
}

/// Whether `command_line` can be run as a stdio server (split into a program and its
/// arguments without a shell); the error says why not.
pub fn check_command_line(command_line: &str) -> Result<(), String> {
    match stdio::split_command_line(command_line)?.is_empty() {
        true => Err("names no program".into()),
        false => Ok(()),
    }
}

fn protocol(message: impl Into<String>) -> PingError {
    PingError::Protocol(message.into())
}

/// Pings the MCP server at `uri` (a URL, or for stdio a command line).
pub async fn ping(
    transport: Transport,
    uri: &str,
    settings: PingSettings,
) -> Result<PingReport, PingError> {
    let millis = settings.timeout.as_millis() as u64;
    match tokio::time::timeout(settings.timeout, ping_inner(transport, uri, settings)).await {
        Ok(result) => result,
        Err(_) => Err(PingError::Timeout(millis)),
    }
}

async fn ping_inner(
    transport: Transport,
    uri: &str,
    settings: PingSettings,
) -> Result<PingReport, PingError> {
    if transport == Transport::Stdio {
        let mut session = stdio::Session::start(uri, settings)?;
        let result = handshake_and_list(&mut session).await;
        session.close().await;
        return result;
    }
    let checked = ssrf::resolve(uri, settings.policy)
        .await
        .map_err(|e| PingError::Refused(e.0))?;
    let mut session = http::Session::connect(transport, &checked, settings).await?;
    let result = handshake_and_list(&mut session).await;
    session.close().await;
    result
}

/// One JSON-RPC connection to a server, whatever carries it.
trait Rpc {
    /// Sends a request and returns its result.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value, PingError>;
    /// Sends a notification.
    async fn notify(&mut self, method: &str) -> Result<(), PingError>;
    /// The protocol version the server chose (HTTP sends it back on every request).
    fn negotiated(&mut self, version: &str);
}

async fn handshake_and_list(session: &mut impl Rpc) -> Result<PingReport, PingError> {
    let init = session
        .request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "agenthq", "version": crate::VERSION },
            }),
        )
        .await?;
    let version = init["protocolVersion"]
        .as_str()
        .ok_or_else(|| protocol("the initialize result has no protocolVersion"))?;
    session.negotiated(version);
    let server_name = init["serverInfo"]["name"].as_str().map(str::to_owned);
    let has_tools = init["capabilities"].get("tools").is_some();
    session.notify("notifications/initialized").await?;
    if !has_tools {
        return Ok(PingReport {
            tool_count: 0,
            server_name,
        });
    }
    let mut tool_count: u32 = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_TOOL_PAGES {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let page = session.request("tools/list", params).await?;
        let tools = page["tools"]
            .as_array()
            .ok_or_else(|| protocol("the tools/list result has no tools array"))?;
        tool_count = tool_count.saturating_add(tools.len() as u32);
        match page["nextCursor"].as_str() {
            Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
            _ => {
                return Ok(PingReport {
                    tool_count,
                    server_name,
                });
            }
        }
    }
    Err(protocol(format!(
        "tools/list returned more than {MAX_TOOL_PAGES} pages"
    )))
}

/// The result of the JSON-RPC response with `id` in `message` (a message or a batch), if
/// there is one.
fn find_response(message: &Value, id: u64) -> Option<Result<Value, PingError>> {
    let one = |m: &Value| -> Option<Result<Value, PingError>> {
        if m.get("id").and_then(Value::as_u64) != Some(id) {
            return None;
        }
        if let Some(error) = m.get("error") {
            return Some(Err(PingError::Rpc {
                code: error["code"].as_i64().unwrap_or(0),
                message: error["message"].as_str().unwrap_or("").to_owned(),
            }));
        }
        Some(
            m.get("result")
                .cloned()
                .ok_or_else(|| protocol(format!("the response to request {id} has no result"))),
        )
    };
    match message {
        Value::Array(batch) => batch.iter().find_map(one),
        single => one(single),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_found_by_id_in_a_message_or_a_batch() {
        let ok = json!({ "jsonrpc": "2.0", "id": 2, "result": { "tools": [] } });
        assert_eq!(find_response(&ok, 2), Some(Ok(json!({ "tools": [] }))));
        assert_eq!(find_response(&ok, 3), None);
        let batch = json!([
            { "jsonrpc": "2.0", "method": "notifications/message" },
            { "jsonrpc": "2.0", "id": 7, "error": { "code": -32601, "message": "nope" } },
        ]);
        assert_eq!(
            find_response(&batch, 7),
            Some(Err(PingError::Rpc {
                code: -32601,
                message: "nope".into()
            }))
        );
    }

    #[tokio::test]
    async fn a_ping_to_a_blocked_address_is_refused_before_any_connection() {
        let settings = PingSettings {
            policy: Policy::default(),
            timeout: Duration::from_secs(5),
            max_response_bytes: 1024,
        };
        let err = ping(
            Transport::StreamableHttp,
            "http://127.0.0.1:9/mcp",
            settings,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, PingError::Refused(_)), "{err}");
    }
}
