//! chat: domain types and validation.
