//! Realtime: the in-process event bus every mutation publishes to, and the registry of the
//! WebSocket connections that deliver it (`GET /api/ws`, in `api::ws`).

pub mod bus;
pub mod hub;
pub mod topic;

pub use bus::{BusLimits, DomainEvent, EventBus, Frame, Missed, Subscription};
pub use hub::{CloseCause, Connection, Credential, Hub, Refused};
pub use topic::Topic;
