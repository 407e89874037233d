//! The HTTP API: routes and their handlers (parse, call a service, shape the response).

mod admin;
mod audit;
mod auth;
pub mod client_ip;
mod error;
pub mod extract;
mod members;
pub mod middleware;
mod ops;
pub mod principal;
mod rate_limit;
pub mod routes;
mod setup;
mod tenant;
mod tokens;

pub use client_ip::client_ip;
pub use error::ApiError;
pub use routes::{Access, Endpoint, configure, endpoints};
