//! The NumPy cross-check: fixtures written by NumPy, random selections of every dtype and
//! order, compared in all four formats against NumPy's own `a[sel]`.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use crate::helpers::spawn_app;

/// The project's venv python (created on first use by `scripts/venv`).
pub(crate) async fn python() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/venv"))
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("run scripts/venv");
    assert!(out.status.success(), "scripts/venv failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs a script under `tests/python/` and fails the test if it fails.
pub(crate) async fn run_script(python: &str, script: &str, args: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(python)
        .arg(root.join("tests/python").join(script))
        .args(args)
        .status()
        .await
        .expect("run python");
    assert!(status.success(), "{script} {args:?} failed");
}

/// Writes NumPy's fixtures with `seed`, serves them, and runs `checker` against the server.
async fn check_against_numpy(checker: &str, seed: &str) {
    let python = python().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    run_script(&python, "make_fixtures.py", &[data, "--seed", seed]).await;
    let app = spawn_app(Path::new(data)).await;
    run_script(&python, checker, &[&app.base, data, "--seed", seed]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_selection_matches_numpy_in_every_format() {
    check_against_numpy("check_data.py", "7").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_match_numpy() {
    check_against_numpy("check_stats.py", "11").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_float16_is_written_as_numpy_writes_it() {
    let python = python().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    run_script(&python, "check_f16_text.py", &["write", data]).await;
    let app = spawn_app(dir.path()).await;
    run_script(&python, "check_f16_text.py", &["check", &app.base]).await;
}
