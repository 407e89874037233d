//! Tenants ("organisations"): slug, id, status and plan.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Names that can never be tenant slugs: they are, or may become, hosts and paths of the
/// platform itself (`www.example.com`, `api.example.com`, …).
pub const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "app",
    "apps",
    "assets",
    "auth",
    "billing",
    "blog",
    "cdn",
    "dashboard",
    "dev",
    "docs",
    "help",
    "internal",
    "login",
    "mail",
    "metrics",
    "ns1",
    "ns2",
    "root",
    "smtp",
    "static",
    "status",
    "support",
    "system",
    "test",
    "www",
];

/// Why a string is not a tenant slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("a tenant slug must be 2 to 63 characters long")]
    Length,
    #[error("a tenant slug must start with a lowercase letter (a-z)")]
    FirstChar,
    #[error("a tenant slug may only contain lowercase letters, digits and '-'")]
    Charset,
    #[error("a tenant slug must not end with '-'")]
    TrailingHyphen,
    #[error("'{0}' is a reserved name and cannot be a tenant slug")]
    Reserved(String),
}

/// A tenant slug: a DNS label (`^[a-z][a-z0-9-]{1,62}$`, no trailing hyphen) that is not
/// reserved. It is the tenant's name in subdomains, the `X-Tenant` header and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(s: &str) -> Result<Self, SlugError> {
        let bytes = s.as_bytes();
        if !(2..=63).contains(&bytes.len()) {
            return Err(SlugError::Length);
        }
        if !bytes[0].is_ascii_lowercase() {
            return Err(SlugError::FirstChar);
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return Err(SlugError::Charset);
        }
        // A DNS label cannot end with a hyphen, and the slug is used as one.
        if bytes[bytes.len() - 1] == b'-' {
            return Err(SlugError::TrailingHyphen);
        }
        if RESERVED_SLUGS.contains(&s) {
            return Err(SlugError::Reserved(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TenantSlug {
    type Err = SlugError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for TenantSlug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A tenant id: a UUIDv7 (time-ordered), also the name of the tenant's database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(transparent)]
pub struct TenantId(uuid::Uuid);

impl TenantId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    pub fn parse(s: &str) -> Result<Self, uuid::Error> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::new()
    }
}

impl Serialize for TenantId {
    /// Encodes into a stack buffer: `Display` through serde would go character by character.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = uuid::Uuid::encode_buffer();
        s.serialize_str(self.0.hyphenated().encode_lower(&mut buf))
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hyphenated lowercase: the form used in file names, JSON and logs alike.
        self.0.hyphenated().fmt(f)
    }
}

/// Defines a string enum with one canonical lowercase spelling per variant, used in JSON, SQL
/// and the CLI alike.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "'{other}' is not one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// Lifecycle of a tenant. `provisioning` and `purging` are transient: a tenant in either state
    /// after a crash is rolled back or finished at the next start.
    TenantStatus {
        Provisioning => "provisioning",
        Active => "active",
        Suspended => "suspended",
        Deleted => "deleted",
        Purging => "purging",
    }
);

string_enum!(
    /// The commercial plan of a tenant; later issues attach limits (rate, concurrency) to it.
    Plan {
        Free => "free",
        Team => "team",
        Enterprise => "enterprise",
    }
);

/// A tenant as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    #[schema(value_type = String, format = Uuid)]
    pub id: TenantId,
    #[schema(value_type = String, example = "acme")]
    pub slug: TenantSlug,
    pub name: String,
    pub status: TenantStatus,
    pub plan: Plan,
    #[serde(serialize_with = "crate::domain::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

/// Upper bound of a tenant's display name, in characters.
pub const MAX_TENANT_NAME_CHARS: usize = 200;

/// Checks a tenant display name: non-blank, at most [`MAX_TENANT_NAME_CHARS`], no control
/// characters. Returns it trimmed.
pub fn parse_tenant_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a tenant name must not be blank".into());
    }
    if name.chars().count() > MAX_TENANT_NAME_CHARS {
        return Err(format!(
            "a tenant name must be at most {MAX_TENANT_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("a tenant name must not contain control characters".into());
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_slugs_parse() {
        for s in ["ab", "acme", "acme-corp", "a1", "x-1-2", &"a".repeat(63)] {
            assert!(TenantSlug::parse(s).is_ok(), "{s} should be valid");
        }
    }

    #[test]
    fn invalid_slugs_are_rejected_with_the_reason() {
        assert_eq!(TenantSlug::parse("a"), Err(SlugError::Length));
        assert_eq!(TenantSlug::parse(&"a".repeat(64)), Err(SlugError::Length));
        assert_eq!(TenantSlug::parse(""), Err(SlugError::Length));
        assert_eq!(TenantSlug::parse("1acme"), Err(SlugError::FirstChar));
        assert_eq!(TenantSlug::parse("-acme"), Err(SlugError::FirstChar));
        assert_eq!(TenantSlug::parse("Acme"), Err(SlugError::FirstChar));
        assert_eq!(TenantSlug::parse("acMe"), Err(SlugError::Charset));
        assert_eq!(TenantSlug::parse("ac_me"), Err(SlugError::Charset));
        assert_eq!(TenantSlug::parse("ac.me"), Err(SlugError::Charset));
        assert_eq!(TenantSlug::parse("acmé"), Err(SlugError::Charset));
        assert_eq!(TenantSlug::parse("acme-"), Err(SlugError::TrailingHyphen));
    }

    #[test]
    fn reserved_slugs_are_rejected() {
        for s in ["www", "api", "admin", "app"] {
            assert_eq!(TenantSlug::parse(s), Err(SlugError::Reserved(s.into())));
        }
    }

    #[test]
    fn status_and_plan_round_trip_through_text() {
        for s in TenantStatus::ALL {
            assert_eq!(s.as_str().parse::<TenantStatus>().as_ref(), Ok(s));
        }
        for p in Plan::ALL {
            assert_eq!(p.as_str().parse::<Plan>().as_ref(), Ok(p));
        }
        assert!("gold".parse::<Plan>().is_err());
    }

    #[test]
    fn tenant_names_are_trimmed_and_bounded() {
        assert_eq!(parse_tenant_name("  Acme  ").as_deref(), Ok("Acme"));
        assert!(parse_tenant_name("   ").is_err());
        assert!(parse_tenant_name(&"x".repeat(201)).is_err());
        assert!(parse_tenant_name("a\nb").is_err());
    }
}
