//! SQL of the tenant data keys in `registry.db` (wrapped keys only: see `secrets`).

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};

use super::registry::format_time;
use crate::domain::TenantId;
use crate::secrets::WrappedKey;
use crate::store::{Rewrap, StoreError};

pub(super) fn get(conn: &Connection, tenant: TenantId) -> Result<Option<WrappedKey>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT master_key_id, wrapped FROM tenant_data_keys WHERE tenant_id = ?1")?
        .query_row([tenant.to_string()], |r| {
            Ok(WrappedKey {
                master_key_id: r.get(0)?,
                bytes: r.get(1)?,
            })
        })
        .optional()?)
}

/// Runs inside a write transaction (`BEGIN IMMEDIATE`), so the insert and the read that
/// follows see the same row whichever process inserted it.
pub(super) fn insert_if_absent(
    conn: &Connection,
    tenant: TenantId,
    key: &WrappedKey,
) -> Result<WrappedKey, StoreError> {
    conn.prepare_cached(
        "INSERT INTO tenant_data_keys (tenant_id, master_key_id, wrapped, created_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id) DO NOTHING",
    )?
    .execute(params![
        tenant.to_string(),
        key.master_key_id,
        key.bytes,
        format_time(&Utc::now()),
    ])?;
    get(conn, tenant)?.ok_or_else(|| StoreError::Internal("data key vanished on insert".into()))
}

pub(super) fn delete(conn: &Connection, tenant: TenantId) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM tenant_data_keys WHERE tenant_id = ?1")?
        .execute([tenant.to_string()])?;
    Ok(())
}

pub(super) fn rewrap_all(conn: &Connection, rewrap: &mut Rewrap<'_>) -> Result<usize, StoreError> {
    let rows: Vec<(String, WrappedKey)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT tenant_id, master_key_id, wrapped FROM tenant_data_keys ORDER BY tenant_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                WrappedKey {
                    master_key_id: r.get(1)?,
                    bytes: r.get(2)?,
                },
            ))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let at = format_time(&Utc::now());
    let mut changed = 0;
    for (tenant, wrapped) in rows {
        if let Some(new) = rewrap(&tenant, &wrapped)? {
            conn.prepare_cached(
                "UPDATE tenant_data_keys SET master_key_id = ?2, wrapped = ?3, \
                 rewrapped_at = ?4 WHERE tenant_id = ?1",
            )?
            .execute(params![tenant, new.master_key_id, new.bytes, at])?;
            changed += 1;
        }
    }
    Ok(changed)
}
