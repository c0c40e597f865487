use std::path::Path;
use std::time::{Duration, SystemTime};

use reqwest::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE,
};
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::helpers::{f32_bytes, fixtures, spawn_app, spawn_app_with, write_npy, TestApp};

/// The array bytes of fixture `m`: `<f4` 0..12.
fn m_bytes() -> Vec<u8> {
    f32_bytes((0..12).map(|i| i as f32))
}

/// `n` bytes that differ from their neighbours and do not repeat every 256.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn get_range(app: &TestApp, name: &str, range: &str) -> Response {
    app.client
        .get(format!("{}/v1/datasets/{name}/raw", app.base))
        .header(RANGE, range)
        .send()
        .await
        .unwrap()
}

fn header(resp: &Response, name: impl reqwest::header::AsHeaderName) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Parses a `multipart/byteranges` body into `(Content-Range, bytes)` parts, checking the
/// framing of RFC 9110 §14.6 on the way: each part's length comes from its `Content-Range`,
/// never from searching binary data for the boundary.
fn parse_multipart(resp_content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = resp_content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("not multipart: {resp_content_type}"));
    let delimiter = format!("--{boundary}");
    let mut rest = body
        .strip_prefix(delimiter.as_bytes())
        .expect("body starts with the boundary");
    let mut parts = Vec::new();
    loop {
        if let Some(end) = rest.strip_prefix(b"--") {
            assert_eq!(end, b"\r\n", "nothing after the closing boundary");
            return parts;
        }
        rest = rest.strip_prefix(b"\r\n").expect("CRLF after boundary");
        let head_end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("part head");
        let head = std::str::from_utf8(&rest[..head_end]).unwrap();
        rest = &rest[head_end + 4..];
        assert!(
            head.lines()
                .any(|l| l == "Content-Type: application/octet-stream"),
            "{head}"
        );
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: "))
            .expect("part Content-Range")
            .to_owned();
        let (first, last) = range
            .strip_prefix("bytes ")
            .and_then(|r| r.split_once('/'))
            .and_then(|(r, _)| r.split_once('-'))
            .unwrap();
        let n = last.parse::<usize>().unwrap() - first.parse::<usize>().unwrap() + 1;
        parts.push((range, rest[..n].to_vec()));
        rest = rest[n..]
            .strip_prefix(b"\r\n")
            .and_then(|r| r.strip_prefix(delimiter.as_bytes()))
            .expect("CRLF and boundary after a part");
    }
}

/// Sets a file's modification time.
fn set_mtime(path: &Path, mtime: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

#[tokio::test]
async fn full_body_is_the_array_region_without_the_npy_header() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let resp = app.get("/v1/datasets/m/raw").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, ACCEPT_RANGES), "bytes");
    assert_eq!(header(&resp, CONTENT_TYPE), "application/octet-stream");
    assert_eq!(header(&resp, CONTENT_LENGTH), "48");
    assert_eq!(header(&resp, "x-array-dtype"), "<f4");
    assert_eq!(header(&resp, "x-array-shape"), "3,4");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), m_bytes());

    // A descriptor's region starts at its offset; F order changes nothing: bytes as stored.
    let resp = app.get("/v1/datasets/raw/raw").await;
    let stored: Vec<u8> = (0u16..6).flat_map(u16::to_le_bytes).collect();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), stored);
}

#[tokio::test]
async fn every_single_range_form() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let all = m_bytes();
    let cases: &[(&str, &str, std::ops::Range<usize>)] = &[
        ("bytes=0-9", "bytes 0-9/48", 0..10),
        ("bytes=40-", "bytes 40-47/48", 40..48),
        ("bytes=-5", "bytes 43-47/48", 43..48),
        ("bytes=-100", "bytes 0-47/48", 0..48),
        ("bytes=47-47", "bytes 47-47/48", 47..48),
        ("bytes=44-1000", "bytes 44-47/48", 44..48),
        ("bytes=44-99999999999999999999999", "bytes 44-47/48", 44..48),
        ("Bytes=1-2", "bytes 1-2/48", 1..3),
        // Overlapping, adjacent or repeated ranges coalesce into one part.
        ("bytes=0-9,5-14", "bytes 0-14/48", 0..15),
        ("bytes=10-19,0-9", "bytes 0-19/48", 0..20),
        ("bytes=0-,0-,0-", "bytes 0-47/48", 0..48),
        // Unsatisfiable members are dropped when another one is satisfiable.
        ("bytes=100-200,2-3", "bytes 2-3/48", 2..4),
    ];
    for (range, content_range, want) in cases {
        let resp = get_range(&app, "m", range).await;
        assert_eq!(resp.status(), 206, "{range}");
        assert_eq!(header(&resp, CONTENT_RANGE), *content_range, "{range}");
        assert_eq!(header(&resp, CONTENT_LENGTH), want.len().to_string());
        assert_eq!(header(&resp, CONTENT_TYPE), "application/octet-stream");
        assert_eq!(header(&resp, ACCEPT_RANGES), "bytes");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &all[want.clone()]);
    }
}

#[tokio::test]
async fn several_ranges_are_multipart_in_ascending_order() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let all = m_bytes();
    let resp = get_range(&app, "m", "bytes=-4, 20-23,0-3,2-5").await;
    assert_eq!(resp.status(), 206);
    assert!(resp.headers().get(CONTENT_RANGE).is_none());
    let ct = header(&resp, CONTENT_TYPE);
    let len: usize = header(&resp, CONTENT_LENGTH).parse().unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), len);
    let parts = parse_multipart(&ct, &body);
    let want = [
        ("bytes 0-5/48", &all[0..6]),
        ("bytes 20-23/48", &all[20..24]),
        ("bytes 44-47/48", &all[44..48]),
    ];
    assert_eq!(parts.len(), want.len());
    for ((range, bytes), (want_range, want_bytes)) in parts.iter().zip(want) {
        assert_eq!(range, want_range);
        assert_eq!(bytes.as_slice(), want_bytes);
    }
}

#[tokio::test]
async fn large_ranges_stream_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(1 << 20);
    write_npy(&dir.path().join("big.npy"), "|u1", &[1 << 20], &data);
    let app = spawn_app_with(dir.path(), |c| c.chunk_bytes = 8192).await;

    let resp = get_range(&app, "big", "bytes=1000-700000").await;
    assert_eq!(resp.status(), 206);
    assert_eq!(header(&resp, CONTENT_LENGTH), "699001");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[1000..700_001]);

    // Large and small parts mixed, with part headers between zero-copy chunks.
    let resp = get_range(&app, "big", "bytes=0-99999,200000-200009,-300000").await;
    let ct = header(&resp, CONTENT_TYPE);
    let len: usize = header(&resp, CONTENT_LENGTH).parse().unwrap();
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), len);
    let parts = parse_multipart(&ct, &body);
    assert_eq!(parts[0].1, &data[..100_000]);
    assert_eq!(parts[1].1, &data[200_000..200_010]);
    assert_eq!(parts[2].0, "bytes 748576-1048575/1048576");
    assert_eq!(parts[2].1, &data[748_576..]);

    let resp = app.get("/v1/datasets/big/raw").await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data);
}

#[tokio::test]
async fn malformed_or_foreign_ranges_get_the_whole_array() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let too_many = format!("bytes={}", vec!["0-0"; 101].join(","));
    for range in [
        "bytes=9-3",
        "bytes=abc",
        "bytes=0-1,x",
        "bytes=",
        "bytes 0-1",
        "items=0-1",
        "bytes=--1",
        too_many.as_str(),
    ] {
        let resp = get_range(&app, "m", range).await;
        assert_eq!(resp.status(), 200, "{range}");
        assert!(resp.headers().get(CONTENT_RANGE).is_none());
        assert_eq!(resp.bytes().await.unwrap().as_ref(), m_bytes(), "{range}");
    }
}

#[tokio::test]
async fn unsatisfiable_ranges_get_416_with_the_length_and_a_json_body() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let cases = [
        ("m", "bytes=48-"),
        ("m", "bytes=100-200,48-48"),
        ("m", "bytes=-0"),
        ("e", "bytes=0-"),
        ("e", "bytes=-1"),
        ("e", "bytes=0-0"),
    ];
    for (name, range) in cases {
        let resp = get_range(&app, name, range).await;
        assert_eq!(resp.status(), 416, "{name} {range}");
        let len = if name == "m" { 48 } else { 0 };
        assert_eq!(header(&resp, CONTENT_RANGE), format!("bytes */{len}"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "range_not_satisfiable");
    }
    // Without a Range, the empty array is an empty 200.
    let resp = app.get("/v1/datasets/e/raw").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, CONTENT_LENGTH), "0");
    assert!(resp.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn errors_carry_the_json_body() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let resp = app.get("/v1/datasets/nope/raw").await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_dataset");
    let resp = app
        .client
        .post(format!("{}/v1/datasets/m/raw", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn head_has_the_headers_of_get_and_no_body() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let url = format!("{}/v1/datasets/m/raw", app.base);
    for range in [
        None,
        Some("bytes=4-7"),
        Some("bytes=0-1,8-9"),
        Some("bytes=99-"),
    ] {
        let with_range = |req: reqwest::RequestBuilder| match range {
            Some(r) => req.header(RANGE, r),
            None => req,
        };
        let get = with_range(app.client.get(&url)).send().await.unwrap();
        let head = with_range(app.client.head(&url)).send().await.unwrap();
        assert_eq!(get.status(), head.status(), "{range:?}");
        for h in [
            CONTENT_LENGTH,
            CONTENT_RANGE,
            ACCEPT_RANGES,
            ETAG,
            LAST_MODIFIED,
            CACHE_CONTROL,
        ] {
            assert_eq!(
                get.headers().get(&h),
                head.headers().get(&h),
                "{range:?} {h}"
            );
        }
        // The multipart boundary is fresh per answer; the rest of the type is not.
        let ct = |r: &Response| {
            header(r, CONTENT_TYPE)
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(ct(&get), ct(&head));
        assert!(head.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn validators_answer_conditional_requests() {
    let dir = fixtures();
    set_mtime(
        &dir.path().join("m.npy"),
        SystemTime::now() - Duration::from_secs(3600),
    );
    let app = spawn_app(dir.path()).await;
    let url = format!("{}/v1/datasets/m/raw", app.base);
    let first = app.get("/v1/datasets/m/raw").await;
    let etag = header(&first, ETAG);
    let last_modified = header(&first, LAST_MODIFIED);
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    assert!(httpdate::parse_http_date(&last_modified).is_ok());
    assert_eq!(header(&first, CACHE_CONTROL), "no-cache");

    let send = |pairs: Vec<(reqwest::header::HeaderName, String)>| {
        let mut req = app.client.get(&url);
        for (name, value) in pairs {
            req = req.header(name, value);
        }
        req.send()
    };
    let not_modified = [
        vec![(IF_NONE_MATCH, etag.clone())],
        vec![(IF_NONE_MATCH, format!("W/{etag}"))],
        vec![(IF_NONE_MATCH, format!("\"x\", {etag}"))],
        vec![(IF_NONE_MATCH, "*".to_owned())],
        vec![(IF_MODIFIED_SINCE, last_modified.clone())],
        vec![
            (IF_NONE_MATCH, etag.clone()),
            (RANGE, "bytes=0-1".to_owned()),
        ],
    ];
    for pairs in not_modified {
        let resp = send(pairs.clone()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{pairs:?}");
        assert_eq!(header(&resp, ETAG), etag);
        assert_eq!(header(&resp, LAST_MODIFIED), last_modified);
        assert!(resp.bytes().await.unwrap().is_empty());
    }
    let modified = [
        vec![(IF_NONE_MATCH, "\"other\"".to_owned())],
        vec![(
            IF_MODIFIED_SINCE,
            "Mon, 01 Jan 2001 00:00:00 GMT".to_owned(),
        )],
        // If-None-Match decides alone when present.
        vec![
            (IF_NONE_MATCH, "\"other\"".to_owned()),
            (IF_MODIFIED_SINCE, last_modified.clone()),
        ],
    ];
    for pairs in modified {
        let resp = send(pairs.clone()).await.unwrap();
        assert_eq!(resp.status(), 200, "{pairs:?}");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), m_bytes());
    }

    // If-Range: a strong equal tag or the exact date serves the range; anything else the
    // whole array.
    let if_range = [
        (etag.clone(), 206),
        (last_modified.clone(), 206),
        (format!("W/{etag}"), 200),
        ("\"stale\"".to_owned(), 200),
        ("Mon, 01 Jan 2001 00:00:00 GMT".to_owned(), 200),
    ];
    for (value, status) in if_range {
        let resp = send(vec![
            (RANGE, "bytes=0-3".to_owned()),
            (IF_RANGE, value.clone()),
        ])
        .await
        .unwrap();
        assert_eq!(resp.status().as_u16(), status, "If-Range: {value}");
        let want = if status == 206 {
            &m_bytes()[..4]
        } else {
            &m_bytes()[..]
        };
        assert_eq!(resp.bytes().await.unwrap().as_ref(), want);
    }
}

#[tokio::test]
async fn data_answers_carry_validators_per_selection_and_format() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let etag_of = |path: &'static str| {
        let app = &app;
        async move {
            let resp = app.get(path).await;
            assert_eq!(resp.status(), 200, "{path}");
            assert_eq!(header(&resp, CACHE_CONTROL), "no-cache");
            assert!(!header(&resp, LAST_MODIFIED).is_empty());
            header(&resp, ETAG)
        }
    };
    let tags = [
        etag_of("/v1/datasets/m/data").await,
        etag_of("/v1/datasets/m/data?slice=1:").await,
        etag_of("/v1/datasets/m/data?slice=1:&format=csv").await,
        etag_of("/v1/datasets/m/data?slice=1:&format=bin").await,
        etag_of("/v1/datasets/m/data?slice=1:&nonfinite=string").await,
        etag_of("/v1/datasets/sub.v/data").await,
        etag_of("/v1/datasets/m/raw").await,
    ];
    for (i, a) in tags.iter().enumerate() {
        assert!(a.starts_with('"'), "{a}");
        for b in &tags[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(etag_of("/v1/datasets/m/data").await, tags[0]);

    let url = format!("{}/v1/datasets/m/data?slice=1:&format=csv", app.base);
    let resp = app
        .client
        .get(&url)
        .header(IF_NONE_MATCH, &tags[2])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert_eq!(header(&resp, ETAG), tags[2]);
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = app
        .client
        .head(&url)
        .header(IF_NONE_MATCH, &tags[2])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);

    // Negotiated answers say that they vary with Accept.
    let resp = app.get("/v1/datasets/m/data").await;
    assert_eq!(header(&resp, "vary"), "accept");
}

#[tokio::test]
async fn etags_change_with_the_file() {
    let dir = fixtures();
    let path = dir.path().join("m.npy");
    set_mtime(&path, SystemTime::now() - Duration::from_secs(7200));
    let before = spawn_app(dir.path()).await;
    let raw_before = header(&before.get("/v1/datasets/m/raw").await, ETAG);
    let data_before = before.get("/v1/datasets/m/data").await;
    let (data_tag, data_lm) = (
        header(&data_before, ETAG),
        header(&data_before, LAST_MODIFIED),
    );

    // Same content, new mtime: a fresh server maps the file again.
    set_mtime(&path, SystemTime::now() - Duration::from_secs(60));
    let after = spawn_app(dir.path()).await;
    let raw_after = header(&after.get("/v1/datasets/m/raw").await, ETAG);
    let data_after = after.get("/v1/datasets/m/data").await;
    assert_ne!(raw_before, raw_after);
    assert_ne!(data_tag, header(&data_after, ETAG));
    assert_ne!(data_lm, header(&data_after, LAST_MODIFIED));

    // A file touched (or rewritten in place) under a running server changes its tags at once.
    set_mtime(&path, SystemTime::now() - Duration::from_secs(30));
    let touched = header(&after.get("/v1/datasets/m/raw").await, ETAG);
    assert_ne!(touched, raw_after);

    // The old tag no longer validates.
    let resp = after
        .client
        .get(format!("{}/v1/datasets/m/raw", after.base))
        .header(IF_NONE_MATCH, &raw_before)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Runs `tests/curl_raw.sh`: the real `curl -r` against the server, compared with the file.
#[tokio::test]
async fn curl_ranges_match_the_file() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.npy");
    write_npy(&file, "<u2", &[150_000], &pattern(300_000));
    let app = spawn_app_with(dir.path(), |c| c.chunk_bytes = 16 * 1024).await;
    let meta: Value = app.get("/v1/datasets/big").await.json().await.unwrap();
    let offset = meta["offset"].as_u64().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/curl_raw.sh");
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .arg(format!("{}/v1/datasets/big/raw", app.base))
        .arg(&file)
        .arg(offset.to_string())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

/// README "Limits and known gaps": a request for bytes a truncated file lost gets a clean 500 with the
/// JSON body, on the small (page-cache) path and on the streamed one alike, never a SIGBUS.
#[tokio::test]
async fn a_truncated_file_is_a_clean_500() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.npy");
    write_npy(&file, "|u1", &[300_000], &pattern(300_000));
    let app = spawn_app(dir.path()).await;
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(1000)
        .unwrap();
    // Bytes the file still holds are served.
    let resp = get_range(&app, "t", "bytes=0-99").await;
    assert_eq!(resp.status(), 206);
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        &pattern(300_000)[..100]
    );
    for range in ["bytes=200000-200099", "bytes=0-"] {
        let resp = get_range(&app, "t", range).await;
        assert_eq!(resp.status(), 500, "{range}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "data_unreadable");
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
}
