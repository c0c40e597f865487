use serde_json::{json, Value};

use crate::helpers::{fixtures, spawn_app, write_npy};

#[tokio::test]
async fn lists_every_dataset_with_meta() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let body: Value = app.get("/v1/datasets").await.json().await.unwrap();
    let names: Vec<&str> = body["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["e", "m", "raw", "sub.v"]);

    let raw: Value = app.get("/v1/datasets/raw").await.json().await.unwrap();
    assert_eq!(
        raw,
        json!({"name": "raw", "dtype": "<u2", "shape": [2, 3], "order": "F", "itemsize": 2,
               "nbytes": 12, "file": "raw.u2", "offset": 3})
    );
    let m: Value = app.get("/v1/datasets/sub.v").await.json().await.unwrap();
    assert_eq!(m["file"], "sub/v.npy");
    assert_eq!(m["offset"], 128);
}

#[tokio::test]
async fn bad_files_are_skipped_and_the_server_starts() {
    let dir = fixtures();
    let root = dir.path();
    // Truncated: header says 12 floats, file holds 2.
    write_npy(&root.join("short.npy"), "<f4", &[12], &[0; 8]);
    // Unsupported dtype and garbage.
    write_npy(&root.join("strings.npy"), "<i4", &[1], &[0; 4]);
    let text = std::fs::read(root.join("strings.npy")).unwrap();
    let text = String::from_utf8_lossy(&text)
        .replace("'<i4'", "'<U1'")
        .into_bytes();
    std::fs::write(root.join("strings.npy"), text).unwrap();
    std::fs::write(root.join("garbage.npy"), b"not an npy file").unwrap();
    // Descriptors: past the end, outside the data dir, bad JSON.
    std::fs::write(root.join("big.bin"), [0u8; 10]).unwrap();
    std::fs::write(
        root.join("big.array.json"),
        r#"{"file":"big.bin","dtype":"<f8","shape":[2]}"#,
    )
    .unwrap();
    std::fs::write(
        root.join("out.array.json"),
        r#"{"file":"../../../../etc/passwd","dtype":"|u1","shape":[1]}"#,
    )
    .unwrap();
    std::fs::write(root.join("json.array.json"), "{").unwrap();
    // A name that cannot be a dataset name, and a clash with `m`.
    write_npy(&root.join("bad name.npy"), "<f4", &[1], &[0; 4]);
    std::fs::write(
        root.join("m.array.json"),
        r#"{"file":"big.bin","dtype":"|u1","shape":[2]}"#,
    )
    .unwrap();

    let app = spawn_app(root).await;
    let mut skipped: Vec<&str> = app.skipped.iter().map(|(p, _)| p.as_str()).collect();
    skipped.sort_unstable();
    assert_eq!(
        skipped,
        [
            "bad name.npy",
            "big.array.json",
            "garbage.npy",
            "json.array.json",
            "m.npy",
            "out.array.json",
            "short.npy",
            "strings.npy"
        ],
        "{:#?}",
        app.skipped
    );
    for (path, reason) in &app.skipped {
        assert!(
            !reason.contains("/tmp"),
            "{path}: reason leaks a host path: {reason}"
        );
    }
    let body: Value = app.get("/v1/datasets").await.json().await.unwrap();
    assert_eq!(body["datasets"].as_array().unwrap().len(), 4);
    assert_eq!(
        app.get("/healthz").await.text().await.unwrap(),
        r#"{"status":"ok"}"#
    );
}

#[tokio::test]
async fn unknown_dataset_is_a_json_404() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    for path in [
        "/v1/datasets/nope",
        "/v1/datasets/nope/data",
        "/v1/datasets/..%2Fetc/data",
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unknown_dataset", "{path}");
    }
}

#[tokio::test]
async fn unknown_route_and_method_are_json_errors() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let resp = app.get("/nope").await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let resp = app
        .client
        .put(format!("{}/v1/datasets/m/data", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}
