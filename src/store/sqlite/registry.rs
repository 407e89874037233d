//! The registry in `registry.db`: SQL for tenant rows and the change counter.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use scheduled_thread_pool::ScheduledThreadPool;

use super::api_tokens;
use super::audit::{self, AuditTable};
use super::connection::{SqliteManager, SqlitePool, create_file, write_tx};
use super::data_keys;
use crate::audit::{AuditEntry, AuditFilter};
use crate::auth::session::SessionRecord;
use crate::auth::token::ApiToken;
use crate::auth::{Email, Role, User, UserId};
use crate::config::StorageSettings;
use crate::data_dir::DataDir;
use crate::domain::{Plan, Tenant, TenantId, TenantSlug, TenantStatus};
use crate::secrets::WrappedKey;
use crate::store::migrations::MigrationSet;
use crate::store::{Member, RegistryStore, Rewrap, StoreError};

const TENANT_COLUMNS: &str = "id, slug, name, status, plan, created_at, updated_at";

pub struct SqliteRegistry {
    pool: SqlitePool,
}

impl SqliteRegistry {
    /// Opens `registry.db`, creating and migrating it as needed.
    pub fn open(
        dir: &DataDir,
        settings: &StorageSettings,
        maintenance: Arc<ScheduledThreadPool>,
    ) -> Result<Self, StoreError> {
        let path = dir.registry_db();
        let busy = Duration::from_millis(settings.busy_timeout_ms);
        {
            let mut conn = create_file(&path, busy)?;
            MigrationSet::registry().apply(&mut conn)?;
        }
        let pool = SqliteManager::new(path, busy).into_pool(8, maintenance);
        Ok(Self { pool })
    }
}

pub(crate) fn format_time(t: &DateTime<Utc>) -> String {
    crate::domain::time::format_rfc3339(t)
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    crate::domain::time::parse_rfc3339(s)
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp '{s}': {e}")))
}

/// Reads a user from the first four columns: id, email, is_platform_admin, created_at.
fn user_from_row(row: &Row<'_>) -> Result<User, StoreError> {
    let id: String = row.get(0)?;
    let email: String = row.get(1)?;
    let created: String = row.get(3)?;
    Ok(User {
        id: UserId::parse(&id).map_err(|e| StoreError::Corrupt(format!("user id: {e}")))?,
        email: Email::parse(&email).map_err(StoreError::Corrupt)?,
        is_platform_admin: row.get(2)?,
        created_at: parse_time(&created)?,
    })
}

/// Reads a tenant row. Values that do not parse mean the registry was edited by hand or
/// damaged: that is `Corrupt`, never a panic.
fn tenant_from_row(row: &Row<'_>) -> Result<Tenant, StoreError> {
    let id: String = row.get(0)?;
    let slug: String = row.get(1)?;
    let status: String = row.get(3)?;
    let plan: String = row.get(4)?;
    let created: String = row.get(5)?;
    let updated: String = row.get(6)?;
    Ok(Tenant {
        id: TenantId::parse(&id).map_err(|e| StoreError::Corrupt(format!("tenant id: {e}")))?,
        slug: TenantSlug::parse(&slug)
            .map_err(|e| StoreError::Corrupt(format!("tenant slug '{slug}': {e}")))?,
        name: row.get(2)?,
        status: status
            .parse::<TenantStatus>()
            .map_err(StoreError::Corrupt)?,
        plan: plan.parse::<Plan>().map_err(StoreError::Corrupt)?,
        created_at: parse_time(&created)?,
        updated_at: parse_time(&updated)?,
    })
}

impl RegistryStore for SqliteRegistry {
    fn insert_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            let taken: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM tenants WHERE slug = ?1)")?
                .query_row([t.slug.as_str()], |r| r.get(0))?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "a tenant with slug '{}' already exists",
                    t.slug
                )));
            }
            tx.prepare_cached(
                "INSERT INTO tenants (id, slug, name, status, plan, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                t.id.to_string(),
                t.slug.as_str(),
                t.name,
                t.status.as_str(),
                t.plan.as_str(),
                format_time(&t.created_at),
                format_time(&t.updated_at),
            ])?;
            Ok(())
        })
    }

    fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>, StoreError> {
        let conn = self.pool.get()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = ?1"
        ))?;
        let mut rows = stmt.query([slug])?;
        match rows.next()? {
            Some(row) => tenant_from_row(row).map(Some),
            None => Ok(None),
        }
    }

    fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let conn = self.pool.get()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants ORDER BY created_at, id"
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(tenant_from_row(row)?);
        }
        Ok(out)
    }

    fn update_tenant_status(
        &self,
        id: TenantId,
        from: TenantStatus,
        to: TenantStatus,
    ) -> Result<Tenant, StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            let now = format_time(&Utc::now());
            let deleted_at = (to == TenantStatus::Deleted).then(|| now.clone());
            let changed = tx
                .prepare_cached(
                    "UPDATE tenants SET status = ?1, updated_at = ?2, deleted_at = ?3 \
                     WHERE id = ?4 AND status = ?5",
                )?
                .execute(params![
                    to.as_str(),
                    now,
                    deleted_at,
                    id.to_string(),
                    from.as_str()
                ])?;
            let row = tx
                .prepare_cached(&format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?1"
                ))?
                .query_row([id.to_string()], |row| Ok(tenant_from_row(row)))
                .optional()?
                .ok_or(StoreError::NotFound)??;
            if changed == 0 {
                return Err(StoreError::Conflict(format!(
                    "tenant '{}' is {}, not {from}",
                    row.slug, row.status
                )));
            }
            Ok(row)
        })
    }

    fn delete_tenant(&self, id: TenantId) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            tx.prepare_cached("DELETE FROM tenants WHERE id = ?1")?
                .execute([id.to_string()])?;
            Ok(())
        })
    }

    fn generation(&self) -> Result<i64, StoreError> {
        let conn = self.pool.get()?;
        let g = conn
            .prepare_cached("SELECT generation FROM registry_state WHERE id = 1")?
            .query_row([], |r| r.get(0))?;
        Ok(g)
    }

    fn access_generation(&self) -> Result<i64, StoreError> {
        let conn = self.pool.get()?;
        let g = conn
            .prepare_cached("SELECT access_generation FROM registry_state WHERE id = 1")?
            .query_row([], |r| r.get(0))?;
        Ok(g)
    }

    fn probe_writable(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            tx.prepare_cached("UPDATE registry_state SET last_ready_probe = ?1 WHERE id = 1")?
                .execute([format_time(&Utc::now())])?;
            Ok(())
        })
    }

    fn insert_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            let taken: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1)")?
                .query_row([user.email.as_str()], |r| r.get(0))?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "a user with email '{}' already exists",
                    user.email
                )));
            }
            let created = format_time(&user.created_at);
            tx.prepare_cached(
                "INSERT INTO users (id, email, password_hash, is_platform_admin, created_at, \
                 updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )?
            .execute(params![
                user.id.to_string(),
                user.email.as_str(),
                password_hash,
                user.is_platform_admin,
                created,
            ])?;
            Ok(())
        })
    }

    fn user_by_email(&self, email: &Email) -> Result<Option<(User, String)>, StoreError> {
        let conn = self.pool.get()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, email, is_platform_admin, created_at, password_hash \
             FROM users WHERE email = ?1",
        )?;
        let mut rows = stmt.query([email.as_str()])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        let user = user_from_row(row)?;
        Ok(Some((user, row.get(4)?)))
    }

    fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE users SET password_hash = ?1, updated_at = ?2 WHERE id = ?3",
                )?
                .execute(params![
                    password_hash,
                    format_time(&Utc::now()),
                    id.to_string()
                ])?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn upsert_membership(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            let now = format_time(&Utc::now());
            tx.prepare_cached(
                "INSERT INTO memberships (tenant_id, user_id, role, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4) \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = ?3, updated_at = ?4",
            )?
            .execute(params![
                tenant.to_string(),
                user.to_string(),
                role.as_str(),
                now
            ])?;
            Ok(())
        })
    }

    fn insert_session(
        &self,
        id_hash: &str,
        user: UserId,
        session: &SessionRecord,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            tx.prepare_cached(
                "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                id_hash,
                user.to_string(),
                format_time(&session.created_at),
                format_time(&session.last_seen_at),
                format_time(&session.expires_at),
            ])?;
            Ok(())
        })
    }

    fn session(&self, id_hash: &str) -> Result<Option<(User, SessionRecord)>, StoreError> {
        let conn = self.pool.get()?;
        let mut stmt = conn.prepare_cached(
            "SELECT u.id, u.email, u.is_platform_admin, u.created_at, \
                    s.created_at, s.last_seen_at, s.expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?1",
        )?;
        let mut rows = stmt.query([id_hash])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        let user = user_from_row(row)?;
        let text = |i: usize| -> Result<String, StoreError> { Ok(row.get::<_, String>(i)?) };
        let session = SessionRecord {
            created_at: parse_time(&text(4)?)?,
            last_seen_at: parse_time(&text(5)?)?,
            expires_at: parse_time(&text(6)?)?,
        };
        Ok(Some((user, session)))
    }

    fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            tx.prepare_cached("UPDATE sessions SET last_seen_at = ?1 WHERE id_hash = ?2")?
                .execute(params![format_time(&at), id_hash])?;
            Ok(())
        })
    }

    fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            tx.prepare_cached("DELETE FROM sessions WHERE id_hash = ?1")?
                .execute([id_hash])?;
            Ok(())
        })
    }

    fn insert_api_token(&self, t: &ApiToken, token_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| api_tokens::insert(tx, t, token_hash))
    }

    fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        api_tokens::by_hash(&*self.pool.get()?, token_hash)
    }

    fn touch_api_token(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| api_tokens::touch(tx, id, at))
    }

    fn api_tokens(&self, tenant: TenantId) -> Result<Vec<ApiToken>, StoreError> {
        api_tokens::list(&*self.pool.get()?, tenant)
    }

    fn api_token(&self, tenant: TenantId, id: &str) -> Result<Option<ApiToken>, StoreError> {
        api_tokens::by_id(&*self.pool.get()?, tenant, id)
    }

    fn revoke_api_token(
        &self,
        tenant: TenantId,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<ApiToken, StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| api_tokens::revoke(tx, tenant, id, at))
    }

    fn append_platform_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            audit::append(tx, AuditTable::Platform, entry)
        })
    }

    fn platform_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        audit::page(&*self.pool.get()?, AuditTable::Platform, filter)
    }

    fn membership_role(&self, tenant: TenantId, user: UserId) -> Result<Option<Role>, StoreError> {
        let conn = self.pool.get()?;
        let role: Option<String> = conn
            .prepare_cached("SELECT role FROM memberships WHERE tenant_id = ?1 AND user_id = ?2")?
            .query_row([tenant.to_string(), user.to_string()], |r| r.get(0))
            .optional()?;
        role.map(|r| r.parse().map_err(StoreError::Corrupt))
            .transpose()
    }

    fn list_members(&self, tenant: TenantId) -> Result<Vec<Member>, StoreError> {
        let conn = self.pool.get()?;
        let mut stmt = conn.prepare_cached(
            "SELECT u.id, u.email, m.role, m.created_at FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE m.tenant_id = ?1 ORDER BY u.email",
        )?;
        let mut rows = stmt.query([tenant.to_string()])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let email: String = row.get(1)?;
            let role: String = row.get(2)?;
            let created: String = row.get(3)?;
            out.push(Member {
                user_id: UserId::parse(&id)
                    .map_err(|e| StoreError::Corrupt(format!("user id: {e}")))?,
                email: Email::parse(&email).map_err(StoreError::Corrupt)?,
                role: role.parse().map_err(StoreError::Corrupt)?,
                created_at: parse_time(&created)?,
            });
        }
        Ok(out)
    }

    fn change_membership(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Option<Role>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| {
            let (t, u) = (tenant.to_string(), user.to_string());
            let current: Option<String> = tx
                .prepare_cached(
                    "SELECT role FROM memberships WHERE tenant_id = ?1 AND user_id = ?2",
                )?
                .query_row([&t, &u], |r| r.get(0))
                .optional()?;
            let current = current.ok_or(StoreError::NotFound)?;
            if current == Role::Owner.as_str() && role != Some(Role::Owner) {
                let owners: i64 = tx
                    .prepare_cached(
                        "SELECT COUNT(*) FROM memberships WHERE tenant_id = ?1 AND role = 'owner'",
                    )?
                    .query_row([&t], |r| r.get(0))?;
                if owners <= 1 {
                    return Err(StoreError::Conflict(
                        "the last owner of a tenant can be neither removed nor demoted; \
                         make someone else owner first"
                            .into(),
                    ));
                }
            }
            match role {
                Some(role) => {
                    tx.prepare_cached(
                        "UPDATE memberships SET role = ?1, updated_at = ?2 \
                         WHERE tenant_id = ?3 AND user_id = ?4",
                    )?
                    .execute(params![
                        role.as_str(),
                        format_time(&Utc::now()),
                        t,
                        u
                    ])?;
                }
                None => {
                    tx.prepare_cached(
                        "DELETE FROM memberships WHERE tenant_id = ?1 AND user_id = ?2",
                    )?
                    .execute([&t, &u])?;
                }
            }
            Ok(())
        })
    }

    fn has_platform_admin(&self) -> Result<bool, StoreError> {
        let conn = self.pool.get()?;
        let exists = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE is_platform_admin = 1)")?
            .query_row([], |r| r.get(0))?;
        Ok(exists)
    }

    fn memberships_of(&self, user: UserId) -> Result<Vec<(String, Role)>, StoreError> {
        let conn = self.pool.get()?;
        let mut stmt = conn.prepare_cached(
            "SELECT t.slug, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
             WHERE m.user_id = ?1 AND t.status = 'active' ORDER BY t.slug",
        )?;
        let mut rows = stmt.query([user.to_string()])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let role: String = row.get(1)?;
            out.push((row.get(0)?, role.parse().map_err(StoreError::Corrupt)?));
        }
        Ok(out)
    }

    fn close(&self) {
        // Fold the WAL back into the main file so the data dir is self-contained at rest.
        if let Ok(conn) = self.pool.get()
            && let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        {
            tracing::warn!(error = %e, "registry checkpoint failed at shutdown");
        }
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        let conn = self.pool.get()?;
        conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);")?;
        Ok(())
    }

    fn tenant_data_key(&self, tenant: TenantId) -> Result<Option<WrappedKey>, StoreError> {
        data_keys::get(&*self.pool.get()?, tenant)
    }

    fn insert_tenant_data_key_if_absent(
        &self,
        tenant: TenantId,
        key: &WrappedKey,
    ) -> Result<WrappedKey, StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| data_keys::insert_if_absent(tx, tenant, key))
    }

    fn delete_tenant_data_key(&self, tenant: TenantId) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| data_keys::delete(tx, tenant))
    }

    fn rewrap_tenant_data_keys(&self, rewrap: &mut Rewrap<'_>) -> Result<usize, StoreError> {
        let mut conn = self.pool.get()?;
        write_tx(&mut conn, |tx| data_keys::rewrap_all(tx, rewrap))
    }
}
