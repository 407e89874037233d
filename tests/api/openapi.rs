//! openapi over HTTP.
