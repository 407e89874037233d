//! Usage and cost records (`GET /api/usage`): model calls grouped by day, agent or model over
//! a date range.

use super::{Scope, ServiceError};
use crate::domain::Invalid;
use crate::domain::time::parse_rfc3339;
use crate::store::runs::{UsageBucket, UsageGroup};

/// The query of `GET /api/usage` as sent (text, so a bad value is a 400 naming it).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// `day` (default), `agent` or `model`.
    pub group_by: Option<String>,
    /// Calls at or after this time: RFC 3339 or a date (`2026-11-01`).
    pub from: Option<String>,
    /// Calls before this time: RFC 3339 or a date (exclusive).
    pub to: Option<String>,
}

/// The answer: the groups and their total.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    pub group_by: UsageGroup,
    pub items: Vec<UsageBucket>,
    /// Always `null`: the report comes whole.
    #[schema(value_type = Option<String>, required = true)]
    pub next_cursor: Option<String>,
    pub total: UsageBucket,
}

fn time(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Invalid> {
    let Some(value) = value else {
        return Ok(None);
    };
    let parsed = parse_rfc3339(value).ok().or_else(|| {
        chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    });
    parsed
        .map(Some)
        .ok_or_else(|| Invalid::new(field, "must be an RFC 3339 time or a date (YYYY-MM-DD)"))
}

pub fn report(scope: &Scope, query: UsageQuery) -> Result<UsageReport, ServiceError> {
    let group_by = match query.group_by.as_deref().unwrap_or("day") {
        "day" => UsageGroup::Day,
        "agent" => UsageGroup::Agent,
        "model" => UsageGroup::Model,
        _ => return Err(Invalid::new("group_by", "must be day, agent or model").into()),
    };
    let from = time("from", query.from.as_deref())?;
    let to = time("to", query.to.as_deref())?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(Invalid::new("to", "must not be before from").into());
    }
    let items = scope.store.usage(group_by, from, to)?;
    let mut total = UsageBucket {
        key: None,
        agent_name: None,
        calls: 0,
        input_tokens: 0,
        output_tokens: 0,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        cost_usd: 0.0,
        unpriced_calls: 0,
    };
    for b in &items {
        total.calls += b.calls;
        total.input_tokens += b.input_tokens;
        total.output_tokens += b.output_tokens;
        total.cache_read_tokens += b.cache_read_tokens;
        total.cache_write_tokens += b.cache_write_tokens;
        total.cost_usd += b.cost_usd;
        total.unpriced_calls += b.unpriced_calls;
    }
    total.cost_usd = (total.cost_usd * 1e6).round() / 1e6;
    Ok(UsageReport {
        group_by,
        items,
        next_cursor: None,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_bounds_take_times_or_dates_and_name_the_bad_one() {
        assert!(time("from", None).unwrap().is_none());
        let date = time("from", Some("2026-11-01")).unwrap().unwrap();
        assert_eq!(
            crate::domain::time::format_rfc3339(&date),
            "2026-11-01T00:00:00.000Z"
        );
        assert!(time("to", Some("2026-11-01T10:00:00Z")).unwrap().is_some());
        assert_eq!(time("to", Some("yesterday")).unwrap_err().field, "to");
        assert_eq!(time("from", Some("2026-13-01")).unwrap_err().field, "from");
    }
}
