//! Integration tests: each starts the real server on a free loopback port with its own temp
//! data dir (or runs the real binary) and talks HTTP to it.

mod admin;
mod agents;
mod assets;
mod audit;
mod auth;
mod board;
mod chat;
mod cli;
mod concurrent_writes;
mod crash_safety;
mod errors;
mod helpers;
mod hook_events;
mod isolation;
mod jobs;
mod mcp_servers;
mod members;
mod openapi;
mod ops;
mod providers;
mod queue_crash;
mod rate_limits;
mod realtime;
mod resolution;
mod route_isolation;
mod run_tokens;
mod runs;
mod secrets;
mod settings;
mod setup;
mod storage_failures;
mod tasks;
mod token_api;
mod tokens;
mod users;
