//! Rescans: `POST /v1/admin/rescan`, SIGHUP's `Signal::Rescan`, and what they change.

use std::time::{Duration, Instant};

use arrayd::server::Signal;
use serde_json::Value;

use crate::helpers::{f32_bytes, fixtures, spawn_app_with, write_npy, TestApp};

async fn app_over(dir: &std::path::Path) -> TestApp {
    spawn_app_with(dir, |c| c.admin_token = Some("adm".into())).await
}

async fn rescan(app: &TestApp) -> Value {
    let response = app
        .client
        .post(format!("{}/v1/admin/rescan", app.base))
        .header("Authorization", "Bearer adm")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn data(app: &TestApp, name: &str) -> (u16, Value) {
    let response = app.get(&format!("/v1/datasets/{name}/data")).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_new_file_appears_and_a_removed_one_goes() {
    let dir = fixtures();
    let app = app_over(dir.path()).await;
    assert_eq!(data(&app, "n").await.0, 404);
    write_npy(
        &dir.path().join("n.npy"),
        "<f4",
        &[2],
        &f32_bytes([1.0, 2.0]),
    );
    std::fs::remove_file(dir.path().join("m.npy")).unwrap();
    let report = rescan(&app).await;
    assert_eq!(report["added"], serde_json::json!(["n"]), "{report}");
    assert_eq!(report["removed"], serde_json::json!(["m"]), "{report}");
    assert_eq!(data(&app, "n").await, (200, serde_json::json!([1.0, 2.0])));
    assert_eq!(data(&app, "m").await.0, 404);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("arrayd_rescans_total 1"), "{metrics}");
}

#[tokio::test]
async fn the_rescan_needs_the_admin_token() {
    let dir = fixtures();
    let app = app_over(dir.path()).await;
    let response = app
        .client
        .post(format!("{}/v1/admin/rescan", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_file_replaced_by_rename_or_rewritten_in_place_is_remapped() {
    let dir = fixtures();
    let app = app_over(dir.path()).await;
    let tmp = dir.path().join("m.tmp");
    write_npy(&tmp, "<f4", &[2], &f32_bytes([7.0, 8.0]));
    std::fs::rename(&tmp, dir.path().join("m.npy")).unwrap();
    let report = rescan(&app).await;
    assert_eq!(report["remapped"], serde_json::json!(["m"]), "{report}");
    assert_eq!(data(&app, "m").await, (200, serde_json::json!([7.0, 8.0])));
    // In place, another size: same inode, new length.
    write_npy(
        &dir.path().join("m.npy"),
        "<f4",
        &[3],
        &f32_bytes([1.0, 2.0, 3.0]),
    );
    let report = rescan(&app).await;
    assert_eq!(report["remapped"], serde_json::json!(["m"]), "{report}");
    assert_eq!(
        data(&app, "m").await,
        (200, serde_json::json!([1.0, 2.0, 3.0]))
    );
    // Nothing changed: nothing re-mapped.
    let report = rescan(&app).await;
    assert_eq!(report["remapped"], serde_json::json!([]), "{report}");
}

#[tokio::test]
async fn sighup_rescans() {
    let dir = fixtures();
    let app = app_over(dir.path()).await;
    write_npy(&dir.path().join("h.npy"), "<f4", &[1], &f32_bytes([5.0]));
    app.signals.send(Signal::Rescan).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while data(&app, "h").await.0 != 200 {
        assert!(Instant::now() < deadline, "SIGHUP did not rescan");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.state.registry.rescans() >= 1);
}

/// Elements of the streamed file: 4 MiB of `<f4`.
const BIG: usize = 1 << 20;

/// 50 streams from a file replaced by rename and rescanned under them all end whole with the
/// old bytes; a request after the rescan reads the new file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_in_flight_keep_their_map_across_a_rescan() {
    let dir = fixtures();
    let old = f32_bytes((0..BIG).map(|i| i as f32));
    let new = f32_bytes((0..BIG).map(|i| -(i as f32)));
    write_npy(&dir.path().join("big.npy"), "<f4", &[BIG as u64], &old);
    let app = spawn_app_with(dir.path(), |c| {
        c.admin_token = Some("adm".into());
        c.chunk_bytes = 1 << 16;
    })
    .await;
    let url = format!("{}/v1/datasets/big/data?format=bin", app.base);
    let mut streams = Vec::new();
    for _ in 0..50 {
        let mut response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        // One chunk read: the stream has started on the old map.
        let first = response.chunk().await.unwrap().unwrap().to_vec();
        streams.push((response, first));
    }
    let tmp = dir.path().join("big.tmp");
    write_npy(&tmp, "<f4", &[BIG as u64], &new);
    std::fs::rename(&tmp, dir.path().join("big.npy")).unwrap();
    let report = rescan(&app).await;
    assert_eq!(report["remapped"], serde_json::json!(["big"]), "{report}");
    let fresh = app.get("/v1/datasets/big/data?format=bin").await;
    assert_eq!(fresh.bytes().await.unwrap().as_ref(), new.as_slice());
    let readers = streams.into_iter().map(|(mut response, mut body)| {
        tokio::spawn(async move {
            while let Some(chunk) = response.chunk().await.unwrap() {
                body.extend_from_slice(&chunk);
                // Slow readers.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            body
        })
    });
    for reader in readers.collect::<Vec<_>>() {
        let body = reader.await.unwrap();
        assert!(
            body == old,
            "a stream in flight did not end whole with the old bytes"
        );
    }
}

/// A dataset whose file no longer validates (truncated in place) is dropped by a rescan and
/// comes back, re-mapped, once the file is whole again.
#[tokio::test]
async fn a_truncated_file_is_dropped_and_comes_back_when_restored() {
    let dir = fixtures();
    let app = app_over(dir.path()).await;
    let path = dir.path().join("m.npy");
    let whole = std::fs::read(&path).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(whole.len() as u64 - 8).unwrap();
    let report = rescan(&app).await;
    assert_eq!(report["removed"], serde_json::json!(["m"]), "{report}");
    assert_eq!(data(&app, "m").await.0, 404);
    std::fs::write(&path, &whole).unwrap();
    let report = rescan(&app).await;
    assert_eq!(report["added"], serde_json::json!(["m"]), "{report}");
    assert_eq!(data(&app, "m").await.0, 200);
}

/// A map poisoned by a truncation under a stream (as in `reliability.rs`) heals: once the
/// file is whole again a rescan re-maps it and `/data` answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_dataset_heals_on_a_rescan() {
    const SIDE: u64 = 8192;
    for _attempt in 0..20 {
        let dir = fixtures();
        let path = dir.path().join("big.npy");
        let header =
            arrayd::npy::write_header(arrayd::dtype::DType::parse("<f4").unwrap(), &[SIDE, SIDE]);
        std::fs::write(&path, &header).unwrap();
        let full = header.len() as u64 + SIDE * SIDE * 4;
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(full).unwrap();
        let app = spawn_app_with(dir.path(), |c| {
            c.chunk_bytes = 1 << 20;
            c.admin_token = Some("adm".into());
        })
        .await;
        let mut response = app.get("/v1/datasets/big/data?slice=:,::2").await;
        let mut received = 0usize;
        let mut truncated = false;
        while let Ok(Some(chunk)) = response.chunk().await {
            received += chunk.len();
            if !truncated && received >= (4 << 20) {
                file.set_len(4 << 20).unwrap();
                truncated = true;
            }
        }
        if !app.state.dataset("big").unwrap().poisoned() {
            continue;
        }
        assert_eq!(
            app.get("/v1/datasets/big/data?slice=:4,:4").await.status(),
            500
        );
        // Whole again (zeros, sparse), then rescanned.
        file.set_len(full).unwrap();
        let report = rescan(&app).await;
        assert_eq!(report["remapped"], serde_json::json!(["big"]), "{report}");
        assert!(!app.state.dataset("big").unwrap().poisoned());
        let healed = app.get("/v1/datasets/big/data?slice=:2,:2").await;
        assert_eq!(healed.status(), 200);
        let body: Value = healed.json().await.unwrap();
        assert_eq!(body, serde_json::json!([[0.0, 0.0], [0.0, 0.0]]));
        return;
    }
    panic!("no truncation landed inside a chunk");
}
