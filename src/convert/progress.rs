//! The progress bar of `arrayd convert`: bytes read, rows written, rate and ETA on standard
//! error, drawn only when standard error is a terminal (a pipe or a log file gets nothing).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar, or nothing when standard error is not a terminal.
#[derive(Debug)]
pub(super) struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar over `total` input bytes (a spinner when the size is unknown, as for a pipe),
    /// shown when `enabled` and standard error is a terminal.
    pub(super) fn new(total: Option<u64>, enabled: bool) -> Progress {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        // indicatif redraws at most 20 times a second, whatever the update rate.
        let target = ProgressDrawTarget::stderr();
        let bar = ProgressBar::with_draw_target(total, target);
        let template = if total.is_some() {
            "{bar:30} {bytes}/{total_bytes} {msg} {bytes_per_sec} ETA {eta}"
        } else {
            "{spinner} {bytes} {msg} {bytes_per_sec}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Progress(Some(bar))
    }

    /// Input bytes consumed and rows written so far.
    pub(super) fn update(&self, bytes: u64, rows: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(bytes);
            bar.set_message(format!("{rows} rows"));
        }
    }

    /// Removes the bar.
    pub(super) fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
