//! Tokens, CORS and compression (README "Deploying").

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::helpers::{fixtures, spawn_app_with};

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

#[tokio::test]
async fn the_read_token_guards_v1_and_nothing_else() {
    let dir = fixtures();
    let app = spawn_app_with(dir.path(), |c| {
        c.read_token = Some("s3cret-read".into());
        c.admin_token = Some("s3cret-admin".into());
    })
    .await;
    let url = format!("{}/v1/datasets/m/data", app.base);

    let missing = app.client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let challenge = missing.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let wrong = app
        .client
        .get(&url)
        .header("authorization", bearer("s3cret-reaX"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let text = wrong.text().await.unwrap();
    assert!(!text.contains("s3cret"), "{text}");

    for token in ["s3cret-read", "s3cret-admin"] {
        let ok = app
            .client
            .get(&url)
            .header("authorization", bearer(token))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{token}");
    }
    // Open routes stay open.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.yaml"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    // The read token is not an admin token.
    let rescan = app
        .client
        .post(format!("{}/v1/admin/rescan", app.base))
        .header("authorization", bearer("s3cret-read"))
        .send()
        .await
        .unwrap();
    assert_eq!(rescan.status(), 403);
}

#[tokio::test]
async fn without_an_admin_token_admin_calls_are_403() {
    let dir = fixtures();
    let app = spawn_app_with(dir.path(), |_| {}).await;
    let resp = app
        .client
        .post(format!("{}/v1/datasets", app.base))
        .header("content-type", "application/json")
        .body(r#"{"name": "x", "file": "m.npy"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    // Any other method on a read route is still told as a wrong method.
    let put = app
        .client
        .put(format!("{}/v1/datasets/m", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
}

#[tokio::test]
async fn token_files_are_read_and_bad_ones_refused() {
    let dir = fixtures();
    let secrets = tempfile::tempdir().unwrap();
    let good = secrets.path().join("read");
    std::fs::write(&good, "from-a-file\n").unwrap();
    let app = spawn_app_with(dir.path(), |c| c.read_token_file = Some(good.clone())).await;
    let ok = app
        .client
        .get(format!("{}/v1/datasets", app.base))
        .header("authorization", bearer("from-a-file"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    for bad in ["", "two\nlines\n", "has space"] {
        let path = secrets.path().join("bad");
        std::fs::write(&path, bad).unwrap();
        let mut config = arrayd::config::Config::for_data_dir(dir.path());
        config.read_token_file = Some(path);
        let err = arrayd::server::Server::bind(config).expect_err(bad);
        // The error says what is wrong, never what the file holds.
        let text = err.to_string();
        assert!(text.contains("token"), "{text}");
        assert!(bad.is_empty() || !text.contains(bad.trim()), "{text}");
    }
}

#[tokio::test]
async fn preflights_need_no_token_and_answers_carry_cors_headers() {
    let dir = fixtures();
    let app = spawn_app_with(dir.path(), |c| {
        c.read_token = Some("t".into());
        c.cors_origin = vec!["https://dash.example.org".into()];
    })
    .await;
    let pre = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/datasets/m/raw", app.base),
        )
        .header("origin", "https://dash.example.org")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization, range")
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    let h = pre.headers();
    assert_eq!(h["access-control-allow-origin"], "https://dash.example.org");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    for m in ["GET", "HEAD", "POST", "DELETE", "OPTIONS"] {
        assert!(methods.contains(m), "{methods}");
    }
    let allowed = h["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("authorization") && allowed.contains("range"));
    assert!(h["vary"].to_str().unwrap().contains("origin"));

    // A real call from that origin, even a 401, can be read by the page.
    let resp = app
        .client
        .get(format!("{}/v1/datasets/m/raw", app.base))
        .header("origin", "https://dash.example.org")
        .header("authorization", "Bearer t")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let exposed = resp.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    for name in ["content-range", "content-length", "etag", "accept-ranges"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    // Another origin is not allowed.
    let other = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

/// JSON and CSV are compressed with what the client accepts; bin and /raw never are.
#[tokio::test]
async fn json_and_csv_are_compressed_bin_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let n = 4096u64;
    crate::helpers::write_npy(
        &dir.path().join("big.npy"),
        "<f4",
        &[n],
        &crate::helpers::f32_bytes((0..n).map(|i| i as f32)),
    );
    let app = spawn_app_with(dir.path(), |_| {}).await;
    let plain = app
        .get("/v1/datasets/big/data?format=json")
        .await
        .bytes()
        .await
        .unwrap();
    for coding in ["gzip", "br", "zstd"] {
        for (format, compressed) in [("json", true), ("csv", true), ("bin", false)] {
            let mut headers = HeaderMap::new();
            headers.insert("accept-encoding", HeaderValue::from_static(coding));
            let resp = app
                .client
                .get(format!("{}/v1/datasets/big/data?format={format}", app.base))
                .headers(headers)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let got = resp
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_owned());
            if compressed {
                assert_eq!(got.as_deref(), Some(coding), "{format}");
                let body = resp.bytes().await.unwrap();
                if format == "json" {
                    assert!(body.len() < plain.len() / 2, "{coding}: {}", body.len());
                    if coding == "gzip" {
                        let mut text = String::new();
                        std::io::Read::read_to_string(
                            &mut flate2::read::GzDecoder::new(&body[..]),
                            &mut text,
                        )
                        .unwrap();
                        assert_eq!(text.as_bytes(), &plain[..]);
                    }
                }
            } else {
                assert_eq!(got, None, "{format} {coding}");
                assert_eq!(resp.bytes().await.unwrap().len() as u64, n * 4);
            }
        }
    }
}
