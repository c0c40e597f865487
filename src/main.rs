//! The `arrayd` binary: parse the command line, set up logging, and run a subcommand.
//! Everything else lives in the library, so tests drive the same code.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use arrayd::config::{Cli, Command, Config, LogFormat};
use arrayd::http::AppState;
use arrayd::registry::Registry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log, cli.log_format);
    let config = match cli.command {
        Some(Command::Serve(config)) => config,
        None => cli.serve,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "arrayd stopped");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: Config) -> std::io::Result<()> {
    let (registry, skipped) = Registry::scan(&config.data_dir).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("data directory {}: {e}", config.data_dir.display()),
        )
    })?;
    for s in &skipped {
        tracing::warn!(path = %s.path, reason = %s.reason, "skipped");
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        data_dir = %registry.root().display(),
        datasets = registry.list().len(),
        "serving"
    );
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let state = AppState {
        registry: Arc::new(registry),
        config: Arc::new(config),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(arrayd::http::serve(listener, state, async {
        let _ = stop_rx.await;
    }));
    tokio::select! {
        result = &mut server => return result.map_err(std::io::Error::other)?,
        () = shutdown_signal() => {}
    }
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: draining in-flight requests"
    );
    let _ = stop_tx.send(());
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.map_err(std::io::Error::other)?,
        Err(_) => {
            tracing::warn!("grace period over; exiting with requests still in flight");
            Ok(())
        }
    }
}

/// Completes on ctrl-c or SIGTERM (`docker stop`).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
