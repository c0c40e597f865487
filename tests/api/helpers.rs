//! Test helpers: fixtures written as `.npy` and raw files, and `spawn_app`.

use std::path::{Path, PathBuf};

use arrayd::config::Config;
use arrayd::dtype::DType;
use arrayd::http::AppState;
use arrayd::server::{Server, Signal};
use tokio::sync::mpsc;

/// A running server over a data directory, run by [`Server::run`] exactly as the binary runs
/// it, on a thread of its own; dropping it stops the server.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// The listening address.
    pub(crate) addr: std::net::SocketAddr,
    /// A client without a timeout of its own.
    pub(crate) client: reqwest::Client,
    /// The server's state, to watch its counters.
    pub(crate) state: AppState,
    /// Names of the files the scan skipped, with reasons.
    pub(crate) skipped: Vec<(String, String)>,
    /// What the binary's signal thread would send.
    pub(crate) signals: mpsc::UnboundedSender<Signal>,
    /// Ends with `run`'s result.
    pub(crate) stopped: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// `GET base + path`.
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request failed")
    }

    /// Sends SIGTERM's signal and waits (off the async threads) for `run` to return.
    pub(crate) async fn terminate(&mut self) -> std::io::Result<()> {
        let _ = self.signals.send(Signal::Terminate);
        let handle = self.stopped.take().expect("already stopped");
        tokio::task::spawn_blocking(move || handle.join().expect("server thread panicked"))
            .await
            .unwrap()
    }
}

/// Starts the server over `data_dir` with `config` tweaks applied (one serving thread unless
/// the tweak says otherwise).
pub(crate) async fn spawn_app_with(data_dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestApp {
    // As `main` does: a truncated data file must not kill the test binary.
    arrayd::sigbus::install();
    let mut config = Config::for_data_dir(data_dir);
    config.threads = 1;
    tweak(&mut config);
    let server = Server::bind(config).expect("server starts");
    let addr = server.local_addr().unwrap();
    let state = server.state().clone();
    let skipped = server
        .skipped()
        .iter()
        .map(|s| (s.path.clone(), s.reason.clone()))
        .collect();
    let (signals, rx) = mpsc::unbounded_channel();
    let stopped = std::thread::spawn(move || server.run(rx));
    TestApp {
        base: format!("http://{addr}"),
        addr,
        client: reqwest::Client::new(),
        state,
        skipped,
        signals,
        stopped: Some(stopped),
    }
}

/// Starts the server over `data_dir` with the default configuration.
pub(crate) async fn spawn_app(data_dir: &Path) -> TestApp {
    spawn_app_with(data_dir, |_| {}).await
}

/// The repository's `data/` folder.
pub(crate) fn sample_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Writes a C-order `.npy` file of `dtype`/`shape` whose data bytes are `data`.
pub(crate) fn write_npy(path: &Path, dtype: &str, shape: &[u64], data: &[u8]) {
    let mut bytes = arrayd::npy::write_header(DType::parse(dtype).unwrap(), shape);
    bytes.extend_from_slice(data);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

/// Little-endian bytes of `values`.
pub(crate) fn f32_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

/// A temp dir with a few fixtures:
/// - `m` — `<f4` (3, 4) holding 0..12;
/// - `sub.v` — `<i2` (5,) holding -2..3;
/// - `raw` — raw `<u2` (2, 3) F order at offset 3, holding 0..6 in file order;
/// - `e` — `<f8` (0, 3), empty.
pub(crate) fn fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_npy(
        &root.join("m.npy"),
        "<f4",
        &[3, 4],
        &f32_bytes((0..12).map(|i| i as f32)),
    );
    let v: Vec<u8> = (-2i16..3).flat_map(i16::to_le_bytes).collect();
    write_npy(&root.join("sub/v.npy"), "<i2", &[5], &v);
    let mut raw = vec![0xAA, 0xBB, 0xCC];
    raw.extend((0u16..6).flat_map(u16::to_le_bytes));
    std::fs::write(root.join("raw.u2"), raw).unwrap();
    std::fs::write(
        root.join("raw.array.json"),
        r#"{"file": "raw.u2", "dtype": "<u2", "shape": [2, 3], "order": "F", "offset": 3}"#,
    )
    .unwrap();
    write_npy(&root.join("e.npy"), "<f8", &[0, 3], &[]);
    dir
}
