//! Outbound network calls the server makes on a tenant's behalf: the SSRF guard every such
//! URL goes through, and the MCP client that pings configured MCP servers.

pub mod mcp;
mod sse;
pub mod ssrf;
