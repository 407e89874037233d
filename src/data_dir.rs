//! The on-disk layout of an AgentHQ data directory. Nothing else in the code builds paths.
//!
//! ```text
//! <data-dir>/
//!   registry.db              platform-wide: tenants (later users, sessions, tokens)
//!   queue.db                 the durable job queue
//!   master.key               wraps the per-tenant data keys (0600)
//!   master.key.next          the new master key during `keys rotate` (0600)
//!   master.key.retired-<id>  a master key replaced by `keys rotate`, until the operator deletes it
//!   tenants/<tenant-id>.db   one SQLite file per tenant
//!   tenants/.provisioning/   tenant files being built; moved into tenants/ when complete
//!   backups/                 online backups
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::domain::TenantId;

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Wraps a path without touching the disk; see [`DataDir::ensure`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates the directory tree if needed and proves it is writable by creating and removing a
    /// probe file (permission bits alone say nothing when running as root or on a read-only
    /// mount).
    pub fn ensure(&self) -> io::Result<()> {
        for dir in [
            self.root.clone(),
            self.tenants_dir(),
            self.provisioning_dir(),
            self.backups_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(|e| annotate(e, &dir))?;
        }
        let probe = self
            .root
            .join(format!(".write-probe-{}", std::process::id()));
        fs::write(&probe, b"probe").map_err(|e| annotate(e, &self.root))?;
        fs::remove_file(&probe).map_err(|e| annotate(e, &probe))?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn registry_db(&self) -> PathBuf {
        self.root.join("registry.db")
    }

    pub fn queue_db(&self) -> PathBuf {
        self.root.join("queue.db")
    }

    pub fn master_key(&self) -> PathBuf {
        self.root.join("master.key")
    }

    /// The new master key while `agenthq keys rotate` is in progress (see `secrets::rotation`).
    pub fn master_key_next(&self) -> PathBuf {
        self.root.join("master.key.next")
    }

    /// Where a rotation moves the master key it replaced, for the operator to back up and
    /// delete.
    pub fn master_key_retired(&self, key_id: &str) -> PathBuf {
        self.root.join(format!("master.key.retired-{key_id}"))
    }

    pub fn tenants_dir(&self) -> PathBuf {
        self.root.join("tenants")
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.root.join("backups")
    }

    /// The live database file of a tenant.
    pub fn tenant_db(&self, id: &TenantId) -> PathBuf {
        self.tenants_dir().join(format!("{id}.db"))
    }

    /// Where tenant files are built before they are renamed into place. It sits inside
    /// `tenants/` so the final `rename` never crosses a file system.
    pub fn provisioning_dir(&self) -> PathBuf {
        self.tenants_dir().join(".provisioning")
    }

    /// The file a tenant is built in while it is provisioned.
    pub fn provisioning_db(&self, id: &TenantId) -> PathBuf {
        self.provisioning_dir().join(format!("{id}.db"))
    }

    /// The lock file held by the process provisioning a tenant; a crash releases it, which is
    /// how start-up recovery tells a dead provisioning from one still in progress.
    pub fn provisioning_lock(&self, id: &TenantId) -> PathBuf {
        self.provisioning_dir().join(format!("{id}.lock"))
    }

    /// The SQLite side files (`-wal`, `-shm`, `-journal`) that belong to a database file.
    pub fn sqlite_side_files(db: &Path) -> [PathBuf; 3] {
        let with = |suffix: &str| {
            let mut s = db.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        [with("-wal"), with("-shm"), with("-journal")]
    }
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_files_live_under_tenants_by_id() {
        let dir = DataDir::new("/data");
        let id = TenantId::parse("0190a6c2-3b4f-7def-8123-456789abcdef").unwrap();
        assert_eq!(
            dir.tenant_db(&id),
            PathBuf::from("/data/tenants/0190a6c2-3b4f-7def-8123-456789abcdef.db")
        );
        assert!(dir.provisioning_db(&id).starts_with(dir.tenants_dir()));
    }

    #[test]
    fn ensure_fails_when_the_root_is_under_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        fs::write(&file, b"x").unwrap();
        let err = DataDir::new(file.join("data")).ensure().unwrap_err();
        assert!(err.to_string().contains("plain-file"), "{err}");
    }
}
