//! agents over HTTP.
