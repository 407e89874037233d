//! Sending a model call, shared by the wire formats: one POST per attempt under a whole-call
//! timeout (and an idle timeout between chunks of a stream), retries of what a second try can
//! fix, and the mapping of HTTP failures to [`ProviderError`]. A wire format only says how to
//! write the body and how to read the reply ([`WireFormat`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::web::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use zeroize::Zeroizing;

use super::sse::{SseEvent, SseParser};
use super::{Delta, DeltaSink, ModelReply, ModelRequest, ProviderError};
use crate::domain::provider::ProviderAccess;

/// A `retry-after` longer than this is cut to it: a run would rather fail than hang.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Provider messages in errors are cut to this many characters.
const MAX_MESSAGE_CHARS: usize = 500;
/// An error body is read up to this size (the message is at its start).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// How calls to one provider are made, from its `config` (keys and defaults in
/// [`CallSettings::from_config`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CallSettings {
    pub stream: bool,
    /// Bound on one attempt, from sending to the last byte.
    pub timeout: Duration,
    /// Bound on the wait for the next chunk of a stream.
    pub idle_timeout: Duration,
    pub max_retries: u32,
    /// The first backoff between retries; doubled each time, with jitter.
    pub backoff: Duration,
}

impl CallSettings {
    /// `stream` (default true), `timeout_secs` (120), `idle_timeout_secs` (60, at most
    /// `timeout_secs`), `max_retries` (3), `retry_backoff_ms` (500). Durations may be
    /// fractional; values of the wrong type fall back to the default.
    pub fn from_config(config: &Value) -> Self {
        let secs = |key: &str, default: f64| {
            let secs = config[key]
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0)
                .unwrap_or(default);
            Duration::from_secs_f64(secs.min(86_400.0))
        };
        let timeout = secs("timeout_secs", 120.0);
        Self {
            stream: config["stream"].as_bool().unwrap_or(true),
            timeout,
            idle_timeout: secs("idle_timeout_secs", 60.0).min(timeout),
            max_retries: config["max_retries"]
                .as_u64()
                .map_or(3, |n| n.min(10) as u32),
            backoff: Duration::from_millis(config["retry_backoff_ms"].as_u64().unwrap_or(500)),
        }
    }
}

/// What differs between wire formats.
pub trait WireFormat: Send + Sync + 'static {
    type Decoder: StreamDecoder;

    /// The request body.
    fn body(&self, request: &ModelRequest, stream: bool) -> Value;

    /// A whole (not streamed) reply.
    fn parse_reply(&self, body: &[u8], requested_model: &str) -> Result<ModelReply, ProviderError>;

    /// A reader of one streamed reply.
    fn decoder(&self, requested_model: &str) -> Self::Decoder;
}

/// Reads the events of one streamed reply.
pub trait StreamDecoder: Send {
    /// Takes the next event, sending text to `sink`; `Ok(true)` once the turn is complete.
    fn feed(&mut self, event: &SseEvent, sink: DeltaSink<'_>) -> Result<bool, ProviderError>;

    /// The turn, once complete; an error if the stream ended before.
    fn finish(self) -> Result<ModelReply, ProviderError>;
}

/// A model client: an endpoint and the wire format it speaks (`AnthropicClient`,
/// `OpenAiClient`).
pub struct WireClient<W> {
    /// An error when the provider's settings cannot make a request (told at each call).
    pub(super) endpoint: Result<Endpoint, String>,
    pub(super) wire: W,
}

impl<W: WireFormat> super::ModelClient for WireClient<W> {
    fn turn<'a>(
        &'a self,
        request: &'a ModelRequest,
        sink: DeltaSink<'a>,
    ) -> futures_util::future::BoxFuture<'a, Result<super::ModelReply, ProviderError>> {
        Box::pin(async move {
            let endpoint = self
                .endpoint
                .as_ref()
                .map_err(|e| ProviderError::Misconfigured(e.clone()))?;
            endpoint.turn(&self.wire, request, sink).await
        })
    }
}

/// Where and how to send: the URL, the headers (key included) and the settings.
pub struct Endpoint {
    http: reqwest::Client,
    url: String,
    headers: HeaderMap,
    /// Only to scrub it from messages a provider echoes back.
    api_key: Option<Zeroizing<String>>,
    settings: CallSettings,
}

impl Endpoint {
    /// `path` is appended to the base URL (the provider's or `default_base`), whose trailing
    /// slashes are dropped. The key is sent by `auth_header` (e.g. `x-api-key`, or
    /// `authorization` with `Bearer `) when the provider has one.
    pub fn new(
        access: &ProviderAccess,
        http: reqwest::Client,
        default_base: &str,
        path: &str,
        auth: impl Fn(&str) -> (HeaderName, String),
        extra_headers: &[(HeaderName, String)],
    ) -> Result<Self, String> {
        let base = access
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .unwrap_or(default_base);
        let url = format!("{}{path}", base.trim_end_matches('/'));
        reqwest::Url::parse(&url)
            .map_err(|e| format!("the provider's base URL is not a URL ({e}): {base}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in extra_headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("the header {name} has a value that cannot be sent"))?;
            headers.insert(name.clone(), value);
        }
        let api_key = access.api_key.clone().filter(|k| !k.is_empty());
        if let Some(key) = &api_key {
            let (name, value) = auth(key);
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| "the API key contains characters a header cannot carry".to_owned())?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(Self {
            http,
            url,
            headers,
            api_key,
            settings: CallSettings::from_config(&access.config),
        })
    }

    pub fn has_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// One turn: attempts until one succeeds, the error is final, or retries run out.
    /// NOTE: once text has reached `sink` nothing is retried: the caller already showed it,
    /// and a second attempt would show it twice.
    pub async fn turn<W: WireFormat>(
        &self,
        wire: &W,
        request: &ModelRequest,
        sink: DeltaSink<'_>,
    ) -> Result<ModelReply, ProviderError> {
        let settings = &self.settings;
        // Invariant: a `Value` always serialises (its map keys are strings).
        let body = Bytes::from(
            serde_json::to_vec(&wire.body(request, settings.stream)).expect("JSON value"),
        );
        let streamed_some = AtomicBool::new(false);
        let tracking_sink = |delta: Delta| {
            streamed_some.store(true, Ordering::Relaxed);
            sink(delta);
        };
        let mut retries = 0;
        loop {
            let attempt = self.attempt(wire, body.clone(), &request.model, &tracking_sink);
            let failure = match tokio::time::timeout(settings.timeout, attempt).await {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(failure)) => failure,
                Err(_) => Failure::from(ProviderError::Timeout(settings.timeout)),
            };
            if retries >= settings.max_retries
                || !failure.error.is_retryable()
                || streamed_some.load(Ordering::Relaxed)
            {
                return Err(self.scrub_error(failure.error));
            }
            let wait = failure
                .retry_after
                .map(|d| d.min(MAX_RETRY_AFTER))
                .unwrap_or_else(|| backoff(settings.backoff, retries));
            tracing::warn!(
                url = %self.url,
                error = %self.scrub_error(failure.error.clone()),
                retry_in_ms = wait.as_millis() as u64,
                "model call failed; retrying"
            );
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    async fn attempt<W: WireFormat>(
        &self,
        wire: &W,
        body: Bytes,
        model: &str,
        sink: DeltaSink<'_>,
    ) -> Result<ModelReply, Failure> {
        let mut response = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            let body = read_capped(&mut response, MAX_ERROR_BODY).await;
            return Err(Failure {
                error: status_error(status.as_u16(), retry_after, &self.scrub(&body)),
                retry_after,
            });
        }
        let is_event_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_event_stream {
            // Also the reply of a server that ignores `stream: true`. The sink gets the whole
            // text at once, as `ModelClient::turn` promises.
            let body = response
                .bytes()
                .await
                .map_err(|e| self.transport_error(e))?;
            let reply = wire.parse_reply(&body, model)?;
            let text = reply_text(&reply);
            if !text.is_empty() {
                sink(Delta::Text(text));
            }
            return Ok(reply);
        }
        let idle = self.settings.idle_timeout;
        let mut parser = SseParser::default();
        let mut decoder = wire.decoder(model);
        let mut complete = false;
        while !complete {
            let chunk = tokio::time::timeout(idle, response.chunk())
                .await
                .map_err(|_| ProviderError::Timeout(idle))?
                .map_err(|e| self.transport_error(e))?;
            let Some(chunk) = chunk else {
                if let Some(event) = parser.finish() {
                    decoder.feed(&event, sink)?;
                }
                break;
            };
            for event in parser.push(&chunk) {
                if decoder.feed(&event, sink)? {
                    complete = true;
                    break;
                }
            }
        }
        if complete {
            // Read to the end so the connection goes back to the pool; the turn is complete
            // whatever happens here, so a server that holds the stream open is not waited on.
            let drain = async { while let Ok(Some(_)) = response.chunk().await {} };
            let _ = tokio::time::timeout(Duration::from_millis(500).min(idle), drain).await;
        }
        Ok(decoder.finish()?)
    }

    /// A reqwest failure, without the URL (it is logged apart) and without the key.
    fn transport_error(&self, e: reqwest::Error) -> Failure {
        if e.is_timeout() {
            return ProviderError::Timeout(self.settings.timeout).into();
        }
        let e = e.without_url();
        // The chain says what actually failed ("tcp connect error: Connection refused").
        let mut message = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message.push_str(": ");
            message.push_str(&c.to_string());
            cause = c.source();
        }
        ProviderError::Transport(self.scrub(message.as_bytes())).into()
    }

    /// `error` with the key taken out of its message, wherever the message came from.
    fn scrub_error(&self, error: ProviderError) -> ProviderError {
        let Some(key) = &self.api_key else {
            return error;
        };
        let scrub = |m: String| m.replace(key.as_str(), "[redacted]");
        match error {
            ProviderError::RateLimited {
                retry_after,
                message,
            } => ProviderError::RateLimited {
                retry_after,
                message: scrub(message),
            },
            ProviderError::Unavailable { status, message } => ProviderError::Unavailable {
                status,
                message: scrub(message),
            },
            ProviderError::Auth { status, message } => ProviderError::Auth {
                status,
                message: scrub(message),
            },
            ProviderError::Rejected { status, message } => ProviderError::Rejected {
                status,
                message: scrub(message),
            },
            ProviderError::Malformed(m) => ProviderError::Malformed(scrub(m)),
            ProviderError::Transport(m) => ProviderError::Transport(scrub(m)),
            ProviderError::Misconfigured(m) => ProviderError::Misconfigured(scrub(m)),
            ProviderError::Timeout(d) => ProviderError::Timeout(d),
        }
    }

    /// Text of the provider for an error: lossy UTF-8, the key replaced, cut to length.
    fn scrub(&self, text: &[u8]) -> String {
        let mut text = String::from_utf8_lossy(text).into_owned();
        if let Some(key) = &self.api_key {
            text = text.replace(key.as_str(), "[redacted]");
        }
        text
    }
}

/// A failed attempt, with the wait the provider asked for before the next.
struct Failure {
    error: ProviderError,
    retry_after: Option<Duration>,
}

impl From<ProviderError> for Failure {
    fn from(error: ProviderError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

/// The wait before retry number `retries + 1`: `base` doubled each time, capped, with jitter
/// (a random point in its upper half) so that clients failing together do not retry together.
fn backoff(base: Duration, retries: u32) -> Duration {
    let full = base.saturating_mul(1 << retries.min(16)).min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(rand::random_range(0.0..=1.0))
}

/// `retry-after` in seconds or as an HTTP date, or OpenAI's `retry-after-ms`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The body of a failed reply, up to `cap` bytes (errors are short; a proxy's HTML page
/// need not be read whole).
async fn read_capped(response: &mut reqwest::Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < cap {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(cap);
    body
}

/// The error of a non-2xx status, with the provider's message from its error body.
pub fn status_error(status: u16, retry_after: Option<Duration>, body: &str) -> ProviderError {
    let message = provider_message(body).unwrap_or_else(|| {
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no message")
            .to_owned()
    });
    match status {
        401 | 403 => ProviderError::Auth { status, message },
        429 => ProviderError::RateLimited {
            retry_after,
            message,
        },
        // 408 (the server timed out waiting for the request) is worth another try too.
        408 | 500..=599 => ProviderError::Unavailable { status, message },
        400..=499 => ProviderError::Rejected { status, message },
        _ => ProviderError::Malformed(format!("unexpected HTTP status {status}: {message}")),
    }
}

/// The message of an error body: `{"error":{"type","message"}}` (Anthropic, OpenAI),
/// `{"error":"…"}` (Ollama), `{"message":"…"}`, else the body itself; cut to length.
pub fn provider_message(body: &str) -> Option<String> {
    let message = match serde_json::from_str::<Value>(body) {
        Ok(json) => {
            let error = &json["error"];
            match (error["type"].as_str(), error["message"].as_str()) {
                (Some(kind), Some(message)) => Some(format!("{kind}: {message}")),
                (None, Some(message)) => Some(message.to_owned()),
                _ => error
                    .as_str()
                    .or_else(|| json["message"].as_str())
                    .map(str::to_owned),
            }
        }
        Err(_) => None,
    };
    let message = message.unwrap_or_else(|| body.trim().to_owned());
    (!message.is_empty()).then(|| truncate(message, MAX_MESSAGE_CHARS))
}

/// `text` cut to at most `max` characters, marked with `…` when cut.
pub fn truncate(mut text: String, max: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
        text.push('…');
    }
    text
}

fn reply_text(reply: &ModelReply) -> String {
    reply
        .content
        .iter()
        .filter_map(|b| match b {
            super::Block::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[path = "wire_tests.rs"]
pub(crate) mod wire_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_default_when_the_config_says_nothing() {
        let settings = CallSettings::from_config(&json!({}));
        assert_eq!(
            settings,
            CallSettings {
                stream: true,
                timeout: Duration::from_secs(120),
                idle_timeout: Duration::from_secs(60),
                max_retries: 3,
                backoff: Duration::from_millis(500),
            }
        );
        let settings = CallSettings::from_config(
            &json!({"stream": false, "timeout_secs": 2.5, "max_retries": 0, "timeout": "x"}),
        );
        assert!(!settings.stream);
        assert_eq!(settings.timeout, Duration::from_millis(2500));
        assert_eq!(settings.idle_timeout, Duration::from_millis(2500));
        assert_eq!(settings.max_retries, 0);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_millis(500);
        for retries in 0..4 {
            let full = base * (1 << retries);
            let wait = backoff(base, retries);
            assert!(
                wait >= full / 2 && wait <= full,
                "{wait:?} for retry {retries}"
            );
        }
        assert!(backoff(base, 40) <= MAX_BACKOFF);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after", HeaderValue::from_static("100000"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        let soon = (chrono::Utc::now() + chrono::TimeDelta::seconds(30)).to_rfc2822();
        let soon = soon.replace("+0000", "GMT");
        headers.insert("retry-after", HeaderValue::from_str(&soon).unwrap());
        let wait = retry_after(&headers).expect("a date");
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn statuses_map_to_errors_with_the_providers_message() {
        let anthropic =
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            status_error(529, None, anthropic),
            ProviderError::Unavailable {
                status: 529,
                message: "overloaded_error: Overloaded".into()
            }
        );
        let openai = r#"{"error":{"message":"Invalid key","type":null}}"#;
        assert!(matches!(
            status_error(401, None, openai),
            ProviderError::Auth { status: 401, message } if message == "Invalid key"
        ));
        assert!(matches!(
            status_error(404, None, r#"{"error":"model not found"}"#),
            ProviderError::Rejected { status: 404, message } if message == "model not found"
        ));
        assert!(matches!(
            status_error(502, None, ""),
            ProviderError::Unavailable { status: 502, message } if message == "Bad Gateway"
        ));
        assert!(status_error(408, None, "").is_retryable());
        assert!(!status_error(400, None, "").is_retryable());
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let message = provider_message(&"é".repeat(2000)).unwrap();
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(message.ends_with('…'));
    }
}
