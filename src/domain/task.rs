//! task: domain types and validation.
