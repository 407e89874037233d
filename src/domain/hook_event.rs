//! hook_event: domain types and validation.
