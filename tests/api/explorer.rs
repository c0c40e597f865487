//! The explorer page: its files as HTTP serves them, and the page itself in headless Chromium
//! (Debian's `chromium` and `chromium-driver`, installed by `scripts/chromium`) driven by
//! Selenium from the project's venv (`tests/python/check_explorer.py`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::helpers::{sample_data, spawn_app, spawn_app_with};
use crate::numpy::{python, run_script};

/// Every file the page loads, with its type.
const ASSETS: &[(&str, &str)] = &[
    ("/", "text/html; charset=utf-8"),
    ("/explorer/app.js", "text/javascript; charset=utf-8"),
    ("/explorer/api.js", "text/javascript; charset=utf-8"),
    ("/explorer/selection.js", "text/javascript; charset=utf-8"),
    ("/explorer/decode.js", "text/javascript; charset=utf-8"),
    ("/explorer/linechart.js", "text/javascript; charset=utf-8"),
    ("/explorer/heatmap.js", "text/javascript; charset=utf-8"),
    ("/explorer/histogram.js", "text/javascript; charset=utf-8"),
    ("/explorer/axes.js", "text/javascript; charset=utf-8"),
    ("/explorer/style.css", "text/css; charset=utf-8"),
    ("/explorer/icon.svg", "image/svg+xml"),
];

#[tokio::test]
async fn page_and_assets_are_served_with_type_validators_and_policy() {
    let app = spawn_app(&sample_data()).await;
    for (path, content_type) in ASSETS {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let head = resp.headers().clone();
        assert_eq!(head["content-type"], *content_type, "{path}");
        assert_eq!(head["cache-control"], "no-cache", "{path}");
        assert_eq!(head["x-content-type-options"], "nosniff", "{path}");
        let csp = head["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
        let etag = head["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"'), "{path}: weak or bare tag {etag}");
        let body = resp.bytes().await.unwrap();
        assert!(!body.is_empty(), "{path}");
        // Nothing is fetched from elsewhere.
        let text = String::from_utf8_lossy(&body);
        // (The SVG's XML namespace is a name, not a fetch.)
        let own = text.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !own.contains("http://") && !own.contains("https://"),
            "{path} names another origin"
        );
        let again = app
            .client
            .get(format!("{}{path}", app.base))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        let head_only = app
            .client
            .head(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(head_only.status(), 200, "HEAD {path}");
    }
    let missing = app.get("/explorer/nope.js").await;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    // The routes that were there before the page still answer as they did.
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/nope").await.status(), 404);
    assert_eq!(app.get("/v1/datasets/signal").await.status(), 200);
}

#[tokio::test]
async fn with_a_read_token_the_page_is_open_and_the_api_is_not() {
    let app = spawn_app_with(&sample_data(), |c| c.read_token = Some("s3cret".into())).await;
    for (path, _) in ASSETS {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    assert_eq!(app.get("/v1/datasets").await.status(), 401);
}

/// A `.npy` of `n` float32 elements, sparse but for a few written stretches (a sine, spikes
/// and steps), so the chart has something to show.
fn big_series(path: &Path, n: u64) {
    let header = arrayd::npy::write_header(arrayd::dtype::DType::parse("<f4").unwrap(), &[n]);
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&header).unwrap();
    file.set_len(header.len() as u64 + 4 * n).unwrap();
    let stretch = 65_536_u64;
    for k in 0..64_u64 {
        let at = k * (n / 64);
        let values = (0..stretch).map(|i| {
            let t = (at + i) as f32;
            (k as f32 * 0.25) + (t * 1e-3).sin() * (1.0 + (k % 7) as f32)
        });
        let bytes = crate::helpers::f32_bytes(values);
        std::io::Seek::seek(
            &mut file,
            std::io::SeekFrom::Start(header.len() as u64 + 4 * at),
        )
        .unwrap();
        file.write_all(&bytes).unwrap();
    }
}

/// Paths of Chromium and its driver, installed by `scripts/chromium` when missing.
async fn chromium() -> (String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/chromium"))
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("run scripts/chromium");
    assert!(
        out.status.success(),
        "scripts/chromium could not install chromium and chromium-driver"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let browser = lines.next().expect("browser path").to_owned();
    let driver = lines.next().expect("driver path").to_owned();
    (browser, driver)
}

/// Where the browser test leaves its screenshots.
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("explorer-screenshots")
}

/// The page in a real browser against four servers: the sample data, the same behind a read
/// token, NumPy's fixtures of every dtype, and a 10^8-element float32 series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_in_headless_chromium() {
    let (browser, driver) = chromium().await;
    let python = python().await;
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures");
    let fixtures = fixtures.to_str().unwrap();
    run_script(&python, "make_fixtures.py", &[fixtures, "--seed", "5"]).await;
    let big_dir = dir.path().join("big");
    std::fs::create_dir_all(&big_dir).unwrap();
    big_series(&big_dir.join("series.npy"), 100_000_000);

    let sample = spawn_app(&sample_data()).await;
    let token = spawn_app_with(&sample_data(), |c| c.read_token = Some("tok-3x".into())).await;
    let fixtures_app = spawn_app(Path::new(fixtures)).await;
    let big = spawn_app(&big_dir).await;
    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    println!("explorer screenshots: {}", shots.display());
    run_script(
        &python,
        "check_explorer.py",
        &[
            "--chromium",
            &browser,
            "--chromedriver",
            &driver,
            "--screenshots",
            shots.to_str().unwrap(),
            "--sample",
            &sample.base,
            "--token",
            &token.base,
            "--read-token",
            "tok-3x",
            "--fixtures",
            &fixtures_app.base,
            "--fixtures-dir",
            fixtures,
            "--big",
            &big.base,
            "--big-name",
            "series",
            "--build",
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        ],
    )
    .await;
}
