//! Rules of the realtime stream: which topics a member may subscribe to.

use super::{Scope, ServiceError};
use crate::realtime::Topic;
use crate::store::StoreError;

/// The topic as events name it (an agent by id, even when asked for by name), when it names
/// something of this tenant; `None` when it names nothing here (another tenant's ids included,
/// so their existence does not leak). Every role may read every topic of its tenant.
pub fn authorize_topic(scope: &Scope, topic: &Topic) -> Result<Option<Topic>, ServiceError> {
    let store = &scope.store;
    Ok(match topic {
        Topic::Agent(id) => store.agent_id(id)?.map(Topic::Agent),
        Topic::Task(id) => match store.task(id) {
            Ok(task) => Some(Topic::Task(task.id)),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        Topic::Thread(id) => store.thread_exists(id)?.then(|| topic.clone()),
    })
}
