//! The Chat Completions body and stream specifics; what both formats do is in `wire_tests`.

use serde_json::json;

use super::*;
use crate::agents::providers::ModelClient;
use crate::agents::providers::fake_server::{Api, FAKE_API_KEY, FakeLlm, FakeReply};
use crate::agents::providers::http::wire_tests::{call, call_with, request};
use crate::agents::providers::sse::SseParser;

#[tokio::test]
async fn the_request_carries_the_system_tools_calls_and_tool_messages() {
    let fake = FakeLlm::scripted(vec![FakeReply::text("ok")]);
    let conversation = request(vec![
        Message::user_text("start"),
        Message {
            role: Role::Assistant,
            content: vec![
                Block::ToolUse {
                    id: "c1".into(),
                    name: "list_tasks".into(),
                    input: ToolInput::Json(json!({ "status": "open" })),
                },
                Block::ToolUse {
                    id: "c2".into(),
                    name: "list_tasks".into(),
                    input: ToolInput::Malformed {
                        raw: "{oops".into(),
                        error: "expected value".into(),
                    },
                },
            ],
        },
        Message {
            role: Role::User,
            content: vec![
                Block::ToolResult {
                    tool_use_id: "c1".into(),
                    content: "two".into(),
                    is_error: false,
                },
                Block::ToolResult {
                    tool_use_id: "c2".into(),
                    content: "bad arguments".into(),
                    is_error: true,
                },
                Block::Text("go on".into()),
            ],
        },
    ]);

    let (result, _) = call(&fake, Api::OpenAi, true, &conversation).await;

    result.unwrap();
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {FAKE_API_KEY}").as_str())
    );
    assert_eq!(
        sent.body["tools"],
        json!([{ "type": "function", "function": {
            "name": "list_tasks",
            "description": "Lists the tasks.",
            "parameters": conversation.tools[0].input_schema,
        }}])
    );
    assert_eq!(
        sent.body["messages"],
        json!([
            { "role": "system", "content": "You are a test." },
            { "role": "user", "content": "start" },
            { "role": "assistant", "content": null, "tool_calls": [
                { "id": "c1", "type": "function",
                  "function": { "name": "list_tasks", "arguments": "{\"status\":\"open\"}" } },
                { "id": "c2", "type": "function",
                  "function": { "name": "list_tasks", "arguments": "{oops" } },
            ]},
            { "role": "tool", "tool_call_id": "c1", "content": "two" },
            { "role": "tool", "tool_call_id": "c2", "content": "Error: bad arguments" },
            { "role": "user", "content": "go on" },
        ])
    );
    assert_eq!(sent.body["max_tokens"], 1024);
    assert_eq!(sent.body["stream"], true);
    assert_eq!(
        sent.body["stream_options"],
        json!({ "include_usage": true })
    );
}

#[tokio::test]
async fn a_local_model_gets_no_authorization_and_the_newer_token_limit_when_asked() {
    let fake = FakeLlm::scripted(vec![FakeReply::text("ok")]);
    let mut access = fake.access(Api::OpenAi);
    access.api_key = None;
    access.config = json!({ "stream": false, "max_completion_tokens": true });
    let client = OpenAiClient::new(&access, reqwest::Client::new());

    client.turn(&request(vec![]), &|_| {}).await.unwrap();

    let sent = &fake.requests()[0];
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body["max_completion_tokens"], 1024);
    assert_eq!(sent.body.get("max_tokens"), None);
    assert_eq!(sent.body.get("stream_options"), None);
}

#[tokio::test]
async fn a_base_url_with_a_trailing_slash_is_tolerated() {
    let fake = FakeLlm::scripted(vec![FakeReply::text("ok")]);
    let mut access = fake.access(Api::OpenAi);
    access.base_url = Some(format!("{}/", fake.base_url(Api::OpenAi)));
    let client = OpenAiClient::new(&access, reqwest::Client::new());

    let reply = client.turn(&request(vec![]), &|_| {}).await.unwrap();

    assert_eq!(reply.content, vec![Block::Text("ok".into())]);
}

#[tokio::test]
async fn the_length_limit_is_max_tokens() {
    for stream in [true, false] {
        let fake = FakeLlm::scripted(vec![
            FakeReply::text("cut").with_stop(StopReason::MaxTokens),
        ]);

        let (result, _) = call_with(
            &fake,
            Api::OpenAi,
            json!({ "stream": stream }),
            &request(vec![]),
        )
        .await;

        assert_eq!(result.unwrap().stop, StopReason::MaxTokens);
    }
}

/// A stream as OpenAI sends it, fed at every split: two calls interleaved by index, the
/// usage chunk after the finish reason.
#[test]
fn a_stream_of_parallel_tool_calls_decodes_whatever_the_chunks() {
    let body = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"one\",\"arguments\":\"\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"two\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":7,\"total_tokens\":57,\"prompt_tokens_details\":{\"cached_tokens\":20}}}\n\n",
        "data: [DONE]\n\n",
    );
    let wire = OpenAiWire {
        max_completion_tokens: false,
    };
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
        assert_eq!(reply.model, "gpt-x");
        assert_eq!(
            reply.content,
            vec![
                Block::ToolUse {
                    id: "call_a".into(),
                    name: "one".into(),
                    input: ToolInput::Json(json!({ "a": 1 })),
                },
                Block::ToolUse {
                    id: "call_b".into(),
                    name: "two".into(),
                    input: ToolInput::Json(json!({})),
                },
            ]
        );
        assert_eq!(reply.stop, StopReason::ToolUse);
        assert_eq!(
            reply.usage,
            Usage {
                input_tokens: 30,
                output_tokens: 7,
                cache_read_tokens: 20,
                cache_write_tokens: 0,
            }
        );
    }
}

#[test]
fn tool_calls_ending_in_stop_still_wait_for_their_results() {
    // Older Ollama versions say `stop` after calling tools.
    let wire = OpenAiWire {
        max_completion_tokens: false,
    };
    let body = json!({
        "model": "llama",
        "choices": [{ "index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "",
            "tool_calls": [{ "id": "call_1", "type": "function",
                             "function": { "name": "list_tasks", "arguments": "" } }],
        }}],
    });

    let reply = wire
        .parse_reply(body.to_string().as_bytes(), "llama")
        .unwrap();

    assert_eq!(reply.stop, StopReason::ToolUse);
    assert_eq!(reply.usage, Usage::default());
    assert!(
        matches!(&reply.content[..], [Block::ToolUse { input: ToolInput::Json(v), .. }] if v == &json!({}))
    );
}

#[test]
fn a_reply_without_choices_is_malformed() {
    let wire = OpenAiWire {
        max_completion_tokens: false,
    };

    let error = wire.parse_reply(br#"{"choices":[]}"#, "m").unwrap_err();

    assert!(matches!(error, ProviderError::Malformed(m) if m.contains("without choices")));
}

#[test]
fn an_error_inside_the_stream_is_reported() {
    let wire = OpenAiWire {
        max_completion_tokens: false,
    };
    let mut decoder = wire.decoder("m");
    let mut parser = SseParser::default();
    let events =
        parser.push(b"data: {\"error\":{\"message\":\"upstream overloaded\",\"code\":502}}\n\n");

    let error = decoder.feed(&events[0], &|_| {}).unwrap_err();

    assert_eq!(
        error,
        ProviderError::Unavailable {
            status: 502,
            message: "upstream overloaded".into()
        }
    );
}
