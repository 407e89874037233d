//! The HTTP API: routes and their handlers (parse, call a service, shape the response).

mod admin;
mod agents;
mod audit;
mod auth;
mod board;
mod chat;
pub mod client_ip;
mod error;
pub mod extract;
mod hook_events;
mod jobs;
mod json;
mod mcp_servers;
mod members;
pub mod middleware;
pub mod openapi;
mod ops;
pub mod principal;
mod providers;
mod rate_limit;
pub mod routes;
mod service;
mod settings;
mod setup;
mod tasks;
mod tenant;
mod tokens;
mod usage;
mod write_queue;
mod ws;

pub use client_ip::client_ip;
pub use error::ApiError;
pub use routes::{Access, Endpoint, configure, endpoints};
