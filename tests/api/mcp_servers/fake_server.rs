//! A fake MCP server on loopback that speaks the real wire formats: Streamable HTTP (replies
//! as JSON or as an event stream, with a session id it checks) and the older HTTP+SSE
//! transport. It lists three tools over two pages.

use std::net::TcpListener;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const SESSION: &str = "sess-42";

#[derive(Default)]
pub struct Fake {
    /// Answer every request with HTTP 500.
    pub failing: AtomicBool,
    /// Answer requests only after a long delay (the server being slow, not the test waiting).
    pub slow: AtomicBool,
    pub requests: AtomicUsize,
    pub initialized: AtomicBool,
    pub sessions_closed: AtomicUsize,
    /// HTTP+SSE: where replies to POSTed messages go (the open event stream).
    stream: Mutex<Option<mpsc::UnboundedSender<Bytes>>>,
}

/// The JSON-RPC reply to `message`, or the HTTP status to refuse it with.
fn answer(fake: &Fake, message: &Value, session: Option<&str>) -> Result<Option<Value>, u16> {
    let method = message["method"].as_str().unwrap_or_default();
    let id = message.get("id").cloned();
    if method == "initialize" {
        let params = &message["params"];
        if params["protocolVersion"].as_str().is_none() || params["clientInfo"]["name"] != "agenthq"
        {
            return Err(400);
        }
        return Ok(Some(json!({
            "jsonrpc": "2.0", "id": id,
            "result": {
                "protocolVersion": "2025-03-26",
                "capabilities": { "tools": { "listChanged": false } },
                "serverInfo": { "name": "fake-mcp", "version": "1.0.0" },
            },
        })));
    }
    if session.is_some_and(|s| s != SESSION) {
        return Err(404);
    }
    match method {
        "notifications/initialized" => {
            fake.initialized.store(true, Ordering::SeqCst);
            Ok(None)
        }
        "tools/list" if fake.initialized.load(Ordering::SeqCst) => {
            let tool = |name: &str| json!({ "name": name, "inputSchema": { "type": "object" } });
            let result = match message["params"]["cursor"].as_str() {
                None => json!({ "tools": [tool("read"), tool("write")], "nextCursor": "page-2" }),
                Some("page-2") => json!({ "tools": [tool("search")] }),
                Some(_) => {
                    return Ok(Some(json!({
                        "jsonrpc": "2.0", "id": id,
                        "error": { "code": -32602, "message": "bad cursor" },
                    })));
                }
            };
            Ok(Some(
                json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            ))
        }
        _ => Ok(Some(json!({
            "jsonrpc": "2.0", "id": id,
            "error": { "code": -32601, "message": "method not found" },
        }))),
    }
}

/// Streamable HTTP: replies as JSON, or (`sse_replies`) as an event stream.
async fn streamable(
    fake: web::Data<Fake>,
    req: HttpRequest,
    body: web::Json<Value>,
    sse_replies: bool,
) -> HttpResponse {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    if fake.slow.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    }
    if fake.failing.load(Ordering::SeqCst) {
        return HttpResponse::InternalServerError().body("boom");
    }
    let is_initialize = body["method"] == "initialize";
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok());
    if !is_initialize && session.is_none() {
        return HttpResponse::BadRequest().body("missing Mcp-Session-Id");
    }
    match answer(&fake, &body, session) {
        Err(status) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
                .finish()
        }
        Ok(None) => HttpResponse::Accepted().finish(),
        Ok(Some(reply)) => {
            let mut res = HttpResponse::Ok();
            if is_initialize {
                res.insert_header(("Mcp-Session-Id", SESSION));
            }
            if sse_replies {
                res.content_type("text/event-stream").body(format!(
                    ": keep-alive\n\nevent: message\nid: 1\ndata: {reply}\n\n"
                ))
            } else {
                res.json(reply)
            }
        }
    }
}

/// HTTP+SSE: the event stream; its first event names where to POST.
async fn sse_stream(fake: web::Data<Fake>) -> HttpResponse {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let _ = tx.send(Bytes::from_static(
        b"event: endpoint\ndata: /messages?sessionId=abc\n\n",
    ));
    *fake.stream.lock().expect("lock") = Some(tx);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, actix_web::Error>(chunk), rx))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(body)
}

/// HTTP+SSE: a POSTed message; the reply goes on the stream.
async fn sse_message(fake: web::Data<Fake>, body: web::Json<Value>) -> HttpResponse {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    match answer(&fake, &body, None) {
        Err(status) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
                .finish()
        }
        Ok(reply) => {
            if let Some(reply) = reply
                && let Some(tx) = fake.stream.lock().expect("lock").as_ref()
            {
                let _ = tx.send(Bytes::from(format!("event: message\ndata: {reply}\n\n")));
            }
            HttpResponse::Accepted().finish()
        }
    }
}

/// Starts the fake server on a free loopback port; returns its state and base URL.
pub fn start_fake() -> (web::Data<Fake>, String) {
    let fake = web::Data::new(Fake::default());
    let listener = TcpListener::bind("127.0.0.1:0").expect("port");
    let base = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let state = fake.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/mcp", web::post().to(|f, r, b| streamable(f, r, b, false)))
            .route(
                "/mcp",
                web::delete().to(|f: web::Data<Fake>| async move {
                    f.sessions_closed.fetch_add(1, Ordering::SeqCst);
                    HttpResponse::Ok().finish()
                }),
            )
            .route(
                "/mcp-sse-replies",
                web::post().to(|f, r, b| streamable(f, r, b, true)),
            )
            .route(
                "/redirect",
                web::post().to(|| async {
                    HttpResponse::TemporaryRedirect()
                        .insert_header(("Location", "http://169.254.169.254/latest/meta-data/"))
                        .finish()
                }),
            )
            .route("/sse", web::get().to(sse_stream))
            .route(
                "/sse-elsewhere",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/event-stream")
                        .body("event: endpoint\ndata: http://169.254.169.254/messages\n\n")
                }),
            )
            .route("/messages", web::post().to(sse_message))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    (fake, base)
}
