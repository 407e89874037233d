//! Task rows written straight as their API JSON, for lists.
//!
//! A page of fifty tasks used to be read into fifty `Task`s (a dozen allocations each, every
//! timestamp parsed, the tags parsed) and then serialised by serde_json, which checks every
//! byte of every string for characters to escape, one byte at a time: under callgrind that
//! scan alone was a quarter of a list request's instructions. Here each row is written once,
//! from the values SQLite holds, into the JSON `Task` serialises to (the same fields, names,
//! order and formatting, which `listed_tasks_are_the_json_of_their_tasks` holds byte for
//! byte): strings with nothing to escape (ids, timestamps, most prompts) are copied whole,
//! and only strings that need escaping go through serde_json.

use rusqlite::Row;

use super::tasks::{required_column, status_column, text_column};
use crate::domain::agent::UsdMicros;
use crate::domain::task::{ListedTask, Priority};
use crate::store::StoreError;

/// Room for a typical task: one allocation per row.
const TYPICAL_LEN: usize = 640;

/// A task for lists from a row of `tasks::TASK_COLUMNS`.
pub(super) fn listed_from_row(r: &Row<'_>) -> Result<ListedTask, StoreError> {
    let text = |i: usize| text_column(r, i);
    let required = |i: usize| required_column(r, i);
    let status = status_column(r)?;
    // Stored tags are the JSON array `Task` writes; checked, then copied as they are.
    let tags: &serde_json::value::RawValue = serde_json::from_str(required(4)?)
        .map_err(|e| StoreError::Corrupt(format!("task tags: {e}")))?;
    let (id, created_at) = (required(0)?, required(16)?);

    let mut out = Json(String::with_capacity(TYPICAL_LEN));
    out.raw("{\"id\":");
    out.str(id)?;
    out.raw(",\"prompt\":");
    out.str(required(1)?)?;
    out.raw(",\"context\":");
    out.opt_str(text(2)?)?;
    out.raw(",\"priority\":");
    out.name(Priority::from_i64(r.get(3)?).as_str());
    out.raw(",\"tags\":");
    out.raw(tags.get());
    out.raw(",\"status\":");
    out.name(status.as_str());
    out.raw(",\"cancel_requested\":");
    out.raw(if r.get::<_, bool>(6)? {
        "true"
    } else {
        "false"
    });
    // Runs of fields of one kind, in `Task`'s order: (key, column).
    let optional_texts = [
        (",\"assignee_id\":", 7),
        (",\"delegator_id\":", 8),
        (",\"parent_id\":", 9),
        (",\"result\":", 10),
        (",\"status_reason\":", 20),
        (",\"error_code\":", 21),
    ];
    for (key, column) in optional_texts {
        out.raw(key);
        out.opt_str(text(column)?)?;
    }
    out.raw(",\"cost_usd\":");
    out.float(UsdMicros::from_micros(r.get(11)?).usd())?;
    let counts = [
        (",\"input_tokens\":", 12),
        (",\"output_tokens\":", 13),
        (",\"num_turns\":", 14),
        (",\"duration_ms\":", 15),
    ];
    for (key, column) in counts {
        out.raw(key);
        match r.get::<_, Option<i64>>(column)? {
            Some(n) => out.int(n),
            None => out.raw("null"),
        }
    }
    // Stored timestamps are already in the form `Task` writes them (`domain::time`).
    out.raw(",\"created_at\":");
    out.str(created_at)?;
    out.raw(",\"updated_at\":");
    out.str(required(17)?)?;
    for (key, column) in [(",\"started_at\":", 18), (",\"completed_at\":", 19)] {
        out.raw(key);
        out.opt_str(text(column)?)?;
    }
    out.raw("}");
    Ok(ListedTask::new(out.0, format!("{created_at}|{id}")))
}

/// JSON text being written.
struct Json(String);

impl Json {
    /// Text that is JSON already.
    fn raw(&mut self, json: &str) {
        self.0.push_str(json);
    }

    /// `s` as a JSON string.
    fn str(&mut self, s: &str) -> Result<(), StoreError> {
        if needs_escape(s.as_bytes()) {
            let escaped = serde_json::to_string(s)
                .map_err(|e| StoreError::Internal(format!("task JSON: {e}")))?;
            self.0.push_str(&escaped);
            return Ok(());
        }
        self.0.reserve(s.len() + 2);
        self.0.push('"');
        self.0.push_str(s);
        self.0.push('"');
        Ok(())
    }

    /// A name with nothing to escape (an enum's), as a JSON string.
    fn name(&mut self, name: &'static str) {
        self.0.push('"');
        self.0.push_str(name);
        self.0.push('"');
    }

    fn opt_str(&mut self, s: Option<&str>) -> Result<(), StoreError> {
        match s {
            Some(s) => self.str(s),
            None => {
                self.raw("null");
                Ok(())
            }
        }
    }

    fn int(&mut self, n: i64) {
        self.raw(itoa::Buffer::new().format(n));
    }

    /// `x` as serde_json writes an `f64` (its own formatter; `null` when not finite).
    fn float(&mut self, x: f64) -> Result<(), StoreError> {
        use serde_json::ser::{CompactFormatter, Formatter};
        if !x.is_finite() {
            self.raw("null");
            return Ok(());
        }
        let mut buf = std::io::Cursor::new([0u8; 64]);
        CompactFormatter
            .write_f64(&mut buf, x)
            .map_err(|e| StoreError::Internal(format!("task JSON: {e}")))?;
        let written = buf.position() as usize;
        let text = std::str::from_utf8(&buf.get_ref()[..written])
            .map_err(|e| StoreError::Internal(format!("task JSON: {e}")))?;
        self.raw(text);
        Ok(())
    }
}

/// Whether a JSON string of `s` needs an escape: a quote, a backslash or a control character
/// (what serde_json escapes; everything else, UTF-8 included, it copies).
fn needs_escape(s: &[u8]) -> bool {
    let special = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    // Sixteen bytes at a time with no early exit inside: the compiler turns the inner loop
    // into vector compares.
    let mut chunks = s.chunks_exact(16);
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |any, &b| any | special(b)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| special(b))
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, params};

    use super::*;
    use crate::domain::task::TaskStatus;
    use crate::store::sqlite::registry::format_time;
    use crate::store::sqlite::tasks::{TASK_COLUMNS, read_task};

    #[test]
    fn escapes_are_found_wherever_they_are() {
        assert!(!needs_escape(b""));
        assert!(!needs_escape(
            "plain text é 漢 🦀 \u{7f} </script>".as_bytes()
        ));
        for special in [b'"', b'\\', b'\n', 0x00, 0x1f] {
            for at in [0, 7, 15, 16, 31, 40] {
                let mut s = vec![b'a'; 41];
                s[at] = special;
                assert!(needs_escape(&s), "{special:#x} at {at}");
            }
        }
    }

    #[test]
    fn numbers_and_names_are_written_as_serde_json_writes_them() {
        for x in [
            0.0,
            1e-6,
            0.1 + 0.2,
            1.5,
            1e21,
            -2.5e-7,
            f64::NAN,
            f64::INFINITY,
        ] {
            let mut out = Json(String::new());
            out.float(x).unwrap();
            assert_eq!(out.0, serde_json::to_string(&x).unwrap());
        }
        for p in [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Urgent,
        ] {
            let mut out = Json(String::new());
            out.name(p.as_str());
            assert_eq!(out.0, serde_json::to_string(&p).unwrap());
        }
        for s in TaskStatus::ALL {
            let mut out = Json(String::new());
            out.name(s.as_str());
            assert_eq!(out.0, serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn listed_tasks_are_the_json_of_their_tasks() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrations::MigrationSet::tenant()
            .apply(&mut conn)
            .unwrap();
        conn.execute(
            "INSERT INTO agents (id, name, display_name, created_at, updated_at) \
             VALUES ('agent-1', 'worker', 'Worker', 't', 't')",
            [],
        )
        .unwrap();
        let at = |ms: i64| {
            format_time(&(chrono::DateTime::UNIX_EPOCH + chrono::Duration::milliseconds(ms)))
        };
        let odd = "quote \" backslash \\ newline \n tab \t bell \u{7} del \u{7f} é 漢 🦀 </script>";
        // (context, priority, tags, status, cancel requested, result, cost in micros,
        //  duration, completed)
        type Fields<'a> = (
            Option<&'a str>,
            i64,
            &'a str,
            &'a str,
            bool,
            Option<&'a str>,
            i64,
            Option<i64>,
            bool,
        );
        let rows: Vec<Fields> = vec![
            (None, 0, "[]", "pending", false, None, 0, None, false),
            (
                Some(odd),
                -1,
                r#"["a","b\"c","ü"]"#,
                "running",
                true,
                Some(odd),
                1,
                Some(12),
                false,
            ),
            (
                Some(""),
                1,
                r#"["x"]"#,
                "review",
                false,
                Some(""),
                1_234_567,
                Some(0),
                false,
            ),
            (
                None,
                2,
                "[]",
                "completed",
                false,
                Some("done"),
                1_000_000_000_000,
                None,
                true,
            ),
            (
                None,
                7,
                "[]",
                "failed",
                false,
                None,
                999_999,
                Some(i64::MAX),
                true,
            ),
            (None, -9, "[]", "blocked", true, None, 3, None, false),
            (None, 0, "[]", "cancelled", false, None, 100, None, true),
        ];
        for (i, (context, priority, tags, status, cancel, result, micros, duration, done)) in
            rows.into_iter().enumerate()
        {
            let i = i as i64;
            conn.execute(
                "INSERT INTO tasks (id, prompt, context, priority, tags, status, cancel_requested, \
                 assignee_id, result, cost_micros, input_tokens, output_tokens, num_turns, \
                 duration_ms, created_at, updated_at, started_at, completed_at, status_reason, \
                 error_code) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
                 ?17, ?18, ?19, ?20)",
                params![
                    format!("task-{i}"),
                    format!("prompt {i}: {odd}"),
                    context,
                    priority,
                    tags,
                    status,
                    cancel,
                    (i % 2 == 0).then_some("agent-1"),
                    result,
                    micros,
                    i * 1000,
                    i * 7,
                    i,
                    duration,
                    at(i),
                    at(i + 1),
                    done.then(|| at(i + 2)),
                    done.then(|| at(i + 3)),
                    (i == 5).then_some("waiting for 2 subtasks"),
                    (i == 4).then_some("MAX_TURNS"),
                ],
            )
            .unwrap();
        }
        let mut stmt = conn
            .prepare(&format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY id"))
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut seen = 0;
        while let Some(row) = rows.next().unwrap() {
            let listed = listed_from_row(row).unwrap();
            let task = read_task(&conn, listed.order().1).unwrap();
            assert_eq!(listed.json(), serde_json::to_string(&task).unwrap());
            assert_eq!(
                listed.key(),
                format!("{}|{}", format_time(&task.created_at), task.id)
            );
            seen += 1;
        }
        assert_eq!(seen, 7);
    }
}
