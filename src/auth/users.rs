//! Creating users and giving them roles in tenants.

use crate::domain::TenantStatus;
use crate::store::{Storage, StoreError};

use super::password::HashError;
use super::{Email, Password, PasswordHasher, Role, User, UserId};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(msg) => UserError::Conflict(msg),
            other => UserError::Store(other),
        }
    }
}

#[derive(Clone)]
pub struct Users {
    storage: Storage,
    hasher: PasswordHasher,
}

impl Users {
    pub fn new(storage: Storage, hasher: PasswordHasher) -> Self {
        Self { storage, hasher }
    }

    /// Creates a user; the password is stored only as its argon2id hash.
    pub fn create(
        &self,
        email: Email,
        password: &Password,
        is_platform_admin: bool,
    ) -> Result<User, UserError> {
        let hash = self.hasher.hash(password)?;
        let user = User {
            id: UserId::new(),
            email,
            is_platform_admin,
            created_at: crate::domain::now(),
        };
        self.storage.registry.insert_user(&user, &hash)?;
        tracing::info!(user_id = %user.id, platform_admin = is_platform_admin, "user created");
        Ok(user)
    }

    /// Gives an existing user a role in an active or suspended tenant; returns the tenant and
    /// the user.
    pub fn add_to_tenant(
        &self,
        slug: &str,
        email: &Email,
        role: Role,
    ) -> Result<(crate::domain::Tenant, User), UserError> {
        let tenant = self
            .storage
            .registry
            .tenant_by_slug(slug)?
            .filter(|t| matches!(t.status, TenantStatus::Active | TenantStatus::Suspended))
            .ok_or_else(|| UserError::NotFound(format!("no tenant with slug '{slug}'")))?;
        let (user, _) = self.storage.registry.user_by_email(email)?.ok_or_else(|| {
            UserError::NotFound(format!(
                "no user with email '{email}'; create it first with `agenthq user create`"
            ))
        })?;
        self.storage
            .registry
            .upsert_membership(tenant.id, user.id, role)?;
        tracing::info!(tenant = %slug, user_id = %user.id, %role, "membership set");
        Ok((tenant, user))
    }

    /// Makes sure a platform admin exists on a fresh install: from `admin` (email and password,
    /// e.g. from `AGENTHQ_ADMIN_EMAIL` / `AGENTHQ_ADMIN_PASSWORD`) when given. Returns whether
    /// an admin exists afterwards. Never creates a default password.
    pub fn bootstrap_admin(&self, admin: Option<(Email, Password)>) -> Result<bool, UserError> {
        if self.storage.registry.has_platform_admin()? {
            return Ok(true);
        }
        let Some((email, password)) = admin else {
            return Ok(false);
        };
        match self.create(email, &password, true) {
            Ok(user) => {
                tracing::info!(email = %user.email, "created the first platform admin");
                Ok(true)
            }
            // The email exists as a plain user: refuse to silently promote it.
            Err(UserError::Conflict(msg)) => Err(UserError::Conflict(format!(
                "{msg}; it is not a platform admin, so the admin from the environment was not created"
            ))),
            Err(e) => Err(e),
        }
    }

    pub fn platform_admin_exists(&self) -> Result<bool, UserError> {
        Ok(self.storage.registry.has_platform_admin()?)
    }

    pub fn memberships(&self, user: UserId) -> Result<Vec<(String, Role)>, UserError> {
        Ok(self.storage.registry.memberships_of(user)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, Settings};
    use crate::domain::{Plan, TenantSlug};
    use crate::tenancy::{NewTenant, TenantLifecycle};

    fn setup(dir: &std::path::Path) -> (Storage, Users) {
        let settings = Settings::load(Overrides {
            data_dir: Some(dir.to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        let storage = Storage::open(&settings).unwrap();
        let hasher =
            PasswordHasher::with_params(argon2::Params::new(256, 1, 1, None).unwrap()).unwrap();
        (storage.clone(), Users::new(storage, hasher))
    }

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    fn password() -> Password {
        Password::parse("correct horse battery".into()).unwrap()
    }

    #[test]
    fn emails_are_unique_whatever_their_case() {
        let dir = tempfile::tempdir().unwrap();
        let (_, users) = setup(dir.path());
        users
            .create(email("ada@example.com"), &password(), false)
            .unwrap();
        assert!(matches!(
            users.create(email("ADA@example.com"), &password(), false),
            Err(UserError::Conflict(msg)) if msg.contains("already exists")
        ));
    }

    #[test]
    fn the_password_is_stored_only_as_an_argon2id_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, users) = setup(dir.path());
        users
            .create(email("ada@example.com"), &password(), true)
            .unwrap();
        let (user, hash) = storage
            .registry
            .user_by_email(&email("ada@example.com"))
            .unwrap()
            .unwrap();
        assert!(user.is_platform_admin);
        assert!(hash.starts_with("$argon2id$"));
        storage.close();
        let bytes = std::fs::read(dir.path().join("registry.db")).unwrap();
        let needle = b"correct horse battery";
        assert!(!bytes.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn the_first_admin_is_created_from_the_environment_once() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, users) = setup(dir.path());
        assert!(
            !users.bootstrap_admin(None).unwrap(),
            "no admin and none given"
        );
        assert!(
            users
                .bootstrap_admin(Some((email("root@example.com"), password())))
                .unwrap()
        );
        let (admin, _) = storage
            .registry
            .user_by_email(&email("root@example.com"))
            .unwrap()
            .unwrap();
        assert!(admin.is_platform_admin);
        // Already there: nothing else is created.
        assert!(
            users
                .bootstrap_admin(Some((email("other@example.com"), password())))
                .unwrap()
        );
        assert!(
            storage
                .registry
                .user_by_email(&email("other@example.com"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn users_are_added_to_tenants_with_a_role_that_can_change() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, users) = setup(dir.path());
        TenantLifecycle::new(storage.clone())
            .create(NewTenant {
                slug: TenantSlug::parse("acme").unwrap(),
                name: None,
                plan: Plan::Free,
            })
            .unwrap();
        let ada = users
            .create(email("ada@example.com"), &password(), false)
            .unwrap();
        users
            .add_to_tenant("acme", &email("ada@example.com"), Role::Viewer)
            .unwrap();
        users
            .add_to_tenant("acme", &email("ada@example.com"), Role::Owner)
            .unwrap();
        assert_eq!(
            users.memberships(ada.id).unwrap(),
            vec![("acme".to_owned(), Role::Owner)]
        );

        assert!(matches!(
            users.add_to_tenant("globex", &email("ada@example.com"), Role::Owner),
            Err(UserError::NotFound(_))
        ));
        assert!(matches!(
            users.add_to_tenant("acme", &email("bob@example.com"), Role::Owner),
            Err(UserError::NotFound(_))
        ));
    }
}
