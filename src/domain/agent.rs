//! Agents: named AI employees with a place in the org chart. Types, parsing and the rules that
//! need no database (name shape, levels, money, cycles in the chart).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Invalid;
use super::text::{self, MAX_LONG_BYTES, MAX_NAME_CHARS, MAX_SHORT_CHARS};

mod org;

pub use org::{ChainLink, OrgChart, OrgNode, cycle_through};

/// An agent's name: a slug (`^[a-z][a-z0-9-]*$`, at most 64 characters), unique in its tenant.
/// Paths, mentions and tools address agents by it, so it is URL- and prompt-safe by shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AgentName(String);

impl AgentName {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        Self::parse_field("name", value)
    }

    /// Like [`Self::parse`], reporting errors against `field`.
    pub fn parse_field(field: &'static str, value: &str) -> Result<Self, Invalid> {
        if value.is_empty() {
            return Err(Invalid::new(field, "must not be empty"));
        }
        if value.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid::new(
                field,
                format!("must be at most {MAX_NAME_CHARS} characters"),
            ));
        }
        let mut bytes = value.bytes();
        let starts_with_letter = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
        if !starts_with_letter
            || !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Invalid::new(
                field,
                "must be a lowercase slug: a letter, then letters, digits or '-' \
                 (e.g. lead-engineer)",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Seniority in the org chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    #[default]
    Ic,
    Lead,
    Manager,
    Vp,
    CSuite,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Ic,
        Level::Lead,
        Level::Manager,
        Level::Vp,
        Level::CSuite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ic => "ic",
            Level::Lead => "lead",
            Level::Manager => "manager",
            Level::Vp => "vp",
            Level::CSuite => "c-suite",
        }
    }

    pub fn parse(field: &'static str, value: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == value)
            .ok_or_else(|| Invalid::new(field, "must be one of ic, lead, manager, vp, c-suite"))
    }
}

/// What an agent is doing. The runtime moves agents between `idle`, `running` and `error`;
/// people pause and resume them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    #[default]
    Idle,
    Running,
    Error,
    Paused,
}

impl AgentStatus {
    pub const ALL: [AgentStatus; 4] = [
        AgentStatus::Idle,
        AgentStatus::Running,
        AgentStatus::Error,
        AgentStatus::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Idle => "idle",
            AgentStatus::Running => "running",
            AgentStatus::Error => "error",
            AgentStatus::Paused => "paused",
        }
    }

    pub fn parse(field: &'static str, value: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| Invalid::new(field, "must be one of idle, running, error, paused"))
    }

    /// A status a person may set through the API: pausing and resuming. `running` and
    /// `error` are facts only the runtime knows.
    pub fn parse_settable(field: &'static str, value: &str) -> Result<Self, Invalid> {
        match Self::parse(field, value)? {
            s @ (AgentStatus::Idle | AgentStatus::Paused) => Ok(s),
            _ => Err(Invalid::new(
                field,
                "only idle or paused can be set; running and error are set by the runtime",
            )),
        }
    }
}

/// An amount of US dollars, held as integer micro-dollars (what the database stores), shown
/// as a number of dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct UsdMicros(i64);

/// The largest amount accepted from a client (a billion dollars): far above any real budget,
/// far below where micro-dollars overflow or dollars lose cent precision as `f64`.
const MAX_USD: f64 = 1e9;

impl UsdMicros {
    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Dollars from a client: finite, not negative, at most a billion; rounded to micro-dollars.
    pub fn from_usd(field: &'static str, usd: f64) -> Result<Self, Invalid> {
        if !usd.is_finite() || usd < 0.0 {
            return Err(Invalid::new(
                field,
                "must be a number of dollars, 0 or more",
            ));
        }
        if usd > MAX_USD {
            return Err(Invalid::new(field, "must be at most 1000000000"));
        }
        Ok(Self((usd * 1e6).round() as i64))
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn usd(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

impl Serialize for UsdMicros {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.usd())
    }
}

/// An agent, as stored and as returned.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Agent {
    pub id: String,
    /// Unique slug; routes accept it in place of the id.
    #[schema(value_type = String, example = "lead-engineer")]
    pub name: AgentName,
    pub display_name: String,
    pub role: String,
    pub department: String,
    pub level: Level,
    /// The agent's system prompt.
    pub personality: String,
    pub status: AgentStatus,
    /// The id of the agent's manager; `null` for a root of the org chart.
    #[schema(required = true)]
    pub reports_to: Option<String>,
    #[schema(required = true)]
    pub provider_id: Option<String>,
    #[schema(required = true)]
    pub model: Option<String>,
    /// Dollars per calendar month; `null` means no agent budget (the tenant's still applies).
    #[schema(value_type = Option<f64>, required = true)]
    pub monthly_budget_usd: Option<UsdMicros>,
    #[schema(value_type = f64)]
    pub spent_this_month_usd: UsdMicros,
    /// The colour the UI draws the agent in, `#rrggbb`.
    #[schema(required = true, example = "#4f46e5")]
    pub avatar_color: Option<String>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

/// Which agents a list shows: every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFilter {
    pub department: Option<String>,
    pub level: Option<Level>,
    pub status: Option<AgentStatus>,
}

/// `GET /api/agents`: one page of agents.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentPage {
    pub items: Vec<Agent>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<super::Page<Agent>> for AgentPage {
    fn from(page: super::Page<Agent>) -> Self {
        AgentPage {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

/// `POST /api/agents`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// Slug: `^[a-z][a-z0-9-]*$`, at most 64 characters, unique in the tenant.
    #[schema(pattern = "^[a-z][a-z0-9-]*$", min_length = 1, max_length = 64)]
    pub name: String,
    /// Defaults to the name.
    #[schema(min_length = 1, max_length = 200)]
    pub display_name: Option<String>,
    #[schema(max_length = 200)]
    pub role: Option<String>,
    #[schema(max_length = 200)]
    pub department: Option<String>,
    /// Defaults to `ic`.
    #[schema(value_type = Option<Level>)]
    pub level: Option<String>,
    /// The system prompt, at most 100 KiB of UTF-8.
    pub personality: Option<String>,
    /// The manager: an agent's id or name.
    #[schema(min_length = 1, max_length = 200)]
    pub reports_to: Option<String>,
    /// Must name an existing provider.
    #[schema(min_length = 1, max_length = 200)]
    pub provider_id: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub model: Option<String>,
    #[schema(minimum = 0, maximum = 1000000000)]
    pub monthly_budget_usd: Option<f64>,
    /// `#rrggbb`.
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub avatar_color: Option<String>,
}

/// `PATCH /api/agents/{id}`: fields left out stay; `null` clears an optional one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    #[schema(pattern = "^[a-z][a-z0-9-]*$", min_length = 1, max_length = 64)]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub display_name: Option<String>,
    #[schema(max_length = 200)]
    pub role: Option<String>,
    #[schema(max_length = 200)]
    pub department: Option<String>,
    #[schema(value_type = Option<Level>)]
    pub level: Option<String>,
    pub personality: Option<String>,
    /// `idle` or `paused` (pause and resume); the runtime sets the others, and owns the status
    /// of a running agent (409).
    #[schema(value_type = Option<AgentStatus>)]
    pub status: Option<String>,
    /// The new manager (id or name); `null` makes the agent a root. Cycles are refused.
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub reports_to: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub provider_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub model: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<f64>, nullable, minimum = 0, maximum = 1000000000)]
    pub monthly_budget_usd: Option<Option<f64>>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable, pattern = "^#[0-9a-fA-F]{6}$")]
    pub avatar_color: Option<Option<String>>,
}

/// A new agent, checked; references (`reports_to`, `provider_id`) still as the client gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentDraft {
    pub name: AgentName,
    pub display_name: String,
    pub role: String,
    pub department: String,
    pub level: Level,
    pub personality: String,
    pub reports_to: Option<String>,
    pub provider_id: Option<String>,
    pub model: Option<String>,
    pub monthly_budget: Option<UsdMicros>,
    pub avatar_color: Option<String>,
}

impl NewAgent {
    /// Checks every field; the first bad one is the error.
    pub fn validate(self) -> Result<AgentDraft, Invalid> {
        let name = AgentName::parse(&self.name)?;
        let display_name = match &self.display_name {
            Some(d) => text::short_required("display_name", d, MAX_SHORT_CHARS)?,
            None => name.as_str().to_owned(),
        };
        Ok(AgentDraft {
            display_name,
            role: optional_short("role", self.role.as_deref())?.unwrap_or_default(),
            department: optional_short("department", self.department.as_deref())?
                .unwrap_or_default(),
            level: self
                .level
                .as_deref()
                .map(|l| Level::parse("level", l))
                .transpose()?
                .unwrap_or_default(),
            personality: self
                .personality
                .as_deref()
                .map(|p| text::long("personality", p, MAX_LONG_BYTES))
                .transpose()?
                .unwrap_or_default(),
            reports_to: self
                .reports_to
                .as_deref()
                .map(|r| reference("reports_to", r))
                .transpose()?,
            provider_id: self
                .provider_id
                .as_deref()
                .map(|p| reference("provider_id", p))
                .transpose()?,
            model: self
                .model
                .as_deref()
                .map(|m| text::short_required("model", m, MAX_SHORT_CHARS))
                .transpose()?,
            monthly_budget: self
                .monthly_budget_usd
                .map(|b| UsdMicros::from_usd("monthly_budget_usd", b))
                .transpose()?,
            avatar_color: self.avatar_color.as_deref().map(color).transpose()?,
            name,
        })
    }
}

/// A change to an agent, checked; `Some(None)` clears, references as the client gave them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentChanges {
    pub name: Option<AgentName>,
    pub display_name: Option<String>,
    pub role: Option<String>,
    pub department: Option<String>,
    pub level: Option<Level>,
    pub personality: Option<String>,
    pub status: Option<AgentStatus>,
    pub reports_to: Option<Option<String>>,
    pub provider_id: Option<Option<String>>,
    pub model: Option<Option<String>>,
    pub monthly_budget: Option<Option<UsdMicros>>,
    pub avatar_color: Option<Option<String>>,
}

impl AgentPatch {
    pub fn validate(self) -> Result<AgentChanges, Invalid> {
        Ok(AgentChanges {
            name: self.name.as_deref().map(AgentName::parse).transpose()?,
            display_name: self
                .display_name
                .as_deref()
                .map(|d| text::short_required("display_name", d, MAX_SHORT_CHARS))
                .transpose()?,
            role: optional_short("role", self.role.as_deref())?,
            department: optional_short("department", self.department.as_deref())?,
            level: self
                .level
                .as_deref()
                .map(|l| Level::parse("level", l))
                .transpose()?,
            personality: self
                .personality
                .as_deref()
                .map(|p| text::long("personality", p, MAX_LONG_BYTES))
                .transpose()?,
            status: self
                .status
                .as_deref()
                .map(|s| AgentStatus::parse_settable("status", s))
                .transpose()?,
            reports_to: nullable(self.reports_to, |r| reference("reports_to", r))?,
            provider_id: nullable(self.provider_id, |p| reference("provider_id", p))?,
            model: nullable(self.model, |m| {
                text::short_required("model", m, MAX_SHORT_CHARS)
            })?,
            monthly_budget: match self.monthly_budget_usd {
                None => None,
                Some(None) => Some(None),
                Some(Some(b)) => Some(Some(UsdMicros::from_usd("monthly_budget_usd", b)?)),
            },
            avatar_color: nullable(self.avatar_color, color)?,
        })
    }
}

impl AgentChanges {
    /// The names of the fields this change sets (what the audit entry records: values may be
    /// long or personal).
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("display_name", self.display_name.is_some()),
            ("role", self.role.is_some()),
            ("department", self.department.is_some()),
            ("level", self.level.is_some()),
            ("personality", self.personality.is_some()),
            ("status", self.status.is_some()),
            ("reports_to", self.reports_to.is_some()),
            ("provider_id", self.provider_id.is_some()),
            ("model", self.model.is_some()),
            ("monthly_budget_usd", self.monthly_budget.is_some()),
            ("avatar_color", self.avatar_color.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

fn optional_short(field: &'static str, value: Option<&str>) -> Result<Option<String>, Invalid> {
    value
        .map(|v| text::short(field, v, MAX_SHORT_CHARS))
        .transpose()
}

/// A colour as `#rrggbb`, kept in lowercase.
fn color(value: &str) -> Result<String, Invalid> {
    let hex = value.strip_prefix('#').unwrap_or_default();
    if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(Invalid::new(
            "avatar_color",
            "must be a colour as #rrggbb, e.g. #4f46e5",
        ))
    }
}

/// A reference to another row (an id, or an agent's name): single-line, not blank, bounded.
fn reference(field: &'static str, value: &str) -> Result<String, Invalid> {
    text::short_required(field, value, MAX_SHORT_CHARS)
}

fn nullable(
    value: Option<Option<String>>,
    check: impl Fn(&str) -> Result<String, Invalid>,
) -> Result<Option<Option<String>>, Invalid> {
    Ok(match value {
        None => None,
        Some(None) => Some(None),
        Some(Some(v)) => Some(Some(check(&v)?)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_are_lowercase_slugs_of_at_most_64_characters() {
        for ok in ["a", "lead-engineer", "qa2", &"a".repeat(64)] {
            assert!(AgentName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Lead",
            "2fast",
            "-x",
            "has space",
            "ünï",
            "a_b",
            &"a".repeat(65),
        ] {
            assert_eq!(AgentName::parse(bad).unwrap_err().field, "name", "{bad}");
        }
    }

    #[test]
    fn levels_parse_from_their_contract_names() {
        assert_eq!(Level::parse("level", "c-suite").unwrap(), Level::CSuite);
        assert_eq!(Level::parse("level", "ic").unwrap(), Level::Ic);
        assert_eq!(Level::parse("level", "boss").unwrap_err().field, "level");
        assert_eq!(Level::parse("level", "IC").unwrap_err().field, "level");
        for level in Level::ALL {
            let json = serde_json::to_value(level).unwrap();
            assert_eq!(json, level.as_str());
        }
    }

    #[test]
    fn only_idle_and_paused_can_be_set_by_people() {
        assert!(AgentStatus::parse_settable("status", "paused").is_ok());
        assert!(AgentStatus::parse_settable("status", "idle").is_ok());
        assert!(AgentStatus::parse_settable("status", "running").is_err());
        assert!(AgentStatus::parse_settable("status", "asleep").is_err());
    }

    #[test]
    fn dollars_round_to_micro_dollars_and_refuse_nonsense() {
        let b = UsdMicros::from_usd("b", 12.345_678_9).unwrap();
        assert_eq!(b.micros(), 12_345_679);
        assert_eq!(serde_json::to_value(b).unwrap(), 12.345679);
        for bad in [-0.01, f64::NAN, f64::INFINITY, 2e9] {
            assert!(UsdMicros::from_usd("b", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_new_agent_defaults_its_display_name_and_level() {
        let new: NewAgent = serde_json::from_str(r#"{"name": "scout"}"#).unwrap();
        let draft = new.validate().unwrap();
        assert_eq!(draft.display_name, "scout");
        assert_eq!(draft.level, Level::Ic);
        let bad: NewAgent = serde_json::from_str(r#"{"name": "x", "level": "boss"}"#).unwrap();
        assert_eq!(bad.validate().unwrap_err().field, "level");
    }
}
