//! Placeholder: the wire format is being written (see the module docs of `providers`).

use futures_util::future::BoxFuture;

use super::{DeltaSink, ModelClient, ModelReply, ModelRequest, ProviderError};
use crate::domain::provider::ProviderAccess;

pub struct OpenAiClient;

impl OpenAiClient {
    pub fn new(_access: &ProviderAccess, _http: reqwest::Client) -> Self {
        OpenAiClient
    }
}

impl ModelClient for OpenAiClient {
    fn turn<'a>(
        &'a self,
        _request: &'a ModelRequest,
        _sink: DeltaSink<'a>,
    ) -> BoxFuture<'a, Result<ModelReply, ProviderError>> {
        Box::pin(async { Err(ProviderError::Misconfigured("not available yet".into())) })
    }
}
