//! `/stats`, `/histogram`, `/downsample`: answers on small fixtures, error codes, liveness of
//! `/healthz` during large reductions, and cancellation when the client goes away.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{fixtures, spawn_app, write_npy};

async fn get_json(app: &crate::helpers::TestApp, path: &str) -> (u16, Value) {
    let r = app.get(path).await;
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "{path}: {ct}");
    (status, r.json().await.unwrap())
}

/// A NaN result is `"NaN"` with `nonfinite=string` for every op and dtype, the 0-d float16
/// case included (its `mean` once came out `null`).
#[tokio::test]
async fn nan_results_are_nan_strings_for_a_0d_float16() {
    let dir = tempfile::tempdir().unwrap();
    let nan16 = 0x7e00u16.to_le_bytes();
    write_npy(&dir.path().join("h0.npy"), "<f2", &[], &nan16);
    write_npy(&dir.path().join("h1.npy"), "<f2", &[1], &nan16);
    let app = spawn_app(dir.path()).await;
    for name in ["h0", "h1"] {
        let path =
            format!("/v1/datasets/{name}/stats?ops=mean,std,var,sum,min,max&nonfinite=string");
        let (status, body) = get_json(&app, &path).await;
        assert_eq!(status, 200, "{path}");
        for op in ["mean", "std", "var", "sum", "min", "max"] {
            assert_eq!(body[op], json!("NaN"), "{path}: {op} in {body}");
        }
    }
}

#[tokio::test]
async fn stats_of_a_small_matrix() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let (status, body) = get_json(&app, "/v1/datasets/m/stats").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"count": 12, "sum": 66.0, "mean": 5.5, "min": 0.0, "max": 11.0,
               "std": 3.452052529534663, "var": 11.916666666666666})
    );
    let (_, body) = get_json(&app, "/v1/datasets/m/stats?ops=sum,max&axis=0").await;
    assert_eq!(
        body,
        json!({"sum": [12.0, 15.0, 18.0, 21.0], "max": [8.0, 9.0, 10.0, 11.0]})
    );
    let (_, body) = get_json(&app, "/v1/datasets/m/stats?ops=mean&axis=-1&slice=::2,1:").await;
    assert_eq!(body, json!({"mean": [2.0, 10.0]}));
    let (_, body) = get_json(&app, "/v1/datasets/m/stats?ops=var&ddof=1&slice=0").await;
    assert_eq!(body, json!({"var": 1.6666666666666667}));
    // Integers: exact integer literals.
    let (_, body) = get_json(&app, "/v1/datasets/sub.v/stats?ops=sum,min,max,count").await;
    assert_eq!(body, json!({"sum": 0, "min": -2, "max": 2, "count": 5}));
    // Empty selection; `e` is (0, 3).
    let (_, body) = get_json(&app, "/v1/datasets/e/stats?ops=count,sum,min").await;
    assert_eq!(body, json!({"count": 0, "sum": 0.0, "min": null}));
    let (_, body) = get_json(&app, "/v1/datasets/e/stats?ops=count,max&axis=0").await;
    assert_eq!(body, json!({"count": [0, 0, 0], "max": [null, null, null]}));
}

#[tokio::test]
async fn histogram_and_downsample() {
    let dir = fixtures();
    let app = spawn_app(dir.path()).await;
    let (status, body) = get_json(&app, "/v1/datasets/m/histogram?bins=4&range=0,8").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"edges": [0.0, 2.0, 4.0, 6.0, 8.0], "counts": [2, 2, 2, 3], "nan_count": 0})
    );
    let (_, body) = get_json(&app, "/v1/datasets/sub.v/downsample?buckets=2").await;
    assert_eq!(
        body,
        json!({"start": [0, 2], "first": [-2, 0], "last": [-1, 2], "min": [-2, 0],
               "max": [-1, 2], "argmin": [0, 2], "argmax": [1, 4]})
    );
    // More buckets than elements: one bucket per element.
    let (_, body) = get_json(&app, "/v1/datasets/m/downsample?slice=1&buckets=100").await;
    assert_eq!(body["start"], json!([0, 1, 2, 3]));
    assert_eq!(body["first"], json!([4.0, 5.0, 6.0, 7.0]));
}

#[tokio::test]
async fn bad_input_is_a_json_400_with_its_code() {
    let dir = fixtures();
    let c: Vec<u8> = (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect();
    write_npy(&dir.path().join("c.npy"), "<c8", &[4], &c);
    let app = spawn_app(dir.path()).await;
    for (path, code) in [
        ("m/stats?ops=sum,median", "bad_op"),
        ("m/stats?axis=2", "bad_axis"),
        ("m/stats?axis=-3", "bad_axis"),
        ("m/stats?ddof=-1", "bad_ddof"),
        ("m/stats?nan=drop", "bad_nan"),
        ("m/stats?slice=9", "index_out_of_range"),
        ("m/stats?nonfinite=maybe", "bad_query"),
        ("m/histogram?bins=0", "bad_bins"),
        ("m/histogram?bins=1000001", "bad_bins"),
        ("m/histogram?range=3,1", "bad_range"),
        ("m/histogram?range=0,inf", "bad_range"),
        ("m/downsample?buckets=10", "not_1d"),
        ("m/downsample?slice=0&buckets=0", "bad_buckets"),
        ("m/downsample?slice=0&buckets=1000001", "bad_buckets"),
        ("c/stats", "unsupported_dtype"),
        ("c/histogram", "unsupported_dtype"),
        ("c/downsample?buckets=3", "unsupported_dtype"),
    ] {
        let (status, body) = get_json(&app, &format!("/v1/datasets/{path}")).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }
    let (status, _) = get_json(&app, "/v1/datasets/nope/stats").await;
    assert_eq!(status, 404);
}

/// A sparse `.npy` of `n` float32 zeros (a hole: no disk, page-cache zero pages when read).
fn sparse_f32(path: &std::path::Path, n: u64) {
    write_npy(path, "<f4", &[n], &[]);
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let header = file.metadata().unwrap().len();
    file.set_len(header + 4 * n).unwrap();
}

/// Two reductions over 256 MiB each are in flight; `/healthz` must still answer about as fast as
/// it did before they started (a relative bound, since other tests share the machine), and once the clients go away both reductions stop (the cancel counter rises) well before
/// they would have finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_stays_live_and_disconnects_cancel() {
    let dir = tempfile::tempdir().unwrap();
    sparse_f32(&dir.path().join("big.npy"), 64 << 20);
    let app = spawn_app(dir.path()).await;
    let before = arrayd::reduce::cancelled_count();
    let mut baseline = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        assert_eq!(app.get("/healthz").await.status(), 200);
        baseline = baseline.max(t.elapsed());
    }
    // `axis=0` of a 1-d selection: one cell, one thread each, so both run at once.
    let url = format!("{}/v1/datasets/big/stats?ops=sum,var,min&axis=0", app.base);
    let started = Instant::now();
    let reductions: Vec<_> = (0..2)
        .map(|_| tokio::spawn(app.client.get(url.clone()).send()))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let r = app.get("/healthz").await;
        assert_eq!(r.status(), 200);
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        reductions.iter().all(|r| !r.is_finished()),
        "the reductions finished in {:?}, too fast for this test to mean anything",
        started.elapsed()
    );
    // A /healthz queued behind a reduction would wait for it: longer than the sampling above,
    // which the reductions outlast. Four times the unloaded worst plus 100 ms of slack for a
    // loaded machine is far below that and far above scheduling noise.
    let bound = baseline * 4 + Duration::from_millis(100);
    assert!(
        worst < bound,
        "/healthz took {worst:?} under load, {baseline:?} before it"
    );

    for r in &reductions {
        r.abort();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while arrayd::reduce::cancelled_count() < before + 2 {
        assert!(
            Instant::now() < deadline,
            "reductions did not stop after their clients left"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
