//! Operations: `/metrics` read by a real Prometheus parser, request ids, the drain, and the
//! log lines of the real binary.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{fixtures, spawn_app, spawn_app_with, write_npy, TestApp};

/// `/metrics` through prometheus_client's OpenMetrics parser: every sample, or a panic.
async fn scrape(text: &str) -> Vec<Value> {
    let out = python_filter("parse_metrics.py", text).await;
    assert!(out.status.success(), "not valid OpenMetrics:\n{text}");
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// Runs `tests/python/SCRIPT` with `text` on its stdin.
async fn python_filter(script: &str, text: &str) -> std::process::Output {
    use tokio::process::Command;
    let python = crate::numpy::python().await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    child.wait_with_output().await.unwrap()
}

/// The served `/openapi.yaml` is a valid OpenAPI document (openapi-spec-validator) and
/// describes every route the router answers.
#[tokio::test]
async fn openapi_is_valid_and_lists_every_route() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let text = app.get("/openapi.yaml").await.text().await.unwrap();
    let out = python_filter("validate_openapi.py", &text).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openapi.yaml is not valid: {stderr}");
    let paths: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.yaml", "get"),
        ("/", "get"),
        ("/explorer/{file}", "get"),
        ("/v1/datasets", "get"),
        ("/v1/datasets", "post"),
        ("/v1/datasets/{name}", "get"),
        ("/v1/datasets/{name}", "delete"),
        ("/v1/datasets/{name}/data", "get"),
        ("/v1/datasets/{name}/raw", "get"),
        ("/v1/datasets/{name}/stats", "get"),
        ("/v1/datasets/{name}/histogram", "get"),
        ("/v1/datasets/{name}/downsample", "get"),
        ("/v1/admin/rescan", "post"),
        ("/zarr/", "get"),
        ("/zarr/zarr.json", "get"),
        ("/zarr/.zgroup", "get"),
        ("/zarr/.zattrs", "get"),
        ("/zarr/.zmetadata", "get"),
        ("/zarr/{name}/", "get"),
        ("/zarr/{name}/zarr.json", "get"),
        ("/zarr/{name}/.zarray", "get"),
        ("/zarr/{name}/.zattrs", "get"),
    ];
    for (path, method) in expected {
        let ops = paths[path].as_array();
        assert!(
            ops.is_some_and(|ops| ops.iter().any(|m| m == method)),
            "{method} {path} missing from openapi.yaml"
        );
        // And the server answers it (anything but an unknown route).
        let path = path.replace("{name}", "m").replace("{file}", "app.js");
        let url = format!("{}{path}", app.base);
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let status = app
            .client
            .request(method.clone(), url)
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            ![404, 405].contains(&status.as_u16()),
            "{method} {path}: {status}"
        );
    }
}

/// The value of the one sample called `name` with `labels` (among others), and its type.
fn value(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<(f64, String)> {
    samples
        .iter()
        .find(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .map(|s| {
            (
                s["value"].as_f64().unwrap(),
                s["type"].as_str().unwrap().to_owned(),
            )
        })
}

#[tokio::test]
async fn metrics_count_by_route_template() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    for _ in 0..3 {
        assert_eq!(app.get("/v1/datasets/m/data?slice=0").await.status(), 200);
    }
    assert_eq!(app.get("/v1/datasets/nope/data").await.status(), 404);
    let body = app.get("/v1/datasets/m/raw").await.bytes().await.unwrap();
    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let s = scrape(&text).await;
    let counter = |v: f64| Some((v, "counter".to_owned()));
    let gauge = |v: f64| Some((v, "gauge".to_owned()));
    let route = "/v1/datasets/{name}/data";
    let get = [("route", route), ("method", "GET"), ("status", "200")];
    assert_eq!(value(&s, "arrayd_http_requests_total", &get), counter(3.0));
    let missing = [("route", route), ("status", "404")];
    assert_eq!(
        value(&s, "arrayd_http_requests_total", &missing),
        counter(1.0)
    );
    // Route templates, never raw paths.
    assert!(!text.contains("/v1/datasets/m/"), "{text}");
    let raw = [("route", "/v1/datasets/{name}/raw")];
    assert_eq!(
        value(&s, "arrayd_http_response_body_bytes_total", &raw),
        counter(body.len() as f64)
    );
    assert_eq!(value(&s, "arrayd_datasets", &[]), gauge(4.0));
    assert!(value(&s, "arrayd_mapped_bytes", &[]).unwrap().0 > 0.0);
    for name in [
        "arrayd_streams_in_flight",
        "arrayd_reductions_in_flight",
        "arrayd_sigbus_faults_total",
        "arrayd_rescans_total",
    ] {
        assert!(value(&s, name, &[]).is_some(), "{name} missing");
    }
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(value(&s, "arrayd_build_info", &version), gauge(1.0));
    // The duration histogram: every request to the route, in its +Inf bucket.
    let all = [("route", route), ("le", "+Inf")];
    let (count, kind) = value(&s, "arrayd_http_request_duration_seconds_bucket", &all).unwrap();
    assert_eq!((count, kind.as_str()), (4.0, "histogram"));
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let given = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-42");
    let a = app.get("/v1/datasets").await;
    let b = app.get("/v1/nope").await;
    let (a, b) = (&a.headers()["x-request-id"], &b.headers()["x-request-id"]);
    assert_ne!(a, b);
    // An insane one is replaced.
    let long = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "x".repeat(300))
        .send()
        .await
        .unwrap();
    assert!(long.headers()["x-request-id"].len() < 100);
}

/// SIGTERM with a stream in flight: `/readyz` turns 503, other calls are `503 draining`, the
/// stream finishes whole, then `run` returns.
/// A server over one `big.npy` of `n` float32 values with `grace_secs` of drain grace, and a
/// raw connection whose `format=bin` stream of it has begun: its first bytes (the head) are
/// returned, the rest is left unread.
async fn streaming(n: u64, grace_secs: u64) -> (tempfile::TempDir, TestApp, TcpStream, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    write_npy(
        &dir.path().join("big.npy"),
        "<f4",
        &[n],
        &vec![7u8; (n * 4) as usize],
    );
    let app = spawn_app_with(dir.path(), |c| c.shutdown_grace_secs = grace_secs).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /v1/datasets/big/data?format=bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0u8; 256];
    let got = stream.read(&mut head).await.unwrap();
    head.truncate(got);
    assert!(head.starts_with(b"HTTP/1.1 200"));
    (dir, app, stream, head)
}

/// A connection the drain finds before its first request still answers that request (a
/// client that connected just before the drain would otherwise see its request fail), then
/// closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_opened_before_the_drain_answers_its_first_request() {
    // A stream nobody reads keeps the drain going.
    let (_dir, mut app, _stream, _) = streaming(16 << 20, 20).await;
    let mut early = TcpStream::connect(app.addr).await.unwrap();
    // Long enough for the server to have accepted it before the drain starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = app.signals.send(arrayd::server::Signal::Terminate);
    let start = Instant::now();
    while !app.state.lifecycle.draining() {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    early
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), early.read_to_end(&mut answer))
        .await
        .expect("the connection is closed after its answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let _ = app.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_finishes_a_stream_in_flight() {
    let n = 1u64 << 22; // 16 MiB of bin: several chunks
    let (_dir, mut app, mut stream, head) = streaming(n, 20).await;
    // An idle keep-alive connection, to see it closed by the drain.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let _ = idle.read(&mut [0u8; 256]).await.unwrap();

    let _ = app.signals.send(arrayd::server::Signal::Terminate);
    let start = Instant::now();
    while !app.state.lifecycle.draining() {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The drain closes idle keep-alive connections, the pooled client's included: ask on
    // fresh connections, as a load balancer's probe does.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let get = |path: &str| fresh.get(format!("{}{path}", app.base)).send();
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let other = get("/v1/datasets").await.unwrap();
    assert_eq!(other.status(), 503);
    assert_eq!(other.headers()["connection"], "close");
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["error"]["code"], "draining");
    let mut rest = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "idle keep-alive not closed"
    );

    // The stream is read to its end, slowly at first: it must come whole.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut all = head.clone();
    stream.read_to_end(&mut all).await.unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&all[..split]).to_ascii_lowercase();
    let wire = &all[split..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(wire).expect("the chunked stream did not end cleanly")
    } else {
        assert!(
            head.contains(&format!("content-length: {}", n * 4)),
            "{head}"
        );
        wire.to_vec()
    };
    assert_eq!(body.len() as u64, n * 4, "the stream came short");
    assert!(body.iter().all(|&b| b == 7));
    app.terminate().await.unwrap();
}

/// A stream still running when the grace runs out is reset, not closed behind the bytes
/// already in its socket buffer: in a container the network namespace goes away with the
/// process, and a FIN queued behind those bytes would never reach the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_at_the_end_of_the_grace_is_reset() {
    let n = 1u64 << 24; // 64 MiB of bin: far more than the socket buffers hold
    let (_dir, mut app, mut stream, head) = streaming(n, 1).await;
    // The client stops reading; the server fills its buffers and waits, then the grace ends.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.terminate().await.unwrap();
    let mut received = head.len() as u64;
    let mut buf = vec![0u8; 1 << 20];
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) => break "closed",
            Ok(Ok(k)) => received += k as u64,
            Ok(Err(e)) => {
                break if e.kind() == std::io::ErrorKind::ConnectionReset {
                    "reset"
                } else {
                    "error"
                }
            }
            Err(_) => break "hung",
        }
    };
    assert_eq!(end, "reset", "after {received} bytes");
    assert!(received < n * 4);
}

/// A chunked body's data, or `None` when it lacks its closing zero-size chunk.
fn dechunk(mut wire: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = wire.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&wire[..eol]).ok()?, 16).ok()?;
        wire = &wire[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(wire.get(..size)?);
        wire = wire.get(size + 2..)?;
    }
}

/// The real binary: tokens never reach a log line, SIGTERM exits 0, a second SIGTERM during
/// a drain exits at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_no_token_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1u64 << 28;
    let path = dir.path().join("huge.npy");
    write_npy(&path, "<f4", &[n], &[]);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(128 + n * 4)
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let secret = "tok-Zq8Xv3-never-logged";
    let mut child = Command::new(env!("CARGO_BIN_EXE_arrayd"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log",
            "debug",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--state-dir")
        .arg(state.path())
        .env("ARRAYD_READ_TOKEN", secret)
        .env("ARRAYD_ADMIN_TOKEN", format!("{secret}-admin"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no serving line");
        log.push(line.clone());
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "serving" {
            break v["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    for auth in [
        format!("Bearer {secret}"),
        format!("Bearer {secret}-wrong"),
        format!("Basic {secret}"),
    ] {
        let resp = client
            .get(format!("{base}/v1/datasets/nope?x={}", "y"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        assert!(!text.contains(secret), "{text}");
    }
    // A stream in flight, never read: the first SIGTERM drains and waits for it ...
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET /v1/datasets/huge/data?format=json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 64];
    let got = stream.read(&mut head).await.unwrap();
    assert!(head[..got].starts_with(b"HTTP/1.1 200"));
    let pid = child.id().to_string();
    let kill = |sig: &str| {
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success());
    };
    kill("-TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a stream in flight"
    );
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    // ... and the second one stops it at once.
    let start = Instant::now();
    kill("-TERM");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "a second SIGTERM did not stop it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(2)) {
        log.push(line);
    }
    let log = log.join("\n");
    assert!(log.contains("\"request_id\""), "no request lines:\n{log}");
    assert!(!log.contains(secret), "a token reached the log:\n{log}");
    assert!(!log.to_ascii_lowercase().contains("authorization"), "{log}");
}
