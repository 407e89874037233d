//! Cursor pagination (CONTRACT.md): `?limit=` (default 50, 1 – 100) and `?cursor=`; a list is
//! `{"items": [...], "next_cursor": "…" | null}`.
//!
//! A cursor is the sort key of the last item of a page, base64url-encoded so clients treat it
//! as opaque. Pages are read with "key after the cursor", never with an offset, so rows
//! inserted while a client pages through do not shift or repeat what it sees.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::Invalid;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;
/// Longest cursor accepted (encoded), so a cursor cannot carry a large payload.
const MAX_CURSOR_LEN: usize = 512;

/// What page a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// The decoded sort key of the last item already seen.
    pub after: Option<String>,
}

impl PageRequest {
    /// From the query parameters `limit` and `cursor`.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, Invalid> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Invalid::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = cursor.map(decode_cursor).transpose()?;
        Ok(Self { limit, after })
    }

    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }

    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// Encodes a sort key as a cursor.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

fn decode_cursor(cursor: &str) -> Result<String, Invalid> {
    let bad = || Invalid::new("cursor", "is not a cursor this server returned");
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from up to `request.fetch()` rows in list order; `key` gives an item's sort key.
    pub fn from_rows(mut rows: Vec<T>, request: &PageRequest, key: impl Fn(&T) -> String) -> Self {
        let limit = request.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_to_50_and_stay_within_1_to_100() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(101), None).is_err());
        assert_eq!(PageRequest::parse(Some(100), None).unwrap().limit, 100);
    }

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let cursor = encode_cursor("2026-11-23T00:00:00.000Z|0193");
        let req = PageRequest::parse(None, Some(&cursor)).unwrap();
        assert_eq!(req.after.as_deref(), Some("2026-11-23T00:00:00.000Z|0193"));
        for bad in ["!!!", "%", &"A".repeat(600)] {
            let err = PageRequest::parse(None, Some(bad)).unwrap_err();
            assert_eq!(err.field, "cursor");
        }
    }

    #[test]
    fn a_page_has_a_cursor_only_when_more_rows_follow() {
        let req = PageRequest::first(2);
        let page = Page::from_rows(vec![1, 2, 3], &req, |n| n.to_string());
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor, Some(encode_cursor("2")));
        let page = Page::from_rows(vec![1, 2], &req, |n| n.to_string());
        assert_eq!(page.next_cursor, None);
    }
}
