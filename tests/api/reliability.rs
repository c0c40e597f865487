//! README "Limits and known gaps": a data file truncated by another party while it is mapped must not
//! crash the server. The test binary is the server process, so a SIGBUS the guard missed kills
//! the whole binary: surviving is the first assertion.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{fixtures, spawn_app_with};

/// Side of the square `<f4` array: 8192² × 4 bytes = 256 MiB, sparse on disk.
const SIDE: u64 = 8192;

/// Attempts before giving up on catching a truncation mid-chunk (each takes well under a
/// second; the first almost always succeeds).
const ATTEMPTS: usize = 20;

/// Writes `big.npy`, a sparse `<f4` (SIDE, SIDE) of zeros, into `dir`; returns its path.
fn write_sparse(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("big.npy");
    let header =
        arrayd::npy::write_header(arrayd::dtype::DType::parse("<f4").unwrap(), &[SIDE, SIDE]);
    std::fs::write(&path, &header).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(header.len() as u64 + SIDE * SIDE * 4).unwrap();
    path
}

async fn json(app: &crate::helpers::TestApp, path: &str) -> (u16, Value) {
    let response = app.get(path).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A strided JSON stream (one-element runs: the copy path) over a 256 MiB file; after the
/// first few MiB of body, the file is cut to 4 MiB under the producer. Repeated until the
/// truncation lands inside a chunk, so the producer touches a lost page and the SIGBUS guard
/// answers it (a truncation between chunks is caught by the `fstat` instead, without a fault).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_under_a_stream_cuts_it_and_nothing_else() {
    let deadline = Instant::now() + Duration::from_secs(120);
    for attempt in 1..=ATTEMPTS {
        let dir = fixtures();
        let path = write_sparse(dir.path());
        let app = spawn_app_with(dir.path(), |c| c.chunk_bytes = 1 << 20).await;
        let faults_before = arrayd::sigbus::faults_handled();

        let mut response = app.get("/v1/datasets/big/data?slice=:,::2").await;
        assert_eq!(response.status(), 200);
        let mut received = 0usize;
        let mut truncated = false;
        let ended = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    received += chunk.len();
                    if !truncated && received >= (4 << 20) {
                        // `set_len` on a second handle: another party as far as the map knows.
                        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                        file.set_len(4 << 20).unwrap();
                        truncated = true;
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        assert!(truncated, "the stream ended after {received} bytes");
        assert!(
            ended.is_err(),
            "a stream over a truncated file ended as if whole after {received} bytes"
        );

        // Every other request goes on.
        let health = app.get("/healthz").await;
        assert_eq!(health.status(), 200);
        let (status, body) = json(&app, "/v1/datasets/m/data?slice=1").await;
        assert_eq!(
            (status, body),
            (200, serde_json::json!([4.0, 5.0, 6.0, 7.0]))
        );

        let big = app.state.dataset("big").unwrap();
        if big.poisoned() {
            // The guard answered a fault inside a chunk and the server is still here. The
            // truncated dataset now fails cleanly, before the head, even where the file
            // still holds the bytes; its META still answers.
            assert!(arrayd::sigbus::faults_handled() > faults_before);
            for path in [
                "/v1/datasets/big/data?slice=:4,:4",
                "/v1/datasets/big/data?slice=::2,::2",
                "/v1/datasets/big/stats",
            ] {
                let (status, body) = json(&app, path).await;
                assert_eq!(status, 500, "{path}: {body}");
                assert_eq!(body["error"]["code"], "data_unreadable", "{path}: {body}");
            }
            assert_eq!(app.get("/v1/datasets/big").await.status(), 200);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no truncation landed inside a chunk in {attempt} attempts"
        );
    }
    panic!("no truncation landed inside a chunk in {ATTEMPTS} attempts");
}

/// `/stats` over a 256 MiB file cut to 4 MiB while the walk runs (on this machine it is
/// always mid-walk, and the walk faults): the reduction fails with a `500`
/// (`data_unreadable`), or, had it finished first, answers from the whole file; never from a
/// poisoned map, and the server survives either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_under_stats_fails_it_cleanly() {
    let dir = fixtures();
    let path = write_sparse(dir.path());
    let app = spawn_app_with(dir.path(), |_| {}).await;
    let url = format!("{}/v1/datasets/big/stats", app.base);
    let request = tokio::spawn(app.client.get(url).send());
    tokio::time::sleep(Duration::from_millis(30)).await;
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(4 << 20).unwrap();
    let response = request.await.unwrap().unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let poisoned = app.state.dataset("big").unwrap().poisoned();
    if status == 200 {
        // Finished before the truncation: the whole array, all zeros.
        assert!(!poisoned, "a walk that read zero pages answered: {body}");
        assert_eq!(body["count"], SIDE * SIDE, "{body}");
    } else {
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"]["code"], "data_unreadable", "{body}");
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
}
