//! tasks over HTTP.
