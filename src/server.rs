//! The serving loop, exactly as the binary runs it: scan, bind one `SO_REUSEPORT` socket per
//! serving thread, run a single-threaded runtime on each, and steer them all from the
//! calling thread on signals: a rescan on SIGHUP (and every `--rescan-secs`), the drain on
//! SIGTERM or ctrl-c (README "Deploying").
//!
//! The signals come in through a channel, so a test drives the same loop the binary does:
//! [`os_signals`] forwards the process's signals into one; a test sends its own.
//!
//! The drain: `/readyz` turns 503 at once and every connection is told to finish (an idle
//! keep-alive one closes at once); new connections are still accepted and served one request
//! each, so probes get an answer; everything but the probes gets `503 draining`. When no
//! request is in progress (streams included), or the grace period is over, or a second
//! SIGTERM comes, every connection is dropped where it stands (a stream still running is cut,
//! never ended short as if whole) and `run` returns.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use socket2::{Domain, Socket, Type};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::http::{self, AppState, BadOrigin, Phase, TokenError};
use crate::registry::{Registry, Skipped};

/// What steers a running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or ctrl-c: drain, then stop; a second one stops at once.
    Terminate,
    /// SIGHUP: rescan the data directory and the registrations.
    Rescan,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be resolved or listed.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory as configured.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A token is unusable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A CORS origin is unusable.
    #[error(transparent)]
    Cors(#[from] BadOrigin),
    /// The listening sockets cannot be made.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address as configured.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A server that has scanned its data directory and bound its sockets, ready to [`run`].
///
/// [`run`]: Server::run
#[derive(Debug)]
pub struct Server {
    state: AppState,
    router: Router,
    listeners: Vec<std::net::TcpListener>,
    skipped: Vec<Skipped>,
}

impl Server {
    /// Scans the data directory, resolves the tokens and binds the listening sockets.
    ///
    /// # Errors
    /// [`StartError`]: the data directory, a token, a CORS origin or the bind.
    pub fn bind(config: Config) -> Result<Server, StartError> {
        raise_open_files_limit();
        let (registry, skipped) =
            Registry::open(&config.data_dir, &config.state_dir).map_err(|source| {
                StartError::DataDir {
                    path: config.data_dir.display().to_string(),
                    source,
                }
            })?;
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let listeners =
            bind_reuseport(config.listen, threads).map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        if config.admin_token.is_some() || config.admin_token_file.is_some() {
            // Degraded, not refused: reads need no state, and replicas of a read-mostly
            // deployment may well mount it read-only.
            if let Err(e) = crate::state::StateDir::new(&config.state_dir).probe_writable() {
                tracing::warn!(state_dir = %config.state_dir.display(), error = %e,
                    "state directory not writable: registrations will fail with 500 until it is");
            }
        }
        let state = AppState::new(registry, config)?;
        let router = http::router(state.clone())?;
        Ok(Server {
            state,
            router,
            listeners,
            skipped,
        })
    }

    /// The address the server listens on (its port, when the configuration said 0).
    ///
    /// # Errors
    /// The OS error of `getsockname`.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self.listeners.first() {
            Some(listener) => listener.local_addr(),
            None => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    /// The state every request shares (tests watch its counters).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The files the scan skipped, with reasons.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Serves until `signals` says [`Signal::Terminate`] and the drain is over, or closes
    /// (then it stops at once); see the module documentation.
    ///
    /// # Errors
    /// A serving thread's runtime could not be built or its accept loop failed.
    pub fn run(self, mut signals: mpsc::UnboundedReceiver<Signal>) -> std::io::Result<()> {
        let Server {
            state,
            router,
            listeners,
            ..
        } = self;
        let threads = listeners.len();
        if let Some(addr) = listeners.first().and_then(|l| l.local_addr().ok()) {
            tracing::info!(
                %addr,
                data_dir = %state.registry.root().display(),
                datasets = state.registry.list().len(),
                threads,
                "serving"
            );
        }
        let (phase_tx, phase_rx) = watch::channel(Phase::Serving);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<std::io::Result<()>>();
        for (i, listener) in listeners.into_iter().enumerate() {
            let (router, phase, done) = (router.clone(), phase_rx.clone(), done_tx.clone());
            let config = std::sync::Arc::clone(&state.config);
            std::thread::Builder::new()
                .name(format!("arrayd-{i}"))
                .spawn(move || {
                    let result = serving_thread(listener, router, &config, phase);
                    let _ = done.send(result);
                })?;
        }
        drop(done_tx);
        let control = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        control.block_on(async move {
            let rescan_every = state.config.rescan_secs;
            let mut ticks = tokio::time::interval(Duration::from_secs(rescan_every.max(1)));
            ticks.tick().await;
            let drain = loop {
                tokio::select! {
                    signal = signals.recv() => match signal {
                        Some(Signal::Rescan) => rescan(&state, "SIGHUP").await,
                        Some(Signal::Terminate) => break true,
                        None => break false,
                    },
                    _ = ticks.tick(), if rescan_every > 0 => rescan(&state, "timer").await,
                    Some(result) = done_rx.recv() => {
                        // A serving thread ended without being asked: stop the others.
                        let _ = phase_tx.send(Phase::Stopped);
                        return result.and(Err(std::io::Error::other("a serving thread stopped")));
                    }
                }
            };
            if drain {
                drain_requests(&state, &phase_tx, &mut signals).await;
            }
            let _ = phase_tx.send(Phase::Stopped);
            for _ in 0..threads {
                match tokio::time::timeout(Duration::from_secs(2), done_rx.recv()).await {
                    Ok(Some(result)) => result?,
                    Ok(None) | Err(_) => break,
                }
            }
            Ok(())
        })
    }
}

/// Blocking threads per serving thread at most (tokio's default is 512): room for every
/// permitted blocking job at once, so a reduction never queues behind stream chunks in a pool
/// that is full, plus two for registrations and rescans. No more: tokio starts a new thread
/// when a job arrives just before the last one's thread is idle again, so a larger cap is
/// reached under load, and each extra thread costs memory (README "Many slow clients").
fn max_blocking_threads() -> usize {
    http::blocking_jobs_at_once() + 2
}

/// One serving thread: a single-threaded runtime accepting on its own socket.
fn serving_thread(
    listener: std::net::TcpListener,
    router: Router,
    config: &Config,
    phase: watch::Receiver<Phase>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Blocking work is bounded upstream (stream chunks and aggregates each take a
        // permit) and the cap matches that bound: threads never grow with the clients.
        .max_blocking_threads(max_blocking_threads())
        .build()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        http::serve(listener, router, config, phase).await
    });
    // A chunk being made for a connection that was dropped finishes on its own; do not wait
    // longer than that for it.
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}

/// The drain: refuse new work, let what is in progress finish, within the grace period.
async fn drain_requests(
    state: &AppState,
    phase: &watch::Sender<Phase>,
    signals: &mut mpsc::UnboundedReceiver<Signal>,
) {
    let grace = Duration::from_secs(state.config.shutdown_grace_secs);
    state.lifecycle.start_draining();
    let _ = phase.send(Phase::Draining);
    tracing::info!(
        grace_secs = grace.as_secs(),
        in_progress = state.lifecycle.in_progress(),
        "draining: /readyz is 503, finishing requests in progress"
    );
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            () = &mut deadline => {
                tracing::warn!(
                    in_progress = state.lifecycle.in_progress(),
                    "grace period over; cutting the requests still in progress"
                );
                return;
            }
            signal = signals.recv() => match signal {
                Some(Signal::Rescan) => {}
                Some(Signal::Terminate) | None => {
                    tracing::warn!(
                        in_progress = state.lifecycle.in_progress(),
                        "second signal: stopping at once"
                    );
                    return;
                }
            },
            _ = poll.tick() => {
                if state.lifecycle.in_progress() == 0 {
                    tracing::info!("drained: no request in progress");
                    return;
                }
            }
        }
    }
}

/// Rescans the data directory and the registrations off the async threads.
async fn rescan(state: &AppState, cause: &'static str) {
    tracing::info!(cause, "rescan requested");
    let registry = state.registry.clone();
    match tokio::task::spawn_blocking(move || registry.rescan()).await {
        Ok(Ok(report)) => {
            for skipped in &report.skipped {
                tracing::warn!(path = %skipped.path, reason = %skipped.reason, "skipped by the rescan");
            }
            tracing::info!(
                cause,
                added = ?report.added,
                removed = ?report.removed,
                remapped = ?report.remapped,
                skipped = report.skipped.len(),
                "rescan done"
            );
        }
        Ok(Err(e)) => tracing::error!(cause, error = %e, "rescan failed; datasets unchanged"),
        Err(e) => tracing::error!(cause, error = %e, "rescan panicked; datasets unchanged"),
    }
}

/// Forwards SIGTERM and SIGINT as [`Signal::Terminate`] and SIGHUP as [`Signal::Rescan`],
/// from a thread of its own; the handlers are in place when this returns.
///
/// # Errors
/// The thread or its signal handlers could not be set up.
pub fn os_signals() -> std::io::Result<mpsc::UnboundedReceiver<Signal>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("arrayd-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let kinds = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::hangup()),
                );
                let (mut term, mut int, mut hup) = match kinds {
                    (Ok(t), Ok(i), Ok(h)) => (t, i, h),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    let signal = tokio::select! {
                        _ = term.recv() => Signal::Terminate,
                        _ = int.recv() => Signal::Terminate,
                        _ = hup.recv() => Signal::Rescan,
                    };
                    if tx.send(signal).is_err() {
                        return;
                    }
                }
            });
        })?;
    ready_rx
        .recv()
        .map_err(|_| std::io::Error::other("signal thread died"))??;
    Ok(rx)
}

/// Raises the soft limit of open files to the hard limit: every client connection is a file
/// descriptor, and the usual soft limit of 1,024 would refuse connections long before memory
/// or threads run out. Both limits are logged.
fn raise_open_files_limit() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let limit = getrlimit(Resource::Nofile);
        let (soft, hard) = (limit.current, limit.maximum);
        let raised = if soft < hard {
            let wanted = rustix::process::Rlimit {
                current: hard,
                maximum: hard,
            };
            setrlimit(Resource::Nofile, wanted).is_ok()
        } else {
            false
        };
        let soft_now = getrlimit(Resource::Nofile).current;
        tracing::info!(
            soft = ?soft,
            hard = ?hard,
            now = ?soft_now,
            raised,
            "open files limit"
        );
    }
}

/// Binds `n` listening sockets on `addr` with `SO_REUSEPORT`, so that `n` single-threaded
/// runtimes can each accept on their own socket and the kernel spreads connections over them.
/// When `addr` has port 0, the first bind picks the port and the others share it.
///
/// One runtime per core, as nginx runs one worker per core, avoids the cross-thread wake-ups
/// of a work-stealing runtime, which dominated small requests in profiles (README
/// "Performance").
///
/// # Errors
/// The socket, bind or listen error.
pub fn bind_reuseport(addr: SocketAddr, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut addr = addr;
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}
