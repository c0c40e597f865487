//! The state directory: registrations made over HTTP, one file each at
//! `STATE_DIR/datasets/NAME.json`, so they survive a restart.
//!
//! A registration is durable before it is acknowledged: its file is written under a temporary
//! name, fsync'ed, hard-linked to its final name and the directory fsync'ed. `link(2)` never
//! replaces an existing file, so two servers sharing the directory cannot overwrite each
//! other's registration of one name: the second gets `AlreadyExists`. A crash leaves either
//! no file or the whole file (plus, at worst, a dot-named temporary one, which loading
//! ignores).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Suffix of registration files.
const SUFFIX: &str = ".json";

/// Registration files are small; one larger than this is not one.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A temporary file this old is the remains of a save that was killed: a save takes
/// milliseconds. Removing one that is in fact in use only makes that save fail (its link
/// finds no file), never a registration half-made, so replicas sharing the directory are
/// safe whatever their clocks say.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(600);

/// The `datasets/` folder of a state directory. Nothing is created until the first save.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    datasets: PathBuf,
}

/// One file read back at start-up.
#[derive(Debug)]
pub struct Entry {
    /// Path relative to the state directory (`datasets/NAME.json`), for logs.
    pub path: String,
    /// The name the file is saved under (its stem).
    pub name: String,
    /// Its contents, or why it could not be read.
    pub contents: std::io::Result<Vec<u8>>,
}

impl StateDir {
    /// The registrations under `root`.
    pub fn new(root: &Path) -> StateDir {
        StateDir {
            root: root.to_owned(),
            datasets: root.join("datasets"),
        }
    }

    fn file_of(&self, name: &str) -> PathBuf {
        self.datasets.join(format!("{name}{SUFFIX}"))
    }

    /// Saves `contents` as the registration of `name`, durably and without replacing one
    /// already there.
    ///
    /// # Errors
    /// `AlreadyExists` when `name` is saved already; any other I/O error.
    pub fn save(&self, name: &str, contents: &[u8]) -> std::io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        if !self.datasets.is_dir() {
            std::fs::create_dir_all(&self.datasets)?;
            // The new folders' entries must be durable too.
            sync_dir(&self.root)?;
            if let Some(parent) = self.root.parent() {
                let _ = sync_dir(parent);
            }
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // A leading dot: never a valid dataset name, so never mistaken for a registration.
        let tmp = self
            .datasets
            .join(format!(".{name}{SUFFIX}.tmp-{}-{n}", process_tag()));
        let written = write_synced(&tmp, contents);
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, self.file_of(name)));
        let _ = std::fs::remove_file(&tmp);
        linked?;
        sync_dir(&self.datasets)
    }

    /// Creates `datasets/` if needed and writes and removes a temporary file in it, so a
    /// server that accepts registrations learns at start, not at the first `POST`, that it
    /// cannot keep them (a read-only or foreign-owned volume). The probe file is named like a
    /// save's temporary file, so a crash between its write and its removal leaves nothing that
    /// loading reads or that the stale-file sweep would not remove.
    ///
    /// # Errors
    /// The I/O error of the first step that failed.
    pub fn probe_writable(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.datasets)?;
        let probe = self
            .datasets
            .join(format!(".probe.json.tmp-{}-w", process_tag()));
        let written = write_synced(&probe, b"");
        let _ = std::fs::remove_file(&probe);
        written
    }

    /// Removes the registration of `name`, durably. A file already gone is not an error.
    ///
    /// # Errors
    /// The I/O error of the unlink or the directory fsync.
    pub fn remove(&self, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.file_of(name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        }
        sync_dir(&self.datasets)
    }

    /// Every saved registration, sorted by name; none when the folder does not exist.
    /// Temporary files of killed saves older than ten minutes are removed on the way.
    ///
    /// # Errors
    /// Only when the folder exists but cannot be listed.
    pub fn load(&self) -> std::io::Result<Vec<Entry>> {
        use std::io::Read;
        let listing = match std::fs::read_dir(&self.datasets) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other?,
        };
        let mut entries = Vec::new();
        for entry in listing.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') && file_name.contains(".tmp-") {
                remove_if_stale(&entry.path());
                continue;
            }
            let Some(name) = file_name.strip_suffix(SUFFIX) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let mut contents = Vec::new();
            let read = File::open(entry.path())
                .and_then(|f| f.take(MAX_FILE_BYTES).read_to_end(&mut contents));
            entries.push(Entry {
                path: format!("datasets/{file_name}"),
                name: name.to_owned(),
                contents: read.map(|_| contents),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }
}

/// What makes this process's temporary names its own on a state directory that replicas
/// share: the pid and a random number. The pid alone is not enough: every container's
/// server is pid 1, and two saves of one name under one temporary name would remove each
/// other's file.
fn process_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        format!("{}-{:016x}", std::process::id(), h.finish())
    })
}

/// Removes the temporary file at `path` if it is older than [`STALE_TEMP`].
fn remove_if_stale(path: &Path) {
    let age = std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    if age.is_some_and(|age| age > STALE_TEMP) && std::fs::remove_file(path).is_ok() {
        tracing::info!(path = %path.display(), "removed the temporary file of a killed save");
    }
}

fn write_synced(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = File::options().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes the entries of `dir` durable (a new link, an unlink).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_without_replacing_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(&dir.path().join("state"));
        assert!(state.load().unwrap().is_empty());
        state.save("a", b"{\"x\":1}").unwrap();
        let err = state.save("a", b"{\"x\":2}").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        state.save("b", b"{}").unwrap();
        let entries = state.load().unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(entries[0].contents.as_ref().unwrap(), b"{\"x\":1}");
        assert_eq!(entries[0].path, "datasets/a.json");
        // No temporary file is left behind.
        let files = std::fs::read_dir(dir.path().join("state/datasets")).unwrap();
        assert_eq!(files.count(), 2);
        state.remove("a").unwrap();
        state.remove("a").unwrap();
        assert_eq!(state.load().unwrap().len(), 1);
    }

    #[test]
    fn probe_writable_leaves_nothing_and_reports_a_read_only_dir() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(&dir.path().join("state"));
        state.probe_writable().unwrap();
        let files = std::fs::read_dir(dir.path().join("state/datasets")).unwrap();
        assert_eq!(files.count(), 0);
        // A regular file where the folder should be cannot hold registrations, for root too.
        let blocked = StateDir::new(&dir.path().join("file"));
        std::fs::write(dir.path().join("file"), b"").unwrap();
        assert!(blocked.probe_writable().is_err());
    }

    #[test]
    fn temporaries_of_killed_saves_are_removed_once_stale() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        state.save("a", b"{}").unwrap();
        let datasets = dir.path().join("datasets");
        let old = datasets.join(".b.json.tmp-1-0");
        let fresh = datasets.join(".c.json.tmp-1-1");
        for path in [&old, &fresh] {
            std::fs::write(path, b"{").unwrap();
        }
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        let names: Vec<_> = state.load().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a"]);
        assert!(!old.exists(), "a stale temporary file stays");
        assert!(fresh.exists(), "a save in progress lost its file");
    }
}
