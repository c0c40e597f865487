//! The `arrayd` binary: parse the command line, set up logging, and run a subcommand.
//! Everything else lives in the library, so tests drive the same code.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio::sync::{mpsc, watch};
use tracing_subscriber::EnvFilter;

use arrayd::config::{Cli, Command, Config, LogFormat};
use arrayd::http::AppState;
use arrayd::registry::Registry;

fn main() -> ExitCode {
    // Before any data file is mapped; std's own SIGBUS handler exists already.
    arrayd::sigbus::install();
    let cli = Cli::parse();
    init_tracing(&cli.log, cli.log_format);
    let config = match cli.command {
        Some(Command::Serve(config)) => config,
        None => cli.serve,
    };
    match serve(config) {
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

/// Scans the data directory, then serves it from one single-threaded runtime per thread
/// until SIGTERM or ctrl-c, and drains in-flight requests for at most the grace period.
fn serve(config: Config) -> std::io::Result<()> {
    let (registry, skipped) = Registry::scan(&config.data_dir).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("data directory {}: {e}", config.data_dir.display()),
        )
    })?;
    for s in &skipped {
        tracing::warn!(path = %s.path, reason = %s.reason, "skipped");
    }
    let threads = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let listeners = arrayd::http::bind_reuseport(config.listen, threads)?;
    tracing::info!(
        addr = %listeners[0].local_addr()?,
        data_dir = %registry.root().display(),
        datasets = registry.list().len(),
        threads,
        "serving"
    );
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let state = AppState::new(registry, config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<std::io::Result<()>>();
    for (i, listener) in listeners.into_iter().enumerate() {
        let state = state.clone();
        let mut stop = stop_rx.clone();
        let done = done_tx.clone();
        std::thread::Builder::new()
            .name(format!("arrayd-{i}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let result = runtime.and_then(|rt| {
                    rt.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        let stopped = async move {
                            let _ = stop.wait_for(|s| *s).await;
                        };
                        arrayd::http::serve(listener, state, stopped).await
                    })
                });
                let _ = done.send(result);
            })?;
    }
    drop(done_tx);
    // The signal watcher runs on the main thread, in a runtime of its own.
    let main = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    main.block_on(async move {
        let mut running = threads;
        tokio::select! {
            () = shutdown_signal() => {}
            // A serving thread ended without being asked: its accept loop failed.
            Some(result) = done_rx.recv() => {
                running -= 1;
                result?;
            }
        }
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: draining in-flight requests"
        );
        let _ = stop_tx.send(true);
        let drain = async {
            while running > 0 {
                match done_rx.recv().await {
                    Some(result) => {
                        running -= 1;
                        result?;
                    }
                    None => break,
                }
            }
            Ok(())
        };
        match tokio::time::timeout(grace, drain).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("grace period over; exiting with requests still in flight");
                Ok(())
            }
        }
    })
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
