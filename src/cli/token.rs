//! `agenthq token create`: issue an API token (printed once, alone, on stdout).

use clap::Subcommand;

use crate::auth::tokens::{NewToken, Tokens};
use crate::auth::{Email, Role};
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue an API token bound to a tenant, acting as a member of it.
    Create {
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The member the token acts for.
        #[arg(long)]
        email: String,
        /// What the token is for (shown in lists).
        #[arg(long)]
        name: String,
        /// Role of the token (default: the member's role; never higher).
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
        /// Expire the token after this many days (default: never).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

pub fn run(settings: Settings, command: TokenCommand) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_filter("warn"), settings.log_format);
    let TokenCommand::Create {
        tenant,
        email,
        name,
        role,
        expires_in_days,
    } = command;
    let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("invalid email: {e}"))?;
    let storage = super::open_storage(&settings)?;
    let result = Tokens::new(storage.clone()).create(NewToken {
        tenant,
        email,
        name,
        role,
        expires_in_days,
    });
    let audited = result.as_ref().ok().map(|(token, _)| {
        super::audit::audit_tenant(
            &storage,
            token.tenant_id,
            "token.created",
            crate::audit::Target::new("token", &token.id),
            serde_json::json!({ "name": token.name, "role": token.role }),
        )
    });
    storage.close();
    let (_, secret) = result?;
    audited.transpose()?;
    // The token alone, so scripts can capture it: TOKEN=$(agenthq token create …).
    println!("{}", secret.expose());
    Ok(())
}
