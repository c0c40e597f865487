//! `arrayd convert`, `info` and `check`, run as the real binary: NumPy's `loadtxt` as ground
//! truth (tests/python/check_convert.py), Ctrl-C in the middle, and the exit statuses a
//! deployment relies on.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrayd::config::{Cli, Command as Sub};
use clap::Parser;

const BIN: &str = env!("CARGO_BIN_EXE_arrayd");

fn venv_python() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/venv"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/venv");
    assert!(out.status.success(), "scripts/venv failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn arrayd(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("run arrayd")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn conversions_equal_numpy_loadtxt() {
    let python = venv_python();
    let work = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_convert.py");
    let status = Command::new(python)
        .arg(script)
        .arg(BIN)
        .arg(work.path())
        .args(["--seed", "3"])
        .status()
        .expect("run check_convert.py");
    assert!(status.success(), "check_convert.py failed");
}

#[test]
fn converted_file_is_served_and_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, "# x,y\n1,2\n3,4\n5,6\n").unwrap();
    let out = dir.path().join("t.npy");
    let run = arrayd(&[
        "convert",
        csv.to_str().unwrap(),
        out.to_str().unwrap(),
        "--dtype",
        "i2",
        "--delimiter",
        ",",
    ]);
    assert!(run.status.success(), "{run:?}");
    // Standard error is a pipe here: the summary line and no progress bar.
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("shape (3, 2)") && stderr.contains("3 rows"),
        "{stderr}"
    );
    let bytes = std::fs::read(&out).unwrap();
    let header = arrayd::npy::parse_header(&bytes).unwrap();
    assert_eq!(header.shape, [3, 2]);
    assert_eq!(header.dtype.descr(), "<i2");
    let data = &bytes[usize::try_from(header.data_offset).unwrap()..];
    let values: Vec<i16> = data
        .chunks(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(values, [1, 2, 3, 4, 5, 6]);
    assert_eq!(names(dir.path()), ["t.csv", "t.npy"]);
}

#[test]
fn ctrl_c_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.npy");
    let mut child = Command::new(BIN)
        .args(["convert", "-", out.to_str().unwrap(), "--dtype", "f4"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Several blocks' worth, then the pipe stays open: the conversion is in progress.
    let rows = "1.5 2.5 3.5 4.5\n".repeat(200_000);
    stdin.write_all(rows.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !names(dir.path()).iter().any(|n| n.ends_with(".tmp")) {
        assert!(Instant::now() < deadline, "no temporary file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

#[test]
fn a_failed_conversion_keeps_the_old_output() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.txt");
    std::fs::write(&csv, "1 2\n3 x\n").unwrap();
    let out = dir.path().join("t.npy");
    std::fs::write(&out, b"previous").unwrap();
    let run = arrayd(&["convert", csv.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.contains("line 2, column 2: \"x\""), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
    assert_eq!(names(dir.path()), ["t.npy", "t.txt"]);
}

#[test]
fn info_and_check_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    let csv = dir.path().join("v.txt");
    std::fs::write(&csv, "1\n2\n3\n").unwrap();
    let good = data.join("sub/v.npy");
    let run = arrayd(&[
        "convert",
        csv.to_str().unwrap(),
        good.to_str().unwrap(),
        "--dtype",
        "u8",
    ]);
    assert!(run.status.success(), "{run:?}");
    let state = dir.path().join("state");
    let data_s = data.to_str().unwrap();
    let state_s = state.to_str().unwrap();

    let info = arrayd(&["info", good.to_str().unwrap(), "--data-dir", data_s]);
    assert!(info.status.success(), "{info:?}");
    let meta: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(meta["name"], "sub.v");
    assert_eq!(meta["dtype"], "<u8");
    assert_eq!(meta["shape"], serde_json::json!([3]));
    assert_eq!(meta["offset"], 128);

    let check = arrayd(&["check", data_s, "--state-dir", state_s]);
    assert!(check.status.success(), "{check:?}");
    let text = String::from_utf8(check.stdout).unwrap();
    assert!(text.contains("serve sub.v"), "{text}");

    // A truncated .npy: info and check both say why, with status 1.
    let bytes = std::fs::read(&good).unwrap();
    let bad = data.join("cut.npy");
    std::fs::write(&bad, &bytes[..bytes.len() - 4]).unwrap();
    let info = arrayd(&["info", bad.to_str().unwrap()]);
    assert_eq!(info.status.code(), Some(1));
    assert!(String::from_utf8(info.stderr)
        .unwrap()
        .contains("needs 24 bytes"));
    let check = arrayd(&["check", data_s, "--state-dir", state_s, "--json"]);
    assert_eq!(check.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(report["datasets"][0]["name"], "sub.v");
    assert_eq!(report["skipped"][0]["path"], "cut.npy");
    assert!(report["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("file has 148"));

    // Not a dataset file at all; a data directory that is not there.
    let info = arrayd(&["info", csv.to_str().unwrap()]);
    assert_eq!(info.status.code(), Some(1));
    let check = arrayd(&["check", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8(check.stderr)
        .unwrap()
        .contains("cannot scan"));
}

#[test]
fn no_subcommand_still_means_serve() {
    let cli = Cli::try_parse_from(["arrayd", "--listen", "127.0.0.1:9"]).unwrap();
    assert!(cli.command.is_none());
    assert_eq!(cli.serve.listen.port(), 9);
    let cli = Cli::try_parse_from(["arrayd", "serve", "--data-dir", "/d"]).unwrap();
    assert!(matches!(cli.command, Some(Sub::Serve(c)) if c.data_dir == Path::new("/d")));
    let cli = Cli::try_parse_from([
        "arrayd",
        "convert",
        "in.csv",
        "out.npy",
        "--dtype",
        ">f4",
        "--usecols=0,-1",
        "--delimiter",
        "\\t",
    ])
    .unwrap();
    let Some(Sub::Convert(args)) = cli.command else {
        panic!("not convert")
    };
    assert_eq!(args.dtype.descr(), ">f4");
    assert_eq!(args.usecols, Some(vec![0, -1]));
    assert_eq!(args.delimiter, Some(b'\t'));
    assert!(Cli::try_parse_from(["arrayd", "convert", "a", "b", "--dtype", "f3"]).is_err());
}
