//! What `agenthq demo` puts into a new tenant "demo": an owner with an API token (printed
//! once), a small org chart, tasks on its board, a board item and a chat message, so the API
//! has something to show from the first request.

use std::sync::Arc;

use anyhow::Context;
use serde_json::json;

use crate::audit::{Actor, ActorKind, Origin};
use crate::auth::tokens::NewToken;
use crate::auth::{Email, Password, Role};
use crate::domain::Tenant;
use crate::services::{self, Scope};
use crate::startup::AppState;

/// The demo tenant's owner (a random password: the printed API token is the way in).
const OWNER: &str = "owner@demo.agenthq.local";

/// Seeds `tenant` and returns the owner's API token.
pub fn seed(state: &AppState, tenant: &Tenant) -> anyhow::Result<String> {
    let email = Email::parse(OWNER).map_err(|e| anyhow::anyhow!(e))?;
    let password = Password::parse(random_password()?).map_err(|e| anyhow::anyhow!(e))?;
    state
        .users
        .create(email.clone(), &password, false)
        .context("cannot create the demo owner")?;
    state
        .users
        .add_to_tenant(tenant.slug.as_str(), &email, Role::Owner)
        .context("cannot add the demo owner")?;
    let (_, secret) = state
        .tokens
        .create(NewToken {
            tenant: tenant.slug.to_string(),
            email,
            name: "demo".into(),
            role: None,
            expires_in_days: None,
        })
        .context("cannot issue the demo token")?;

    let scope = Scope {
        tenant: tenant.id,
        slug: tenant.slug.as_str().into(),
        store: state.storage.tenants.open(tenant.id)?,
        events: Arc::clone(&state.events),
        actor: Actor {
            kind: ActorKind::System,
            id: Some("demo".into()),
        },
        origin: Origin::default(),
        runs: state.runs.clone(),
        write_intent: None,
    };
    let agents = [
        json!({ "name": "ceo", "display_name": "Ada (CEO)", "role": "Chief executive", "department": "Leadership", "level": "c-suite",
                "personality": "You run the company. Break goals into work for your reports and check the results." }),
        json!({ "name": "cto", "display_name": "Grace (CTO)", "role": "Chief technology officer", "department": "Engineering", "level": "c-suite", "reports_to": "ceo" }),
        json!({ "name": "backend", "display_name": "Linus", "role": "Backend engineer", "department": "Engineering", "reports_to": "cto" }),
        json!({ "name": "frontend", "display_name": "Margaret", "role": "Frontend engineer", "department": "Engineering", "reports_to": "cto" }),
        json!({ "name": "marketing", "display_name": "Don", "role": "Head of marketing", "department": "Marketing", "level": "lead", "reports_to": "ceo" }),
    ];
    for agent in agents {
        services::agents::create(&scope, serde_json::from_value(agent)?)?;
    }
    // The simulated runtime: agents delegate down the chart and report back, with a think
    // time so the board visibly moves.
    let provider = services::providers::create(
        &scope,
        &state.secrets,
        serde_json::from_value(json!({
            "kind": "simulated",
            "name": "simulated",
            "default_model": "simulated",
            "config": { "latency_ms": 1500 }
        }))?,
    )?;
    services::settings::update_workspace(
        &scope,
        serde_json::from_value(json!({ "default_provider_id": provider.id }))?,
    )?;
    let tasks = [
        json!({ "prompt": "Plan the launch of version 2", "assignee": "ceo", "priority": "high", "tags": ["launch"] }),
        json!({ "prompt": "Design the public API for version 2", "assignee": "cto", "tags": ["launch", "api"] }),
        json!({ "prompt": "Write the launch announcement", "assignee": "marketing", "tags": ["launch"] }),
        json!({ "prompt": "Fix the slow dashboard query", "assignee": "backend", "priority": "urgent" }),
    ];
    for task in tasks {
        services::tasks::create(&scope, serde_json::from_value(task)?)?;
    }
    services::board::create(
        &scope,
        serde_json::from_value(json!({
            "type": "status_update",
            "content": "The demo organisation is set up: five agents, four tasks.",
            "author_agent": "ceo"
        }))?,
        "demo".into(),
    )?;
    Ok(secret.expose().to_owned())
}

fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}
