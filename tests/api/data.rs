use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use serde_json::Value;

use crate::helpers::{f32_bytes, fixtures, sample_data, spawn_app, spawn_app_with, write_npy};

async fn text(app: &crate::helpers::TestApp, path: &str) -> String {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

#[tokio::test]
async fn json_nests_in_the_output_shape() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    assert_eq!(
        text(&app, "/v1/datasets/m/data").await,
        "[[0.0,1.0,2.0,3.0],[4.0,5.0,6.0,7.0],[8.0,9.0,10.0,11.0]]"
    );
    assert_eq!(
        text(&app, "/v1/datasets/m/data?slice=1:,::-2").await,
        "[[7.0,5.0],[11.0,9.0]]"
    );
    assert_eq!(text(&app, "/v1/datasets/m/data?slice=[-1,2]").await, "10.0");
    assert_eq!(
        text(&app, "/v1/datasets/m/data?slice=...,1").await,
        "[1.0,5.0,9.0]"
    );
    assert_eq!(
        text(&app, "/v1/datasets/sub.v/data?slice=::-1").await,
        "[2,1,0,-1,-2]"
    );
    // F-order raw: logical [[0, 2, 4], [1, 3, 5]].
    assert_eq!(
        text(&app, "/v1/datasets/raw/data").await,
        "[[0,2,4],[1,3,5]]"
    );
    assert_eq!(text(&app, "/v1/datasets/e/data").await, "[]");
    assert_eq!(
        text(&app, "/v1/datasets/m/data?slice=:,5:").await,
        "[[],[],[]]"
    );
}

#[tokio::test]
async fn csv_rows_and_lines() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    assert_eq!(
        text(&app, "/v1/datasets/m/data?format=csv&slice=:2").await,
        "0.0,1.0,2.0,3.0\n4.0,5.0,6.0,7.0\n"
    );
    assert_eq!(
        text(&app, "/v1/datasets/sub.v/data?format=csv").await,
        "-2\n-1\n0\n1\n2\n"
    );
    assert_eq!(
        text(&app, "/v1/datasets/m/data?format=csv&slice=0,0").await,
        "0.0\n"
    );
    assert_eq!(text(&app, "/v1/datasets/e/data?format=csv").await, "");
}

#[tokio::test]
async fn bin_and_npy_have_exact_lengths_and_bytes() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let resp = app.get("/v1/datasets/m/data?format=bin&slice=:,1").await;
    assert_eq!(resp.headers()[CONTENT_LENGTH], "12");
    assert_eq!(resp.headers()["x-array-dtype"], "<f4");
    assert_eq!(resp.headers()["x-array-shape"], "3");
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        f32_bytes([1.0, 5.0, 9.0])
    );

    let resp = app.get("/v1/datasets/raw/data?format=npy&slice=1").await;
    let len: usize = resp.headers()[CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), len);
    let header = arrayd::npy::parse_header(&body).unwrap();
    assert_eq!(header.shape, [3]);
    assert_eq!(header.data_offset % 64, 0);
    let data: Vec<u8> = [1u16, 3, 5].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(&body[header.data_offset as usize..], data);

    let resp = app.get("/v1/datasets/m/data?format=bin&slice=1,1").await;
    assert_eq!(resp.headers()["x-array-shape"], "");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), f32_bytes([5.0]));
}

#[tokio::test]
async fn head_has_the_headers_of_get_and_no_body() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    for format in ["bin", "npy", "json", "csv"] {
        let url = format!("{}/v1/datasets/m/data?format={format}&slice=1:", app.base);
        let get = app.client.get(&url).send().await.unwrap();
        let head = app.client.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200);
        for h in [CONTENT_TYPE.as_str(), "x-array-dtype", "x-array-shape"] {
            assert_eq!(get.headers().get(h), head.headers().get(h), "{format} {h}");
        }
        if format == "bin" || format == "npy" {
            assert_eq!(
                get.headers().get(CONTENT_LENGTH),
                head.headers().get(CONTENT_LENGTH)
            );
        }
        assert!(head.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn negotiation_prefers_format_then_accept_then_json() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let get = |accept: &'static str, query: &'static str| {
        let url = format!("{}/v1/datasets/sub.v/data{query}", app.base);
        app.client.get(url).header(ACCEPT, accept).send()
    };
    let ct = |r: &reqwest::Response| r.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    assert_eq!(
        ct(&get("text/csv", "").await.unwrap()),
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        ct(&get("text/csv", "?format=npy").await.unwrap()),
        "application/x-npy"
    );
    assert_eq!(ct(&get("*/*", "").await.unwrap()), "application/json");
    assert_eq!(
        ct(&get("text/csv;q=0.5, application/octet-stream", "")
            .await
            .unwrap()),
        "application/octet-stream"
    );
    let resp = get("image/png", "").await.unwrap();
    assert_eq!(resp.status(), 406);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_acceptable");
}

#[tokio::test]
async fn nonfinite_values_follow_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let values = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.1];
    write_npy(&dir.path().join("n.npy"), "<f4", &[4], &f32_bytes(values));
    let app = spawn_app(dir.path()).await;
    assert_eq!(
        text(&app, "/v1/datasets/n/data").await,
        "[null,null,null,0.1]"
    );
    assert_eq!(
        text(&app, "/v1/datasets/n/data?nonfinite=string").await,
        r#"["NaN","Infinity","-Infinity",0.1]"#
    );
    assert_eq!(
        text(&app, "/v1/datasets/n/data?format=csv").await,
        "nan\ninf\n-inf\n0.1\n"
    );
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let long_8k = format!("/v1/datasets/m/data?slice={}", "1".repeat(9000));
    let cases: &[(&str, u16, &str)] = &[
        ("/v1/datasets/m/data?slice=1:2:3:4", 400, "bad_slice"),
        ("/v1/datasets/m/data?slice=::0", 400, "bad_slice"),
        ("/v1/datasets/m/data?slice=...,...", 400, "bad_slice"),
        ("/v1/datasets/m/data?slice=1,2,3", 400, "bad_slice"),
        ("/v1/datasets/m/data?slice=3", 400, "index_out_of_range"),
        ("/v1/datasets/m/data?slice=-4", 400, "index_out_of_range"),
        (
            "/v1/datasets/m/data?slice=99999999999999999999",
            400,
            "bad_slice",
        ),
        ("/v1/datasets/m/data?slice=1%20:2", 400, "bad_slice"),
        ("/v1/datasets/m/data?slice=%2B1", 400, "bad_slice"),
        ("/v1/datasets/m/data?format=xml", 400, "bad_format"),
        ("/v1/datasets/m/data?nonfinite=zero", 400, "bad_query"),
        ("/v1/datasets/m/data?bogus=1", 400, "bad_query"),
        ("/v1/datasets/m/data?slice=%FF", 400, "bad_slice"),
        (&long_8k, 414, "uri_too_long"),
    ];
    for (path, status, code) in cases {
        let resp = app.get(path).await;
        assert_eq!(
            resp.status().as_u16(),
            *status,
            "{}",
            &path[..path.len().min(60)]
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["error"]["code"],
            *code,
            "{}",
            &path[..path.len().min(60)]
        );
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn large_bodies_stream_in_many_small_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300_000u64;
    write_npy(
        &dir.path().join("big.npy"),
        "<f4",
        &[n],
        &f32_bytes((0..n).map(|i| i as f32)),
    );
    let app = spawn_app_with(dir.path(), |c| c.chunk_bytes = 4096).await;
    let resp = app.get("/v1/datasets/big/data?format=bin").await;
    assert_eq!(resp.bytes().await.unwrap().len() as u64, n * 4);
    let body = text(&app, "/v1/datasets/big/data?slice=::7").await;
    let parsed: Vec<f32> = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed.len() as u64, n.div_ceil(7));
    assert!(parsed.iter().enumerate().all(|(i, &v)| v == (i * 7) as f32));
}

#[tokio::test]
async fn sample_data_serves_the_readme_examples() {
    let app = spawn_app(&sample_data()).await;
    let body: Value = app.get("/v1/datasets").await.json().await.unwrap();
    let names: Vec<&str> = body["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["climate.matrix", "image", "signal"]);
    let row: Vec<u8> =
        serde_json::from_str(&text(&app, "/v1/datasets/image/data?slice=128,::64").await).unwrap();
    assert_eq!(row.len(), 4);
    let csv = text(
        &app,
        "/v1/datasets/climate.matrix/data?slice=:2,:3&format=csv",
    )
    .await;
    assert_eq!(csv.lines().count(), 2);
}

/// A 100 KB target is past the request-head buffer (`--max-header-bytes`, 16 KiB) and what
/// reqwest sends, so this speaks raw HTTP/1.1: the answer is 431 (the head as a whole is too
/// large), still with the JSON error body.
#[tokio::test]
async fn a_100_kb_query_gets_a_json_4xx() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let target = format!("/v1/datasets/m/data?slice={}", "1".repeat(100_000));
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");
}

/// Issue 2: "when the client disconnects, the work stops within a chunk". A 1 GiB JSON body
/// takes far longer than the test waits, so a producer that ignored the disconnect would
/// still be counted.
#[tokio::test]
async fn a_vanished_client_stops_the_producer() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.npy");
    let n = 1u64 << 28;
    write_npy(&path, "<f4", &[n], &[]);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(std::fs::metadata(&path).unwrap().len() + n * 4)
        .unwrap();
    let app = spawn_app_with(dir.path(), |c| c.chunk_bytes = 64 * 1024).await;
    let in_flight = &app.state.streams_in_flight;

    let mut resp = app.get("/v1/datasets/huge/data?format=json").await;
    for _ in 0..4 {
        assert!(!resp.chunk().await.unwrap().unwrap().is_empty());
    }
    assert_eq!(
        in_flight.load(Ordering::Relaxed),
        1,
        "the producer should be running"
    );
    drop(resp);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while in_flight.load(Ordering::Relaxed) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "producer still running after disconnect"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
