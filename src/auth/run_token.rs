//! Agent-run tokens: short-lived signed tokens that let one agent run act for one task of one
//! tenant (the runtimes and the MCP endpoint present them).
//!
//! They are JWTs (HS256) signed with a key derived from the master key, so they need no
//! database row: verifying one is a signature check and a few comparisons. Being
//! self-contained, a token stays valid until it expires; the endpoints that accept them must
//! also check that the task is still running, which ends a cancelled run's rights at once.
//!
//! Times come from the caller (`issue_at`/`verify_at`) so tests control the clock; `exp` is
//! checked here, with no leeway, rather than by jsonwebtoken against the system clock.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::TenantId;
use crate::secrets::MasterKey;

/// The HKDF purpose of the signing key; a new version invalidates every token issued before.
const KEY_PURPOSE: &str = "agent-run-token/v1";
const ISSUER: &str = "agenthq";
const AUDIENCE: &str = "agenthq-run";
/// How long a run token is valid unless the caller says otherwise.
pub const DEFAULT_TTL: Duration = Duration::minutes(60);

/// What a run token allows: acting as `agent` for `task` in `tenant`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunScope {
    pub tenant: TenantId,
    pub agent: Uuid,
    pub task: Uuid,
}

/// A verified token: its scope, id and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunGrant {
    pub scope: RunScope,
    pub token_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RunTokenError {
    #[error("the agent-run token has expired")]
    Expired,
    #[error("the agent-run token is invalid")]
    Invalid,
    #[error("cannot sign an agent-run token: {0}")]
    Signing(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    /// `agent:<agent id>`, for logs that show only the subject.
    sub: String,
    tenant: String,
    agent: Uuid,
    task: Uuid,
    iat: i64,
    exp: i64,
    jti: Uuid,
}

pub struct RunTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for RunTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl RunTokens {
    pub fn new(master: &MasterKey, ttl: Duration) -> Self {
        let key = master.derive(KEY_PURPOSE);
        // Only HS256 is accepted: a token naming another algorithm (`none`, RS256 with our
        // key as a "public key") is refused before its signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self {
            encoding: EncodingKey::from_secret(key.as_slice()),
            decoding: DecodingKey::from_secret(key.as_slice()),
            validation,
            ttl,
        }
    }

    pub fn issue(&self, scope: &RunScope) -> Result<String, RunTokenError> {
        self.issue_at(scope, Utc::now())
    }

    pub fn issue_at(&self, scope: &RunScope, now: DateTime<Utc>) -> Result<String, RunTokenError> {
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: format!("agent:{}", scope.agent),
            tenant: scope.tenant.to_string(),
            agent: scope.agent,
            task: scope.task,
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
            jti: Uuid::now_v7(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| RunTokenError::Signing(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<RunGrant, RunTokenError> {
        self.verify_at(token, Utc::now())
    }

    /// Checks signature, issuer, audience and expiry (a token is dead from its `exp` second on).
    pub fn verify_at(&self, token: &str, now: DateTime<Utc>) -> Result<RunGrant, RunTokenError> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => RunTokenError::Expired,
                _ => RunTokenError::Invalid,
            })?
            .claims;
        if now.timestamp() >= claims.exp {
            return Err(RunTokenError::Expired);
        }
        let tenant = TenantId::parse(&claims.tenant).map_err(|_| RunTokenError::Invalid)?;
        let expires_at = DateTime::from_timestamp(claims.exp, 0).ok_or(RunTokenError::Invalid)?;
        Ok(RunGrant {
            scope: RunScope {
                tenant,
                agent: claims.agent,
                task: claims.task,
            },
            token_id: claims.jti,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_base64(&STANDARD.encode([byte; 32])).unwrap()
    }

    fn scope() -> RunScope {
        RunScope {
            tenant: TenantId::new(),
            agent: Uuid::now_v7(),
            task: Uuid::now_v7(),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn an_issued_token_verifies_to_its_scope_until_it_expires() {
        let tokens = RunTokens::new(&master(1), Duration::minutes(10));
        let scope = scope();
        let token = tokens.issue_at(&scope, at(0)).unwrap();
        let grant = tokens.verify_at(&token, at(599)).unwrap();
        assert_eq!(grant.scope, scope);
        assert_eq!(grant.expires_at, at(600));
        assert_eq!(
            tokens.verify_at(&token, at(600)),
            Err(RunTokenError::Expired)
        );
        assert_eq!(
            tokens.verify_at(&token, at(100_000)),
            Err(RunTokenError::Expired)
        );
    }

    #[test]
    fn a_token_signed_with_another_master_key_is_invalid() {
        let ours = RunTokens::new(&master(1), DEFAULT_TTL);
        let theirs = RunTokens::new(&master(2), DEFAULT_TTL);
        let token = theirs.issue_at(&scope(), at(0)).unwrap();
        assert_eq!(ours.verify_at(&token, at(1)), Err(RunTokenError::Invalid));
    }

    #[test]
    fn a_tampered_scope_breaks_the_signature() {
        let tokens = RunTokens::new(&master(1), DEFAULT_TTL);
        let token = tokens.issue_at(&scope(), at(0)).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["tenant"] = TenantId::new().to_string().into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        );
        assert_eq!(
            tokens.verify_at(&forged, at(1)),
            Err(RunTokenError::Invalid)
        );
    }

    #[test]
    fn unsigned_and_garbage_tokens_are_invalid() {
        let tokens = RunTokens::new(&master(1), DEFAULT_TTL);
        let token = tokens.issue_at(&scope(), at(0)).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        for bad in [
            format!("{none_header}.{payload}."),
            "ahq_0123".to_owned(),
            String::new(),
            "a.b.c".to_owned(),
        ] {
            assert_eq!(
                tokens.verify_at(&bad, at(1)),
                Err(RunTokenError::Invalid),
                "{bad}"
            );
        }
    }
}
