//! The two HTTP transports: Streamable HTTP and the older HTTP+SSE.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use url::Url;

use super::{PingError, PingSettings, Rpc, Transport, find_response, protocol};
use crate::net::sse::{SseEvent, SseParser};
use crate::net::ssrf::CheckedUrl;

const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";

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

/// One connection to a server, of either transport.
pub(super) struct Session {
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
    /// Connects to a checked URL: Streamable HTTP connects lazily (on the first POST); HTTP+SSE
    /// opens its event stream now.
    pub(super) async fn connect(
        transport: Transport,
        checked: &CheckedUrl,
        settings: PingSettings,
    ) -> Result<Self, PingError> {
        let client = client_for(checked, settings.timeout)?;
        match transport {
            Transport::Sse => Session::sse(client, checked, settings).await,
            _ => Ok(Session::streamable(client, checked.url.clone(), settings)),
        }
    }

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

    /// Ends a Streamable HTTP session politely (best effort: a server may not support it).
    pub(super) async fn close(self) {
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

impl Rpc for Session {
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

    fn negotiated(&mut self, version: &str) {
        self.protocol_version = HeaderValue::from_str(version).ok();
    }
}
