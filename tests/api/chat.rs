//! chat over HTTP.
