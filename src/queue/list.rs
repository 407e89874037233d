//! Listing jobs: filters, cursor pages, counts.

use serde::Serialize;

use super::job::{Job, JobId, JobState};

/// Which tenant's jobs a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantFilter {
    /// Platform jobs only (those without a tenant).
    Platform,
    Tenant(String),
}

/// Filters of [`JobStore::list`]; `None` matches everything.
///
/// [`JobStore::list`]: super::JobStore::list
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub tenant: Option<TenantFilter>,
    pub state: Option<JobState>,
    pub kind: Option<String>,
}

/// Most jobs one list page holds.
pub const MAX_PAGE_SIZE: usize = 500;

/// One page of a list, newest first. `after` is the `next_cursor` of the previous page: pages
/// stay stable under concurrent inserts because ids grow with time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<JobId>,
    /// 1 to [`MAX_PAGE_SIZE`].
    pub limit: usize,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            after: None,
            limit: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Set when more jobs may follow.
    pub next_cursor: Option<JobId>,
}

/// Number of jobs of one kind in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobCount {
    pub state: JobState,
    pub kind: String,
    pub count: u64,
}
