//! The run of one task attempt: a `run_task` job. It starts the run (task and agent
//! `running`), builds the prompt, then drives the tool loop against the agent's provider —
//! budget check, model call (text streamed as `run.event`), charge, tool calls — until the
//! agent finishes the task, waits for its subtasks, runs out of turns or budget, or fails.
//! Every step is a `run.event` on the bus and an entry in the task's event log.
//!
//! Failure policy: a provider that stays unavailable after the client's own retries fails
//! the job attempt (the queue retries it later; the next attempt starts the run over); on the
//! last attempt, or for errors no retry can fix, the task fails with a clear `error_code`.
//! A crash or lost lease leaves the task `running` at its attempt: the job runs again and
//! starts over, at most `run_max_attempts` times, then the task fails.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::budget_gate::{self, Admission, BudgetGates};
use super::dispatch::RunJob;
use super::prompt::{self, PromptInput};
use super::providers::{
    Block, Delta, Message, ModelClient, ModelReply, ModelRequest, ProviderError, Role, RunFacts,
    ToolInput,
};
use super::tools::{self, ToolEnv};
use super::{ProviderSource, pricing};
use crate::audit::{Actor, ActorKind, Origin, Target};
use crate::config::AgentsConfig;
use crate::domain::TenantId;
use crate::domain::agent::Agent;
use crate::domain::provider::ProviderAccess;
use crate::domain::run::{BudgetScope, Charge, NewRun, RunEnd, RunOutcome, RunStart, budget_month};
use crate::domain::task::{NewTaskEvent, Task};
use crate::queue::{JobContext, JobFailure};
use crate::realtime::{EventBus, Topic};
use crate::services::{RunWaker, Scope, ServiceError};
use crate::store::{TenantDatabases, blocking};
use crate::tenancy::TenantDirectory;

/// What the runtime needs from the server.
pub struct Runtime {
    pub tenants: Arc<dyn TenantDatabases>,
    pub directory: Arc<TenantDirectory>,
    pub events: Arc<EventBus>,
    pub runs: Arc<dyn RunWaker>,
    pub providers: Arc<dyn ProviderSource>,
    pub http: reqwest::Client,
    pub config: AgentsConfig,
    pub metrics: Arc<crate::ops::run_metrics::RunMetrics>,
    /// Admits model calls against budgets across the runs of this process.
    pub gates: Arc<BudgetGates>,
}

/// Where a run's time went: waiting for the model, over how many calls.
#[derive(Default)]
struct RunClock {
    model: std::time::Duration,
    turns: u32,
    /// Tool results of the last turn, not yet in the task's event log: they are written with
    /// the next turn's charge, or with the run's end (one write fewer per turn).
    events: Vec<NewTaskEvent>,
    /// What the last charge read back (cancel request, budgets): the next turn's check.
    check: Option<(bool, crate::domain::run::Budgets)>,
    /// The last call's charge, left for the end to write.
    charge: Option<(Charge, Vec<NewTaskEvent>)>,
    /// The last call's place at its budgets' gates, let go once its charge is written.
    admission: Option<Admission>,
}

/// How a run ended, before it is written.
struct Ending {
    outcome: RunOutcome,
    result: Option<String>,
    error_code: Option<&'static str>,
    error: Option<String>,
    pause_agent: bool,
    /// Entries of the task's event log still to write.
    events: Vec<NewTaskEvent>,
    /// The last call's charge, still to write.
    charge: Option<(Charge, Vec<NewTaskEvent>)>,
}

impl Ending {
    /// A budget is used up: the run stops before its next call and the agent pauses.
    fn budget_exceeded(which: BudgetScope) -> Self {
        let message = match which {
            BudgetScope::Agent => "the agent's monthly budget is used up",
            BudgetScope::Tenant => "the organisation's monthly budget is used up",
        };
        let mut ending = Ending::failed("BUDGET_EXCEEDED", message);
        ending.outcome = RunOutcome::BudgetExceeded;
        ending.pause_agent = true;
        ending
    }

    fn new(outcome: RunOutcome, result: Option<String>) -> Self {
        Self {
            outcome,
            result,
            error_code: None,
            error: None,
            pause_agent: false,
            events: Vec::new(),
            charge: None,
        }
    }

    fn failed(code: &'static str, error: impl Into<String>) -> Self {
        let error = error.into();
        Self {
            outcome: RunOutcome::Failed,
            result: Some(error.clone()),
            error_code: Some(code),
            error: Some(error),
            pause_agent: false,
            events: Vec::new(),
            charge: None,
        }
    }
}

fn store_failure(e: impl std::fmt::Display) -> JobFailure {
    JobFailure::retry(format!("storage: {e}"))
}

async fn on_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, JobFailure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(store_failure)?
        .map_err(store_failure)
}

/// The run's publishing of steps: to the bus (subscribers of the agent or the task) and, for
/// whole steps, into the task's event log.
#[derive(Clone)]
struct Steps {
    events: Arc<EventBus>,
    tenant: TenantId,
    slug: Arc<str>,
    run_id: String,
    task_id: String,
    agent_id: String,
}

impl Steps {
    fn publish(&self, kind: &str, mut data: Value) {
        data["kind"] = json!(kind);
        data["run_id"] = json!(self.run_id);
        data["task_id"] = json!(self.task_id);
        data["agent_id"] = json!(self.agent_id);
        self.events.publish_to(
            self.tenant,
            &self.slug,
            "run.event",
            data,
            vec![
                Topic::Agent(self.agent_id.clone()),
                Topic::Task(self.task_id.clone()),
            ],
        );
    }

    /// Publishes the step and returns it as a task event for the log.
    fn step(&self, kind: &'static str, data: Value) -> NewTaskEvent {
        self.publish(kind, data.clone());
        let mut logged = data;
        logged["run_id"] = json!(self.run_id);
        NewTaskEvent { kind, data: logged }
    }
}

impl Runtime {
    /// The `run_task` job handler.
    pub async fn handle(self: Arc<Self>, ctx: JobContext) -> Result<(), JobFailure> {
        let entered = Instant::now();
        let job: RunJob = ctx.payload()?;
        let tenant_id = ctx
            .job
            .tenant
            .as_deref()
            .and_then(|t| TenantId::parse(t).ok())
            .ok_or_else(|| JobFailure::permanent("a run job must name its tenant by id"))?;
        let Some(tenant) = self.directory.get_by_id(tenant_id) else {
            return Ok(()); // the tenant is gone
        };
        if tenant.status != crate::domain::TenantStatus::Active {
            // Suspended: its pending tasks are queued again by the sweep once it is resumed.
            return Ok(());
        }
        let tenants = self.tenants.clone();
        let store = blocking(move || tenants.open(tenant_id))
            .await
            .map_err(store_failure)?;
        let scope = Scope {
            tenant: tenant_id,
            slug: tenant.slug.as_str().into(),
            store,
            events: self.events.clone(),
            actor: Actor {
                kind: ActorKind::Agent,
                id: Some(job.agent_id.clone()),
            },
            origin: Origin::default(),
            runs: self.runs.clone(),
            write_intent: None,
        };
        let run = NewRun {
            id: uuid::Uuid::now_v7().to_string(),
            task_id: job.task_id.clone(),
            agent_id: job.agent_id.clone(),
            attempt: job.attempt,
        };
        // Starting the run and reading what it needs: one trip to the blocking pool.
        let begun = {
            let (scope, run) = (scope.clone(), run.clone());
            let (providers, config) = (self.providers.clone(), self.config.clone());
            on_blocking(move || {
                let audit = scope
                    .audit("run.started", Target::new("task", &run.task_id))
                    .with_details(json!({ "run_id": run.id, "attempt": run.attempt }));
                match scope.store.start_run(&run, &audit)? {
                    RunStart::Skipped(why) => Ok(Err(why)),
                    RunStart::Started(started) => {
                        let setup = if started.previous_runs >= i64::from(config.run_max_attempts) {
                            Ok(Err(Ending::failed(
                                "RUN_FAILED",
                                format!(
                                    "the run was interrupted {} times (crash or timeout)",
                                    started.previous_runs
                                ),
                            )))
                        } else {
                            prepare(
                                &scope,
                                providers.as_ref(),
                                &config,
                                started.task.clone(),
                                started.agent.clone(),
                            )
                        };
                        Ok(Ok((started, setup)))
                    }
                }
            })
            .await?
        };
        let (started_run, setup) = match begun {
            Err(why) => {
                tracing::debug!(task = %job.task_id, why, "run skipped");
                return Ok(());
            }
            Ok(begun) => begun,
        };
        let (task, agent) = (started_run.task, started_run.agent);
        scope.publish_value("task.updated", &task);
        publish_status(&scope, &agent);
        let steps = Steps {
            events: self.events.clone(),
            tenant: tenant_id,
            slug: scope.slug.clone(),
            run_id: run.id.clone(),
            task_id: task.id.clone(),
            agent_id: agent.id.clone(),
        };
        let started = Instant::now();
        let mut clock = RunClock::default();
        let ending = {
            match self
                .tool_loop(&ctx, &scope, &steps, setup, &mut clock)
                .await
            {
                Ok(mut ending) => {
                    ending.events = std::mem::take(&mut clock.events);
                    ending.charge = clock.charge.take();
                    ending
                }
                Err(LoopError::Retry(message)) if ctx.attempt() < ctx.job.max_attempts => {
                    // The task stays running at this attempt; the job's next attempt starts
                    // the run over.
                    self.interrupt(&scope, &run, clock.charge.take()).await;
                    return Err(JobFailure::retry(message));
                }
                Err(LoopError::Retry(message)) => Ending::failed("PROVIDER_ERROR", message),
                Err(LoopError::Stopped) => {
                    // Shutdown or timeout: released or retried by the queue.
                    self.interrupt(&scope, &run, clock.charge.take()).await;
                    return Err(JobFailure::retry("the run was stopped"));
                }
            }
        };
        let outcome = ending.outcome;
        let admission = clock.admission.take();
        self.end(&scope, &steps, &run, ending, started, admission)
            .await?;
        self.metrics.run_ended(
            outcome.as_str(),
            entered.elapsed(),
            clock.model,
            clock.turns,
        );
        Ok(())
    }

    /// Marks the run row interrupted (best effort: the next start does it too), writing the
    /// charge of a model call the run could not record yet (it was made: it costs).
    async fn interrupt(
        &self,
        scope: &Scope,
        run: &NewRun,
        charge: Option<(Charge, Vec<NewTaskEvent>)>,
    ) {
        let (scope, run) = (scope.clone(), run.clone());
        let _ = on_blocking(move || {
            let audit = scope.audit("run.interrupted", Target::new("task", &run.task_id));
            scope.store.end_run(
                &RunEnd {
                    run_id: run.id.clone(),
                    task_id: run.task_id.clone(),
                    agent_id: run.agent_id.clone(),
                    outcome: RunOutcome::Interrupted,
                    result: None,
                    error_code: None,
                    error: None,
                    pause_agent: false,
                    duration_ms: 0,
                    events: vec![],
                    charge,
                },
                &audit,
            )?;
            Ok(())
        })
        .await;
    }

    async fn end(
        &self,
        scope: &Scope,
        steps: &Steps,
        run: &NewRun,
        ending: Ending,
        started: Instant,
        admission: Option<Admission>,
    ) -> Result<(), JobFailure> {
        let result_event = steps.step(
            "result",
            json!({
                "outcome": ending.outcome,
                "result": ending.result,
                "error_code": ending.error_code,
            }),
        );
        let end = RunEnd {
            run_id: run.id.clone(),
            task_id: run.task_id.clone(),
            agent_id: run.agent_id.clone(),
            outcome: ending.outcome,
            result: ending.result,
            error_code: ending.error_code.map(str::to_string),
            error: ending.error,
            pause_agent: ending.pause_agent,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            events: {
                let mut events = ending.events;
                events.push(result_event);
                events
            },
            charge: ending.charge,
        };
        let scope2 = scope.clone();
        let ended = on_blocking(move || {
            let audit = scope2
                .audit("run.ended", Target::new("task", &end.task_id))
                .with_details(json!({
                    "run_id": end.run_id,
                    "outcome": end.outcome,
                    "error_code": end.error_code,
                }));
            let ended = scope2.store.end_run(&end, &audit)?;
            scope2.wake(&ended.woken);
            if end.pause_agent {
                let audit = scope2
                    .audit("agent.paused", Target::new("agent", &end.agent_id))
                    .with_details(json!({ "reason": end.error_code }));
                scope2.store.append_audit(&audit)?;
            }
            Ok(ended)
        })
        .await?;
        if let (Some(admission), Some(budgets)) = (admission, &ended.budgets) {
            admission.charged(budgets);
        }
        scope.publish_value("task.updated", &ended.task);
        if let Some(agent) = &ended.agent {
            publish_status(scope, agent);
            if agent.status == crate::domain::agent::AgentStatus::Paused {
                scope.publish(
                    "agent.budget_exceeded",
                    json!({ "id": agent.id, "name": agent.name, "task_id": ended.task.id }),
                );
            }
        }
        for woken in &ended.woken {
            if woken.id != ended.task.id {
                scope.publish_value("task.updated", woken);
            }
        }
        Ok(())
    }

    async fn tool_loop(
        &self,
        ctx: &JobContext,
        scope: &Scope,
        steps: &Steps,
        setup: Result<Result<Setup, Ending>, ServiceError>,
        clock: &mut RunClock,
    ) -> Result<Ending, LoopError> {
        let setup = match setup {
            Ok(Ok(setup)) => setup,
            Ok(Err(ending)) => return Ok(ending),
            Err(e) => return Err(LoopError::Retry(e.to_string())),
        };
        let Setup {
            access,
            model,
            mut request,
            env,
            check,
            children_seen,
        } = setup;
        clock.check = Some(check);
        let (task, agent) = (env.task.clone(), env.agent.clone());
        let env = Arc::new(env);
        let client: Arc<dyn ModelClient> = super::providers::connect(&access, &self.http);
        let mut last_text = String::new();
        for _turn in 0..self.config.max_turns {
            if ctx.cancel.is_cancelled() {
                return Err(LoopError::Stopped);
            }
            // Cancellation and budgets, before every call: read when the run started, then
            // read back by each charge in its transaction.
            let Some((cancelled, budgets)) = clock.check.take() else {
                return Err(LoopError::Retry(
                    "no budget check before a model call".into(),
                ));
            };
            if cancelled {
                return Ok(Ending::new(
                    RunOutcome::Cancelled,
                    Some("cancelled on request".into()),
                ));
            }
            if let Some(which) = budgets.exhausted() {
                return Ok(Ending::budget_exceeded(which));
            }
            // Other runs of the tenant may be calling too: the gates admit this call only if
            // it cannot take the spend past a budget by more than one call.
            let admission = if budgets.any() {
                let price = pricing::price_of(access.kind, &access.prices, &model);
                let month = budget_month(crate::domain::now());
                let call = budget_gate::Call {
                    tenant: scope.tenant,
                    agent_id: &agent.id,
                    month: &month,
                    budgets: &budgets,
                    reservation: budget_gate::reservation(&request, price),
                };
                let admitted = tokio::select! {
                    a = self.gates.admit(&call) => a,
                    _ = ctx.cancel.cancelled() => return Err(LoopError::Stopped),
                };
                match admitted {
                    Ok(admission) => Some(admission),
                    Err(which) => return Ok(Ending::budget_exceeded(which)),
                }
            } else {
                None
            };

            let sink_steps = steps.clone();
            let sink = move |delta: Delta| match delta {
                Delta::Text(text) => sink_steps.publish("text_delta", json!({ "text": text })),
            };
            let called = Instant::now();
            let reply = tokio::select! {
                r = client.turn(&request, &sink) => r,
                _ = ctx.cancel.cancelled() => return Err(LoopError::Stopped),
            };
            let call_time = called.elapsed();
            clock.model += call_time;
            clock.turns += 1;
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) if e.is_retryable() => return Err(LoopError::Retry(e.to_string())),
                Err(ProviderError::Malformed(m)) => {
                    return Ok(Ending::failed(
                        "MALFORMED_OUTPUT",
                        format!("the model's reply could not be read: {m}"),
                    ));
                }
                Err(e) => return Ok(Ending::failed("PROVIDER_ERROR", e.to_string())),
            };
            let carried = std::mem::take(&mut clock.events);
            let (bill, events) = self.bill(
                steps, &access, &model, &task, &agent, &reply, call_time, carried,
            );
            let text: String = reply
                .content
                .iter()
                .filter_map(|b| match b {
                    Block::Text(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n");
            if !text.trim().is_empty() {
                last_text = text;
            }
            let calls: Vec<(String, String, ToolInput)> = reply
                .content
                .iter()
                .filter_map(|b| match b {
                    Block::ToolUse { id, name, input } => {
                        Some((id.clone(), name.clone(), input.clone()))
                    }
                    _ => None,
                })
                .collect();
            request.messages.push(Message {
                role: Role::Assistant,
                content: reply.content,
            });
            // The turn's charge and its tool calls: one trip to the blocking pool.
            // The turn's tool calls and its charge: one trip to the blocking pool. When the
            // run ends with this turn, the charge is written with the end instead.
            let (charged, tools) = {
                let (scope, env, steps) = (scope.clone(), env.clone(), steps.clone());
                tokio::task::spawn_blocking(move || -> Result<_, ServiceError> {
                    let tools = if calls.is_empty() {
                        None
                    } else {
                        match run_tools(&env, &steps, calls) {
                            Ok(tools) => Some(tools),
                            Err(e) => {
                                // The call was made: record what it cost before giving up.
                                scope.store.charge(&bill, crate::domain::now(), &events)?;
                                return Err(e);
                            }
                        }
                    };
                    let last = tools.as_ref().is_none_or(|t| t.1.is_some());
                    let charged = if last {
                        Err((bill, events))
                    } else {
                        Ok(scope.store.charge(&bill, crate::domain::now(), &events)?)
                    };
                    Ok((charged, tools))
                })
                .await
                .map_err(|e| LoopError::Retry(e.to_string()))?
                .map_err(|e| LoopError::Retry(e.to_string()))?
            };
            match charged {
                Ok(charged) => {
                    if let Some(admission) = admission {
                        admission.charged(&charged.budgets);
                    }
                    clock.check = Some((charged.cancel_requested, charged.budgets));
                }
                Err(deferred) => {
                    clock.charge = Some(deferred);
                    clock.admission = admission;
                }
            }
            let Some((results, finish, events)) = tools else {
                return self
                    .unfinished(scope, &task, children_seen, last_text)
                    .await;
            };
            clock.events = events;
            request.messages.push(Message {
                role: Role::User,
                content: results,
            });
            if let Some((outcome, result)) = finish {
                return Ok(match outcome {
                    RunOutcome::Failed => {
                        let mut e = Ending::new(RunOutcome::Failed, Some(result.clone()));
                        e.error = Some(result);
                        e.error_code = Some("AGENT_FAILED");
                        e
                    }
                    RunOutcome::Blocked => {
                        let mut e = Ending::new(RunOutcome::Blocked, Some(result.clone()));
                        e.error = Some(result);
                        e
                    }
                    other => Ending::new(other, Some(result)),
                });
            }
        }
        Ok(Ending::failed(
            "MAX_TURNS",
            format!(
                "the run used its {} turns without finishing the task",
                self.config.max_turns
            ),
        ))
    }

    /// A turn without tool calls ends the run: it waits for open subtasks, and runs again
    /// for subtasks that finished since its prompt was written (`children_seen` were in it):
    /// their results are for the agent to read, not to be dropped by ending on its last words.
    /// Else it follows the configured policy (complete with the last text, or fail).
    async fn unfinished(
        &self,
        scope: &Scope,
        task: &Task,
        children_seen: usize,
        last_text: String,
    ) -> Result<Ending, LoopError> {
        let (scope2, id) = (scope.clone(), task.id.clone());
        let (open, finished) = tokio::task::spawn_blocking(move || {
            let open = scope2.store.open_children(&id)?;
            Ok::<_, crate::store::StoreError>((open.len(), scope2.store.child_results(&id)?.len()))
        })
        .await
        .map_err(|e| LoopError::Retry(e.to_string()))?
        .map_err(|e| LoopError::Retry(e.to_string()))?;
        if open > 0 || finished > children_seen {
            // With none open, the end of the run puts the task back to pending.
            return Ok(Ending::new(RunOutcome::Waiting, None));
        }
        if self.config.unfinished_policy == "fail" {
            return Ok(Ending::failed(
                "NOT_FINISHED",
                "the agent ended its run without calling finish_task",
            ));
        }
        let result = if last_text.trim().is_empty() {
            "(the agent finished without a result)".to_string()
        } else {
            last_text
        };
        Ok(Ending::new(RunOutcome::Completed, Some(result)))
    }

    /// The turn's usage and cost as a charge, and its text and tool calls as steps
    /// (published now; logged with the charge).
    #[allow(clippy::too_many_arguments)]
    fn bill(
        &self,
        steps: &Steps,
        access: &ProviderAccess,
        model: &str,
        task: &Task,
        agent: &Agent,
        reply: &ModelReply,
        call_time: std::time::Duration,
        carried: Vec<NewTaskEvent>,
    ) -> (Charge, Vec<NewTaskEvent>) {
        let reported = if reply.model.is_empty() {
            model
        } else {
            &reply.model
        };
        let price = pricing::price_of(access.kind, &access.prices, reported)
            .or_else(|| pricing::price_of(access.kind, &access.prices, model));
        if price.is_none() {
            tracing::warn!(model = reported, provider = %access.name, "no price for this model: its tokens are recorded at cost 0; set the provider's prices");
        }
        let cost = price.map_or(0, |p| pricing::cost_micros(p, &reply.usage));
        self.metrics.model_call(call_time, &reply.usage, cost);
        let mut events = carried;
        for block in &reply.content {
            match block {
                Block::Text(text) if !text.trim().is_empty() => {
                    events.push(steps.step("text", json!({ "text": text })));
                }
                Block::ToolUse { id, name, input } => {
                    let input = match input {
                        ToolInput::Json(v) => v.clone(),
                        ToolInput::Malformed { raw, .. } => json!({ "malformed": raw }),
                    };
                    events.push(steps.step(
                        "tool_use",
                        json!({ "tool_use_id": id, "name": name, "input": input }),
                    ));
                }
                _ => {}
            }
        }
        let usage = reply.usage;
        events.push(steps.step(
            "usage",
            json!({
                "model": reported,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_tokens": usage.cache_read_tokens,
                "cache_write_tokens": usage.cache_write_tokens,
                "cost_usd": cost as f64 / 1e6,
                "priced": price.is_some(),
            }),
        ));
        let charge = Charge {
            run_id: steps.run_id.clone(),
            task_id: task.id.clone(),
            agent_id: agent.id.clone(),
            provider_id: Some(access.id.clone()).filter(|id| !id.is_empty()),
            provider_kind: access.kind.as_str().to_string(),
            model: reported.to_string(),
            input_tokens: clamp(usage.input_tokens),
            output_tokens: clamp(usage.output_tokens),
            cache_read_tokens: clamp(usage.cache_read_tokens),
            cache_write_tokens: clamp(usage.cache_write_tokens),
            cost_micros: cost,
            priced: price.is_some(),
        };
        (charge, events)
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn publish_status(scope: &Scope, agent: &Agent) {
    scope.publish(
        "agent.status",
        json!({ "id": agent.id, "name": agent.name, "status": agent.status }),
    );
}

enum LoopError {
    /// Worth another attempt of the job (provider unavailable, storage hiccup).
    Retry(String),
    /// The job was cancelled, timed out or the server shuts down.
    Stopped,
}

struct Setup {
    access: ProviderAccess,
    model: String,
    request: ModelRequest,
    env: ToolEnv,
    /// The first call's check: cancel request and budgets.
    check: (bool, crate::domain::run::Budgets),
    /// How many finished subtasks the prompt reports the results of.
    children_seen: usize,
}

/// Reads what the run needs and builds the first request (blocking).
fn prepare(
    scope: &Scope,
    providers: &dyn ProviderSource,
    config: &AgentsConfig,
    task: Task,
    agent: Agent,
) -> Result<Result<Setup, Ending>, ServiceError> {
    let context = scope.store.run_context(&task, &agent.id, 20, 10)?;
    let workspace = &context.workspace;
    let Some(provider_id) = agent
        .provider_id
        .clone()
        .or_else(|| workspace.default_provider_id.clone())
    else {
        return Ok(Err(Ending::failed(
            "NO_PROVIDER",
            format!(
                "agent '{}' has no provider: set its provider_id or the workspace's default_provider_id",
                agent.name
            ),
        )));
    };
    let access = match providers.access(scope, &provider_id) {
        Ok(access) => access,
        Err(ServiceError::NotFound(_)) => {
            return Ok(Err(Ending::failed(
                "NO_PROVIDER",
                "the agent's provider no longer exists",
            )));
        }
        Err(ServiceError::Store(e)) => return Err(ServiceError::Store(e)),
        Err(e) => return Ok(Err(Ending::failed("PROVIDER_ERROR", e.to_string()))),
    };
    let model = agent
        .model
        .clone()
        .or_else(|| access.default_model.clone())
        .or_else(|| workspace.default_model.clone())
        .or_else(|| {
            (access.kind == crate::domain::provider::ProviderKind::Simulated)
                .then(|| "simulated".to_string())
        });
    let Some(model) = model else {
        return Ok(Err(Ending::failed(
            "NO_MODEL",
            format!(
                "no model for agent '{}': set its model, the provider's default_model or the workspace's default_model",
                agent.name
            ),
        )));
    };
    let messages = if context.unread.is_empty() {
        Vec::new()
    } else {
        // Marks them read: the prompt shows them now.
        scope.store.take_messages(&agent.id, true, 20)?
    };
    let allow_any_delegation = workspace.allow_any_delegation;
    let (org, parent, children, board) = (
        &context.org,
        context.parent.as_ref(),
        &context.children,
        &context.board,
    );
    let enabled: HashSet<String> = tools::TOOL_NAMES
        .iter()
        .filter(|n| {
            context
                .tool_permissions
                .iter()
                .find(|p| p.name.as_str() == **n)
                .is_none_or(|p| p.enabled)
        })
        .map(|n| n.to_string())
        .collect();
    let input = PromptInput {
        agent: &agent,
        org,
        task: &task,
        parent,
        messages: &messages,
        children,
        board,
    };
    let system = prompt::system_prompt(&input);
    let first = prompt::task_message(&input);
    let facts = RunFacts {
        agent_name: agent.name.to_string(),
        direct_reports: prompt::direct_reports(org, &agent.id),
        task_prompt: task.prompt.clone(),
        child_results: children
            .iter()
            .map(|c| {
                (
                    c.assignee.clone().unwrap_or_default(),
                    c.result.clone().unwrap_or_default(),
                )
            })
            .collect(),
    };
    let max_tokens = access
        .config
        .get("max_tokens")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(config.max_tokens);
    let request = ModelRequest {
        model: model.clone(),
        system,
        messages: vec![Message::user_text(first)],
        tools: tools::specs(&enabled),
        max_tokens,
        facts: Arc::new(facts),
    };
    let thread_id = task
        .context
        .as_deref()
        .and_then(|c| serde_json::from_str::<Value>(c).ok())
        .and_then(|v| {
            v.get("thread_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let env = ToolEnv {
        scope: scope.clone(),
        agent,
        task,
        enabled,
        allow_any_delegation,
        max_depth: config.max_delegation_depth,
        thread_id,
    };
    let check = (env.task.cancel_requested, context.budgets);
    Ok(Ok(Setup {
        access,
        model,
        request,
        env,
        check,
        children_seen: context.children.len(),
    }))
}

/// Runs a turn's tool calls in order (blocking): their result blocks, the finish if one of
/// them was `finish_task` (calls after it are not run), and the log entries of the results
/// (for the caller to write with its next write).
#[allow(clippy::type_complexity)]
fn run_tools(
    env: &ToolEnv,
    steps: &Steps,
    calls: Vec<(String, String, ToolInput)>,
) -> Result<(Vec<Block>, Option<(RunOutcome, String)>, Vec<NewTaskEvent>), ServiceError> {
    let mut blocks = Vec::with_capacity(calls.len());
    let mut events = Vec::with_capacity(calls.len());
    let mut finish = None;
    for (id, name, input) in calls {
        let result = if finish.is_some() {
            tools::ToolResult::error("not run: the task was already finished in this turn")
        } else {
            match &input {
                ToolInput::Json(value) => tools::execute(env, &name, value)?,
                ToolInput::Malformed { error, .. } => tools::ToolResult::error(format!(
                    "the arguments are not valid JSON ({error}); call {name} again with a JSON object"
                )),
            }
        };
        if let Some(f) = result.finish.clone() {
            finish = Some(f);
        }
        events.push(steps.step(
            "tool_result",
            json!({
                "tool_use_id": id,
                "name": name,
                "content": result.content,
                "is_error": result.is_error,
            }),
        ));
        blocks.push(Block::ToolResult {
            tool_use_id: id,
            content: result.content,
            is_error: result.is_error,
        });
    }
    Ok((blocks, finish, events))
}
