//! `basalt serve`: the server on embedded defaults.
//!
//! It opens (or creates) the data directory with its embedded catalog and serves the HTTP API
//! (Druid-compatible) and the gRPC API (`basalt.v1`) until SIGINT or SIGTERM. On a signal both
//! stop accepting connections, in-flight requests get `drain_timeout` to finish, and then what
//! ingestion holds in memory is flushed.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use basalt_engine::engine::Engine;
use tokio::sync::watch;

use crate::config::ServerConfig;
use crate::http::{AppState, router};

/// Run the server until SIGINT or SIGTERM.
pub fn run(config: ServerConfig) -> anyhow::Result<ExitCode> {
    limit_malloc_arenas();
    let engine = Arc::new(
        Engine::open_with(&config.data_dir, config.engine_config())
            .with_context(|| format!("opening data directory {}", config.data_dir.display()))?,
    );
    let state = Arc::new(AppState::new(
        engine.clone(),
        crate::metrics::install_metrics(),
    ));
    let started = state.started;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let http_listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding HTTP to {}", config.http_addr))?;
        let grpc_listener = tokio::net::TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC to {}", config.grpc_addr))?;
        tracing::info!(
            http = %http_listener.local_addr()?,
            grpc = %grpc_listener.local_addr()?,
            data_dir = %config.data_dir.display(),
            "basalt serving"
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let watcher = tokio::spawn(watch_catalog(state.clone()));
        let http = tokio::spawn({
            let app = router(state.clone());
            let signal = stopped(stop_rx.clone());
            async move {
                axum::serve(http_listener, app)
                    .with_graceful_shutdown(signal)
                    .await
                    .context("HTTP server")
            }
        });
        let grpc = tokio::spawn(crate::grpc::serve(
            engine.clone(),
            started,
            grpc_listener,
            stopped(stop_rx.clone()),
        ));
        let mut http = http;
        let mut grpc = grpc;
        // Run until a signal, or until a server fails on its own.
        let early = tokio::select! {
            _ = shutdown_signal() => None,
            r = &mut http => Some(("HTTP", r)),
            r = &mut grpc => Some(("gRPC", r)),
        };
        let _ = stop_tx.send(true);
        watcher.abort();
        if let Some((which, r)) = early {
            match r {
                Ok(Ok(())) => anyhow::bail!("the {which} server stopped unexpectedly"),
                Ok(Err(e)) => return Err(e),
                Err(e) => anyhow::bail!("the {which} server task failed: {e}"),
            }
        }
        let drain = async {
            let (h, g) = tokio::join!(http, grpc);
            for (which, r) in [("HTTP", h), ("gRPC", g)] {
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "{which} server ended with an error"),
                    Err(e) => tracing::warn!(error = %e, "{which} server task failed"),
                }
            }
        };
        if tokio::time::timeout(config.drain_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?config.drain_timeout,
                "in-flight requests did not finish in time; cutting them"
            );
        }
        flush_ingestion(&engine).await;
        tracing::info!("basalt stopped");
        anyhow::Ok(())
    })?;
    // Requests cut at the drain timeout may still hold blocking work; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(ExitCode::SUCCESS)
}

/// Let glibc's allocator keep one arena per core, not eight: memory freed by one of the many
/// short-lived blocking-pool threads is then reused by the next instead of staying in an arena
/// of its own. Measured with `tests/tests/realtime_memory.rs`: the resident set under a push
/// flood stays near what ingestion counts (≈ 20 MiB less on a 72 MiB budget), at no cost in
/// push throughput. Called before the runtime starts its threads.
///
/// The server keeps the system allocator (the benchmark runner uses mimalloc): mimalloc keeps
/// freed pages for a second (and backs its arenas with transparent huge pages), which under a
/// push flood put `basalt serve` at 273 MiB on a 68 MiB budget in the same test; with a 10 ms
/// purge delay and no huge pages still 74 MiB, and throttled pushes 5x.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX is valid for glibc, and
        // no other thread is allocating while this runs (the runtime is not started yet).
        #[allow(unsafe_code)]
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
        if ok != 1 {
            tracing::debug!("mallopt(M_ARENA_MAX) was refused");
        }
    }
}

/// Persist what ingestion holds in memory (the WAL already has it; this shortens replay).
async fn flush_ingestion(engine: &Arc<Engine>) {
    let e = engine.clone();
    match tokio::task::spawn_blocking(move || e.flush_realtime()).await {
        Ok(Ok(())) => tracing::info!("realtime ingestion flushed"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "flushing realtime ingestion failed; the WAL keeps the rows")
        }
        Err(e) => tracing::warn!(error = %e, "flush task failed; the WAL keeps the rows"),
    }
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
