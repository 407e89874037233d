//! Model calls against monthly budgets, admitted so that spend passes a budget by at most one
//! call even while several runs of a tenant call at once.
//!
//! A run checks its budgets before each call, but the spend it knows is what its last charge
//! read back: it misses the calls other runs have in flight. So a call that counts against a
//! budget first reserves an upper bound of its cost with that budget's gate (every byte of
//! the prompt a token, since a token is at least one byte, at the dearest input rate, plus
//! `max_tokens` of output). It is admitted while the best-known spend plus the reservations
//! in flight plus its own stays within the budget, or when no other call of that budget is in
//! flight: that lone call is the one by which spend may pass the budget. Otherwise it waits
//! until a call in flight is charged, and checks again.
//!
//! A gate's best-known spend is the highest the charges of its calls read back in their
//! transactions (a month's spend only grows), so a waiting run sees what the others spent and
//! stops once a budget is used up. The gates live in the process that runs the tenant's jobs:
//! with SQLite that is every run of the tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::agents::pricing;
use crate::agents::providers::{Block, ModelRequest, ToolInput};
use crate::domain::TenantId;
use crate::domain::provider::ModelPrice;
use crate::domain::run::{BudgetScope, Budgets};

/// The budgets a call counts against, and what the run knows of them.
pub struct Call<'a> {
    pub tenant: TenantId,
    pub agent_id: &'a str,
    /// The month the spend figures are of (`budget_month`).
    pub month: &'a str,
    pub budgets: &'a Budgets,
    /// Upper bound of the call's cost, micro-dollars ([`reservation`]).
    pub reservation: i64,
}

#[derive(Default)]
pub struct BudgetGates {
    gates: Mutex<HashMap<GateKey, Gate>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum GateKey {
    Tenant(TenantId),
    Agent(TenantId, String),
}

struct Gate {
    in_flight: u32,
    reserved: i64,
    /// The highest spend read back this month, and the month.
    spent: (String, i64),
    /// Bumped whenever a call is let go: waiters look again.
    released: watch::Sender<u64>,
}

impl Gate {
    fn new() -> Self {
        Gate {
            in_flight: 0,
            reserved: 0,
            spent: (String::new(), 0),
            released: watch::Sender::new(0),
        }
    }

    fn spent(&self, month: &str, known: i64) -> i64 {
        if self.spent.0 == month {
            self.spent.1.max(known)
        } else {
            known
        }
    }

    fn learn(&mut self, month: &str, spent: i64) {
        if self.spent.0 != month {
            self.spent = (month.to_string(), spent);
        } else {
            self.spent.1 = self.spent.1.max(spent);
        }
    }
}

/// One budget of a call: its gate, the limit and what the run knows it spent.
struct Want {
    key: GateKey,
    scope: BudgetScope,
    budget: i64,
    known: i64,
}

/// A call admitted by its gates; let it go with [`Admission::charged`] once its charge is
/// written (dropping it lets it go without news of the spend).
pub struct Admission {
    gates: Arc<BudgetGates>,
    held: Vec<GateKey>,
    month: String,
    reservation: i64,
}

impl BudgetGates {
    fn lock(&self) -> MutexGuard<'_, HashMap<GateKey, Gate>> {
        // Every change below leaves the map consistent: a panic elsewhere cannot break it.
        self.gates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the call may be made. `Err` names a budget that is used up (by what this
    /// run knows or what other runs' charges read back): the call must not be made. A call
    /// with no budget is admitted at once.
    pub async fn admit(self: &Arc<Self>, call: &Call<'_>) -> Result<Admission, BudgetScope> {
        let b = call.budgets;
        let mut wants = Vec::with_capacity(2);
        if let Some(budget) = b.agent_budget {
            wants.push(Want {
                key: GateKey::Agent(call.tenant, call.agent_id.to_string()),
                scope: BudgetScope::Agent,
                budget,
                known: b.agent_spent,
            });
        }
        if let Some(budget) = b.tenant_budget {
            wants.push(Want {
                key: GateKey::Tenant(call.tenant),
                scope: BudgetScope::Tenant,
                budget,
                known: b.tenant_spent,
            });
        }
        let reservation = call.reservation.max(0);
        loop {
            let mut released = {
                let mut gates = self.lock();
                let mut blocked = None;
                for want in &wants {
                    let gate = gates.entry(want.key.clone()).or_insert_with(Gate::new);
                    let spent = gate.spent(call.month, want.known);
                    if spent >= want.budget {
                        return Err(want.scope);
                    }
                    let fits = spent
                        .saturating_add(gate.reserved)
                        .saturating_add(reservation)
                        <= want.budget;
                    if gate.in_flight > 0 && !fits && blocked.is_none() {
                        blocked = Some(gate.released.subscribe());
                    }
                }
                match blocked {
                    Some(released) => released,
                    None => {
                        for want in &wants {
                            if let Some(gate) = gates.get_mut(&want.key) {
                                gate.in_flight += 1;
                                gate.reserved = gate.reserved.saturating_add(reservation);
                            }
                        }
                        return Ok(Admission {
                            gates: self.clone(),
                            held: wants.into_iter().map(|w| w.key).collect(),
                            month: call.month.to_string(),
                            reservation,
                        });
                    }
                }
            };
            // The sender lives in the map, which keeps every gate: `changed` fails only if
            // it were dropped, and then looking again is right too.
            let _ = released.changed().await;
        }
    }

    #[cfg(test)]
    fn in_flight(&self, tenant: TenantId) -> u32 {
        self.lock()
            .get(&GateKey::Tenant(tenant))
            .map_or(0, |g| g.in_flight)
    }
}

impl Admission {
    /// Lets the call go once its charge is written, with the spend that charge read back.
    pub fn charged(mut self, budgets: &Budgets) {
        self.release(Some(budgets));
    }

    fn release(&mut self, budgets: Option<&Budgets>) {
        if self.held.is_empty() {
            return;
        }
        let mut gates = self.gates.lock();
        for key in self.held.drain(..) {
            let Some(gate) = gates.get_mut(&key) else {
                continue;
            };
            if let Some(b) = budgets {
                let spent = match key {
                    GateKey::Agent(..) => b.agent_spent,
                    GateKey::Tenant(_) => b.tenant_spent,
                };
                gate.learn(&self.month, spent);
            }
            gate.in_flight = gate.in_flight.saturating_sub(1);
            gate.reserved = gate.reserved.saturating_sub(self.reservation);
            gate.released.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.release(None);
    }
}

/// An upper bound of what `request` can cost at `price`, micro-dollars: every byte of its
/// text a token at the dearest input rate (cache writes), and all of `max_tokens` output.
pub fn reservation(request: &ModelRequest, price: Option<ModelPrice>) -> i64 {
    let Some(price) = price else {
        return 0; // an unpriced call costs nothing
    };
    let mut bytes = request.system.len();
    for tool in request.tools.iter() {
        bytes += tool.name.len() + tool.description.len() + tool.input_schema.to_string().len();
    }
    for message in &request.messages {
        for block in &message.content {
            bytes += match block {
                Block::Text(text) => text.len(),
                Block::ToolUse { id, name, input } => {
                    id.len()
                        + name.len()
                        + match input {
                            ToolInput::Json(v) => v.to_string().len(),
                            ToolInput::Malformed { raw, .. } => raw.len(),
                        }
                }
                Block::ToolResult {
                    tool_use_id,
                    content,
                    ..
                } => tool_use_id.len() + content.len(),
            };
        }
    }
    // Messages and tools carry a few tokens of framing each.
    bytes += 16 * (request.messages.len() + request.tools.len());
    pricing::upper_bound_micros(price, bytes as u64, u64::from(request.max_tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(tenant_budget: i64, tenant_spent: i64) -> Budgets {
        Budgets {
            agent_budget: None,
            agent_spent: 0,
            tenant_budget: Some(tenant_budget),
            tenant_spent,
        }
    }

    fn call<'a>(tenant: TenantId, agent: &'a str, b: &'a Budgets, reservation: i64) -> Call<'a> {
        Call {
            tenant,
            agent_id: agent,
            month: "2026-11",
            budgets: b,
            reservation,
        }
    }

    #[tokio::test]
    async fn calls_that_fit_the_budget_run_at_once() {
        let gates = Arc::new(BudgetGates::default());
        let tenant = TenantId::new();
        let b = budgets(1_000, 0);
        let first = gates.admit(&call(tenant, "a", &b, 400)).await.unwrap();
        let second = gates.admit(&call(tenant, "b", &b, 400)).await.unwrap();
        assert_eq!(gates.in_flight(tenant), 2);
        drop((first, second));
        assert_eq!(gates.in_flight(tenant), 0);
    }

    #[tokio::test]
    async fn a_call_that_does_not_fit_waits_for_the_one_in_flight_and_then_sees_its_spend() {
        let gates = Arc::new(BudgetGates::default());
        let tenant = TenantId::new();
        let b = budgets(1_000, 0);
        let first = gates.admit(&call(tenant, "a", &b, 800)).await.unwrap();
        let waiting = {
            let gates = gates.clone();
            tokio::spawn(async move {
                let b = budgets(1_000, 0); // what this run knew: nothing spent
                gates.admit(&call(tenant, "b", &b, 800)).await.map(|_| ())
            })
        };
        // It cannot be admitted while the first call is in flight (a current-thread runtime:
        // the task runs while this one yields, until it waits).
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished());
        // The first call cost 1,200: its charge read back more than the budget.
        first.charged(&budgets(1_000, 1_200));
        assert_eq!(waiting.await.unwrap().err(), Some(BudgetScope::Tenant));
    }

    #[tokio::test]
    async fn a_lone_call_is_admitted_even_when_its_bound_passes_the_budget() {
        let gates = Arc::new(BudgetGates::default());
        let tenant = TenantId::new();
        let b = budgets(1_000, 900);
        let only = gates.admit(&call(tenant, "a", &b, 5_000)).await;
        assert!(only.is_ok(), "spend may pass a budget by one call");
        let used_up = budgets(1_000, 1_000);
        assert_eq!(
            gates.admit(&call(tenant, "b", &used_up, 1)).await.err(),
            Some(BudgetScope::Tenant)
        );
    }

    #[tokio::test]
    async fn spend_read_back_last_month_does_not_count_this_month() {
        let gates = Arc::new(BudgetGates::default());
        let tenant = TenantId::new();
        let b = budgets(1_000, 0);
        let mut last_month = call(tenant, "a", &b, 10);
        last_month.month = "2026-10";
        gates
            .admit(&last_month)
            .await
            .unwrap()
            .charged(&budgets(1_000, 5_000));
        assert!(gates.admit(&call(tenant, "a", &b, 10)).await.is_ok());
    }

    #[test]
    fn the_reservation_bounds_input_by_bytes_and_output_by_max_tokens() {
        let request = ModelRequest {
            model: "m".into(),
            system: "x".repeat(1_000),
            messages: vec![],
            tools: Arc::from(Vec::new()),
            max_tokens: 1_000,
            facts: Arc::default(),
        };
        let price = ModelPrice {
            input_per_mtok: 1.0,
            output_per_mtok: 10.0,
        };
        // 1,000 bytes × $1/Mtok × 1.25 + 1,000 × $10/Mtok = 1,250 + 10,000 micro-dollars.
        assert_eq!(reservation(&request, Some(price)), 11_250);
        assert_eq!(reservation(&request, None), 0);
    }
}
