//! `agenthq keys rotate`: replace the master key, re-wrapping every tenant data key under the
//! new one (see `secrets::rotation` for the crash-safe order of steps).

use std::io::Read;

use anyhow::{Context, bail};
use clap::Subcommand;
use zeroize::Zeroizing;

use crate::config::Settings;
use crate::data_dir::DataDir;
use crate::secrets::MasterKey;
use crate::secrets::rotation;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new master key and re-wrap every tenant data key under it. The old key is
    /// kept as master.key.retired-<id>: back it up with the data, then delete it. Safe to run
    /// while the server runs, and to run again after an interruption (it finishes the
    /// rotation it finds).
    Rotate {
        /// With AGENTHQ_MASTER_KEY: read the new key (base64 of 32 random bytes) from stdin.
        #[arg(long)]
        new_key_stdin: bool,
    },
}

pub fn run(settings: Settings, command: KeysCommand) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_filter("warn"), settings.log_format);
    let KeysCommand::Rotate { new_key_stdin } = command;
    let env_key = settings.master_key.as_ref().map(|k| k.expose().to_owned());
    let new_key = if new_key_stdin {
        if env_key.is_none() {
            bail!(
                "--new-key-stdin is for a master key given in AGENTHQ_MASTER_KEY; this data \
                 dir keeps its key in master.key, so run `agenthq keys rotate` without it"
            );
        }
        Some(read_new_key()?)
    } else {
        None
    };
    let storage = super::open_storage(&settings)?;
    let result = match (env_key, new_key) {
        (Some(current), Some(new)) => {
            let current = MasterKey::from_base64(&current)?;
            if current.key_id() == new.key_id() {
                storage.close();
                bail!("the new key is the current AGENTHQ_MASTER_KEY; generate a new one");
            }
            rotation::rotate_env(&*storage.registry, &current, &new)
        }
        (Some(_), None) => {
            storage.close();
            bail!(
                "the master key comes from AGENTHQ_MASTER_KEY, which this command cannot \
                 change: generate a new key (e.g. `openssl rand -base64 32`), stop the server, \
                 pipe the key into `agenthq keys rotate --new-key-stdin`, then set \
                 AGENTHQ_MASTER_KEY to it and start the server"
            );
        }
        (None, _) => rotation::rotate_files(&DataDir::new(&settings.data_dir), &*storage.registry),
    };
    storage.close();
    let report = result.context("master key rotation failed")?;
    match &report.retired {
        Some(path) => println!(
            "re-wrapped {} tenant data keys; new master key {}; old key moved to {} (back it \
             up, then delete it)",
            report.rewrapped,
            report.new_key_id,
            path.display()
        ),
        None => println!(
            "re-wrapped {} tenant data keys; new master key {}; now set AGENTHQ_MASTER_KEY to \
             the new key",
            report.rewrapped, report.new_key_id
        ),
    }
    Ok(())
}

fn read_new_key() -> anyhow::Result<MasterKey> {
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .take(1024)
        .read_to_string(&mut text)
        .context("cannot read the new key from stdin")?;
    MasterKey::from_base64(text.trim()).map_err(|_| {
        anyhow::anyhow!("the new key on stdin must be the base64 encoding of 32 random bytes")
    })
}
