//! Extractor configuration and the fallback that turns actix's own error responses (404 for an
//! unknown route, 405, body errors of extractors…) into the JSON error format.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError};
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use super::ApiError;

/// How JSON bodies are read everywhere: size limit, content type, and error mapping.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req| json_error(err, limit).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let QueryPayloadError::Deserialize(e) = &err else {
            return ApiError::validation("query", err.to_string()).into();
        };
        ApiError::validation("query", e.to_string()).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _req| ApiError::validation("path", err.to_string()).into())
}

pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

fn json_error(err: JsonPayloadError, limit: usize) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::payload_too_large(limit)
        }
        JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::payload_too_large(limit),
        JsonPayloadError::ContentType => ApiError::unsupported_media_type("application/json"),
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            // Well-formed JSON of the wrong shape: a validation problem, not a syntax one.
            ApiError::validation("body", e.to_string())
        }
        JsonPayloadError::Deserialize(e) => ApiError::malformed_json(e.to_string()),
        JsonPayloadError::Payload(e) => ApiError::malformed_json(e.to_string()),
        other => ApiError::malformed_json(other.to_string()),
    }
}

/// Rewrites any error response that is not already JSON into the JSON error format.
pub fn json_error_responses<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let is_json = res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let (req, old) = res.into_parts();
        let mut new = ApiError::from_status(old.status()).error_response();
        // Keep headers such as `Allow` (405) that tell the client what to do instead.
        for (name, value) in old.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                new.headers_mut().insert(name.clone(), value.clone());
            }
        }
        let res: ServiceResponse<EitherBody<B, BoxBody>> =
            ServiceResponse::new(req, new).map_into_right_body();
        Ok(ErrorHandlerResponse::Response(res))
    })
}

/// The response for routes that do not exist.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::not_found(format!("no route for {} {}", req.method(), req.path())).error_response()
}

/// An extractor whose failure is reported only when the handler asks for the value: after the
/// handler has checked who is asking, so an unauthorised caller gets 401/403 rather than a
/// validation error that would confirm the route and the shape of its input.
///
/// (Actix runs a handler's extractors together and answers with whichever fails first; a body
/// error is usually known before an asynchronous membership check completes.)
pub struct Deferred<E>(Result<E, ApiError>);

impl<E> Deferred<E> {
    pub fn get(self) -> Result<E, ApiError> {
        self.0
    }
}

impl<E> actix_web::FromRequest for Deferred<E>
where
    E: actix_web::FromRequest<Error = actix_web::Error> + 'static,
{
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let inner = E::from_request(req, payload);
        Box::pin(async move {
            Ok(Deferred(inner.await.map_err(|e| {
                // The configured error handlers above turn every extractor error into an
                // ApiError; anything else is reported as a malformed request.
                e.as_error::<ApiError>()
                    .cloned()
                    .unwrap_or_else(|| ApiError::malformed_json(e.to_string()))
            })))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;
    use actix_web::{App, test};
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Probe {
        name: String,
    }

    async fn call(req: test::TestRequest) -> (StatusCode, Value) {
        let app = test::init_service(
            App::new()
                .app_data(json_config(64))
                .wrap(json_error_responses())
                .route(
                    "/probe",
                    web::post().to(|_: web::Json<Probe>| async { HttpResponse::Ok().finish() }),
                )
                .default_service(web::to(not_found)),
        )
        .await;
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status();
        let body: Value = test::read_body_json(res).await;
        (status, body)
    }

    fn post_json(body: &'static str) -> test::TestRequest {
        test::TestRequest::post()
            .uri("/probe")
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(body)
    }

    #[actix_web::test]
    async fn malformed_json_is_a_400_malformed_json() {
        let (status, body) = call(post_json("{\"name\": ")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "MALFORMED_JSON");
    }

    #[actix_web::test]
    async fn json_of_the_wrong_shape_is_a_validation_error() {
        let (status, body) = call(post_json("{\"nom\": \"x\"}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "VALIDATION_FAILED");
    }

    #[actix_web::test]
    async fn a_wrong_content_type_is_a_415() {
        let req = test::TestRequest::post()
            .uri("/probe")
            .insert_header((header::CONTENT_TYPE, "text/plain"))
            .set_payload("{\"name\": \"x\"}");
        let (status, body) = call(req).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body["error"]["code"], "UNSUPPORTED_MEDIA_TYPE");
    }

    #[actix_web::test]
    async fn a_body_over_the_limit_is_a_413() {
        let (status, body) = call(post_json(
            "{\"name\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
        ))
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
    }

    #[actix_web::test]
    async fn a_wrong_method_is_a_json_405_with_allow() {
        let app = test::init_service(
            App::new()
                .wrap(json_error_responses())
                .service(web::resource("/only-get").route(web::get().to(HttpResponse::Ok))),
        )
        .await;
        let res = test::call_service(
            &app,
            test::TestRequest::delete().uri("/only-get").to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        let body: Value = test::read_body_json(res).await;
        assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
    }
}
