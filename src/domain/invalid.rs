//! The one validation error of the domain: which input field is wrong and why. The HTTP layer
//! turns it into 400 `VALIDATION_FAILED` with `details.fields.<field>`.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct Invalid {
    /// The field as the client named it (`prompt`, `reports_to`, `query.limit`…).
    pub field: Cow<'static, str>,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
