//! Logging: `tracing` events to stderr, as text or JSON lines. Stdout is kept for command
//! output (e.g. `tenant list --json`), so the two never mix.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. A second call (tests start several servers in one process)
/// leaves the first in place.
pub fn init(filter: &str, format: LogFormat) {
    // The filter was validated with the settings; fall back to `info` rather than fail.
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
