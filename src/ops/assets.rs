//! The web UI's static files, embedded in the binary (rust-embed).
//!
//! GET/HEAD only. `index.html` is never cached (it names the other files); other files are
//! revalidated by ETag. Paths without an extension outside `/api/` fall back to `index.html`
//! for browsers (client-side routes); everything else that is not a file is a JSON 404.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use rust_embed::Embed;

use crate::api::extract::not_found;

#[derive(Embed)]
#[folder = "assets/"]
struct Assets;

const INDEX: &str = "index.html";

/// The default service: an embedded file, the UI's index for browser routes, or a JSON 404.
pub async fn serve_or_not_found(req: HttpRequest) -> HttpResponse {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return not_found(req).await;
    }
    let path = req.path().trim_start_matches('/');
    let path = if path.is_empty() { INDEX } else { path };
    if let Some(file) = Assets::get(path) {
        return respond(&req, path, file);
    }
    if is_client_route(path)
        && accepts_html(&req)
        && let Some(index) = Assets::get(INDEX)
    {
        return respond(&req, INDEX, index);
    }
    not_found(req).await
}

fn is_client_route(path: &str) -> bool {
    let reserved = ["api/", "mcp", "metrics", "healthz", "readyz", "version"];
    !reserved.iter().any(|p| path.starts_with(p))
        && !path.rsplit('/').next().unwrap_or("").contains('.')
}

fn accepts_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn respond(req: &HttpRequest, path: &str, file: rust_embed::EmbeddedFile) -> HttpResponse {
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let cache = if path == INDEX {
        "no-cache"
    } else {
        "public, max-age=300, must-revalidate"
    };
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        HttpResponse::build(StatusCode::NOT_MODIFIED)
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static(cache)))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        res.insert_header((header::ETAG, v));
    }
    if fresh {
        return res.finish();
    }
    res.content_type(file.metadata.mimetype())
        .body(file.data.into_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_routes_are_extensionless_paths_outside_the_api() {
        assert!(is_client_route("agents/123"));
        assert!(is_client_route("board"));
        assert!(!is_client_route("api/agents"));
        assert!(!is_client_route("missing.js"));
        assert!(!is_client_route("metrics"));
    }
}
