//! Audit entries for what CLI commands do (the actor is the CLI: `system` / `cli`).

/// Records what a command did in the platform audit log (the actor is the CLI).
pub(super) fn audit_platform(
    storage: &crate::store::Storage,
    action: &str,
    target: crate::audit::Target,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let entry = cli_entry(action, target, details);
    storage
        .registry
        .append_platform_audit(&entry)
        .context("cannot write the platform audit log")
}

/// Records what a command did in a tenant's audit log (the actor is the CLI).
pub(super) fn audit_tenant(
    storage: &crate::store::Storage,
    tenant: crate::domain::TenantId,
    action: &str,
    target: crate::audit::Target,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let entry = cli_entry(action, target, details);
    storage
        .tenants
        .open(tenant)
        .and_then(|store| store.append_audit(&entry))
        .context("cannot write the tenant's audit log")
}

fn cli_entry(
    action: &str,
    target: crate::audit::Target,
    details: serde_json::Value,
) -> crate::audit::AuditEntry {
    use crate::audit::{Actor, AuditEntry, Origin};
    AuditEntry::new(&Actor::cli(), &Origin::default(), action, target).with_details(details)
}
