//! `POST /v1/datasets` and `DELETE /v1/datasets/{name}`: validation, confinement, clashes and
//! the state directory across restarts.

use std::path::Path;

use serde_json::{json, Value};

use crate::helpers::{f32_bytes, fixtures, spawn_app_with, TestApp};

async fn app(data: &Path, state: &Path) -> TestApp {
    let state = state.to_owned();
    spawn_app_with(data, move |c| {
        c.admin_token = Some("adm".into());
        c.state_dir = state;
    })
    .await
}

async fn post_raw(
    app: &TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/datasets", app.base))
        .bearer_auth("adm")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn post(app: &TestApp, body: &Value) -> reqwest::Response {
    post_raw(app, "application/json", body.to_string()).await
}

async fn delete(app: &TestApp, name: &str) -> reqwest::Response {
    app.client
        .delete(format!("{}/v1/datasets/{name}", app.base))
        .bearer_auth("adm")
        .send()
        .await
        .unwrap()
}

/// The status and error code of a refused call; its body must be the JSON error.
async fn refused(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_default();
    let code = body["error"]["code"].as_str();
    (
        status,
        code.unwrap_or_else(|| panic!("{status}: {text:.200}"))
            .to_owned(),
    )
}

/// `reg.bin`: 6 little-endian `<f4` values 0..6 after a 4-byte prefix (scan ignores it).
fn raw_file(root: &Path) {
    let mut bytes = vec![9u8; 4];
    bytes.extend(f32_bytes((0..6).map(|i| i as f32)));
    std::fs::write(root.join("reg.bin"), bytes).unwrap();
}

#[tokio::test]
async fn registers_raw_and_npy_files() {
    let dir = fixtures();
    raw_file(dir.path());
    let state = tempfile::tempdir().unwrap();
    let app = app(dir.path(), state.path()).await;

    let resp = post(
        &app,
        &json!({"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": [2, 3], "offset": 4,
                "dims": ["y", "x"], "attrs": {"units": "K"}}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["location"], "/v1/datasets/r");
    let meta: Value = resp.json().await.unwrap();
    assert_eq!(
        meta,
        json!({"name": "r", "dtype": "<f4", "shape": [2, 3], "order": "C", "itemsize": 4,
               "nbytes": 24, "file": "reg.bin", "offset": 4, "dims": ["y", "x"],
               "attrs": {"units": "K"}})
    );
    let got: Value = app.get("/v1/datasets/r").await.json().await.unwrap();
    assert_eq!(got, meta);
    let data = app.get("/v1/datasets/r/data").await.text().await.unwrap();
    assert_eq!(data, "[[0.0,1.0,2.0],[3.0,4.0,5.0]]");

    let resp = post(&app, &json!({"name": "m2", "file": "m.npy"})).await;
    assert_eq!(resp.status(), 201);
    let meta: Value = resp.json().await.unwrap();
    assert_eq!(meta["shape"], json!([3, 4]));
    assert!(meta.get("dims").is_none() && meta.get("attrs").is_none());
    let m2 = app.get("/v1/datasets/m2/data").await.text().await.unwrap();
    let m = app.get("/v1/datasets/m/data").await.text().await.unwrap();
    assert_eq!(m2, m);

    let saved = std::fs::read(state.path().join("datasets/r.json")).unwrap();
    let saved: Value = serde_json::from_slice(&saved).unwrap();
    assert_eq!(saved["file"], "reg.bin");
    assert_eq!(saved["offset"], 4);
}

#[tokio::test]
async fn bad_bodies_are_4xx_json() {
    let dir = fixtures();
    raw_file(dir.path());
    let state = tempfile::tempdir().unwrap();
    let app = app(dir.path(), state.path()).await;
    let good = r#"{"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": [6]}"#;

    let (status, code) = refused(post_raw(&app, "text/plain", good).await).await;
    assert_eq!((status, code.as_str()), (415, "unsupported_media_type"));
    let huge = format!(
        r#"{{"name": "r", "file": "reg.bin", "pad": "{}"}}"#,
        "x".repeat(70_000)
    );
    let (status, code) = refused(post_raw(&app, "application/json", huge).await).await;
    assert_eq!((status, code.as_str()), (413, "body_too_large"));

    let long_name = "a".repeat(300);
    let bad_bodies = [
        "{".to_owned(),
        "not json".to_owned(),
        r#"["r", "reg.bin", "<f4", [6]]"#.to_owned(),
        r#"{"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": [6], "color": 1}"#.to_owned(),
        r#"{"name": 1, "file": "reg.bin", "dtype": "<f4", "shape": [6]}"#.to_owned(),
        r#"{"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": "6"}"#.to_owned(),
        r#"{"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": [-1]}"#.to_owned(),
        r#"{"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": [9223372036854775808]}"#
            .to_owned(),
        r#"{"name": "r", "file": "reg.bin", "dtype": "<f8", "shape": [4294967296, 4294967296]}"#
            .to_owned(),
        r#"{"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": [6], "offset": 1000}"#
            .to_owned(),
        r#"{"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": [8]}"#.to_owned(),
        r#"{"name": "r", "file": "reg.bin", "dtype": "<U4", "shape": [6]}"#.to_owned(),
        r#"{"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": [6], "order": "Z"}"#
            .to_owned(),
        r#"{"name": "r", "file": "reg.bin", "shape": [6]}"#.to_owned(),
        r#"{"name": "r", "file": "m.npy", "dtype": "<f4"}"#.to_owned(),
        r#"{"name": "r", "file": "m.npy", "shape": [12]}"#.to_owned(),
        r#"{"name": "r", "file": "m.npy", "offset": 0}"#.to_owned(),
        r#"{"name": "a/b", "file": "m.npy"}"#.to_owned(),
        format!(r#"{{"name": "{long_name}", "file": "m.npy"}}"#),
        r#"{"name": "r", "file": "m.npy", "dims": ["y"]}"#.to_owned(),
        r#"{"name": "r", "file": "m.npy", "dims": ["y", "1x"]}"#.to_owned(),
        r#"{"name": "r", "file": "m.npy", "attrs": [1]}"#.to_owned(),
        format!(
            r#"{{"name": "r", "file": "m.npy", "attrs": {{"s": "{}"}}}}"#,
            "x".repeat(17_000)
        ),
        r#"{"name": "r", "file": "missing.bin", "dtype": "<f4", "shape": [6]}"#.to_owned(),
    ];
    for body in bad_bodies {
        let (status, code) = refused(post_raw(&app, "application/json", body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "bad_registration"),
            "{body:.200}"
        );
    }
    assert_eq!(app.get("/v1/datasets/r").await.status(), 404);
    // Nothing was saved for the refused bodies.
    assert!(!state.path().join("datasets/r.json").exists());
}

#[tokio::test]
async fn files_must_stay_inside_the_data_directory() {
    let outer = tempfile::tempdir().unwrap();
    let data = outer.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(outer.path().join("secret.bin"), [0u8; 64]).unwrap();
    std::os::unix::fs::symlink(outer.path().join("secret.bin"), data.join("out.bin")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", data.join("zero.bin")).unwrap();
    std::fs::create_dir(data.join("dir.bin")).unwrap();
    let fifo = data.join("fifo.bin");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let state = tempfile::tempdir().unwrap();
    let app = app(&data, state.path()).await;
    let secret = outer.path().join("secret.bin");
    for file in [
        "../secret.bin",
        "sub/../../secret.bin",
        secret.to_str().unwrap(),
        "out.bin",
        "zero.bin",
        "dir.bin",
        "fifo.bin",
        "/dev/zero",
    ] {
        let body = json!({"name": "x", "file": file, "dtype": "|u1", "shape": [8]});
        let (status, code) = refused(post(&app, &body).await).await;
        assert_eq!((status, code.as_str()), (400, "bad_registration"), "{file}");
    }
    let body: Value = app.get("/v1/datasets").await.json().await.unwrap();
    assert_eq!(body["datasets"], json!([]));
}

#[tokio::test]
async fn clashes_and_deletes() {
    let dir = fixtures();
    raw_file(dir.path());
    let state = tempfile::tempdir().unwrap();
    let app = app(dir.path(), state.path()).await;
    let reg = json!({"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": [6], "offset": 4});
    assert_eq!(post(&app, &reg).await.status(), 201);
    let (status, code) = refused(post(&app, &reg).await).await;
    assert_eq!((status, code.as_str()), (409, "conflict"));
    // A name of the data directory is taken too.
    let (status, code) = refused(post(&app, &json!({"name": "m", "file": "m.npy"})).await).await;
    assert_eq!((status, code.as_str()), (409, "conflict"));

    let (status, code) = refused(delete(&app, "m").await).await;
    assert_eq!((status, code.as_str()), (409, "conflict"));
    assert_eq!(app.get("/v1/datasets/m").await.status(), 200);
    let (status, code) = refused(delete(&app, "nope").await).await;
    assert_eq!((status, code.as_str()), (404, "unknown_dataset"));

    // What a request in flight holds stays readable after the delete.
    let held = app.state.registry.get("r").unwrap();
    let resp = delete(&app, "r").await;
    assert_eq!(resp.status(), 204);
    assert_eq!(held.view(held.offset, 8), &f32_bytes([0.0, 1.0])[..]);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert!(!state.path().join("datasets/r.json").exists());
    assert_eq!(app.get("/v1/datasets/r").await.status(), 404);
    let (status, code) = refused(delete(&app, "r").await).await;
    assert_eq!((status, code.as_str()), (404, "unknown_dataset"));
    // The name is free again.
    assert_eq!(post(&app, &reg).await.status(), 201);
}

#[tokio::test]
async fn registrations_survive_a_restart() {
    let dir = fixtures();
    raw_file(dir.path());
    let state = tempfile::tempdir().unwrap();
    let first = app(dir.path(), state.path()).await;
    let reg = json!({"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": [6], "offset": 4,
                     "attrs": {"a": [1, 2]}});
    assert_eq!(post(&first, &reg).await.status(), 201);
    let before: Value = first.get("/v1/datasets/r").await.json().await.unwrap();
    drop(first);

    let second = app(dir.path(), state.path()).await;
    let after: Value = second.get("/v1/datasets/r").await.json().await.unwrap();
    assert_eq!(after, before);
    // Still a registration: deletable, unlike the scanned datasets.
    assert_eq!(delete(&second, "r").await.status(), 204);
    drop(second);
    let third = app(dir.path(), state.path()).await;
    assert_eq!(third.get("/v1/datasets/r").await.status(), 404);
}

#[tokio::test]
async fn a_registration_whose_file_is_gone_is_kept_for_later() {
    let dir = fixtures();
    raw_file(dir.path());
    let state = tempfile::tempdir().unwrap();
    let first = app(dir.path(), state.path()).await;
    let reg = json!({"name": "r", "file": "reg.bin", "dtype": "<f4", "shape": [6], "offset": 4});
    assert_eq!(post(&first, &reg).await.status(), 201);
    drop(first);

    let bin = std::fs::read(dir.path().join("reg.bin")).unwrap();
    std::fs::remove_file(dir.path().join("reg.bin")).unwrap();
    // A corrupt file beside it is skipped as well, and the server starts.
    std::fs::write(state.path().join("datasets/junk.json"), "{").unwrap();
    let second = app(dir.path(), state.path()).await;
    assert_eq!(second.get("/v1/datasets/r").await.status(), 404);
    let skipped: Vec<&str> = second.skipped.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        skipped.iter().any(|p| p.ends_with("datasets/r.json")),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|p| p.ends_with("datasets/junk.json")),
        "{skipped:?}"
    );
    assert!(state.path().join("datasets/r.json").exists());
    drop(second);

    std::fs::write(dir.path().join("reg.bin"), bin).unwrap();
    let third = app(dir.path(), state.path()).await;
    let data = third.get("/v1/datasets/r/data").await.text().await.unwrap();
    assert_eq!(data, "[0.0,1.0,2.0,3.0,4.0,5.0]");
    assert!(state.path().join("datasets/junk.json").exists());
}
