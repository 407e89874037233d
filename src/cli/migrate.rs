//! `agenthq migrate`: the registry, then every tenant database, with bounded parallelism.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Settings;
use crate::tenancy::migrate::{migrate_all, tenants_with_data};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Tenant databases migrated at once (default: two per core).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

pub fn run(settings: Settings, args: MigrateArgs) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_filter("warn"), settings.log_format);
    crate::ops::raise_open_file_limit();
    // Opening the storage migrates the registry.
    let storage = super::open_storage(&settings)?;
    let tenants = tenants_with_data(
        storage
            .registry
            .list_tenants()
            .context("cannot list tenants")?,
    );
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() * 2));

    // indicatif draws only when stderr is a terminal, so logs and CI output stay clean.
    let bar = ProgressBar::new(tenants.len() as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} tenants ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("migrating");
    let summary = migrate_all(&*storage.tenants, &tenants, jobs, &|| bar.inc(1));
    bar.finish_and_clear();
    storage.close();

    println!(
        "registry up to date; {} tenants: {} migrated, {} already current, {} failed ({:.1}s)",
        tenants.len(),
        summary.migrated,
        summary.already_current,
        summary.failed.len(),
        summary.elapsed.as_secs_f64()
    );
    if summary.failed.is_empty() {
        return Ok(());
    }
    for (slug, e) in &summary.failed {
        eprintln!("tenant {slug}: {e}");
    }
    anyhow::bail!(
        "{} tenant(s) could not be migrated (listed above); fix or restore them and run migrate again",
        summary.failed.len()
    )
}
