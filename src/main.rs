//! The `arrayd` binary: parse the command line, set up logging, and run the server. The
//! serving loop itself (per-core runtimes, signals, drain) is [`arrayd::server`], so the
//! tests run exactly what the binary runs.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use arrayd::config::{Cli, Command, LogFormat};
use arrayd::logline::LineFormat;
use arrayd::logsink::{self, LogSink};
use arrayd::server::{self, Server};

mod ops;

/// jemalloc instead of glibc's malloc: see README "Performance" (memory per connection).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Before any data file is mapped; std's own SIGBUS handler exists already.
    arrayd::sigbus::install();
    let cli = Cli::parse();
    // Log lines are batched and written by a thread of their own (see `logsink`); the guard
    // writes what is left when `main` returns.
    let (writer, _flush) = match logsink::spawn(std::io::stderr()) {
        Ok(sink) => sink,
        Err(e) => {
            eprintln!("arrayd: cannot start the log thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_tracing(&cli.log, cli.log_format, writer);
    let config = match cli.command {
        Some(Command::Serve(config)) => config,
        None => cli.serve,
        Some(Command::Convert(args)) => return ops::convert(&args),
        Some(Command::Info(args)) => return ops::info(&args),
        Some(Command::Check(args)) => return ops::check(&args),
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

fn init_tracing(filter: &str, format: LogFormat, writer: LogSink) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer.clone());
    match format {
        LogFormat::Text => {
            // Request lines go straight into the buffer the text format writes to.
            arrayd::logline::direct_requests(writer);
            builder.event_format(LineFormat).init();
        }
        LogFormat::Json => builder.json().init(),
    }
}
