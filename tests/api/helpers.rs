//! Test helpers: fixtures written as `.npy` and raw files, and `spawn_app`.

use std::path::{Path, PathBuf};

use arrayd::config::Config;
use arrayd::dtype::DType;
use arrayd::http::AppState;
use arrayd::registry::Registry;
use tokio::sync::oneshot;

/// A running server over a data directory; dropping it shuts the server down.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// A client without a timeout of its own.
    pub(crate) client: reqwest::Client,
    /// The server's state, to watch its counters.
    pub(crate) state: AppState,
    /// Names of the files the scan skipped, with reasons.
    pub(crate) skipped: Vec<(String, String)>,
    _shutdown: oneshot::Sender<()>,
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
}

/// Starts the server over `data_dir` with `config` tweaks applied.
pub(crate) async fn spawn_app_with(data_dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestApp {
    // As `main` does: a truncated data file must not kill the test binary.
    arrayd::sigbus::install();
    let mut config = Config::for_data_dir(data_dir);
    tweak(&mut config);
    let (registry, skipped) = Registry::scan(data_dir).expect("scan");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(registry, config);
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(arrayd::http::serve(listener, state.clone(), async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        state,
        skipped: skipped.into_iter().map(|s| (s.path, s.reason)).collect(),
        _shutdown: tx,
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
