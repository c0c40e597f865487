//! Connection and request limits: head size, head-read timeout, keep-alive idle, load
//! shedding and the send timeout (README "Deploying").

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{fixtures, spawn_app_with, write_npy, TestApp};

/// A data directory with `huge`: 1 GiB of `<f4` zeros (sparse), far more than a test reads.
fn huge() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.npy");
    let n = 1u64 << 28;
    write_npy(&path, "<f4", &[n], &[]);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len + n * 4).unwrap();
    dir
}

/// Reads until the server closes; the time it took.
async fn time_to_close(stream: &mut TcpStream, within: Duration) -> Duration {
    let start = Instant::now();
    let mut sink = vec![0u8; 1 << 16];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server did not close the connection");
    start.elapsed()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(15), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn headers_past_the_limit_are_431_json() {
    let dir = fixtures();
    let app = spawn_app_with(dir.path(), |c| c.max_header_bytes = 16 * 1024).await;
    let resp = app
        .client
        .get(format!("{}/v1/datasets", app.base))
        .header("x-padding", "a".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");
    // Under the limit is fine.
    let ok = app
        .client
        .get(format!("{}/v1/datasets", app.base))
        .header("x-padding", "a".repeat(8_000))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// Slowloris: half a request line, then nothing.
#[tokio::test]
async fn a_half_sent_head_is_closed_within_the_limit() {
    let dir = fixtures();
    let app = spawn_app_with(dir.path(), |c| c.header_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(b"GET /v1/datas").await.unwrap();
    let took = time_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(800), "{took:?}");
    // A connection that sends nothing at all is closed as well.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    time_to_close(&mut silent, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_idle_keep_alive_is_closed_after_the_idle_limit() {
    let dir = fixtures();
    let app = spawn_app_with(dir.path(), |c| {
        c.keep_alive_secs = 1;
        c.header_read_timeout_secs = 30;
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = vec![0u8; 4096];
    let n = stream.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    let took = time_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(800), "{took:?}");
}

/// Opens a request for 1 GiB of JSON and reads only its head: a request in progress.
async fn stalled_stream(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /v1/datasets/huge/data?format=json HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0u8; 512];
    let n = stream.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &head[..n]);
    stream
}

#[tokio::test]
async fn past_max_concurrent_requests_are_shed_with_retry_after() {
    let dir = huge();
    let app = spawn_app_with(dir.path(), |c| c.max_concurrent = 2).await;
    let _a = stalled_stream(&app).await;
    let _b = stalled_stream(&app).await;
    let shed = app.get("/v1/datasets/huge").await;
    assert_eq!(shed.status(), 503);
    assert!(shed.headers().contains_key("retry-after"));
    let body: Value = shed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");
    // Probes are never shed.
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    drop(_a);
    wait_until("a slot frees when a stream's client goes", || {
        app.state.lifecycle.in_progress() < 2
    })
    .await;
    assert_eq!(app.get("/v1/datasets/huge").await.status(), 200);
}

/// A client that stops reading is cut after `--send-timeout-secs`, and its producer stops.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut() {
    let dir = huge();
    let app = spawn_app_with(dir.path(), |c| c.send_timeout_secs = 1).await;
    let mut stream = stalled_stream(&app).await;
    assert_eq!(app.state.lifecycle.in_progress(), 1);
    // Nothing read: the socket buffers fill, then the server waits a second and cuts.
    wait_until("the stalled request ends", || {
        app.state.lifecycle.in_progress() == 0
            && app.state.streams_in_flight.load(Ordering::Relaxed) == 0
    })
    .await;
    // What was buffered can still be read, then the connection ends without a whole body.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!((rest.len() as u64) < (1u64 << 30), "{}", rest.len());
}
