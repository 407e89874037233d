//! SQL of LLM providers in a tenant database.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

use super::registry::{format_time, parse_time};
use super::tenants::SqliteTenantStore;
use crate::audit::AuditEntry;
use crate::domain::PageRequest;
use crate::domain::provider::{Prices, Provider, ProviderKind};
use crate::store::StoreError;
use crate::store::providers::{KeyChange, ProviderChanges, ProviderRepo};

const COLUMNS: &str = "id, kind, name, base_url, api_key_encrypted IS NOT NULL, api_key_last4, \
                       default_model, prices, config, created_at, updated_at";

fn provider_from_row(r: &Row<'_>) -> Result<Provider, StoreError> {
    let kind: String = r.get(1)?;
    let prices: String = r.get(7)?;
    let config: String = r.get(8)?;
    Ok(Provider {
        id: r.get(0)?,
        kind: ProviderKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown provider kind '{kind}'")))?,
        name: r.get(2)?,
        base_url: r.get(3)?,
        api_key_set: r.get(4)?,
        api_key_last4: r.get(5)?,
        default_model: r.get(6)?,
        prices: serde_json::from_str::<Prices>(&prices)
            .map_err(|e| StoreError::Corrupt(format!("provider prices: {e}")))?,
        config: serde_json::from_str(&config)
            .map_err(|e| StoreError::Corrupt(format!("provider config: {e}")))?,
        created_at: parse_time(&r.get::<_, String>(9)?)?,
        updated_at: parse_time(&r.get::<_, String>(10)?)?,
    })
}

fn read_provider(conn: &Connection, id: &str) -> Result<Provider, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM providers WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(row) => provider_from_row(row),
        None => Err(StoreError::NotFound),
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(e.to_string()))
}

impl ProviderRepo for SqliteTenantStore {
    fn insert_provider(
        &self,
        p: &Provider,
        sealed_key: Option<&[u8]>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let (prices, config) = (to_json(&p.prices)?, to_json(&p.config)?);
        self.write_audited(audit, |tx| {
            tx.prepare_cached(
                "INSERT INTO providers (id, kind, name, base_url, api_key_encrypted, \
                 api_key_last4, default_model, prices, config, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                p.id,
                p.kind.as_str(),
                p.name,
                p.base_url,
                sealed_key,
                p.api_key_last4,
                p.default_model,
                prices,
                config,
                format_time(&p.created_at),
                format_time(&p.updated_at),
            ])?;
            Ok(())
        })
    }

    fn provider(&self, id: &str) -> Result<Provider, StoreError> {
        read_provider(&*self.read()?, id)
    }

    fn provider_with_sealed_key(
        &self,
        id: &str,
    ) -> Result<(Provider, Option<Vec<u8>>), StoreError> {
        let conn = self.read()?;
        let provider = read_provider(&conn, id)?;
        let sealed = conn
            .prepare_cached("SELECT api_key_encrypted FROM providers WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?;
        Ok((provider, sealed))
    }

    fn providers(&self, page: &PageRequest) -> Result<Vec<Provider>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM providers WHERE (?1 IS NULL OR name > ?1) \
             ORDER BY name LIMIT ?2"
        ))?;
        let mut rows = stmt.query(params![page.after, page.fetch()])?;
        let mut providers = Vec::new();
        while let Some(row) = rows.next()? {
            providers.push(provider_from_row(row)?);
        }
        Ok(providers)
    }

    fn update_provider(
        &self,
        id: &str,
        c: &ProviderChanges,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<Provider, StoreError> {
        let prices = c.prices.as_ref().map(to_json).transpose()?;
        let config = c.config.as_ref().map(to_json).transpose()?;
        let (set_key, sealed, last4) = match &c.key {
            KeyChange::Keep => (false, None, None),
            KeyChange::Clear => (true, None, None),
            KeyChange::Set { sealed, last4 } => (true, Some(sealed.as_slice()), last4.clone()),
        };
        self.write_audited(audit, |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE providers SET kind = COALESCE(?2, kind), name = COALESCE(?3, name), \
                     base_url = CASE WHEN ?4 THEN ?5 ELSE base_url END, \
                     api_key_encrypted = CASE WHEN ?6 THEN ?7 ELSE api_key_encrypted END, \
                     api_key_last4 = CASE WHEN ?6 THEN ?8 ELSE api_key_last4 END, \
                     default_model = CASE WHEN ?9 THEN ?10 ELSE default_model END, \
                     prices = COALESCE(?11, prices), config = COALESCE(?12, config), \
                     updated_at = ?13 WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    c.kind.map(ProviderKind::as_str),
                    c.name,
                    c.base_url.is_some(),
                    c.base_url.clone().flatten(),
                    set_key,
                    sealed,
                    last4,
                    c.default_model.is_some(),
                    c.default_model.clone().flatten(),
                    prices,
                    config,
                    format_time(&at),
                ])?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            read_provider(tx, id)
        })
    }

    fn delete_provider(&self, id: &str, audit: &AuditEntry) -> Result<(), StoreError> {
        self.write_audited(audit, |tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM providers WHERE id = ?1")?
                .execute([id])?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            // `agents.provider_id` is cleared by its foreign key; the workspace default has
            // none.
            tx.prepare_cached(
                "UPDATE workspace SET default_provider_id = NULL WHERE default_provider_id = ?1",
            )?
            .execute([id])?;
            Ok(())
        })
    }
}
