//! Password hashing with argon2id.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`): the parameters travel
//! with each hash, so they can be raised later and old hashes still verify; a login with a hash
//! made under weaker parameters is told to rehash.

use std::fmt;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in bytes (hashing cost must not be attacker-controlled).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password that passed the length rules. `Debug` never shows it.
pub struct Password(String);

impl Password {
    pub fn parse(s: String) -> Result<Self, String> {
        if s.chars().count() < MIN_PASSWORD_CHARS {
            return Err(format!(
                "a password must be at least {MIN_PASSWORD_CHARS} characters long"
            ));
        }
        if s.len() > MAX_PASSWORD_BYTES {
            return Err(format!(
                "a password must be at most {MAX_PASSWORD_BYTES} bytes long"
            ));
        }
        Ok(Self(s))
    }

    /// A candidate password presented at login: never length-checked against the policy (an
    /// old password may predate it), only bounded.
    pub fn candidate(s: String) -> Option<Self> {
        (s.len() <= MAX_PASSWORD_BYTES).then_some(Self(s))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Invalid,
    Valid,
    /// Valid, but the hash was made with other parameters than the current ones.
    ValidNeedsRehash,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes and verifies passwords with one set of argon2id parameters.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, verified against when a login names an unknown user so
    /// that the answer takes as long as for a known one (no user enumeration by timing).
    dummy: String,
}

impl PasswordHasher {
    /// The OWASP baseline: m = 19 MiB, t = 2, p = 1.
    pub fn new() -> Result<Self, HashError> {
        Self::with_params(Params::DEFAULT)
    }

    pub fn with_params(params: Params) -> Result<Self, HashError> {
        let mut hasher = Self {
            params,
            dummy: String::new(),
        };
        let random = uuid::Uuid::new_v4().to_string();
        hasher.dummy = hasher.hash(&Password(random))?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string with a fresh random salt.
    pub fn hash(&self, password: &Password) -> Result<String, HashError> {
        self.argon2()
            .hash_password(password.bytes())
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }

    /// Checks `password` against `stored`. An unparseable stored hash counts as invalid.
    pub fn verify(&self, password: &Password, stored: &str) -> Verification {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return Verification::Invalid;
        };
        // Verification uses the parameters recorded in the hash, not ours.
        if self
            .argon2()
            .verify_password(password.bytes(), &parsed)
            .is_err()
        {
            return Verification::Invalid;
        }
        let current = Params::try_from(&parsed).ok();
        let same = current.is_some_and(|p| {
            p.m_cost() == self.params.m_cost()
                && p.t_cost() == self.params.t_cost()
                && p.p_cost() == self.params.p_cost()
        }) && parsed.algorithm.as_str() == "argon2id";
        if same {
            Verification::Valid
        } else {
            Verification::ValidNeedsRehash
        }
    }

    /// Spends the time of one verification and fails: the path for unknown users.
    pub fn verify_unknown_user(&self, password: &Password) -> Verification {
        let _ = self.verify(password, &self.dummy);
        Verification::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests check behaviour, not cost.
    fn fast() -> PasswordHasher {
        PasswordHasher::with_params(Params::new(256, 1, 1, None).unwrap()).unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::parse(s.to_owned()).unwrap()
    }

    #[test]
    fn the_default_parameters_are_the_owasp_baseline() {
        let h = PasswordHasher::new().unwrap();
        let stored = h.hash(&pw("correct horse battery")).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
    }

    #[test]
    fn a_hash_verifies_only_its_password_and_never_contains_it() {
        let h = fast();
        let stored = h.hash(&pw("correct horse battery")).unwrap();
        assert!(!stored.contains("correct horse battery"));
        assert_eq!(
            h.verify(&pw("correct horse battery"), &stored),
            Verification::Valid
        );
        assert_eq!(
            h.verify(&pw("correct horse battere"), &stored),
            Verification::Invalid
        );
        assert_eq!(
            h.verify(&pw("correct horse battery"), "not a hash"),
            Verification::Invalid
        );
        assert_ne!(
            stored,
            h.hash(&pw("correct horse battery")).unwrap(),
            "salted"
        );
    }

    #[test]
    fn a_hash_made_with_other_parameters_asks_for_a_rehash() {
        let old = fast();
        let stored = old.hash(&pw("correct horse battery")).unwrap();
        let stronger = PasswordHasher::with_params(Params::new(512, 2, 1, None).unwrap()).unwrap();
        assert_eq!(
            stronger.verify(&pw("correct horse battery"), &stored),
            Verification::ValidNeedsRehash
        );
    }

    #[test]
    fn short_passwords_are_rejected_and_never_printed() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert_eq!(
            format!("{:?}", pw("correct horse battery")),
            "Password([redacted])"
        );
    }

    #[test]
    fn unknown_users_fail_verification() {
        assert_eq!(
            fast().verify_unknown_user(&pw("correct horse battery")),
            Verification::Invalid
        );
    }
}
