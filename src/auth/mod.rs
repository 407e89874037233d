//! Identity: passwords, users and roles. (Sessions, API tokens and RBAC build on these.)

pub mod login;
pub mod password;
pub mod policy;
pub mod run_token;
pub mod session;
pub mod setup;
pub mod token;
pub mod token_cache;
pub mod tokens;
pub mod user;
pub mod users;

pub use password::{Password, PasswordHasher};
pub use user::{Email, Role, User, UserId};
