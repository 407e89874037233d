//! Turning runnable tasks into `run_task` jobs: one job per task attempt (idempotency key
//! `run:<task>:<attempt>`), at most `agent_concurrency` running per agent (concurrency key
//! `agent:<id>`). Nothing polls a model to find work: a task is queued when a change makes it
//! runnable, and a periodic sweep re-queues what a crash may have lost.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::AgentsConfig;
use crate::domain::TenantId;
use crate::domain::task::{Task, TaskStatus};
use crate::queue::{JobSpec, Queue};
use crate::services::RunWaker;

/// The job kind of agent runs.
pub const RUN_TASK: &str = "run_task";

/// What a `run_task` job names: which attempt of which task, for which agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunJob {
    pub task_id: String,
    pub agent_id: String,
    pub attempt: i64,
}

pub struct Dispatcher {
    queue: Queue,
    agent_concurrency: u32,
    timeout: Duration,
    max_attempts: u32,
}

impl Dispatcher {
    pub fn new(queue: Queue, config: &AgentsConfig) -> Self {
        Self {
            queue,
            agent_concurrency: config.agent_concurrency,
            timeout: Duration::from_secs(config.run_timeout_secs),
            max_attempts: config.run_max_attempts,
        }
    }

    /// The job of a task's current attempt, if the task should have one (pending, or running
    /// after a crash, with an assignee).
    pub fn job(&self, tenant: TenantId, task: &Task) -> Option<JobSpec> {
        if !matches!(task.status, TaskStatus::Pending | TaskStatus::Running) {
            return None;
        }
        let agent_id = task.assignee_id.clone()?;
        let payload = RunJob {
            task_id: task.id.clone(),
            agent_id: agent_id.clone(),
            attempt: task.run_attempt,
        };
        let payload = serde_json::to_value(&payload).ok()?;
        Some(
            JobSpec::new(RUN_TASK)
                .tenant(tenant.to_string())
                .payload(payload)
                .priority(task.priority.as_i64() as i32)
                .idempotency_key(format!("run:{}:{}", task.id, task.run_attempt))
                .concurrency(format!("agent:{agent_id}"), self.agent_concurrency)
                .max_attempts(self.max_attempts)
                .timeout(self.timeout),
        )
    }
}

impl RunWaker for Dispatcher {
    fn wake(&self, tenant: TenantId, tasks: &[Task]) {
        let jobs: Vec<JobSpec> = tasks.iter().filter_map(|t| self.job(tenant, t)).collect();
        if jobs.is_empty() {
            return;
        }
        if let Err(e) = self.queue.enqueue_batch_blocking(jobs) {
            // The change stands; the sweep queues the task later.
            tracing::warn!(error = %e, %tenant, "could not queue agent runs; the sweep will retry");
        }
    }
}
