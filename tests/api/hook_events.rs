//! hook_events over HTTP.
