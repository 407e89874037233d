//! SQL of the `api_tokens` table (registry). Only hashes of token secrets are ever stored.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

use super::registry::{format_time, parse_time};
use crate::auth::UserId;
use crate::auth::token::ApiToken;
use crate::domain::TenantId;
use crate::store::StoreError;

macro_rules! select_tokens {
    ($rest:literal) => {
        concat!(
            "SELECT k.id, k.tenant_id, t.slug, k.user_id, k.name, k.role, k.created_at, \
                    k.expires_at, k.last_used_at, k.revoked_at \
             FROM api_tokens k JOIN tenants t ON t.id = k.tenant_id ",
            $rest
        )
    };
}

pub(super) fn insert(conn: &Connection, t: &ApiToken, token_hash: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO api_tokens (id, tenant_id, user_id, name, token_hash, role, \
         created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        t.id,
        t.tenant_id.to_string(),
        t.user_id.to_string(),
        t.name,
        token_hash,
        t.role.as_str(),
        format_time(&t.created_at),
        t.expires_at.as_ref().map(format_time),
    ])?;
    Ok(())
}

pub(super) fn by_hash(conn: &Connection, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
    let mut stmt = conn.prepare_cached(select_tokens!("WHERE k.token_hash = ?1"))?;
    let mut rows = stmt.query([token_hash])?;
    rows.next()?.map(token_from_row).transpose()
}

pub(super) fn by_id(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
) -> Result<Option<ApiToken>, StoreError> {
    let mut stmt = conn.prepare_cached(select_tokens!("WHERE k.tenant_id = ?1 AND k.id = ?2"))?;
    let mut rows = stmt.query(params![tenant.to_string(), id])?;
    rows.next()?.map(token_from_row).transpose()
}

/// A tenant's tokens, newest first (revoked ones included: they are part of the record).
pub(super) fn list(conn: &Connection, tenant: TenantId) -> Result<Vec<ApiToken>, StoreError> {
    let mut stmt =
        conn.prepare_cached(select_tokens!("WHERE k.tenant_id = ?1 ORDER BY k.id DESC"))?;
    let mut rows = stmt.query([tenant.to_string()])?;
    let mut tokens = Vec::new();
    while let Some(row) = rows.next()? {
        tokens.push(token_from_row(row)?);
    }
    Ok(tokens)
}

pub(super) fn touch(conn: &Connection, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2")?
        .execute(params![format_time(&at), id])?;
    Ok(())
}

/// Revokes a token of the tenant. Revoking a revoked token keeps its first revocation time.
pub(super) fn revoke(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
    at: DateTime<Utc>,
) -> Result<ApiToken, StoreError> {
    conn.prepare_cached(
        "UPDATE api_tokens SET revoked_at = ?3 \
         WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL",
    )?
    .execute(params![tenant.to_string(), id, format_time(&at)])?;
    by_id(conn, tenant, id)?.ok_or(StoreError::NotFound)
}

fn token_from_row(row: &Row<'_>) -> Result<ApiToken, StoreError> {
    let opt_time = |i: usize| -> Result<Option<DateTime<Utc>>, StoreError> {
        row.get::<_, Option<String>>(i)?
            .map(|s| parse_time(&s))
            .transpose()
    };
    let tenant_id: String = row.get(1)?;
    let user_id: String = row.get(3)?;
    let role: String = row.get(5)?;
    let created: String = row.get(6)?;
    Ok(ApiToken {
        id: row.get(0)?,
        tenant_id: TenantId::parse(&tenant_id)
            .map_err(|e| StoreError::Corrupt(format!("tenant id: {e}")))?,
        tenant: row.get(2)?,
        user_id: UserId::parse(&user_id)
            .map_err(|e| StoreError::Corrupt(format!("user id: {e}")))?,
        name: row.get(4)?,
        role: role.parse().map_err(StoreError::Corrupt)?,
        created_at: parse_time(&created)?,
        expires_at: opt_time(7)?,
        last_used_at: opt_time(8)?,
        revoked_at: opt_time(9)?,
    })
}
