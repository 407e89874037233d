//! The command line: parsing and dispatch. Each command lives in its own module with a `run`.

mod audit;
mod demo;
mod keys;
mod migrate;
mod serve;
mod tenant;
mod token;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{LogFormat, Overrides, Secret, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "agenthq",
    version = crate::VERSION,
    about = "AgentHQ: a self-hosted platform for running AI-agent organisations",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, clap::Args)]
struct GlobalArgs {
    /// Data directory (registry, tenant databases, keys, backups).
    #[arg(long, global = true, env = "AGENTHQ_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// postgres://… for the PostgreSQL backend; unset for embedded SQLite.
    #[arg(
        long,
        global = true,
        env = "AGENTHQ_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// TOML config file (below env and flags in precedence).
    #[arg(long, global = true, env = "AGENTHQ_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter, e.g. `info` or `agenthq=debug,warn`.
    #[arg(long, global = true, env = "AGENTHQ_LOG", value_name = "FILTER")]
    log: Option<String>,
    /// Log format.
    #[arg(long, global = true, env = "AGENTHQ_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

/// Options of the commands that run the server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "AGENTHQ_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// Serve tenants at <slug>.<DOMAIN>.
    #[arg(long, env = "AGENTHQ_BASE_DOMAIN", value_name = "DOMAIN")]
    base_domain: Option<String>,
    /// The URL users reach this server at (https:// makes cookies Secure).
    #[arg(long, env = "AGENTHQ_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "AGENTHQ_MAX_BODY_BYTES", value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Tenant databases kept open at once.
    #[arg(long, env = "AGENTHQ_MAX_OPEN_TENANTS", value_name = "N")]
    max_open_tenants: Option<usize>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "AGENTHQ_WORKERS", value_name = "N")]
    workers: Option<usize>,
    /// Blocking threads per HTTP worker (default 32; 0: actix-web's bound).
    #[arg(long, env = "AGENTHQ_BLOCKING_THREADS", value_name = "N")]
    blocking_threads: Option<usize>,
    /// How the server's threads are scheduled: `batch` (default) or `normal`.
    #[arg(long, env = "AGENTHQ_CPU_SCHEDULING", value_enum)]
    cpu_scheduling: Option<crate::ops::sched::CpuScheduling>,
    /// Browser origins allowed to call the API cross-origin (comma-separated; default none).
    #[arg(
        long,
        env = "AGENTHQ_CORS_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    cors_origins: Option<Vec<String>>,
    /// Reverse proxies whose X-Forwarded-For is believed: addresses or CIDR networks
    /// (comma-separated; default none, so the TCP peer is the client).
    #[arg(
        long,
        env = "AGENTHQ_TRUSTED_PROXIES",
        value_name = "NETWORKS",
        value_delimiter = ','
    )]
    trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Run the server with a demo tenant "demo" (created on first run).
    Demo(ServeArgs),
    /// Migrate the registry and every tenant database to this version's schema.
    Migrate(migrate::MigrateArgs),
    /// Manage tenants (organisations).
    Tenant {
        #[command(subcommand)]
        command: tenant::TenantCommand,
    },
    /// Manage users (people who sign in) and their roles in tenants.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Issue API tokens.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Manage the master key that protects secrets at rest.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Print the version.
    Version,
}

/// Parses the command line, runs the command, and turns any failure into one line on stderr
/// and a non-zero exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line: "cannot open storage: …: …".
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let serve_args = match &cli.command {
        Command::Serve(a) | Command::Demo(a) => Some(a.clone()),
        _ => None,
    };
    let settings = load_settings(&cli.global, serve_args.as_ref())?;
    match cli.command {
        Command::Serve(_) => serve::run(settings, serve::Mode::Serve),
        Command::Demo(_) => serve::run(settings, serve::Mode::Demo),
        Command::Migrate(args) => migrate::run(settings, args),
        Command::Tenant { command } => tenant::run(settings, command),
        Command::User { command } => user::run(settings, command),
        Command::Token { command } => token::run(settings, command),
        Command::Keys { command } => keys::run(settings, command),
        Command::Version => {
            println!("agenthq {}", crate::VERSION);
            Ok(())
        }
    }
}

fn load_settings(g: &GlobalArgs, serve: Option<&ServeArgs>) -> anyhow::Result<Settings> {
    let mut o = Overrides {
        config: g.config.clone(),
        data_dir: g.data_dir.clone(),
        database_url: g.database_url.clone().map(Secret::new),
        log: g.log.clone(),
        log_format: g.log_format,
        // Secrets come from the environment only, never flags (visible in `ps`).
        metrics_token: env_value("AGENTHQ_METRICS_TOKEN").map(Secret::new),
        admin_email: env_value("AGENTHQ_ADMIN_EMAIL"),
        admin_password: env_value("AGENTHQ_ADMIN_PASSWORD").map(Secret::new),
        master_key: env_value("AGENTHQ_MASTER_KEY").map(Secret::new),
        ..Overrides::default()
    };
    if let Some(s) = serve {
        o.listen = s.listen.clone();
        o.base_domain = s.base_domain.clone();
        o.public_url = s.public_url.clone();
        o.max_body_bytes = s.max_body_bytes;
        o.max_open_tenants = s.max_open_tenants;
        o.workers = s.workers;
        o.blocking_threads = s.blocking_threads;
        o.cpu_scheduling = s.cpu_scheduling;
        o.cors_allowed_origins = s.cors_origins.clone();
        o.trusted_proxies = s.trusted_proxies.clone();
    }
    Ok(Settings::load(o)?)
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Opens storage for a one-shot command, after finishing any interrupted tenant operation.
fn open_storage(settings: &Settings) -> anyhow::Result<crate::store::Storage> {
    use anyhow::Context;
    let storage = crate::store::Storage::open(settings)
        .with_context(|| format!("cannot open storage in {}", settings.data_dir.display()))?;
    crate::tenancy::TenantLifecycle::new(storage.clone())
        .recover()
        .context("recovery of interrupted tenant operations failed")?;
    Ok(storage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
