//! The Anthropic body and stream specifics; what both formats do is in `wire_tests`.

use serde_json::json;

use super::*;
use crate::agents::providers::ModelClient;
use crate::agents::providers::fake_server::{Api, FAKE_API_KEY, FakeLlm, FakeReply};
use crate::agents::providers::http::StreamDecoder;
use crate::agents::providers::http::wire_tests::{call, call_with, request};
use crate::agents::providers::sse::SseParser;

fn tool_use(id: &str, input: ToolInput) -> Block {
    Block::ToolUse {
        id: id.into(),
        name: "list_tasks".into(),
        input,
    }
}

fn tool_result(id: &str) -> Block {
    Block::ToolResult {
        tool_use_id: id.into(),
        content: "done".into(),
        is_error: true,
    }
}

#[tokio::test]
async fn the_request_carries_the_headers_tools_and_a_valid_conversation() {
    let fake = FakeLlm::scripted(vec![FakeReply::text("ok")]);
    let malformed = ToolInput::Malformed {
        raw: "{oops".into(),
        error: "expected value".into(),
    };
    let conversation = request(vec![
        Message::user_text("start"),
        Message::user_text(""),
        Message {
            role: Role::Assistant,
            content: vec![
                Block::Text("calling".into()),
                tool_use("t1", ToolInput::Json(json!({ "status": "open" }))),
                tool_use("t2", malformed),
            ],
        },
        // Text before the tool results: the results must come first.
        Message {
            role: Role::User,
            content: vec![Block::Text("and?".into()), tool_result("t1")],
        },
        Message {
            role: Role::User,
            content: vec![tool_result("t2")],
        },
    ]);

    let (result, _) = call(&fake, Api::Anthropic, false, &conversation).await;

    result.unwrap();
    let sent = &fake.requests()[0];
    assert_eq!(sent.header("x-api-key"), Some(FAKE_API_KEY));
    assert_eq!(sent.header("anthropic-version"), Some(DEFAULT_VERSION));
    assert_eq!(sent.header("authorization"), None);
    let cached = json!({ "type": "ephemeral" });
    assert_eq!(
        sent.body["tools"],
        json!([{
            "name": "list_tasks",
            "description": "Lists the tasks.",
            "input_schema": conversation.tools[0].input_schema,
            "cache_control": cached,
        }])
    );
    assert_eq!(
        sent.body["system"],
        json!([{ "type": "text", "text": "You are a test.", "cache_control": cached }])
    );
    assert_eq!(
        sent.body["messages"],
        json!([
            { "role": "user", "content": [{ "type": "text", "text": "start" }] },
            { "role": "assistant", "content": [
                { "type": "text", "text": "calling" },
                { "type": "tool_use", "id": "t1", "name": "list_tasks", "input": { "status": "open" } },
                { "type": "tool_use", "id": "t2", "name": "list_tasks", "input": {} },
            ]},
            { "role": "user", "content": [
                { "type": "tool_result", "tool_use_id": "t1", "content": "done", "is_error": true },
                { "type": "tool_result", "tool_use_id": "t2", "content": "done", "is_error": true },
                { "type": "text", "text": "and?", "cache_control": cached },
            ]},
        ])
    );
    assert_eq!(sent.body["max_tokens"], 1024);
    assert_eq!(sent.body["stream"], false);
}

#[tokio::test]
async fn prompt_caching_can_be_turned_off() {
    let fake = FakeLlm::scripted(vec![FakeReply::text("ok")]);

    let config = json!({ "cache_prompt": false, "anthropic_version": "2099-01-01" });
    let (result, _) = call_with(
        &fake,
        Api::Anthropic,
        config,
        &request(vec![Message::user_text("hi")]),
    )
    .await;

    result.unwrap();
    let sent = &fake.requests()[0];
    assert!(
        !sent.body.to_string().contains("cache_control"),
        "{}",
        sent.body
    );
    assert_eq!(sent.header("anthropic-version"), Some("2099-01-01"));
}

#[tokio::test]
async fn a_provider_without_a_key_is_misconfigured() {
    let fake = FakeLlm::scripted(vec![]);
    let mut access = fake.access(Api::Anthropic);
    access.api_key = None;
    let client = AnthropicClient::new(&access, reqwest::Client::new());

    let result = client.turn(&request(vec![]), &|_| {}).await;

    assert!(
        matches!(result.unwrap_err(), ProviderError::Misconfigured(m) if m.contains("no API key"))
    );
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn stop_reasons_are_mapped() {
    for (stop, expected) in [
        (StopReason::MaxTokens, StopReason::MaxTokens),
        (
            StopReason::Other("refusal".into()),
            StopReason::Other("refusal".into()),
        ),
    ] {
        for stream in [true, false] {
            let fake = FakeLlm::scripted(vec![FakeReply::text("cut").with_stop(stop.clone())]);

            let (result, _) = call(&fake, Api::Anthropic, stream, &request(vec![])).await;

            assert_eq!(result.unwrap().stop, expected);
        }
    }
}

#[tokio::test]
async fn an_error_event_in_the_stream_is_an_error_that_is_retried() {
    let overloaded = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\"}}\n\n\
        event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let fake = FakeLlm::scripted_with_fallback(
        vec![FakeReply::raw(200, "text/event-stream", overloaded)],
        FakeReply::raw(200, "text/event-stream", overloaded),
    );

    let config = json!({ "max_retries": 1 });
    let (result, _) = call_with(&fake, Api::Anthropic, config, &request(vec![])).await;

    assert_eq!(
        result.unwrap_err(),
        ProviderError::Unavailable {
            status: 529,
            message: "overloaded_error: Overloaded".into()
        }
    );
    assert_eq!(fake.request_count(), 2);
}

/// The events of a real streamed reply (from the API's documentation), fed at every split.
#[test]
fn a_documented_stream_decodes_whatever_the_chunks() {
    let body = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Okay\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"Paris\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let wire = AnthropicWire { cache_prompt: true };
    for at in 0..body.len() {
        let mut parser = SseParser::default();
        let mut decoder = wire.decoder("asked");
        let mut complete = false;
        for chunk in [&body.as_bytes()[..at], &body.as_bytes()[at..]] {
            for event in parser.push(chunk) {
                complete |= decoder.feed(&event, &|_| {}).unwrap();
            }
        }
        assert!(complete, "split at {at}");
        let reply = decoder.finish().unwrap();
        assert_eq!(reply.model, "claude-x");
        assert_eq!(
            reply.content,
            vec![
                Block::Text("Okay".into()),
                Block::ToolUse {
                    id: "toolu_01".into(),
                    name: "get_weather".into(),
                    input: ToolInput::Json(json!({ "location": "Paris" })),
                },
            ]
        );
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(
            reply.usage,
            Usage {
                input_tokens: 472,
                output_tokens: 89,
                ..Usage::default()
            }
        );
    }
}

#[test]
fn a_reply_missing_its_content_is_malformed() {
    let wire = AnthropicWire { cache_prompt: true };

    let error = wire
        .parse_reply(
            br#"{"type":"message","model":"m","stop_reason":"end_turn"}"#,
            "m",
        )
        .unwrap_err();

    assert!(
        matches!(&error, ProviderError::Malformed(m) if m.contains("content")),
        "{error:?}"
    );
}
