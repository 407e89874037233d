//! Realtime: the in-process event bus every mutation publishes to (the WebSocket hub of the
//! realtime issue subscribes to it).

pub mod bus;

pub use bus::{DomainEvent, EventBus};
