//! Tool permissions: which platform tools agents may use. The workspace sets a default per
//! tool; an agent may override it either way.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Invalid;
use super::text::{self, MAX_NAME_CHARS};

/// Longest tool description (characters).
const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Longest icon name (characters).
const MAX_ICON_CHARS: usize = 64;
/// Most overrides one request may change.
const MAX_OVERRIDES: usize = 500;

/// A tool's name as runtimes call it: a letter, then letters, digits, `_`, `-`, `.` or `:`
/// (e.g. `delegate_task`, `github.create_issue`), at most 64 characters, unique per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ToolName(String);

impl ToolName {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if value.is_empty() {
            return Err(Invalid::new("name", "must not be empty"));
        }
        if value.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid::new(
                "name",
                format!("must be at most {MAX_NAME_CHARS} characters"),
            ));
        }
        let mut bytes = value.bytes();
        let ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
            && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
        if !ok {
            return Err(Invalid::new(
                "name",
                "must start with a letter and contain only letters, digits, '_', '-', '.' or ':'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A workspace-wide tool permission: the default for every agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ToolPermission {
    pub id: String,
    #[schema(value_type = String, example = "delegate_task")]
    pub name: ToolName,
    pub description: String,
    /// Whether agents may use the tool unless overridden for them.
    pub enabled: bool,
    #[schema(required = true)]
    pub icon: Option<String>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

/// `GET /api/tool-permissions`: one page of tool permissions, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ToolPermissionPage {
    pub items: Vec<ToolPermission>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<super::Page<ToolPermission>> for ToolPermissionPage {
    fn from(page: super::Page<ToolPermission>) -> Self {
        ToolPermissionPage {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

/// `POST /api/tool-permissions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToolPermission {
    #[schema(
        pattern = "^[A-Za-z][A-Za-z0-9_.:-]*$",
        min_length = 1,
        max_length = 64
    )]
    pub name: String,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// Defaults to `true`.
    pub enabled: Option<bool>,
    #[schema(min_length = 1, max_length = 64)]
    pub icon: Option<String>,
}

/// A new tool permission, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPermissionDraft {
    pub name: ToolName,
    pub description: String,
    pub enabled: bool,
    pub icon: Option<String>,
}

impl NewToolPermission {
    pub fn validate(self) -> Result<ToolPermissionDraft, Invalid> {
        Ok(ToolPermissionDraft {
            name: ToolName::parse(&self.name)?,
            description: self
                .description
                .as_deref()
                .map(description)
                .transpose()?
                .unwrap_or_default(),
            enabled: self.enabled.unwrap_or(true),
            icon: self.icon.as_deref().map(icon).transpose()?,
        })
    }
}

/// `PATCH /api/tool-permissions/{id}`: fields left out stay; `null` clears the icon.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolPermissionPatch {
    #[schema(
        pattern = "^[A-Za-z][A-Za-z0-9_.:-]*$",
        min_length = 1,
        max_length = 64
    )]
    pub name: Option<String>,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>, nullable, min_length = 1, max_length = 64)]
    pub icon: Option<Option<String>>,
}

/// A change to a tool permission, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPermissionChanges {
    pub name: Option<ToolName>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub icon: Option<Option<String>>,
}

impl ToolPermissionPatch {
    pub fn validate(self) -> Result<ToolPermissionChanges, Invalid> {
        Ok(ToolPermissionChanges {
            name: self.name.as_deref().map(ToolName::parse).transpose()?,
            description: self.description.as_deref().map(description).transpose()?,
            enabled: self.enabled,
            icon: match self.icon {
                None => None,
                Some(None) => Some(None),
                Some(Some(i)) => Some(Some(icon(&i)?)),
            },
        })
    }
}

impl ToolPermissionChanges {
    /// The names of the fields this change sets (for the audit entry).
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("description", self.description.is_some()),
            ("enabled", self.enabled.is_some()),
            ("icon", self.icon.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

fn description(value: &str) -> Result<String, Invalid> {
    text::short("description", value, MAX_DESCRIPTION_CHARS)
}

fn icon(value: &str) -> Result<String, Invalid> {
    text::short_required("icon", value, MAX_ICON_CHARS)
}

/// A workspace tool permission as it applies to one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AgentToolPermission {
    /// The workspace tool permission's id.
    pub id: String,
    #[schema(value_type = String, example = "delegate_task")]
    pub name: ToolName,
    pub description: String,
    #[schema(required = true)]
    pub icon: Option<String>,
    /// Whether this agent may use the tool: its override if it has one, else the default.
    pub enabled: bool,
    /// The workspace default.
    pub workspace_enabled: bool,
    /// Whether the agent has its own setting for this tool.
    pub overridden: bool,
}

/// `GET /api/agents/{id}/tool-permissions`: every workspace tool permission, merged with the
/// agent's overrides, by name. Never paginated (`next_cursor` is always `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AgentToolPermissions {
    pub items: Vec<AgentToolPermission>,
    /// Always `null`: the whole list comes in one response.
    #[schema(value_type = Option<String>, required = true)]
    pub next_cursor: Option<String>,
}

/// `PATCH /api/agents/{id}/tool-permissions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolOverridesPatch {
    /// Tool (name or id) → `true` (allow), `false` (deny) or `null` (remove the override, so
    /// the workspace default applies). Tools left out keep their current setting.
    #[schema(value_type = std::collections::HashMap<String, Option<bool>>)]
    pub overrides: BTreeMap<String, Option<bool>>,
}

impl ToolOverridesPatch {
    pub fn validate(self) -> Result<BTreeMap<String, Option<bool>>, Invalid> {
        if self.overrides.len() > MAX_OVERRIDES {
            return Err(Invalid::new(
                "overrides",
                format!("must name at most {MAX_OVERRIDES} tools"),
            ));
        }
        Ok(self.overrides)
    }
}

/// The nine tools the platform gives every agent runtime (seeded by the tenant migrations).
pub const PLATFORM_TOOLS: [&str; 9] = [
    "delegate_task",
    "finish_task",
    "send_message",
    "read_messages",
    "post_board_item",
    "query_board",
    "list_agents",
    "get_task",
    "update_task",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_allow_namespaced_identifiers() {
        for ok in ["delegate_task", "github.create_issue", "mcp:fs-read", "T1"] {
            assert!(ToolName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_x", "has space", "a/b", &"a".repeat(65)] {
            assert_eq!(ToolName::parse(bad).unwrap_err().field, "name", "{bad}");
        }
    }

    #[test]
    fn overrides_take_true_false_or_null_and_nothing_else() {
        let patch: ToolOverridesPatch =
            serde_json::from_str(r#"{"overrides": {"a": true, "b": false, "c": null}}"#).unwrap();
        let overrides = patch.validate().unwrap();
        assert_eq!(overrides["a"], Some(true));
        assert_eq!(overrides["c"], None);
        assert!(
            serde_json::from_str::<ToolOverridesPatch>(r#"{"overrides": {"a": "yes"}}"#).is_err()
        );
    }
}
