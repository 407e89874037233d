//! mcp_servers over HTTP.
