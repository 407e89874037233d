//! An incremental parser of Server-Sent Events (the `text/event-stream` format both wire
//! formats stream in), fed the body's chunks as they arrive: a chunk may end anywhere, in
//! the middle of a line, of a `\r\n` or of a UTF-8 character.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty when the event named none (the format's "message").
    pub event: String,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not yet terminated.
    pending: Vec<u8>,
    event: String,
    data: String,
    /// Whether some `data:` line was seen since the last dispatch (`data:` with an empty
    /// value still makes an event).
    has_data: bool,
    /// Whether the first line was seen (a byte-order mark may precede it).
    started: bool,
}

impl SseParser {
    /// Feeds the next chunk of the body; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(offset) = self.pending[start..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        {
            let end = start + offset;
            let next = match self.pending[end] {
                b'\r' => match self.pending.get(end + 1) {
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    // The `\n` of a `\r\n` may be in the next chunk: wait for it.
                    None => break,
                },
                _ => end + 1,
            };
            let line = String::from_utf8_lossy(&self.pending[start..end]).into_owned();
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
            start = next;
        }
        self.pending.drain(..start);
        events
    }

    /// The body ended. NOTE: the format says an event not closed by a blank line is dropped;
    /// some servers end the body right after the last `data:` line, so it is dispatched.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let rest = std::mem::take(&mut self.pending);
        let rest = String::from_utf8_lossy(&rest);
        let rest = rest.strip_suffix('\r').unwrap_or(&rest);
        if !rest.is_empty()
            && let Some(event) = self.line(rest)
        {
            return Some(event);
        }
        self.dispatch()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix('\u{feff}').unwrap_or(line)
        };
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None; // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => value.clone_into(&mut self.event),
            _ => {} // `id`, `retry` and unknown fields: nothing here needs them
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    fn parse_whole(body: &[u8]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut events = parser.push(body);
        events.extend(parser.finish());
        events
    }

    /// Feeds `body` split at `at`, then byte by byte, and checks every way gives `expected`.
    fn assert_parses_at_every_split(body: &[u8], expected: &[SseEvent]) {
        assert_eq!(parse_whole(body), expected, "whole body");
        for at in 0..=body.len() {
            let mut parser = SseParser::default();
            let mut events = parser.push(&body[..at]);
            events.extend(parser.push(&body[at..]));
            events.extend(parser.finish());
            assert_eq!(events, expected, "split at byte {at}");
        }
        let mut parser = SseParser::default();
        let mut events: Vec<_> = body.iter().flat_map(|b| parser.push(&[*b])).collect();
        events.extend(parser.finish());
        assert_eq!(events, expected, "byte by byte");
    }

    #[test]
    fn events_are_parsed_whatever_the_chunk_boundaries() {
        let body = "event: message_start\ndata: {\"a\":1}\n\n: ping\n\nevent: delta\r\ndata: h\u{e9}llo\r\n\r\ndata: [DONE]\n\n";
        assert_parses_at_every_split(
            body.as_bytes(),
            &[
                event("message_start", "{\"a\":1}"),
                event("delta", "h\u{e9}llo"),
                event("", "[DONE]"),
            ],
        );
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        assert_parses_at_every_split(b"data: one\ndata:two\ndata\n\n", &[event("", "one\ntwo\n")]);
    }

    #[test]
    fn lone_carriage_returns_end_lines() {
        assert_parses_at_every_split(b"event: x\rdata: y\r\r", &[event("x", "y")]);
    }

    #[test]
    fn comments_and_events_without_data_dispatch_nothing() {
        assert_parses_at_every_split(
            b": keep-alive\n\nevent: lonely\n\nid: 7\nretry: 10\n\n",
            &[],
        );
    }

    #[test]
    fn a_byte_order_mark_before_the_first_line_is_ignored() {
        assert_parses_at_every_split("\u{feff}data: x\n\n".as_bytes(), &[event("", "x")]);
    }

    #[test]
    fn an_event_cut_off_by_the_end_of_the_body_is_still_dispatched() {
        assert_parses_at_every_split(b"data: [DONE]", &[event("", "[DONE]")]);
        assert_parses_at_every_split(b"data: a\r\n", &[event("", "a")]);
    }

    #[test]
    fn the_event_name_does_not_leak_into_the_next_event() {
        assert_parses_at_every_split(
            b"event: a\ndata: 1\n\ndata: 2\n\n",
            &[event("a", "1"), event("", "2")],
        );
    }
}
