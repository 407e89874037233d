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
    crate::ops::sched::apply(settings.http.cpu_scheduling);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal();
        let listen = settings.listen;
        let app = Application::build(settings).await?;
        let demo_token = if mode == Mode::Demo {
            ensure_demo_tenant(&app).await?
        } else {
            None
        };
        tracing::info!(
            address = %listen,
            port = app.port(),
            version = crate::VERSION,
            "agenthq is listening"
        );
        if mode == Mode::Demo {
            let addr = display_addr(listen, app.port());
            eprintln!(
                "AgentHQ demo is running: try  curl -H 'X-Tenant: demo' http://{addr}/api/tenant"
            );
            if let Some(token) = demo_token {
                eprintln!(
                    "Tenant 'demo' was created with five agents and four tasks. Its owner's API \
                     token (shown this once):\n  {token}\n  curl -H 'Authorization: Bearer \
                     {token}' http://{addr}/api/org"
                );
            }
        }
        app.run_until_stopped(shutdown).await
    })
}

/// Creates the tenant "demo" on first run and seeds it (see `cli::demo`); returns the owner's
/// API token that one time (it is not stored in the clear anywhere).
async fn ensure_demo_tenant(app: &Application) -> anyhow::Result<Option<String>> {
    let state = app.state();
    let token = tokio::task::spawn_blocking(move || {
        let slug = TenantSlug::parse("demo").map_err(|e| anyhow::anyhow!(e))?;
        match state.lifecycle.create(NewTenant {
            slug,
            name: Some("Demo organisation".into()),
            plan: Plan::Team,
        }) {
            Ok(tenant) => {
                state.sync_directory_now()?;
                super::demo::seed(&state, &tenant)
                    .context("cannot seed the demo tenant")
                    .map(Some)
            }
            Err(TenancyError::Conflict(_)) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("cannot create the demo tenant")),
        }
    })
    .await
    .context("demo set-up task failed")??;
    if token.is_some() {
        tracing::info!("created and seeded demo tenant 'demo'");
    }
    Ok(token)
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
