//! The `.npy` being written: a temporary file beside the target, renamed over it only when
//! the whole input converted, and removed on every other way out (an error, a panic, Ctrl-C
//! or SIGTERM), so a failed conversion never leaves a file behind, nor half a file under the
//! target's name.
//!
//! The shape is known only at the end, so the data is written after a header of
//! [`HEADER_LEN`] bytes of room, and the header is written into that room last. Every shape a
//! conversion can produce (`()`, `(rows,)`, `(rows, columns)` with at most
//! [`MAX_COLUMNS`](super::parse::MAX_COLUMNS) columns) has a header of exactly that length
//! in NumPy's own layout, so the file is byte for byte what `np.save` writes.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use crate::dtype::DType;
use crate::npy;

/// The header length of every shape a conversion writes: the 10-byte prefix of version 1.0
/// and NumPy's dict, with its room for the first axis to grow to 21 digits, padded to 64.
pub(super) const HEADER_LEN: usize = 128;

/// The temporary file of the conversion in progress, for the signal handler.
static PENDING: Mutex<Option<PathBuf>> = Mutex::new(None);

/// A `.npy` file under construction.
#[derive(Debug)]
pub(super) struct Output {
    file: File,
    tmp: PathBuf,
    target: PathBuf,
    dtype: DType,
}

impl Output {
    /// Creates the temporary file beside `target` and makes Ctrl-C and SIGTERM remove it.
    ///
    /// # Errors
    /// When the file cannot be created (the caller has checked that the directory exists).
    pub(super) fn create(target: &Path, dtype: DType) -> std::io::Result<Output> {
        install_signal_cleanup();
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty());
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        // A dot name and no `.npy` suffix: a server scanning the directory ignores it.
        let tmp_name = format!(".{name}.convert-{}.tmp", std::process::id());
        let tmp = dir.map_or_else(|| PathBuf::from(&tmp_name), |d| d.join(&tmp_name));
        let mut pending = lock();
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        *pending = Some(tmp.clone());
        drop(pending);
        // From here on, dropping `output` removes the file.
        let mut output = Output {
            file,
            tmp,
            target: target.to_owned(),
            dtype,
        };
        output.file.write_all(&[0; HEADER_LEN])?;
        Ok(output)
    }

    /// Appends element bytes.
    ///
    /// # Errors
    /// A write error (a full disk).
    pub(super) fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all(data)
    }

    /// Writes the header for `shape`, flushes the file to disk and renames it to the target.
    ///
    /// # Errors
    /// A write, sync or rename error; the temporary file is removed then.
    pub(super) fn finish(mut self, shape: &[u64]) -> std::io::Result<()> {
        let header = npy::write_header(self.dtype, shape);
        if header.len() != HEADER_LEN {
            return Err(std::io::Error::other(format!(
                "the .npy header of shape {shape:?} is {} bytes, not {HEADER_LEN}",
                header.len()
            )));
        }
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&header)?;
        // Durable before it is visible: after a crash the target is whole or absent.
        self.file.sync_all()?;
        let mut pending = lock();
        std::fs::rename(&self.tmp, &self.target)?;
        *pending = None;
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let mut pending = lock();
        if pending.as_deref() == Some(self.tmp.as_path()) {
            let _ = std::fs::remove_file(&self.tmp);
            *pending = None;
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<PathBuf>> {
    // The guarded value is a path, consistent whatever a panicking holder was doing.
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// On SIGINT or SIGTERM: remove the pending temporary file and exit with 130. The handler
/// holds the lock while it exits, so a rename cannot start after it looked.
fn install_signal_cleanup() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            let pending = lock();
            if let Some(tmp) = pending.as_deref() {
                let _ = std::fs::remove_file(tmp);
            }
            eprintln!("arrayd convert: interrupted; no output written");
            std::process::exit(130);
        });
        if let Err(e) = installed {
            // Another handler owns the signals (an embedding program): it decides.
            tracing::debug!(error = %e, "no Ctrl-C cleanup for convert");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_fits_the_reserved_header() {
        for code in ["|b1", "|u1", "<i8", ">f2", "<f4", "<f8"] {
            let dtype = DType::parse(code).unwrap();
            for shape in [
                vec![],
                vec![0],
                vec![u64::MAX],
                vec![0, 2],
                vec![u64::MAX, 65_536],
                vec![2, 2],
            ] {
                assert_eq!(
                    npy::write_header(dtype, &shape).len(),
                    HEADER_LEN,
                    "{shape:?}"
                );
            }
        }
    }

    #[test]
    fn finish_renames_and_drop_removes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.npy");
        let mut out = Output::create(&target, DType::parse("<f8").unwrap()).unwrap();
        out.write(&1f64.to_le_bytes()).unwrap();
        out.finish(&[1]).unwrap();
        let bytes = std::fs::read(&target).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + 8);
        assert_eq!(
            npy::parse_header(&bytes).unwrap().shape,
            [1],
            "header written last"
        );
        let failed = Output::create(&dir.path().join("b.npy"), DType::parse("|u1").unwrap());
        drop(failed.unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.npy"]);
    }
}
