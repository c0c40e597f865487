//! `arrayd info PATH` and `arrayd check DIR`: what the server would serve, found by the
//! server's own scan and validation code, without serving. Both report through an exit
//! status (0: everything would be served, 1: something would not), so a deployment can run
//! `check` before `serve`.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use crate::registry::Registry;

/// Writes to `out` the META a scan of `data_dir` would register for `path` (as
/// `GET /v1/datasets/{name}` would answer it) and returns true; or writes to `err` why the
/// file would be skipped or ignored, and returns false.
///
/// # Errors
/// Only a failed write to `out` or `err`.
pub fn info(
    path: &Path,
    data_dir: &Path,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<bool> {
    match Registry::inspect(data_dir, path) {
        Ok(Some(dataset)) => {
            let text =
                serde_json::to_string_pretty(&dataset.meta()).map_err(std::io::Error::other)?;
            writeln!(out, "{text}")?;
            Ok(true)
        }
        Ok(None) => {
            writeln!(
                err,
                "{}: not a dataset file (a scan serves *.npy and *.array.json)",
                path.display()
            )?;
            Ok(false)
        }
        Err(e) => {
            writeln!(err, "skipped: {e}")?;
            Ok(false)
        }
    }
}

/// Scans `data_dir` and the registrations saved in `state_dir` as `serve` does at start, and
/// writes what would be served and what skipped, with reasons: one line each, or one JSON
/// object (`{"datasets": [META...], "skipped": [{"path", "reason"}...]}`) when `as_json`.
/// Returns true when nothing would be skipped.
///
/// # Errors
/// Only a failed write to `out` or `err`; an unreadable data directory is reported on `err`
/// and returns false.
pub fn check(
    data_dir: &Path,
    state_dir: &Path,
    as_json: bool,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<bool> {
    let (registry, skipped) = match Registry::open(data_dir, state_dir) {
        Ok(scan) => scan,
        Err(e) => {
            writeln!(err, "cannot scan {}: {e}", data_dir.display())?;
            return Ok(false);
        }
    };
    let datasets = registry.list();
    if as_json {
        let metas: Vec<_> = datasets.iter().map(|d| d.meta()).collect();
        let report = json!({ "datasets": metas, "skipped": skipped });
        writeln!(out, "{report}")?;
    } else {
        for d in &datasets {
            writeln!(
                out,
                "serve {}  {} {}  {}",
                d.name,
                d.dtype,
                python_shape(&d.shape),
                d.file
            )?;
        }
        for s in &skipped {
            writeln!(out, "skip  {}: {}", s.path, s.reason)?;
        }
        writeln!(
            out,
            "{} datasets would be served, {} files skipped",
            datasets.len(),
            skipped.len()
        )?;
    }
    Ok(skipped.is_empty())
}

/// A shape as Python writes a tuple: `()`, `(5,)`, `(3, 4)`.
pub fn python_shape(shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    }
}
