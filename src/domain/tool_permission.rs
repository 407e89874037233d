//! tool_permission: domain types and validation.
