//! `basalt serve`: the server on embedded defaults.
//!
//! It opens (or creates) the data directory with its embedded catalog and serves the HTTP API
//! (Druid's native query endpoint and status endpoints) until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use basalt_engine::engine::Engine;

use crate::http::{AppState, router};

/// Arguments of `basalt serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Data directory (segments, catalog); created if missing.
    #[arg(long, env = "BASALT_DATA_DIR", default_value = "./basalt-data")]
    pub data_dir: PathBuf,
    /// HTTP listen address.
    #[arg(long, env = "BASALT_HTTP_ADDR", default_value = "127.0.0.1:8888")]
    pub http_addr: SocketAddr,
}

/// Run the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let engine = Engine::open(&args.data_dir)
        .with_context(|| format!("opening data directory {}", args.data_dir.display()))?;
    let state = Arc::new(AppState::new(engine, crate::metrics::install_metrics()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        tokio::spawn(watch_catalog(state.clone()));
        let app = router(state);
        let listener = tokio::net::TcpListener::bind(args.http_addr)
            .await
            .with_context(|| format!("binding HTTP to {}", args.http_addr))?;
        tracing::info!(
            http = %listener.local_addr()?,
            data_dir = %args.data_dir.display(),
            "basalt serving"
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("HTTP server")?;
        tracing::info!("basalt stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// How often the server checks the catalog for segments published by other processes
/// (`basalt load`).
const CATALOG_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Refresh the timeline whenever another process commits to the catalog, so segments published
/// by `basalt load` become queryable without a restart. The check is one `PRAGMA data_version`.
async fn watch_catalog(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(CATALOG_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let st = state.clone();
        match tokio::task::spawn_blocking(move || st.engine.data_dir().refresh_if_changed()).await {
            Ok(Ok(true)) => tracing::debug!("catalog changed: timeline refreshed"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot refresh the timeline from the catalog")
            }
            Err(e) => tracing::warn!(error = %e, "catalog refresh task failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
