//! Sign-in: credentials to sessions, sessions to users.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::now;
use crate::ops::rate_limit::LoginBackoff;
use crate::store::{Storage, StoreError};

use super::password::Verification;
use super::session::{SessionRecord, SessionSecret};
use super::{Email, Password, PasswordHasher, Role, User};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong password, unknown email and malformed input all end here, on purpose.
    #[error("wrong email or password")]
    InvalidCredentials,
    /// Too many recent failures for this email (whether or not it exists): try again later.
    #[error("too many failed sign-ins for this account")]
    Throttled(Duration),
    #[error("cannot create a session: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A signed-in user and the tenants they belong to.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub tenants: Vec<(String, Role)>,
}

#[derive(Clone)]
pub struct Sessions {
    storage: Storage,
    hasher: PasswordHasher,
    backoff: Arc<LoginBackoff>,
}

impl Sessions {
    pub fn new(storage: Storage, hasher: PasswordHasher, backoff: Arc<LoginBackoff>) -> Self {
        Self {
            storage,
            hasher,
            backoff,
        }
    }

    /// Checks credentials and opens a new session. Every failure takes the same path and the
    /// same time (one argon2 verification), so the answer does not tell whether the email
    /// exists. An email with too many recent failures is refused before any of that (see
    /// [`LoginBackoff`]), exists or not.
    pub fn login(
        &self,
        email: &str,
        password: String,
    ) -> Result<(SignedIn, SessionSecret), LoginError> {
        self.backoff.check(email).map_err(LoginError::Throttled)?;
        let result = self.verify(email, password);
        match &result {
            Ok(_) => self.backoff.succeeded(email),
            Err(LoginError::InvalidCredentials) => {
                if let Some(lock) = self.backoff.failed(email) {
                    tracing::warn!(
                        lock_secs = lock.as_secs(),
                        "repeated failed sign-ins for one account; locked for a while"
                    );
                }
            }
            Err(_) => {}
        }
        result
    }

    fn verify(
        &self,
        email: &str,
        password: String,
    ) -> Result<(SignedIn, SessionSecret), LoginError> {
        let Some(password) = Password::candidate(password) else {
            return Err(LoginError::InvalidCredentials);
        };
        let found = match Email::parse(email) {
            Ok(email) => self.storage.registry.user_by_email(&email)?,
            Err(_) => None,
        };
        let user = match found {
            Some((user, hash)) => match self.hasher.verify(&password, &hash) {
                Verification::Invalid => None,
                Verification::Valid => Some(user),
                Verification::ValidNeedsRehash => {
                    // Parameters were raised since this hash was made: upgrade it now that the
                    // password is at hand. A failure here must not fail the login.
                    match self.hasher.hash(&password) {
                        Ok(new) => {
                            if let Err(e) = self.storage.registry.set_password_hash(user.id, &new) {
                                tracing::warn!(error = %e, "password rehash not stored");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "password rehash failed"),
                    }
                    Some(user)
                }
            },
            None => {
                let _ = self.hasher.verify_unknown_user(&password);
                None
            }
        };
        let user = user.ok_or(LoginError::InvalidCredentials)?;
        let secret = SessionSecret::generate().map_err(|e| LoginError::Random(e.to_string()))?;
        self.storage.registry.insert_session(
            &secret.id_hash(),
            user.id,
            &SessionRecord::new(now()),
        )?;
        let tenants = self.storage.registry.memberships_of(user.id)?;
        tracing::info!(user_id = %user.id, "signed in");
        Ok((SignedIn { user, tenants }, secret))
    }

    /// The user of a live session; an expired one is deleted and yields `None`.
    pub fn authenticate(&self, secret: &SessionSecret) -> Result<Option<SignedIn>, StoreError> {
        let hash = secret.id_hash();
        let Some((user, session)) = self.storage.registry.session(&hash)? else {
            return Ok(None);
        };
        let at = now();
        if !session.is_live(at) {
            self.storage.registry.delete_session(&hash)?;
            return Ok(None);
        }
        if session.needs_touch(at) {
            self.storage.registry.touch_session(&hash, at)?;
        }
        let tenants = self.storage.registry.memberships_of(user.id)?;
        Ok(Some(SignedIn { user, tenants }))
    }

    /// Ends a session on the server (the cookie alone is then worthless).
    pub fn logout(&self, secret: &SessionSecret) -> Result<(), StoreError> {
        self.storage.registry.delete_session(&secret.id_hash())
    }
}
