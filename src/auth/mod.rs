//! Identity: passwords, users and roles. (Sessions, API tokens and RBAC build on these.)

pub mod password;
pub mod user;
pub mod users;

pub use password::{Password, PasswordHasher};
pub use user::{Email, Role, User, UserId};
