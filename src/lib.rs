//! AgentHQ: a self-hosted, multi-tenant platform for running AI-agent organisations.
//!
//! The binary (`src/main.rs`) only parses the command line and dispatches to [`cli`]; everything
//! else lives in this library so integration tests and benchmarks drive the same code.
#![forbid(unsafe_code)]

pub mod agents;
pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod deferral;
pub mod domain;
pub mod failpoint;
pub mod net;
pub mod ops;
pub mod queue;
pub mod realtime;
pub mod secrets;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tenancy;

/// The version of this build, as shown by `agenthq version` and `GET /version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// mimalloc rather than the C library's allocator: the server allocates on many threads at
/// once (request handlers, the blocking pool, the queue's workers); glibc's malloc and free
/// took about a fifth of the CPU samples of agent runs under load (`perf`, benches/runs.rs).
/// Set here, in the library, so tests and benchmarks measure what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
