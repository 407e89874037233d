//! Workspace settings: the one settings row of a tenant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Invalid;
use super::text::{self, MAX_SHORT_CHARS};

/// Longest workspace description (bytes of UTF-8).
const MAX_DESCRIPTION_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Workspace {
    pub name: String,
    pub description: String,
    /// An IANA time zone, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// A BCP 47 language tag, e.g. `en-US`.
    pub language: String,
    pub default_provider_id: Option<String>,
    pub default_model: Option<String>,
    /// The agent new tasks go to when they name no assignee (else the root of the org chart).
    pub default_assignee_id: Option<String>,
    /// Whether agents may delegate to any agent, not only to their reports.
    pub allow_any_delegation: bool,
    /// The organisation's monthly budget in US dollars (null: unlimited). Every model call
    /// is checked against it; when it is used up, runs stop with `BUDGET_EXCEEDED`.
    pub monthly_budget_usd: Option<f64>,
    /// What model calls cost this month (UTC), in US dollars.
    pub spent_this_month_usd: f64,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

/// `PATCH /api/workspace`: fields left out stay as they are; `null` clears an optional one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspacePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub default_provider_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub default_model: Option<Option<String>>,
    /// An agent's id or name; stored as the id.
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub default_assignee_id: Option<Option<String>>,
    pub allow_any_delegation: Option<bool>,
    /// US dollars a month, 0 or more; `null` removes the budget.
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<f64>, nullable)]
    pub monthly_budget_usd: Option<Option<f64>>,
}

impl WorkspacePatch {
    /// Checks every field that is set; the first bad one is the error.
    pub fn validate(mut self) -> Result<Self, Invalid> {
        if let Some(name) = &self.name {
            self.name = Some(text::short_required("name", name, MAX_SHORT_CHARS)?);
        }
        if let Some(description) = &self.description {
            self.description = Some(text::long(
                "description",
                description,
                MAX_DESCRIPTION_BYTES,
            )?);
        }
        if let Some(tz) = &self.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(Invalid::new(
                "timezone",
                "must be an IANA time zone name, e.g. UTC or Europe/Berlin",
            ));
        }
        if let Some(language) = &self.language
            && !is_language_tag(language)
        {
            return Err(Invalid::new(
                "language",
                "must be a BCP 47 language tag, e.g. en or en-US",
            ));
        }
        if let Some(Some(usd)) = self.monthly_budget_usd {
            super::agent::UsdMicros::from_usd("monthly_budget_usd", usd)?;
        }
        if let Some(Some(model)) = &self.default_model {
            text::short_required("default_model", model, MAX_SHORT_CHARS)?;
        }
        Ok(self)
    }
}

/// A BCP 47 tag in its common shape: a 2–3 letter language, then subtags of 1–8 letters or
/// digits (`en`, `en-US`, `zh-Hant-TW`, `es-419`).
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let language_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphabetic()));
    language_ok
        && tag.len() <= 35
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> Result<WorkspacePatch, Invalid> {
        serde_json::from_str::<WorkspacePatch>(json)
            .unwrap()
            .validate()
    }

    #[test]
    fn time_zones_and_languages_are_checked() {
        assert!(patch(r#"{"timezone": "Europe/Berlin", "language": "de-DE"}"#).is_ok());
        assert_eq!(
            patch(r#"{"timezone": "Mars/Olympus"}"#).unwrap_err().field,
            "timezone"
        );
        assert_eq!(
            patch(r#"{"language": "english!"}"#).unwrap_err().field,
            "language"
        );
        assert!(patch(r#"{"language": "zh-Hant-TW"}"#).is_ok());
    }

    #[test]
    fn a_blank_or_overlong_name_is_refused() {
        assert_eq!(patch(r#"{"name": " "}"#).unwrap_err().field, "name");
        let long = format!(r#"{{"name": "{}"}}"#, "n".repeat(201));
        assert_eq!(patch(&long).unwrap_err().field, "name");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<WorkspacePatch>(r#"{"nmae": "x"}"#).is_err());
    }
}
