//! Runs: one attempt of an agent at a task, with what it cost; and the monthly budgets every
//! model call is checked against.

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

use super::agent::Agent;
use super::task::{NewTaskEvent, Task};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Completed,
    Failed,
    Blocked,
    Review,
    /// Ended with open subtasks: the task waits (blocked) until they finish.
    Waiting,
    Cancelled,
    BudgetExceeded,
    /// The process stopped under it (a crash or a lost lease); a later attempt takes over.
    Interrupted,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Completed => "completed",
            RunOutcome::Failed => "failed",
            RunOutcome::Blocked => "blocked",
            RunOutcome::Review => "review",
            RunOutcome::Waiting => "waiting",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::BudgetExceeded => "budget_exceeded",
            RunOutcome::Interrupted => "interrupted",
        }
    }
}

/// The month (`YYYY-MM`, UTC) spend counters belong to.
pub fn budget_month(at: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", at.year(), at.month())
}

/// Spend against the monthly budgets that apply to one agent, in micro-dollars. A budget of
/// `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budgets {
    pub agent_budget: Option<i64>,
    pub agent_spent: i64,
    pub tenant_budget: Option<i64>,
    pub tenant_spent: i64,
}

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    Agent,
    Tenant,
}

impl Budgets {
    /// Whether any budget limits the spend (else nothing needs checking or reserving).
    pub fn any(&self) -> bool {
        self.agent_budget.is_some() || self.tenant_budget.is_some()
    }

    /// The budget that is used up (spent ≥ budget), if any. Checked before every model call,
    /// so spend passes a budget by at most one call.
    pub fn exhausted(&self) -> Option<BudgetScope> {
        if self.agent_budget.is_some_and(|b| self.agent_spent >= b) {
            Some(BudgetScope::Agent)
        } else if self.tenant_budget.is_some_and(|b| self.tenant_spent >= b) {
            Some(BudgetScope::Tenant)
        } else {
            None
        }
    }
}

/// A run being started: the job's view of which attempt of which task it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub id: String,
    pub task_id: String,
    pub agent_id: String,
    pub attempt: i64,
}

/// What starting a run found.
#[derive(Debug, Clone, PartialEq)]
pub enum RunStart {
    /// The task is now `running` and its agent too.
    Started(Box<Started>),
    /// Nothing to run: the job is outdated or the agent may not work now (the reason says
    /// why; nothing was changed).
    Skipped(&'static str),
}

/// The tokens and cost of one model call, charged to the run, its task, its agent and the
/// tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub run_id: String,
    pub task_id: String,
    pub agent_id: String,
    pub provider_id: Option<String>,
    pub provider_kind: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micros: i64,
    /// False when the model had no price (tokens recorded at cost 0).
    pub priced: bool,
}

/// The end of a run, written in one transaction with its consequences.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub run_id: String,
    pub task_id: String,
    pub agent_id: String,
    pub outcome: RunOutcome,
    pub result: Option<String>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    /// Pause the agent (an exhausted budget).
    pub pause_agent: bool,
    pub duration_ms: i64,
    pub events: Vec<NewTaskEvent>,
    /// The last model call's charge and its steps, written with the end (one write fewer
    /// when the run ends on that call).
    pub charge: Option<(Charge, Vec<NewTaskEvent>)>,
}

/// A run that started.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub task: Task,
    pub agent: Agent,
    /// Runs of this attempt before this one (each interrupted).
    pub previous_runs: i64,
}

/// What ending a run changed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnded {
    pub task: Task,
    pub agent: Option<Agent>,
    /// Tasks that became runnable because of this end: the parent whose last subtask this
    /// was, or the task itself when its subtasks had all finished before it ended.
    pub woken: Vec<Task>,
    /// The budgets as the end's charge left them (when it carried one).
    pub budgets: Option<Budgets>,
}

/// A finished subtask, as its parent's next run reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChildResult {
    pub task_id: String,
    pub assignee: Option<String>,
    pub status: super::task::TaskStatus,
    pub prompt: String,
    pub result: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_exhausted_once_spend_reaches_it_and_the_agent_is_checked_first() {
        let b = |agent_budget, agent_spent, tenant_budget, tenant_spent| Budgets {
            agent_budget,
            agent_spent,
            tenant_budget,
            tenant_spent,
        };
        assert_eq!(b(None, 10, None, 10).exhausted(), None);
        assert_eq!(b(Some(100), 99, None, 0).exhausted(), None);
        assert_eq!(
            b(Some(100), 100, None, 0).exhausted(),
            Some(BudgetScope::Agent)
        );
        assert_eq!(
            b(None, 0, Some(5), 7).exhausted(),
            Some(BudgetScope::Tenant)
        );
        assert_eq!(
            b(Some(1), 1, Some(1), 1).exhausted(),
            Some(BudgetScope::Agent)
        );
        assert_eq!(b(Some(0), 0, None, 0).exhausted(), Some(BudgetScope::Agent));
    }

    #[test]
    fn spend_is_counted_per_utc_month() {
        let at = |s: &str| crate::domain::time::parse_rfc3339(s).unwrap();
        assert_eq!(budget_month(at("2026-11-30T23:59:59Z")), "2026-11");
        assert_eq!(budget_month(at("2026-12-01T00:00:00Z")), "2026-12");
        assert_eq!(budget_month(at("2026-12-01T00:30:00+01:00")), "2026-11");
    }
}
