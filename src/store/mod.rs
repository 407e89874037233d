//! Storage: the platform registry and one database per tenant, behind traits so the SQLite
//! backend (default) and the PostgreSQL backend (planned: registry in `public`, one schema per
//! tenant) are interchangeable. Services see only these traits, never SQL or a connection type.
//!
//! Every method here is blocking. Async code calls them through [`blocking`], which runs them on
//! tokio's blocking pool so no HTTP worker ever waits on a disk or a lock.

pub mod agents;
pub mod board;
pub mod chat;
mod error;
pub mod hook_events;
pub mod mcp_servers;
pub mod migrations;
pub mod providers;
pub mod runs;
pub mod settings;
pub mod sqlite;
pub mod tasks;

use std::sync::Arc;

pub use agents::AgentRepo;
pub use board::BoardRepo;
pub use chat::ChatRepo;
pub use error::StoreError;
pub use hook_events::HookEventRepo;
pub use mcp_servers::McpServerRepo;
pub use providers::ProviderRepo;
pub use runs::RunRepo;
pub use settings::SettingsRepo;
pub use sqlite::{Deferred, defer_commits};
pub use tasks::TaskRepo;

use chrono::{DateTime, Utc};

use crate::audit::{AuditEntry, AuditFilter};
use crate::auth::session::SessionRecord;
use crate::auth::token::ApiToken;
use crate::auth::{Email, Role, User, UserId};
use crate::config::{Backend, Settings};
use crate::data_dir::DataDir;
use crate::domain::workspace::Workspace;
use crate::domain::{Tenant, TenantId, TenantStatus};
use crate::secrets::WrappedKey;

/// The platform-wide registry of tenants.
pub trait RegistryStore: Send + Sync + 'static {
    /// Inserts a new tenant row; a taken slug is [`StoreError::Conflict`].
    fn insert_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>, StoreError>;
    /// All tenants, in creation order.
    fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    /// Moves a tenant from `from` to `to` (compare-and-set). When the stored status is no longer
    /// `from`, nothing changes and the result is [`StoreError::Conflict`].
    fn update_tenant_status(
        &self,
        id: TenantId,
        from: TenantStatus,
        to: TenantStatus,
    ) -> Result<Tenant, StoreError>;
    fn delete_tenant(&self, id: TenantId) -> Result<(), StoreError>;
    /// A counter that grows with every change to the tenant rows, by any process.
    fn generation(&self) -> Result<i64, StoreError>;
    /// A counter that grows with every change that can end or narrow access (memberships,
    /// token revocation, users): what token caches poll.
    fn access_generation(&self) -> Result<i64, StoreError>;
    /// Proves the registry accepts writes (used by `/readyz`).
    fn probe_writable(&self) -> Result<(), StoreError>;
    /// Flushes and closes: called once at shutdown.
    fn close(&self);
    /// Folds the write-ahead log back into the database file as far as readers allow
    /// (a passive checkpoint: never waits for them). Maintenance calls it on a schedule.
    fn checkpoint(&self) -> Result<(), StoreError>;

    /// Inserts a user with its password hash; a taken email is [`StoreError::Conflict`].
    fn insert_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError>;
    /// A user and its password hash.
    fn user_by_email(&self, email: &Email) -> Result<Option<(User, String)>, StoreError>;
    fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<(), StoreError>;
    /// Gives a user a role in a tenant (adding or changing the membership).
    fn upsert_membership(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
    ) -> Result<(), StoreError>;
    fn insert_session(
        &self,
        id_hash: &str,
        user: UserId,
        session: &SessionRecord,
    ) -> Result<(), StoreError>;
    /// A session and its user.
    fn session(&self, id_hash: &str) -> Result<Option<(User, SessionRecord)>, StoreError>;
    fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;
    fn insert_api_token(&self, token: &ApiToken, token_hash: &str) -> Result<(), StoreError>;
    /// A token by the hash of its secret (revoked and expired ones included).
    fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError>;
    fn touch_api_token(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// A tenant's tokens, newest first, revoked and expired ones included.
    fn api_tokens(&self, tenant: TenantId) -> Result<Vec<ApiToken>, StoreError>;
    /// One token of a tenant (`None` for another tenant's token).
    fn api_token(&self, tenant: TenantId, id: &str) -> Result<Option<ApiToken>, StoreError>;
    /// Revokes a token of the tenant (idempotent); [`StoreError::NotFound`] if the tenant has
    /// no such token.
    fn revoke_api_token(
        &self,
        tenant: TenantId,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<ApiToken, StoreError>;
    /// Appends to the platform audit log (append-only).
    fn append_platform_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// A page of the platform audit log, newest first.
    fn platform_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
    /// A user's role in a tenant, if they are a member.
    fn membership_role(&self, tenant: TenantId, user: UserId) -> Result<Option<Role>, StoreError>;
    /// The members of a tenant with their roles, by email.
    fn list_members(&self, tenant: TenantId) -> Result<Vec<Member>, StoreError>;
    /// Changes (`Some`) or removes (`None`) a membership in one transaction that refuses, with
    /// [`StoreError::Conflict`], to leave the tenant without an owner. No membership is
    /// [`StoreError::NotFound`].
    fn change_membership(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Option<Role>,
    ) -> Result<(), StoreError>;
    /// Whether any platform admin exists.
    fn has_platform_admin(&self) -> Result<bool, StoreError>;
    /// The tenants a user belongs to, with the role in each, by slug.
    fn memberships_of(&self, user: UserId) -> Result<Vec<(String, Role)>, StoreError>;

    /// A tenant's wrapped data key, if it has one yet.
    fn tenant_data_key(&self, tenant: TenantId) -> Result<Option<WrappedKey>, StoreError>;
    /// Stores `key` as the tenant's data key unless it already has one, and returns the key
    /// that is stored: of two processes creating the first key of a tenant at once, both end
    /// up with the same one.
    fn insert_tenant_data_key_if_absent(
        &self,
        tenant: TenantId,
        key: &WrappedKey,
    ) -> Result<WrappedKey, StoreError>;
    /// Deletes a tenant's data key (idempotent): its secrets become unreadable for good.
    fn delete_tenant_data_key(&self, tenant: TenantId) -> Result<(), StoreError>;
    /// Re-wraps tenant data keys in one transaction: `rewrap` gets each row's tenant id and
    /// wrapped key and returns its replacement, or `None` to keep the row; an error rolls
    /// every change back. Returns how many rows were replaced.
    fn rewrap_tenant_data_keys(&self, rewrap: &mut Rewrap<'_>) -> Result<usize, StoreError>;
}

/// Re-wraps one tenant's data key: given the tenant id and its wrapped key, the replacement,
/// or `None` to keep it (see [`RegistryStore::rewrap_tenant_data_keys`]).
pub type Rewrap<'a> = dyn FnMut(&str, &WrappedKey) -> Result<Option<WrappedKey>, StoreError> + 'a;

/// A claim on a tenant id that is being provisioned. While a process holds it, no other process
/// treats that provisioning as abandoned; a crash releases it.
pub struct ProvisioningClaim {
    pub id: TenantId,
    _guard: Box<dyn Send + Sync>,
}

impl ProvisioningClaim {
    pub fn new(id: TenantId, guard: Box<dyn Send + Sync>) -> Self {
        Self { id, _guard: guard }
    }
}

/// What a migration run did to one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationOutcome {
    AlreadyCurrent,
    Applied { from: i64, to: i64 },
}

/// The set of tenant databases: their lifecycle and the open handles to them.
pub trait TenantDatabases: Send + Sync + 'static {
    /// Claims a tenant id for provisioning. `None` when another live process holds the claim.
    fn claim(&self, id: TenantId) -> Result<Option<ProvisioningClaim>, StoreError>;
    /// Creates the tenant's database atomically: it becomes visible complete and migrated, or
    /// not at all.
    fn create(&self, claim: &ProvisioningClaim, tenant: &Tenant) -> Result<(), StoreError>;
    /// Removes every trace of a tenant's data (idempotent).
    fn remove(&self, id: TenantId) -> Result<(), StoreError>;
    /// Returns a handle to an open tenant database, opening it if needed.
    fn open(&self, id: TenantId) -> Result<Arc<dyn TenantStore>, StoreError>;
    /// The handle of an already open tenant database, without opening anything: cheap enough
    /// for an async worker (no database I/O, at most a file metadata lookup).
    fn open_if_cached(&self, id: TenantId) -> Result<Option<Arc<dyn TenantStore>>, StoreError>;
    /// Closes a tenant's database if it is open (the next `open` reopens it).
    fn close(&self, id: TenantId);
    /// Brings one tenant database to the latest schema.
    fn migrate(&self, id: TenantId) -> Result<MigrationOutcome, StoreError>;
    /// Ids of leftovers from interrupted provisioning that no registry row accounts for.
    fn sweep_abandoned(&self, known: &[TenantId]) -> Result<usize, StoreError>;
    /// Number of tenant databases open right now.
    fn open_count(&self) -> usize;
    /// Checkpoints and closes every open tenant database: called once at shutdown.
    fn close_all(&self);
    /// A passive checkpoint of every open tenant database (maintenance); returns how many
    /// were checkpointed.
    fn checkpoint_open(&self) -> usize;
}

/// Held by a request that is going to write to a tenant store, from before its work starts
/// until it is done: while other such requests are under way, the store may keep a write
/// transaction open for a moment so that their writes share one commit. Dropping it ends
/// the announcement; a request that ends up writing nothing only cost that moment.
pub struct WriteIntent {
    _held: Box<dyn Send + Sync>,
}

impl WriteIntent {
    /// An announcement that lasts until `held` is dropped.
    pub fn held(held: impl Send + Sync + 'static) -> Self {
        WriteIntent {
            _held: Box::new(held),
        }
    }
}

/// One tenant's open database: the repositories of every domain area (each its own trait, in
/// its own module). A handle only ever reaches the rows of the tenant it was opened for.
///
/// Conventions of the repository traits: reads return domain types; every mutation takes the
/// [`AuditEntry`] that records it and writes it in the same transaction; a missing row is
/// [`StoreError::NotFound`], a violated uniqueness [`StoreError::Conflict`].
pub trait TenantStore:
    AgentRepo
    + TaskRepo
    + ChatRepo
    + BoardRepo
    + SettingsRepo
    + McpServerRepo
    + ProviderRepo
    + HookEventRepo
    + RunRepo
    + Send
    + Sync
    + 'static
{
    fn tenant_id(&self) -> TenantId;
    /// Announces a write that is coming (see [`WriteIntent`]).
    fn intend_write(&self) -> WriteIntent;
    fn workspace(&self) -> Result<Workspace, StoreError>;
    fn rename_workspace(&self, name: &str) -> Result<Workspace, StoreError>;
    /// Appends to the tenant's audit log (append-only).
    fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// A page of the tenant's audit log, newest first.
    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
}

/// A member of a tenant, as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Member {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    #[schema(value_type = String, format = Email)]
    pub email: Email,
    pub role: Role,
    #[serde(serialize_with = "crate::domain::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

/// The storage of one instance: the registry and the tenant databases of the chosen backend.
#[derive(Clone)]
pub struct Storage {
    pub registry: Arc<dyn RegistryStore>,
    pub tenants: Arc<dyn TenantDatabases>,
}

impl Storage {
    /// Opens (creating and migrating when needed) the backend named by the settings.
    pub fn open(settings: &Settings) -> Result<Self, StoreError> {
        match &settings.backend {
            Backend::Sqlite => {
                let dir = DataDir::new(&settings.data_dir);
                dir.ensure()
                    .map_err(|e| StoreError::Unavailable(format!("data dir is not usable: {e}")))?;
                sqlite::open(dir, &settings.storage)
            }
            Backend::Postgres(_) => Err(StoreError::Unavailable(
                "the PostgreSQL backend is not available in this version; \
                 unset AGENTHQ_DATABASE_URL to use embedded SQLite"
                    .into(),
            )),
        }
    }

    pub fn close(&self) {
        self.tenants.close_all();
        self.registry.close();
    }
}

/// Runs blocking storage work off the async workers.
pub async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal(format!("storage task failed: {e}")))?
}
