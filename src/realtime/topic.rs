//! Topics a socket subscribes to for high-volume streams: `agent:<id>`, `task:<id>`,
//! `thread:<id>`.

use std::fmt;

/// The longest id a topic may name (ids are UUIDs; agent names are slugs of at most 64).
const MAX_ID: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    Agent(String),
    Task(String),
    Thread(String),
}

impl Topic {
    /// Parses `kind:id`; the error says what is wrong, for the client.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, id) = text.split_once(':').ok_or_else(|| {
            format!("'{text}' is not a topic; use agent:<id>, task:<id> or thread:<id>")
        })?;
        if id.is_empty()
            || id.len() > MAX_ID
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("'{text}' does not name an id"));
        }
        let id = id.to_owned();
        match kind {
            "agent" => Ok(Topic::Agent(id)),
            "task" => Ok(Topic::Task(id)),
            "thread" => Ok(Topic::Thread(id)),
            _ => Err(format!(
                "unknown topic kind '{kind}'; use agent, task or thread"
            )),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Agent(id) => write!(f, "agent:{id}"),
            Topic::Task(id) => write!(f, "task:{id}"),
            Topic::Thread(id) => write!(f, "thread:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        for text in [
            "agent:ceo",
            "task:0198a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "thread:t_1",
        ] {
            assert_eq!(Topic::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn malformed_topics_are_refused_with_a_reason() {
        for bad in [
            "agent",
            "agent:",
            "board:x",
            "task:a b",
            "task:../x",
            &format!("task:{}", "x".repeat(65)),
        ] {
            assert!(Topic::parse(bad).is_err(), "{bad}");
        }
    }
}
