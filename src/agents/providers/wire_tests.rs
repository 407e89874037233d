//! What both wire formats must do, checked for each, streamed and whole, against the fake
//! server over real loopback HTTP; and helpers for the tests of each format.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::agents::providers::fake_server::{Api, FAKE_API_KEY, FakeLlm, FakeReply};
use crate::agents::providers::{
    Block, Delta, Message, ModelReply, ModelRequest, ProviderError, RunFacts, StopReason,
    ToolInput, ToolSpec, Usage, connect,
};

/// Every combination: each API, streamed and whole.
pub(crate) const MODES: [(Api, bool); 4] = [
    (Api::Anthropic, true),
    (Api::Anthropic, false),
    (Api::OpenAi, true),
    (Api::OpenAi, false),
];

pub(crate) fn request(messages: Vec<Message>) -> ModelRequest {
    ModelRequest {
        model: "fake-model".into(),
        system: "You are a test.".into(),
        messages,
        tools: Arc::from(vec![ToolSpec {
            name: "list_tasks".into(),
            description: "Lists the tasks.".into(),
            input_schema: json!({ "type": "object", "properties": { "status": { "type": "string" } } }),
        }]),
        max_tokens: 1024,
        facts: Arc::new(RunFacts::default()),
    }
}

/// Calls `fake` through `api`, with `config` merged over the fake's defaults; returns the
/// result and the text deltas the sink received.
pub(crate) async fn call_with(
    fake: &FakeLlm,
    api: Api,
    config: Value,
    request: &ModelRequest,
) -> (Result<ModelReply, ProviderError>, Vec<String>) {
    let mut access = fake.access(api);
    if let (Some(base), Value::Object(extra)) = (access.config.as_object_mut(), config) {
        base.extend(extra);
    }
    let client = connect(&access, &reqwest::Client::new());
    let deltas = Mutex::new(Vec::new());
    let sink = |delta: Delta| {
        let Delta::Text(text) = delta;
        deltas.lock().unwrap().push(text);
    };
    let result = client.turn(request, &sink).await;
    (result, deltas.into_inner().unwrap())
}

pub(crate) async fn call(
    fake: &FakeLlm,
    api: Api,
    stream: bool,
    request: &ModelRequest,
) -> (Result<ModelReply, ProviderError>, Vec<String>) {
    call_with(fake, api, json!({ "stream": stream }), request).await
}

#[tokio::test]
async fn a_text_reply_is_read_and_streamed_to_the_sink() {
    let text = "Hello there, this reply comes in several pieces: «ünïcode» too.";
    for (api, stream) in MODES {
        let fake = FakeLlm::scripted(vec![FakeReply::text(text).with_model("fake-model-2")]);

        let (result, deltas) =
            call(&fake, api, stream, &request(vec![Message::user_text("hi")])).await;

        let reply = result.unwrap_or_else(|e| panic!("{api:?} stream={stream}: {e}"));
        assert_eq!(
            reply.content,
            vec![Block::Text(text.into())],
            "{api:?} {stream}"
        );
        assert_eq!(reply.stop, StopReason::EndTurn);
        assert_eq!(reply.model, "fake-model-2");
        assert_eq!(deltas.concat(), text, "{api:?} stream={stream}");
        if stream {
            assert!(deltas.len() > 1, "{api:?}: text arrives in pieces");
        }
        let sent = &fake.requests()[0];
        assert_eq!((sent.api, sent.stream), (api, stream));
        assert_eq!(sent.api_key(), Some(FAKE_API_KEY));
        assert_eq!(sent.system, "You are a test.");
        assert_eq!(sent.tools, vec!["list_tasks".to_owned()]);
        assert_eq!(sent.max_tokens, Some(1024));
    }
}

#[tokio::test]
async fn a_tool_call_is_read_and_its_result_sent_back() {
    for (api, stream) in MODES {
        let input = json!({ "status": "open", "nested": { "list": [1, 2, "three"] } });
        let fake = FakeLlm::scripted(vec![
            FakeReply::text("Let me look.").and_tool_call("list_tasks", input.clone()),
            FakeReply::text("There are two."),
        ]);
        let mut conversation = request(vec![Message::user_text("what is open?")]);

        let (first, _) = call(&fake, api, stream, &conversation).await;
        let first = first.unwrap_or_else(|e| panic!("{api:?} stream={stream}: {e}"));
        let [
            Block::Text(text),
            Block::ToolUse {
                id,
                name,
                input: got,
            },
        ] = &first.content[..]
        else {
            panic!("{api:?} stream={stream}: {:?}", first.content);
        };
        assert_eq!(
            (text.as_str(), name.as_str()),
            ("Let me look.", "list_tasks")
        );
        assert_eq!(got, &ToolInput::Json(input.clone()));
        assert_eq!(first.stop, StopReason::ToolUse);
        let id = id.clone();
        conversation.messages.push(Message {
            role: crate::agents::providers::Role::Assistant,
            content: first.content.clone(),
        });
        conversation.messages.push(Message {
            role: crate::agents::providers::Role::User,
            content: vec![Block::ToolResult {
                tool_use_id: id.clone(),
                content: "two tasks".into(),
                is_error: false,
            }],
        });
        let (second, _) = call(&fake, api, stream, &conversation).await;

        assert_eq!(second.unwrap().stop, StopReason::EndTurn);
        let replayed = &fake.requests()[1];
        assert_eq!(
            replayed.messages.len(),
            3,
            "{api:?}: {:?}",
            replayed.messages
        );
        assert_eq!(
            replayed.messages[1].content, first.content,
            "{api:?} {stream}"
        );
        assert_eq!(
            replayed.tool_results(),
            vec![(id.as_str(), "two tasks", false)]
        );
    }
}

#[tokio::test]
async fn usage_is_reported_with_cache_tokens() {
    for (api, stream) in MODES {
        let fake = FakeLlm::scripted(vec![
            FakeReply::text("ok")
                .with_usage(100, 20)
                .with_cache(300, 40),
        ]);

        let (result, _) = call(&fake, api, stream, &request(vec![Message::user_text("hi")])).await;

        // Chat Completions has no cache writes to report.
        let cache_write_tokens = if api == Api::Anthropic { 40 } else { 0 };
        assert_eq!(
            result.unwrap().usage,
            Usage {
                input_tokens: 100,
                output_tokens: 20,
                cache_read_tokens: 300,
                cache_write_tokens,
            },
            "{api:?} stream={stream}"
        );
    }
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_as_long_as_retry_after_says() {
    let attempts = MODES.map(|(api, stream)| async move {
        let fake = FakeLlm::scripted(vec![
            FakeReply::status(429).retry_after_secs(1),
            FakeReply::text("finally"),
        ]);

        let (result, _) = call(&fake, api, stream, &request(vec![Message::user_text("hi")])).await;

        assert_eq!(result.unwrap().content, vec![Block::Text("finally".into())]);
        let requests = fake.requests();
        assert_eq!(requests.len(), 2, "{api:?} stream={stream}");
        let waited = requests[1].received_at - requests[0].received_at;
        assert!(
            waited >= Duration::from_secs(1),
            "{api:?}: waited {waited:?}"
        );
    });
    // Concurrently: each waits a second.
    join_all(attempts).await;
}

#[tokio::test]
async fn server_errors_are_retried_until_retries_run_out() {
    for (api, stream) in MODES {
        let fake = FakeLlm::start(|_| FakeReply::status(500).with_message("boom"));

        let config = json!({ "stream": stream, "max_retries": 2 });
        let (result, _) = call_with(&fake, api, config, &request(vec![])).await;

        assert_eq!(
            result.unwrap_err(),
            ProviderError::Unavailable {
                status: 500,
                message: "api_error: boom".into()
            }
        );
        assert_eq!(
            fake.request_count(),
            3,
            "{api:?}: the first try and two retries"
        );
    }
}

#[tokio::test]
async fn refused_credentials_are_not_retried() {
    for (api, stream) in MODES {
        let fake = FakeLlm::start(|_| FakeReply::status(401).with_message("invalid x-api-key"));

        let (result, _) = call(&fake, api, stream, &request(vec![])).await;

        let error = result.unwrap_err();
        assert!(
            matches!(&error, ProviderError::Auth { status: 401, message } if message.contains("invalid x-api-key")),
            "{api:?}: {error:?}"
        );
        assert_eq!(fake.request_count(), 1);
    }
}

#[tokio::test]
async fn a_bad_request_is_rejected_without_retry() {
    for (api, stream) in MODES {
        let fake = FakeLlm::start(|_| FakeReply::status(400).with_message("max_tokens: too big"));

        let (result, _) = call(&fake, api, stream, &request(vec![])).await;

        assert!(matches!(
            result.unwrap_err(),
            ProviderError::Rejected { status: 400, message } if message.contains("max_tokens: too big")
        ));
        assert_eq!(fake.request_count(), 1);
    }
}

#[tokio::test]
async fn a_reply_that_is_not_the_wire_format_is_malformed() {
    for (api, stream) in MODES {
        let fake = FakeLlm::start(|_| FakeReply::malformed());

        let (result, _) = call(&fake, api, stream, &request(vec![])).await;

        let error = result.unwrap_err();
        assert!(
            matches!(error, ProviderError::Malformed(_)),
            "{api:?} {stream}: {error:?}"
        );
        assert_eq!(fake.request_count(), 1, "a malformed reply is not retried");
    }
}

#[tokio::test]
async fn tool_arguments_that_are_not_json_are_kept_as_malformed() {
    // Anthropic's whole replies carry arguments as JSON: only its stream can break them.
    let modes = [
        (Api::Anthropic, true),
        (Api::OpenAi, true),
        (Api::OpenAi, false),
    ];
    for (api, stream) in modes {
        let raw = r#"{"status": "open", oops"#;
        let fake = FakeLlm::scripted(vec![FakeReply::tool_call_raw("list_tasks", raw)]);

        let (result, _) = call(&fake, api, stream, &request(vec![])).await;

        let reply = result.unwrap();
        let [Block::ToolUse { input, .. }] = &reply.content[..] else {
            panic!("{api:?}: {:?}", reply.content);
        };
        assert!(
            matches!(input, ToolInput::Malformed { raw: got, error } if got == raw && !error.is_empty()),
            "{api:?} {stream}: {input:?}"
        );
    }
}

#[tokio::test]
async fn the_key_never_appears_in_an_error() {
    for (api, stream) in MODES {
        let echo = format!("Incorrect API key provided: {FAKE_API_KEY}");
        let fake = FakeLlm::start(move |_| FakeReply::status(401).with_message(echo.clone()));

        let (result, _) = call(&fake, api, stream, &request(vec![])).await;

        let error = result.unwrap_err();
        assert!(!error.to_string().contains(FAKE_API_KEY), "{error}");
        assert!(!format!("{error:?}").contains(FAKE_API_KEY), "{error:?}");
        assert!(error.to_string().contains("[redacted]"), "{error}");
    }
}

#[tokio::test]
async fn a_slow_provider_times_out() {
    for (api, stream) in [(Api::Anthropic, true), (Api::OpenAi, false)] {
        let fake = FakeLlm::start(|_| FakeReply::text("late").with_delay(5_000));

        let config = json!({ "stream": stream, "timeout_secs": 0.2, "max_retries": 0 });
        let (result, _) = call_with(&fake, api, config, &request(vec![])).await;

        assert_eq!(
            result.unwrap_err(),
            ProviderError::Timeout(Duration::from_millis(200))
        );
    }
}

#[tokio::test]
async fn an_unreachable_provider_is_a_transport_error() {
    let fake = FakeLlm::start(|_| FakeReply::text("never"));
    let mut access = fake.access(Api::OpenAi);
    access.base_url = Some("http://127.0.0.1:1/v1".into());
    access.config = json!({ "max_retries": 1, "retry_backoff_ms": 1 });
    let client = connect(&access, &reqwest::Client::new());

    let result = client.turn(&request(vec![]), &|_| {}).await;

    let error = result.unwrap_err();
    assert!(matches!(error, ProviderError::Transport(_)), "{error:?}");
    assert!(
        !error.to_string().contains("127.0.0.1:1"),
        "no URL: {error}"
    );
}

#[tokio::test]
async fn streamed_text_is_not_retried_after_it_reached_the_sink() {
    // A stream that breaks after some text: a retry would show that text twice.
    let broken = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\"}}\n\n\
        event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n";
    let fake = FakeLlm::start(move |_| FakeReply::raw(200, "text/event-stream", broken));

    let (result, deltas) = call(&fake, Api::Anthropic, true, &request(vec![])).await;

    assert!(matches!(result.unwrap_err(), ProviderError::Transport(_)));
    assert_eq!(deltas, vec!["Hel".to_owned()]);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn a_provider_without_a_usable_base_url_is_misconfigured() {
    let fake = FakeLlm::start(|_| FakeReply::text("never"));
    for api in [Api::Anthropic, Api::OpenAi] {
        let mut access = fake.access(api);
        access.base_url = Some("not a url".into());
        let client = connect(&access, &reqwest::Client::new());

        let result = client.turn(&request(vec![]), &|_| {}).await;

        assert!(matches!(
            result.unwrap_err(),
            ProviderError::Misconfigured(_)
        ));
    }
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn a_stream_that_stalls_times_out_while_the_call_is_still_in_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that starts a stream, sends one event and then says nothing more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0; 64 * 1024];
        let _ = socket.read(&mut buf).await.unwrap();
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let event = "event: ping\ndata: {\"type\":\"ping\"}\n\n";
        let chunk = format!("{head}{:x}\r\n{event}\r\n", event.len());
        socket.write_all(chunk.as_bytes()).await.unwrap();
        // Hold the connection open until the client gives up.
        let _ = socket.read(&mut buf).await;
    });
    let fake = FakeLlm::start(|_| FakeReply::text("unused"));
    let mut access = fake.access(Api::Anthropic);
    access.base_url = Some(format!("http://{addr}"));
    access.config = json!({ "timeout_secs": 30, "idle_timeout_secs": 0.3, "max_retries": 0 });
    let client = connect(&access, &reqwest::Client::new());

    let result = client.turn(&request(vec![]), &|_| {}).await;

    assert_eq!(
        result.unwrap_err(),
        ProviderError::Timeout(Duration::from_millis(300))
    );
    server.await.unwrap();
}
