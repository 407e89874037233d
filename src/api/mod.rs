//! The HTTP API: routes and their handlers (parse, call a service, shape the response).

mod admin;
mod audit;
mod auth;
mod error;
pub mod extract;
mod members;
pub mod middleware;
mod ops;
pub mod principal;
pub mod routes;
mod setup;
mod tenant;
mod tokens;

use std::net::IpAddr;

use actix_web::HttpRequest;

pub use error::ApiError;
pub use routes::{Access, Endpoint, configure, endpoints};

/// The client's address (the TCP peer).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    req.peer_addr().map(|a| a.ip())
}
