//! `agenthq serve` and `agenthq demo`.

use anyhow::Context;

use crate::config::Settings;
use crate::domain::{Plan, TenantSlug};
use crate::startup::{Application, shutdown_signal};
use crate::tenancy::{NewTenant, TenancyError};

/// The server's log filter unless configured: refinery announces every migration of every
/// tenant database at `info`, in multi-line messages, which drowns the request log.
const DEFAULT_SERVER_LOG: &str = "info,refinery_core=warn";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    /// Serve, with a tenant "demo" created on first run.
    Demo,
}

pub fn run(settings: Settings, mode: Mode) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_filter(DEFAULT_SERVER_LOG), settings.log_format);
    crate::ops::raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal();
        let listen = settings.listen;
        let app = Application::build(settings).await?;
        if mode == Mode::Demo {
            ensure_demo_tenant(&app).await?;
        }
        tracing::info!(
            address = %listen,
            port = app.port(),
            version = crate::VERSION,
            "agenthq is listening"
        );
        if mode == Mode::Demo {
            eprintln!(
                "AgentHQ demo is running: try  curl -H 'X-Tenant: demo' http://{}/api/tenant",
                display_addr(listen, app.port())
            );
        }
        app.run_until_stopped(shutdown).await
    })
}

async fn ensure_demo_tenant(app: &Application) -> anyhow::Result<()> {
    let state = app.state();
    let created = tokio::task::spawn_blocking(move || {
        let slug = TenantSlug::parse("demo").map_err(|e| anyhow::anyhow!(e))?;
        match state.lifecycle.create(NewTenant {
            slug,
            name: Some("Demo organisation".into()),
            plan: Plan::Team,
        }) {
            Ok(_) => {
                state.sync_directory_now()?;
                Ok(true)
            }
            Err(TenancyError::Conflict(_)) => Ok(false),
            Err(e) => Err(anyhow::Error::new(e).context("cannot create the demo tenant")),
        }
    })
    .await
    .context("demo set-up task failed")??;
    if created {
        tracing::info!("created demo tenant 'demo'");
    }
    Ok(())
}

fn display_addr(listen: std::net::SocketAddr, port: u16) -> String {
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        listen.ip().to_string()
    };
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
