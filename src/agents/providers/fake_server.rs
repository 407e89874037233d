//! A fake LLM server on loopback speaking both wire formats, for tests and benchmarks: the
//! Anthropic Messages API at `/v1/messages` and Chat Completions at `/v1/chat/completions`,
//! replying whole or as a stream of the real event shapes when the request says
//! `stream: true`. What it answers is scripted by a responder that sees each request in a
//! wire-neutral form ([`FakeRequest`]) and returns a [`FakeReply`].
//!
//! ```no_run
//! # async fn demo() {
//! use agenthq::agents::providers::fake_server::{Api, FakeLlm, FakeReply};
//! let fake = FakeLlm::scripted(vec![
//!     FakeReply::status(429).retry_after_secs(1),
//!     FakeReply::tool_call("list_tasks", serde_json::json!({})),
//!     FakeReply::text("done").with_usage(120, 8),
//! ]);
//! let access = fake.access(Api::Anthropic); // base URL and a key, ready to `connect`
//! # }
//! ```

mod render;
mod reply;
mod request;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use zeroize::Zeroizing;

pub use reply::{FakeArguments, FakeReply, FakeReplyKind, FakeToolCall, FakeTurn};
pub use request::FakeRequest;

use crate::domain::provider::{ProviderAccess, ProviderKind};

/// The API key [`FakeLlm::access`] puts in the provider (the server accepts any key).
pub const FAKE_API_KEY: &str = "sk-fake-0123456789";

/// Which wire format a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Anthropic,
    OpenAi,
}

type Responder = dyn Fn(&FakeRequest) -> FakeReply + Send + Sync;

struct Shared {
    responder: Box<Responder>,
    recording: AtomicBool,
    requests: Mutex<Vec<FakeRequest>>,
    count: AtomicUsize,
    /// Numbers the ids of messages and tool calls.
    next_id: AtomicU64,
}

/// The running server; it stops when dropped (or by [`FakeLlm::stop`]).
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl FakeLlm {
    /// Starts the server on a free loopback port, answering each request with
    /// `responder`. Must be called inside a Tokio runtime (any flavour), which runs it.
    pub fn start(responder: impl Fn(&FakeRequest) -> FakeReply + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            responder: Box::new(responder),
            recording: AtomicBool::new(true),
            requests: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        });
        // Invariant: binding port 0 of loopback only fails if the machine has no loopback.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let state = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                // Conversations grow: the default 256 KiB would refuse long runs.
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route(
                    "/v1/messages",
                    web::post().to(|s, r, b| answer(s, r, b, Api::Anthropic)),
                )
                .route(
                    "/v1/chat/completions",
                    web::post().to(|s, r, b| answer(s, r, b, Api::OpenAi)),
                )
                .default_service(web::to(|| async {
                    HttpResponse::NotFound().json(serde_json::json!({
                        "error": { "type": "not_found_error", "message": "no such endpoint" },
                    }))
                }))
        })
        // One worker answers thousands of calls a second; replies never block it (a delay
        // is an async sleep).
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .expect("listen on a bound listener")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            addr,
            shared,
            handle,
        }
    }

    /// Answers with `replies` in order, then with `fallback` to every later request.
    pub fn scripted_with_fallback(replies: Vec<FakeReply>, fallback: FakeReply) -> Self {
        let queue = Mutex::new(std::collections::VecDeque::from(replies));
        Self::start(move |_| {
            let next = queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop_front();
            next.unwrap_or_else(|| fallback.clone())
        })
    }

    /// Answers with `replies` in order, then with the text "(no more scripted replies)".
    pub fn scripted(replies: Vec<FakeReply>) -> Self {
        Self::scripted_with_fallback(replies, FakeReply::text("(no more scripted replies)"))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a provider of `api`'s kind is configured with.
    pub fn base_url(&self, api: Api) -> String {
        match api {
            Api::Anthropic => format!("http://{}", self.addr),
            Api::OpenAi => format!("http://{}/v1", self.addr),
        }
    }

    /// A provider pointing at this server, with [`FAKE_API_KEY`], no retry backoff to speak
    /// of and default settings otherwise; change `config` for more.
    pub fn access(&self, api: Api) -> ProviderAccess {
        let kind = match api {
            Api::Anthropic => ProviderKind::Anthropic,
            Api::OpenAi => ProviderKind::Openai,
        };
        ProviderAccess {
            id: format!("fake-{}", kind.as_str()),
            name: format!("fake {}", kind.as_str()),
            kind,
            base_url: Some(self.base_url(api)),
            api_key: Some(Zeroizing::new(FAKE_API_KEY.to_owned())),
            default_model: Some("fake-model".to_owned()),
            prices: Default::default(),
            config: serde_json::json!({ "retry_backoff_ms": 10 }),
        }
    }

    /// Every request received so far, in order (unless recording was turned off).
    pub fn requests(&self) -> Vec<FakeRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many requests were answered or are being answered.
    pub fn request_count(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// Turns the record of requests on or off (benchmarks keep memory flat with it off);
    /// the count goes on either way.
    pub fn record_requests(&self, on: bool) {
        self.shared.recording.store(on, Ordering::SeqCst);
    }

    /// Stops the server, waiting until it has.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        // The stop command is sent at once; awaiting its completion is optional.
        drop(self.handle.stop(false));
    }
}

async fn answer(
    shared: web::Data<Shared>,
    http: HttpRequest,
    body: web::Bytes,
    api: Api,
) -> HttpResponse {
    shared.count.fetch_add(1, Ordering::SeqCst);
    let request = match FakeRequest::parse(api, &http, &body) {
        Ok(request) => request,
        Err(message) => return render::error_response(api, 400, &message),
    };
    let reply = (shared.responder)(&request);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let response = render::render(api, &request, &reply, id);
    if shared.recording.load(Ordering::SeqCst) {
        shared
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(request);
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if let Some(gate) = reply.until {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let ready = gate.0.clone();
            let open = tokio::task::spawn_blocking(move || ready())
                .await
                .unwrap_or(true);
            if open || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    response
}
