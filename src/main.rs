//! The `arrayd` binary: parse the command line, set up logging, and run the server. The
//! serving loop itself (per-core runtimes, signals, drain) is [`arrayd::server`], so the
//! tests run exactly what the binary runs.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use arrayd::config::{Cli, Command, LogFormat};
use arrayd::server::{self, Server};

fn main() -> ExitCode {
    // Before any data file is mapped; std's own SIGBUS handler exists already.
    arrayd::sigbus::install();
    let cli = Cli::parse();
    // Log lines go through a writer thread, so a slow stderr (a pipe nobody drains fast)
    // never stalls a serving thread; `lossy(false)` keeps every line. The thread flushes
    // whenever its queue runs dry, so the buffer batches lines into few writes under load
    // and delays none when idle. The guard flushes the queue when `main` returns.
    let (writer, _flush) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    init_tracing(&cli.log, cli.log_format, writer);
    let config = match cli.command {
        Some(Command::Serve(config)) => config,
        None => cli.serve,
    };
    let result = Server::bind(config)
        .map_err(|e| e.to_string())
        .and_then(|server| {
            for s in server.skipped() {
                tracing::warn!(path = %s.path, reason = %s.reason, "skipped");
            }
            let signals = server::os_signals().map_err(|e| format!("signals: {e}"))?;
            server.run(signals).map_err(|e| e.to_string())
        });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "arrayd stopped");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(
    filter: &str,
    format: LogFormat,
    writer: tracing_appender::non_blocking::NonBlocking,
) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into a file or a log collector.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
