//! Crash points for tests of crash safety.
//!
//! `AGENTHQ_FAILPOINT=<name>` makes the process abort (as a `kill -9` would, without unwinding
//! or cleanup) when it reaches the point of that name. Tests use it to prove that, e.g., a crash
//! in the middle of provisioning leaves no half tenant. Unset, a failpoint costs one cached
//! environment lookup.

use std::sync::OnceLock;

static ARMED: OnceLock<Option<String>> = OnceLock::new();

pub fn failpoint(name: &str) {
    let armed = ARMED.get_or_init(|| std::env::var("AGENTHQ_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("failpoint {name} reached: aborting");
        std::process::abort();
    }
}
