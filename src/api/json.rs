//! JSON response bodies.
//!
//! Serialising into a growing `String` (what `HttpResponseBuilder::json` does) reallocates and
//! copies the body about a dozen times on the way to a 26 KB page, and each large reallocation
//! made glibc consolidate its small-chunk bins (`malloc_consolidate`, ~5 % of the server's CPU
//! on `GET /api/tasks`). Here each worker thread serialises into one buffer it keeps, and the
//! body is copied once into an allocation of its final size.

use std::cell::RefCell;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde::Serialize;

use super::ApiError;

/// A buffer that grew past this is released after use rather than kept.
const KEEP_AT_MOST: usize = 1 << 20;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `value` as a JSON body.
pub fn body<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, ApiError> {
    body_with(|out| serde_json::to_writer(out, value).map_err(ApiError::internal))
}

/// A JSON body that `write` writes (for bodies assembled from parts that are JSON already).
pub fn body_with(
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), ApiError>,
) -> Result<Bytes, ApiError> {
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        let written = write(buffer);
        let bytes = Bytes::copy_from_slice(buffer);
        if buffer.capacity() > KEEP_AT_MOST {
            *buffer = Vec::new();
        }
        written.map(|()| bytes)
    })
}

/// `items`, each JSON already, as a JSON array.
pub fn write_array<'a>(out: &mut Vec<u8>, items: impl IntoIterator<Item = &'a str>) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.as_bytes());
    }
    out.push(b']');
}

/// A response with `status` and `value` as its JSON body.
pub fn respond<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
) -> Result<HttpResponse, ApiError> {
    Ok(with_body(status, body(value)?))
}

/// A response with `status` and `body`, already JSON.
fn with_body(status: StatusCode, body: Bytes) -> HttpResponse {
    HttpResponseBuilder::new(status)
        .content_type(ContentType::json())
        .body(body)
}

/// 200 with `body`, already JSON.
pub fn ok_body(body: Bytes) -> HttpResponse {
    with_body(StatusCode::OK, body)
}

/// 200 with `value` as its JSON body.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> Result<HttpResponse, ApiError> {
    respond(StatusCode::OK, value)
}

/// 201 with `value` as its JSON body.
pub fn created<T: Serialize + ?Sized>(value: &T) -> Result<HttpResponse, ApiError> {
    respond(StatusCode::CREATED, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_independent_of_the_buffer_reused_between_them() {
        let first = body(&vec!["a"; 1000]).unwrap();
        let second = body(&serde_json::json!({"k": 1})).unwrap();
        assert_eq!(&second[..], br#"{"k":1}"#);
        assert_eq!(first.len(), 1 + 1000 * 4 - 1 + 1);
        assert!(first.starts_with(br#"["a","a""#));
    }

    #[test]
    fn a_huge_body_does_not_stay_allocated() {
        let big = "x".repeat(2 * KEEP_AT_MOST);
        assert_eq!(body(&big).unwrap().len(), big.len() + 2);
        BUFFER.with_borrow(|b| assert_eq!(b.capacity(), 0));
    }
}
