//! A small MCP client that "pings" a configured server: it connects, runs the `initialize`
//! handshake and lists the server's tools, and reports how many there are, or why it failed.
//!
//! Two transports are spoken (MCP specification 2025-03-26 and later):
//! - Streamable HTTP (`http`): every JSON-RPC message is a POST to the server's one URL; the
//!   reply is `application/json` or a `text/event-stream` carrying it; the session id the
//!   server hands out in `Mcp-Session-Id` goes on every later request.
//! - HTTP+SSE, the older transport (`sse`): a GET opens an event stream whose first `endpoint`
//!   event names where to POST; replies arrive on the stream.
//!
//! Every connection goes only to the addresses the SSRF guard checked (a resolver that knows
//! nothing else), redirects are not followed, the whole ping has a deadline and every response
//! is read up to a size cap.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use url::Url;

use super::sse::{SseEvent, SseParser};
use super::ssrf::{self, CheckedUrl, Policy};

/// The protocol version the client asks for (servers answer with the one they speak).
pub const PROTOCOL_VERSION: &str = "2025-03-26";
/// Pages of `tools/list` followed before giving up (a server that pages forever).
const MAX_TOOL_PAGES: usize = 50;
const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";

/// Which transport a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    StreamableHttp,
    Sse,
}

/// How a ping runs.
#[derive(Debug, Clone, Copy)]
pub struct PingSettings {
    pub policy: Policy,
    /// Deadline of the whole ping.
    pub timeout: Duration,
    /// Most bytes read from any one response (or from the event stream in all).
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
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the server's response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the server broke the MCP protocol: {0}")]
    Protocol(String),
    #[error("the server returned JSON-RPC error {code}: {message}")]
    Rpc { code: i64, message: String },
}

fn protocol(message: impl Into<String>) -> PingError {
    PingError::Protocol(message.into())
}

/// Pings the MCP server at `uri`.
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
    let checked = ssrf::resolve(uri, settings.policy)
        .await
        .map_err(|e| PingError::Refused(e.0))?;
    let client = client_for(&checked, settings.timeout)?;
    let mut session = match transport {
        Transport::StreamableHttp => Session::streamable(client, checked.url, settings),
        Transport::Sse => Session::sse(client, &checked, settings).await?,
    };
    let result = handshake_and_list(&mut session).await;
    session.close().await;
    result
}

async fn handshake_and_list(session: &mut Session) -> Result<PingReport, PingError> {
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
    session.protocol_version = HeaderValue::from_str(version).ok();
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

/// A resolver that knows only the checked host's checked addresses: the client cannot reach
/// anything else, whatever DNS says by the time it connects.
struct PinnedResolver {
    host: String,
    addrs: Vec<SocketAddr>,
}

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let wanted = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let result: Result<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>> =
            if wanted == self.host {
                Ok(Box::new(self.addrs.clone().into_iter()))
            } else {
                Err(format!("{wanted} was not checked by the SSRF guard").into())
            };
        Box::pin(std::future::ready(result))
    }
}

fn client_for(checked: &CheckedUrl, timeout: Duration) -> Result<Client, PingError> {
    Client::builder()
        .dns_resolver(Arc::new(PinnedResolver {
            host: checked.host.clone(),
            addrs: checked.addrs.clone(),
        }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(timeout)
        .user_agent(concat!("agenthq/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| PingError::Connect(describe(&e)))
}

/// A reqwest error with its causes ("connection refused" sits at the bottom of the chain).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads a whole body, refusing more than `max` bytes.
async fn read_capped(res: &mut Response, max: usize) -> Result<Vec<u8>, PingError> {
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| PingError::Connect(describe(&e)))?
    {
        if body.len() + chunk.len() > max {
            return Err(PingError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Server-sent events from a response, with a cap on the bytes read in all.
struct EventStream {
    res: Response,
    parser: SseParser,
    ready: VecDeque<SseEvent>,
    read: usize,
    max: usize,
}

impl EventStream {
    fn new(res: Response, max: usize) -> Self {
        Self {
            res,
            parser: SseParser::default(),
            ready: VecDeque::new(),
            read: 0,
            max,
        }
    }

    /// The next event; `None` when the stream ends.
    async fn next(&mut self) -> Result<Option<SseEvent>, PingError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            let Some(chunk) = self
                .res
                .chunk()
                .await
                .map_err(|e| PingError::Connect(describe(&e)))?
            else {
                return Ok(None);
            };
            self.read += chunk.len();
            if self.read > self.max {
                return Err(PingError::TooLarge(self.max));
            }
            self.ready.extend(self.parser.feed(&chunk));
        }
    }

    /// Reads events until the JSON-RPC response with `id`; other messages (server requests,
    /// notifications, keep-alives) are skipped.
    async fn response_to(&mut self, id: u64) -> Result<Value, PingError> {
        while let Some(event) = self.next().await? {
            if event.event != "message" {
                continue;
            }
            let message: Value = serde_json::from_str(&event.data)
                .map_err(|e| protocol(format!("an event is not JSON ({e})")))?;
            if let Some(result) = find_response(&message, id) {
                return result;
            }
        }
        Err(protocol(format!(
            "the event stream ended before the response to request {id}"
        )))
    }
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

/// One connection to a server, of either transport.
struct Session {
    client: Client,
    /// Where JSON-RPC messages are POSTed.
    endpoint: Url,
    settings: PingSettings,
    /// Streamable HTTP: the session the server assigned, sent back on every request.
    session_id: Option<HeaderValue>,
    /// The negotiated protocol version, sent back on every request after `initialize`.
    protocol_version: Option<HeaderValue>,
    /// HTTP+SSE: the open event stream replies arrive on.
    stream: Option<EventStream>,
    next_id: u64,
}

impl Session {
    fn streamable(client: Client, endpoint: Url, settings: PingSettings) -> Self {
        Session {
            client,
            endpoint,
            settings,
            session_id: None,
            protocol_version: None,
            stream: None,
            next_id: 1,
        }
    }

    /// Opens the event stream and waits for the `endpoint` event. The endpoint must be on
    /// the same origin as the stream: it is reached through the same checked addresses.
    async fn sse(
        client: Client,
        checked: &CheckedUrl,
        settings: PingSettings,
    ) -> Result<Self, PingError> {
        let res = client
            .get(checked.url.clone())
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| PingError::Connect(describe(&e)))?;
        if !res.status().is_success() {
            return Err(PingError::Status(res.status().as_u16()));
        }
        let mut stream = EventStream::new(res, settings.max_response_bytes);
        let endpoint = loop {
            match stream.next().await? {
                Some(e) if e.event == "endpoint" => break e.data,
                Some(_) => continue,
                None => return Err(protocol("the event stream ended without an endpoint event")),
            }
        };
        let endpoint = checked
            .url
            .join(endpoint.trim())
            .map_err(|e| protocol(format!("the endpoint event is not a URL ({e})")))?;
        if endpoint.origin() != checked.url.origin() {
            return Err(protocol(
                "the endpoint event names another origin than the event stream",
            ));
        }
        let mut session = Session::streamable(client, endpoint, settings);
        session.stream = Some(stream);
        Ok(session)
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .json(body);
        if let Some(id) = &self.session_id {
            req = req.header(SESSION_HEADER, id.clone());
        }
        if let Some(version) = &self.protocol_version {
            req = req.header(PROTOCOL_HEADER, version.clone());
        }
        req
    }

    async fn send(&mut self, body: &Value) -> Result<Response, PingError> {
        let res = self
            .post(body)
            .send()
            .await
            .map_err(|e| PingError::Connect(describe(&e)))?;
        if !res.status().is_success() {
            return Err(PingError::Status(res.status().as_u16()));
        }
        if self.session_id.is_none()
            && let Some(id) = res.headers().get(SESSION_HEADER)
        {
            self.session_id = Some(id.clone());
        }
        Ok(res)
    }

    /// Sends a request and returns its result.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value, PingError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let mut res = self.send(&body).await?;
        let max = self.settings.max_response_bytes;
        if let Some(stream) = &mut self.stream {
            // HTTP+SSE: the POST is only accepted; the reply comes on the stream.
            read_capped(&mut res, max).await?;
            return stream.response_to(id).await;
        }
        let content_type = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            return EventStream::new(res, max).response_to(id).await;
        }
        if !content_type.starts_with("application/json") {
            return Err(protocol(format!(
                "the reply to {method} has content type '{content_type}', not JSON or an event stream"
            )));
        }
        let body = read_capped(&mut res, max).await?;
        let message: Value = serde_json::from_slice(&body)
            .map_err(|e| protocol(format!("the reply to {method} is not JSON ({e})")))?;
        find_response(&message, id).unwrap_or_else(|| {
            Err(protocol(format!(
                "the reply to {method} is not its response"
            )))
        })
    }

    /// Sends a notification (no reply expected beyond an accepting status).
    async fn notify(&mut self, method: &str) -> Result<(), PingError> {
        let body = json!({ "jsonrpc": "2.0", "method": method });
        let mut res = self.send(&body).await?;
        if res.status() == StatusCode::ACCEPTED || res.status() == StatusCode::NO_CONTENT {
            return Ok(());
        }
        read_capped(&mut res, self.settings.max_response_bytes)
            .await
            .map(|_| ())
    }

    /// Ends a Streamable HTTP session politely (best effort: a server may not support it).
    async fn close(self) {
        if self.stream.is_some() {
            return; // HTTP+SSE: dropping the stream ends the session
        }
        if let Some(id) = &self.session_id {
            let _ = self
                .client
                .delete(self.endpoint.clone())
                .header(SESSION_HEADER, id.clone())
                .send()
                .await;
        }
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
