//! mcp_server: domain types and validation.
