//! Integration tests: each starts the real server on a free loopback port with its own temp
//! data dir (or runs the real binary) and talks HTTP to it.

mod admin;
mod assets;
mod audit;
mod auth;
mod cli;
mod crash_safety;
mod errors;
mod helpers;
mod isolation;
mod members;
mod ops;
mod rate_limits;
mod resolution;
mod route_isolation;
mod run_tokens;
mod secrets;
mod setup;
mod storage_failures;
mod token_api;
mod tokens;
mod users;
