//! `agenthq tenant …`: tenant lifecycle from the command line. Works against a data dir a
//! server is using: the server notices each change within a second.

use clap::Subcommand;
use serde_json::json;

use super::audit::audit_platform;
use crate::audit::Target;
use crate::config::Settings;
use crate::domain::{Plan, Tenant, TenantSlug};
use crate::store::Storage;
use crate::tenancy::{NewTenant, TenantLifecycle};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        /// DNS label: lowercase letters, digits and '-', starting with a letter.
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// Plan.
        #[arg(long, default_value = "free", value_parser = parse_plan)]
        plan: Plan,
    },
    /// List tenants.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop serving a tenant (data kept; `resume` undoes it).
    Suspend { slug: String },
    /// Serve a suspended or deleted tenant again.
    Resume { slug: String },
    /// Soft-delete a tenant (data kept; `resume` undoes it, `purge` makes it final).
    Delete { slug: String },
    /// Remove a deleted tenant's data for good.
    Purge { slug: String },
}

fn parse_plan(s: &str) -> Result<Plan, String> {
    s.parse()
}

pub fn run(settings: Settings, command: TenantCommand) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_filter("warn"), settings.log_format);
    let storage = super::open_storage(&settings)?;
    let lifecycle = TenantLifecycle::new(storage.clone());
    let result = execute(&storage, &lifecycle, command);
    storage.close();
    result
}

fn execute(
    storage: &Storage,
    lifecycle: &TenantLifecycle,
    command: TenantCommand,
) -> anyhow::Result<()> {
    let audit = |action: &str, t: &Tenant| {
        let details = json!({ "slug": t.slug, "plan": t.plan });
        audit_platform(storage, action, Target::new("tenant", t.id), details)
    };
    match command {
        TenantCommand::Create { slug, name, plan } => {
            let slug = TenantSlug::parse(&slug)
                .map_err(|e| anyhow::anyhow!("invalid tenant slug '{slug}': {e}"))?;
            let t = lifecycle.create(NewTenant { slug, name, plan })?;
            audit("tenant.created", &t)?;
            println!(
                "created tenant {} ({}, plan {}, id {})",
                t.slug, t.name, t.plan, t.id
            );
        }
        TenantCommand::List { json } => {
            let tenants = lifecycle.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tenants)?);
            } else {
                print_table(&tenants);
            }
        }
        TenantCommand::Suspend { slug } => {
            let t = lifecycle.suspend(&slug)?;
            audit("tenant.suspended", &t)?;
            println!("suspended tenant {}", t.slug);
        }
        TenantCommand::Resume { slug } => {
            let t = lifecycle.resume(&slug)?;
            audit("tenant.resumed", &t)?;
            println!("resumed tenant {}", t.slug);
        }
        TenantCommand::Delete { slug } => {
            let t = lifecycle.delete(&slug)?;
            audit("tenant.deleted", &t)?;
            println!(
                "deleted tenant {} (data kept: `agenthq tenant resume {0}` restores it, \
                 `agenthq tenant purge {0}` removes it for good)",
                t.slug
            );
        }
        TenantCommand::Purge { slug } => {
            let t = lifecycle.get(&slug)?;
            lifecycle.purge(&slug)?;
            audit("tenant.purged", &t)?;
            println!("purged tenant {slug}");
        }
    }
    Ok(())
}

fn print_table(tenants: &[Tenant]) {
    if tenants.is_empty() {
        println!("no tenants");
        return;
    }
    let slug_w = tenants
        .iter()
        .map(|t| t.slug.as_str().len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<slug_w$}  {:<12}  {:<10}  {:<20}  NAME",
        "SLUG", "STATUS", "PLAN", "CREATED"
    );
    for t in tenants {
        println!(
            "{:<slug_w$}  {:<12}  {:<10}  {:<20}  {}",
            t.slug.as_str(),
            t.status.as_str(),
            t.plan.as_str(),
            t.created_at.format("%Y-%m-%d %H:%M:%S"),
            t.name
        );
    }
}
