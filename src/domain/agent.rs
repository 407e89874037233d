//! agent: domain types and validation.
