//! `agenthq user …`: create users and give them roles in tenants.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use crate::audit::Target;

use crate::auth::users::Users;
use crate::auth::{Email, Password, PasswordHasher, Role};
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (the password is prompted for, or read from stdin).
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// Make the user a platform admin (manages tenants).
        #[arg(long)]
        platform_admin: bool,
    },
    /// Give an existing user a role in a tenant (or change it).
    Add {
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

pub fn run(settings: Settings, command: UserCommand) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_filter("warn"), settings.log_format);
    // Parse everything the user typed before touching storage.
    let (email, password) = match &command {
        UserCommand::Create {
            email,
            password_stdin,
            ..
        } => (parse_email(email)?, Some(read_password(*password_stdin)?)),
        UserCommand::Add { email, .. } => (parse_email(email)?, None),
    };
    let storage = super::open_storage(&settings)?;
    let users = Users::new(storage.clone(), PasswordHasher::new()?);
    let result = match command {
        UserCommand::Create { platform_admin, .. } => {
            let password = password.context("password missing")?;
            let user = users.create(email, &password, platform_admin)?;
            super::audit::audit_platform(
                &storage,
                "user.created",
                Target::new("user", user.id),
                json!({ "platform_admin": platform_admin }),
            )?;
            println!(
                "created user {}{} (id {})",
                user.email,
                if platform_admin {
                    ", platform admin"
                } else {
                    ""
                },
                user.id
            );
            Ok(())
        }
        UserCommand::Add { tenant, role, .. } => {
            let (t, user) = users.add_to_tenant(&tenant, &email, role)?;
            super::audit::audit_tenant(
                &storage,
                t.id,
                "member.role_set",
                Target::new("user", user.id),
                json!({ "role": role }),
            )?;
            println!("{email} is now {role} of tenant {tenant}");
            Ok(())
        }
    };
    storage.close();
    result
}

fn parse_email(s: &str) -> anyhow::Result<Email> {
    Email::parse(s).map_err(|e| anyhow::anyhow!("invalid email: {e}"))
}

/// The password from stdin's first line, or from a prompt (typed twice) on a terminal.
fn read_password(from_stdin: bool) -> anyhow::Result<Password> {
    let text = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again = rpassword::prompt_password("Repeat:   ").context("cannot read the password")?;
        if first != again {
            anyhow::bail!("the passwords do not match");
        }
        first
    } else {
        anyhow::bail!(
            "no password: pass --password-stdin (reads the first line of stdin) or run in a terminal"
        );
    };
    Password::parse(text).map_err(|e| anyhow::anyhow!("invalid password: {e}"))
}
