//! The registry: dataset name → `Arc<Dataset>`, filled by scanning the data directory
//! (README "Datasets") and by registrations (`POST /v1/datasets`, and
//! the ones saved in the state directory at start), which go through the same validation
//! path, `open_dataset`.
//!
//! This module holds the memory map (`map_file`); `dataset` holds two other `unsafe` calls
//! (`mincore`, `sysconf`) and `sigbus` the signal handler. The map's contract: data files are
//! opened read-only and never written by arrayd, and another process must not rewrite them in
//! place (a stream in flight would mix old and new bytes; later requests see a new ETag). A
//! file truncated while mapped raises SIGBUS on the lost pages: every map is registered with
//! [`crate::sigbus`], whose handler replaces them with zeros and poisons the map, and every
//! reader checks the flag before it uses what it read (README "Limits and known gaps"). Readers also
//! fail early: an `fstat` before each chunk catches a truncation that already happened, and
//! large runs are faulted in with `MADV_POPULATE_READ`, which reports a lost range as an error
//! instead of a signal (see `Dataset::populate`).
//!
//! A bad file (unreadable, truncated, unsupported dtype, outside the data directory, an
//! invalid or clashing name) is logged with its reason and skipped; the scan never fails as a
//! whole unless the data directory itself cannot be read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::sigbus::GuardedMap;

use crate::dataset::Order;
use crate::dataset::{Dataset, DatasetError, FileIdentity, MappedFile, Region};
use crate::dtype::DType;
use crate::npy;
use crate::registration::Registration;
use crate::rescan::{self, RescanReport};
use crate::state::StateDir;

/// Longest dataset name, README "Datasets": `[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}`.
const MAX_NAME_LEN: usize = 200;

/// Suffix of raw-array descriptors.
const DESCRIPTOR_SUFFIX: &str = ".array.json";

/// Longest `.npy` header read at registration; numpy's own limit for version 2.0+ headers is
/// far larger, but a header past this is not a plain array (structured dtypes with thousands
/// of fields produce them).
const MAX_NPY_HEADER: u64 = 1 << 20;

/// All datasets by name.
#[derive(Debug, Default)]
pub struct Registry {
    /// Canonical data directory: every registered file resolves inside it.
    root: PathBuf,
    /// Name → dataset. A `std` lock: it is held only to clone an `Arc`, never across `.await`.
    datasets: RwLock<BTreeMap<String, Arc<Dataset>>>,
    /// Where registrations made over HTTP are saved; `None` for a bare scan.
    state: Option<StateDir>,
    /// The state directory as configured, to name it in logs and reports.
    state_path: Option<PathBuf>,
    /// Names of the datasets that came from registrations (not from the scan), which alone
    /// may be deleted. Its lock also serializes registrations and deletions, so the check
    /// for a clash, the saved file and the insert are one step.
    registered: Mutex<BTreeSet<String>>,
    /// Rescans done, for `arrayd_rescans_total`.
    rescans: AtomicU64,
}

/// Why a registration or a deletion is refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The descriptor or its data file is unusable (400).
    #[error("{0}")]
    Bad(String),
    /// The name is taken, or the dataset came from the data directory (409).
    #[error("{0}")]
    Conflict(String),
    /// No dataset by that name (404).
    #[error("no dataset named {0:?}")]
    Unknown(String),
    /// The state directory cannot be written (500).
    #[error("state directory: {0}")]
    State(std::io::Error),
}

/// A file skipped by the scan, with the reason, for the start-up log and rescan reports.
#[derive(Debug, Serialize)]
pub struct Skipped {
    /// Path relative to the data directory.
    pub path: String,
    /// Why it was skipped.
    pub reason: String,
}

impl Registry {
    /// Scans `data_dir` recursively and registers every valid dataset.
    ///
    /// # Errors
    /// Only when `data_dir` itself cannot be resolved or listed; bad files are returned in
    /// the `Skipped` list instead.
    pub fn scan(data_dir: &Path) -> std::io::Result<(Registry, Vec<Skipped>)> {
        let root = data_dir.canonicalize()?;
        let (datasets, skipped) = scan_root(&root, &OpenMaps::default())?;
        let registry = Registry {
            root,
            datasets: RwLock::new(
                datasets
                    .into_iter()
                    .map(|(k, v)| (k, Arc::new(v)))
                    .collect(),
            ),
            state: None,
            state_path: None,
            registered: Mutex::default(),
            rescans: AtomicU64::new(0),
        };
        Ok((registry, skipped))
    }

    /// Scans `data_dir`, then registers every registration saved in `state_dir`. A saved
    /// registration that is unreadable, invalid or whose data file is missing is logged and
    /// returned as skipped, and its file is left where it is: the data file may come back.
    ///
    /// # Errors
    /// As [`Registry::scan`], and when the state directory exists but cannot be listed.
    pub fn open(data_dir: &Path, state_dir: &Path) -> std::io::Result<(Registry, Vec<Skipped>)> {
        let (mut registry, mut skipped) = Registry::scan(data_dir)?;
        let state = StateDir::new(state_dir);
        let mut datasets = BTreeMap::new();
        load_registrations(
            &registry.root,
            &state,
            state_dir,
            &registry.list_names(),
            &OpenMaps::default(),
            &mut datasets,
            &mut skipped,
        )?;
        for (_, dataset) in datasets {
            registry.insert(dataset);
        }
        registry.state = Some(state);
        registry.state_path = Some(state_dir.to_owned());
        Ok((registry, skipped))
    }

    /// What a scan of `data_dir` would register for the one file at `path` (`arrayd info`):
    /// `Ok(None)` when the file is neither a `.npy` nor a descriptor, which a scan ignores.
    ///
    /// # Errors
    /// Why a scan would skip the file, as the scan words it; an I/O error when `data_dir`
    /// or `path` cannot be resolved, or `path` is outside `data_dir`.
    pub fn inspect(data_dir: &Path, path: &Path) -> Result<Option<Dataset>, DatasetError> {
        let io = |path: &Path, source| DatasetError::Io {
            path: path.display().to_string(),
            source,
        };
        let root = data_dir.canonicalize().map_err(|e| io(data_dir, e))?;
        // The directory is resolved, not the file: a symlinked data file is served under
        // the link's name, as the scan serves it.
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let file = parent
            .canonicalize()
            .map_err(|e| io(path, e))?
            .join(path.file_name().unwrap_or_default());
        if !file.starts_with(&root) {
            let outside = std::io::Error::other(format!("not inside {}", data_dir.display()));
            return Err(io(path, outside));
        }
        let rel = relative(&root, &file);
        load(&root, &file, &rel, &OpenMaps::default())
    }

    /// Walks the data directory again and re-reads the registrations, on the one validation
    /// path of the start-up scan: new datasets are added, those whose file vanished or no
    /// longer validates are dropped (a registration's saved file stays, so it comes back
    /// once its data file is valid again), and those whose file changed or whose map is
    /// poisoned are re-mapped. Unchanged datasets keep their `Arc`, and requests in flight
    /// keep the one they hold, so a stream never switches maps. Blocking: call it from
    /// `spawn_blocking`.
    ///
    /// # Errors
    /// When the data directory or the state directory cannot be listed; nothing changes then.
    pub fn rescan(&self) -> std::io::Result<RescanReport> {
        // Serializes with registrations and deletions, which are the only other writers, so
        // the snapshot below stays the served map until the swap.
        let mut registered = self.lock_registered();
        let maps = OpenMaps::of(&self.read());
        let (mut found, mut skipped) = scan_root(&self.root, &maps)?;
        let mut from_state = BTreeMap::new();
        if let (Some(state), Some(path)) = (&self.state, &self.state_path) {
            let taken = found.keys().cloned().collect();
            load_registrations(
                &self.root,
                state,
                path,
                &taken,
                &maps,
                &mut from_state,
                &mut skipped,
            )?;
        }
        let names: BTreeSet<String> = from_state.keys().cloned().collect();
        found.extend(from_state);
        let mut report = RescanReport::default();
        let old = self.read().clone();
        let next = rescan::merge(&old, found, &mut report);
        // Held only for the swap; the old `Arc`s it drops live on in the requests holding them.
        *self.write() = next;
        *registered = names;
        report.skipped = skipped;
        self.rescans.fetch_add(1, Ordering::Relaxed);
        Ok(report)
    }

    /// Rescans done since start.
    pub fn rescans(&self) -> u64 {
        self.rescans.load(Ordering::Relaxed)
    }

    fn list_names(&self) -> BTreeSet<String> {
        self.read().keys().cloned().collect()
    }

    /// Validates `reg` exactly as a scanned file, saves it in the state directory and
    /// registers it.
    ///
    /// # Errors
    /// [`RegisterError`]: a bad descriptor or file, a clash, an unwritable state directory.
    pub fn register(&self, reg: &Registration) -> Result<Arc<Dataset>, RegisterError> {
        let mut registered = self.lock_registered();
        if self.get(&reg.name).is_some() {
            return Err(RegisterError::Conflict(format!(
                "a dataset named {:?} exists already",
                reg.name
            )));
        }
        let dataset = self
            .build(reg)
            .map_err(|e| RegisterError::Bad(e.to_string()))?;
        let state = self.state.as_ref().ok_or_else(|| {
            RegisterError::State(std::io::Error::other("no state directory configured"))
        })?;
        let saved = serde_json::to_vec_pretty(reg).map_err(|e| RegisterError::State(e.into()))?;
        state.save(&reg.name, &saved).map_err(|e| match e.kind() {
            // Another server sharing the state directory registered it.
            std::io::ErrorKind::AlreadyExists => RegisterError::Conflict(format!(
                "a registration named {:?} exists already",
                reg.name
            )),
            _ => RegisterError::State(e),
        })?;
        registered.insert(reg.name.clone());
        let dataset = Arc::new(dataset);
        self.write().insert(reg.name.clone(), Arc::clone(&dataset));
        Ok(dataset)
    }

    /// Removes the registration of `name` from the state directory and the registry.
    /// Requests in flight keep their `Arc<Dataset>`.
    ///
    /// # Errors
    /// [`RegisterError::Unknown`], [`RegisterError::Conflict`] for a dataset of the data
    /// directory, [`RegisterError::State`] when its file cannot be removed.
    pub fn unregister(&self, name: &str) -> Result<(), RegisterError> {
        let mut registered = self.lock_registered();
        if self.get(name).is_none() {
            return Err(RegisterError::Unknown(name.chars().take(200).collect()));
        }
        if !registered.contains(name) {
            return Err(RegisterError::Conflict(format!(
                "{name:?} comes from the data directory; remove its file instead"
            )));
        }
        if let Some(state) = &self.state {
            state.remove(name).map_err(RegisterError::State)?;
        }
        registered.remove(name);
        self.write().remove(name);
        Ok(())
    }

    /// The dataset `reg` describes, on the scan's validation path.
    fn build(&self, reg: &Registration) -> Result<Dataset, DatasetError> {
        build(&self.root, reg, &OpenMaps::default())
    }

    /// Adds a registered dataset (start-up only: no clash check, no save).
    fn insert(&mut self, dataset: Dataset) {
        self.lock_registered().insert(dataset.name.clone());
        self.write().insert(dataset.name.clone(), Arc::new(dataset));
    }

    fn lock_registered(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // As `read`: every change under the lock is a single call.
        self.registered.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Dataset>>> {
        self.datasets.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The dataset called `name`, if registered.
    pub fn get(&self, name: &str) -> Option<Arc<Dataset>> {
        self.read().get(name).cloned()
    }

    /// Every dataset, sorted by name.
    pub fn list(&self) -> Vec<Arc<Dataset>> {
        self.read().values().cloned().collect()
    }

    /// The canonical data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Dataset>>> {
        // A panic while holding the lock cannot leave the map half-updated (inserts are
        // single calls), so a poisoned lock is still consistent.
        self.datasets.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The dataset `reg` describes, on the scan's validation path.
fn build(root: &Path, reg: &Registration, maps: &OpenMaps) -> Result<Dataset, DatasetError> {
    let bad = |reason: String| DatasetError::Descriptor {
        path: reg.file.clone(),
        reason,
    };
    check_name(&reg.name, &reg.file)?;
    let region = reg.region().map_err(bad)?;
    let data_path = root.join(&reg.file);
    let dataset = open_dataset(root, reg.name.clone(), &data_path, region, &reg.file, maps)?;
    with_dims_attrs(dataset, reg.dims.clone(), reg.attrs.clone()).map_err(bad)
}

/// `dataset` carrying the axis names and attributes of its registration or descriptor,
/// once their axis count is checked against its shape.
fn with_dims_attrs(
    mut dataset: Dataset,
    dims: Option<Vec<String>>,
    attrs: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<Dataset, String> {
    if let Some(dims) = &dims {
        if dims.len() != dataset.shape.len() {
            return Err(format!(
                "dims names {} axes, the array has {}",
                dims.len(),
                dataset.shape.len()
            ));
        }
    }
    dataset.dims = dims;
    dataset.attrs = attrs;
    Ok(dataset)
}

/// The maps served now, by the identity of their file, so that a rescan maps only files
/// that changed: an unchanged file's dataset is rebuilt over the map it already has, which
/// costs no new map, no SIGBUS-guard slot and no page faults. A poisoned map is never
/// offered: only a fresh map of the file heals it.
#[derive(Default)]
struct OpenMaps(std::collections::HashMap<FileIdentity, (Arc<GuardedMap>, Bytes)>);

impl OpenMaps {
    fn of(datasets: &BTreeMap<String, Arc<Dataset>>) -> OpenMaps {
        let open = datasets
            .values()
            .filter(|d| !d.poisoned())
            .map(|d| {
                let m = &d.mapped;
                (m.identity, (Arc::clone(&m.map), m.bytes.clone()))
            })
            .collect();
        OpenMaps(open)
    }

    fn get(&self, identity: &FileIdentity) -> Option<(Arc<GuardedMap>, Bytes)> {
        self.0.get(identity).cloned()
    }
}

/// Loads every valid dataset under `root` (the scan and every rescan): a bad file or a
/// clashing name is returned as skipped.
fn scan_root(
    root: &Path,
    maps: &OpenMaps,
) -> std::io::Result<(BTreeMap<String, Dataset>, Vec<Skipped>)> {
    let mut files = Vec::new();
    walk(root, &mut files)?;
    files.sort();
    let mut datasets = BTreeMap::new();
    let mut skipped = Vec::new();
    for path in files {
        let rel = relative(root, &path);
        match load(root, &path, &rel, maps) {
            Ok(None) => {}
            Ok(Some(ds)) => {
                if datasets.contains_key(&ds.name) {
                    skipped.push(Skipped {
                        reason: format!("dataset name {:?} is already taken", ds.name),
                        path: rel,
                    });
                } else {
                    datasets.insert(ds.name.clone(), ds);
                }
            }
            Err(e) => skipped.push(Skipped {
                path: rel,
                reason: e.to_string(),
            }),
        }
    }
    Ok((datasets, skipped))
}

/// Loads the registrations saved in `state` into `out`. One that is unreadable, invalid,
/// whose name is in `taken` or whose data file is missing is logged and skipped, and its
/// file is left where it is: the data file may come back.
///
/// # Errors
/// When the state directory exists but cannot be listed (named in the error, which the
/// server reports as a data-directory failure).
fn load_registrations(
    root: &Path,
    state: &StateDir,
    state_dir: &Path,
    taken: &BTreeSet<String>,
    maps: &OpenMaps,
    out: &mut BTreeMap<String, Dataset>,
    skipped: &mut Vec<Skipped>,
) -> std::io::Result<()> {
    let entries = state.load().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("state directory {}: {e}", state_dir.display()),
        )
    })?;
    for entry in entries {
        let loaded = entry
            .contents
            .map_err(|e| e.to_string())
            .and_then(|bytes| Registration::parse(&bytes))
            .and_then(|reg| {
                if reg.name == entry.name {
                    Ok(reg)
                } else {
                    Err(format!("holds the name {:?}", reg.name))
                }
            })
            .and_then(|reg| {
                if taken.contains(&reg.name) || out.contains_key(&reg.name) {
                    return Err(format!("dataset name {:?} is already taken", reg.name));
                }
                build(root, &reg, maps).map_err(|e| e.to_string())
            });
        match loaded {
            Ok(dataset) => {
                out.insert(dataset.name.clone(), dataset);
            }
            Err(reason) => {
                tracing::warn!(path = %entry.path, %reason, "registration skipped; its file is kept");
                skipped.push(Skipped {
                    path: format!("{}/{}", state_dir.display(), entry.path),
                    reason,
                });
            }
        }
    }
    Ok(())
}

/// Collects every regular file (or symlink to one) under `dir`. Symlinked directories are not
/// followed, which keeps the walk finite.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            if let Err(e) = walk(&path, out) {
                tracing::warn!(path = %path.display(), error = %e, "cannot list directory; skipped");
            }
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `name` is a valid dataset name.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let ok = |b: u8, first: bool| {
        b.is_ascii_alphanumeric() || b == b'_' || (!first && (b == b'.' || b == b'-'))
    };
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && ok(bytes[0], true)
        && bytes[1..].iter().all(|&b| ok(b, false))
}

/// Registers one file: `Ok(None)` for files that are neither `.npy` nor descriptors.
fn load(
    root: &Path,
    path: &Path,
    rel: &str,
    maps: &OpenMaps,
) -> Result<Option<Dataset>, DatasetError> {
    let (stem, is_npy) = if let Some(stem) = rel.strip_suffix(".npy") {
        (stem, true)
    } else if let Some(stem) = rel.strip_suffix(DESCRIPTOR_SUFFIX) {
        (stem, false)
    } else {
        return Ok(None);
    };
    let name = stem.replace('/', ".");
    check_name(&name, rel)?;
    let (data_path, region, dims, attrs) = if is_npy {
        (path.to_owned(), None, None, None)
    } else {
        let (desc, region) = read_descriptor(path, rel)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        (dir.join(desc.file), Some(region), desc.dims, desc.attrs)
    };
    let dataset = open_dataset(root, name, &data_path, region, rel, maps)?;
    with_dims_attrs(dataset, dims, attrs)
        .map(Some)
        .map_err(|reason| DatasetError::Descriptor {
            path: rel.to_owned(),
            reason,
        })
}

/// The scan's name rule, as an error naming `rel`.
fn check_name(name: &str, rel: &str) -> Result<(), DatasetError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(DatasetError::BadName {
            path: rel.to_owned(),
            reason: "its name is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,199}",
        })
    }
}

/// The one validation path of a data file, shared by the scan and by registrations: confine
/// `data_path` to `root`, require a regular file, read the `.npy` header when `region` is
/// `None`, map the file and check the region fits it.
fn open_dataset(
    root: &Path,
    name: String,
    data_path: &Path,
    region: Option<Region>,
    rel: &str,
    maps: &OpenMaps,
) -> Result<Dataset, DatasetError> {
    use std::os::unix::fs::OpenOptionsExt;
    let data_path = resolve_inside(root, data_path, rel)?;
    let data_rel = relative(root, &data_path);
    let io_err = |source| DatasetError::Io {
        path: data_rel.clone(),
        source,
    };
    let not_regular = || DatasetError::Descriptor {
        path: rel.to_owned(),
        reason: "data file is not a regular file".into(),
    };
    // Checked before `open`: opening a FIFO for reading blocks until a writer comes.
    if !std::fs::metadata(&data_path).map_err(io_err)?.is_file() {
        return Err(not_regular());
    }
    // O_NONBLOCK as well, for a file swapped for a FIFO between the check and the open; it
    // changes nothing for regular files.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&data_path)
        .map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let region = match region {
        None => read_npy_region(&file, meta.len(), rel)?,
        Some(region) => region,
    };
    let identity = FileIdentity {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime: meta.modified().map_err(io_err)?,
    };
    let (map, bytes) = match maps.get(&identity) {
        Some(open) => open,
        None => {
            let map = Arc::new(map_file(&file).and_then(GuardedMap::new).map_err(io_err)?);
            let bytes = Bytes::from_owner(MapOwner(Arc::clone(&map)));
            (map, bytes)
        }
    };
    let mapped = MappedFile {
        identity,
        map,
        handle: file,
        bytes,
    };
    Dataset::new(name, data_rel, data_path, region, mapped)
}

/// Resolves symlinks and `..` and requires the result to be a file inside the data directory.
fn resolve_inside(root: &Path, path: &Path, rel: &str) -> Result<PathBuf, DatasetError> {
    let outside = || DatasetError::Descriptor {
        path: rel.to_owned(),
        reason: "data file resolves outside the data directory".into(),
    };
    let real = path.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DatasetError::Descriptor {
            path: rel.to_owned(),
            reason: "data file does not exist".into(),
        },
        _ => outside(),
    })?;
    if !real.starts_with(root) {
        return Err(outside());
    }
    Ok(real)
}

/// A raw-array descriptor, README "Datasets" `*.array.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Descriptor {
    file: String,
    dtype: String,
    shape: Vec<u64>,
    #[serde(default = "default_order")]
    order: String,
    #[serde(default)]
    offset: u64,
    #[serde(default)]
    dims: Option<Vec<String>>,
    #[serde(default)]
    attrs: Option<serde_json::Map<String, serde_json::Value>>,
}

fn default_order() -> String {
    "C".into()
}

/// Descriptors are small; anything larger than this is not one.
const MAX_DESCRIPTOR_BYTES: u64 = 64 * 1024;

fn parse_descriptor(path: &Path, rel: &str) -> Result<Descriptor, DatasetError> {
    let bad = |reason: String| DatasetError::Descriptor {
        path: rel.to_owned(),
        reason,
    };
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(MAX_DESCRIPTOR_BYTES + 1).read_to_string(&mut text))
        .map_err(|source| DatasetError::Io {
            path: rel.to_owned(),
            source,
        })?;
    if text.len() as u64 > MAX_DESCRIPTOR_BYTES {
        return Err(bad("larger than 64 KiB".into()));
    }
    serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
}

/// Reads a descriptor: the data file it names (relative to the descriptor's own directory),
/// its axis names and attributes, and the region in it.
fn read_descriptor(path: &Path, rel: &str) -> Result<(Descriptor, Region), DatasetError> {
    let desc = parse_descriptor(path, rel)?;
    let bad = |reason| DatasetError::Descriptor {
        path: rel.to_owned(),
        reason,
    };
    crate::registration::check_dims_attrs(desc.dims.as_deref(), desc.attrs.as_ref())
        .map_err(bad)?;
    let region =
        raw_region(&desc.dtype, desc.shape.clone(), &desc.order, desc.offset).map_err(bad)?;
    Ok((desc, region))
}

/// The region of a raw file from its descriptor fields (a descriptor file's or a
/// registration's).
pub(crate) fn raw_region(
    dtype: &str,
    shape: Vec<u64>,
    order: &str,
    offset: u64,
) -> Result<Region, String> {
    let dtype = DType::parse(dtype).map_err(|e| e.to_string())?;
    let order = match order {
        "C" => Order::C,
        "F" => Order::F,
        other => return Err(format!("order must be \"C\" or \"F\", not {other:?}")),
    };
    Ok(Region {
        dtype,
        shape,
        order,
        offset,
    })
}

fn read_npy_region(file: &File, file_len: u64, rel: &str) -> Result<Region, DatasetError> {
    use std::os::unix::fs::FileExt;
    let npy_err = |source| DatasetError::Npy {
        path: rel.to_owned(),
        source,
    };
    let io_err = |source| DatasetError::Io {
        path: rel.to_owned(),
        source,
    };
    let read_prefix = |len: u64| -> Result<Vec<u8>, DatasetError> {
        let len = len.min(file_len).min(MAX_NPY_HEADER);
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, 0).map_err(io_err)?;
        Ok(buf)
    };
    let prefix = read_prefix(4096)?;
    let header = match npy::parse_header(&prefix) {
        Err(npy::NpyError::Truncated { needed, .. }) if needed > prefix.len() as u64 => {
            npy::parse_header(&read_prefix(needed)?).map_err(npy_err)?
        }
        other => other.map_err(npy_err)?,
    };
    Ok(Region {
        dtype: header.dtype,
        shape: header.shape,
        order: if header.fortran_order {
            Order::F
        } else {
            Order::C
        },
        offset: header.data_offset,
    })
}

/// Owner handed to `Bytes::from_owner`: the map (and its SIGBUS registration) stays alive
/// while any chunk cut from it does.
struct MapOwner(Arc<GuardedMap>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Maps a data file read-only.
#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: the map is read-only and arrayd never writes data files. A concurrent truncation
    // by another process raises SIGBUS on the lost pages; the caller registers the map with
    // `sigbus`, whose handler turns them into zeros and poisons the map, which every reader
    // checks (see the module documentation).
    unsafe { Mmap::map(file) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_design() {
        for good in ["a", "climate.t2m", "_x-1.2", &"a".repeat(200)] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", ".a", "-a", "a b", "a/b", "é", &"a".repeat(201)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    fn write_npy(path: &Path, values: &[f32]) {
        let mut bytes = npy::write_header(DType::parse("<f4").unwrap(), &[values.len() as u64]);
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(path, bytes).unwrap();
    }

    /// Descriptors carry `dims` and `attrs` under the rules of registrations.
    #[test]
    fn descriptors_carry_dims_and_attrs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.u1"), [0u8; 6]).unwrap();
        let desc = |name: &str, extra: &str| {
            let text = format!(r#"{{"file": "r.u1", "dtype": "|u1", "shape": [2, 3]{extra}}}"#);
            std::fs::write(dir.path().join(format!("{name}.array.json")), text).unwrap();
        };
        desc("good", r#", "dims": ["y", "x"], "attrs": {"units": "K"}"#);
        desc("few", r#", "dims": ["y"]"#);
        desc("badname", r#", "dims": ["y", "1x"]"#);
        desc("badattrs", r#", "attrs": [1]"#);
        let (registry, skipped) = Registry::scan(dir.path()).unwrap();
        let good = registry.get("good").unwrap();
        assert_eq!(
            good.dims.as_deref(),
            Some(&["y".to_owned(), "x".to_owned()][..])
        );
        assert_eq!(good.attrs.as_ref().unwrap()["units"], "K");
        let mut names: Vec<&str> = skipped.iter().map(|s| s.path.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "badattrs.array.json",
                "badname.array.json",
                "few.array.json"
            ]
        );
        assert!(skipped
            .iter()
            .any(|s| s.reason.contains("dims names 1 axes")));
    }

    #[test]
    fn rescan_adds_removes_remaps_and_keeps_unchanged_arcs() {
        let dir = tempfile::tempdir().unwrap();
        write_npy(&dir.path().join("a.npy"), &[1.0]);
        write_npy(&dir.path().join("b.npy"), &[2.0]);
        let (registry, _) = Registry::scan(dir.path()).unwrap();
        let a = registry.get("a").unwrap();
        write_npy(&dir.path().join("c.npy"), &[3.0]);
        std::fs::remove_file(dir.path().join("b.npy")).unwrap();
        let report = registry.rescan().unwrap();
        assert_eq!(report.added, ["c"]);
        assert_eq!(report.removed, ["b"]);
        assert!(report.remapped.is_empty());
        assert!(Arc::ptr_eq(&a, &registry.get("a").unwrap()));
        // Replaced by rename: a new inode.
        write_npy(&dir.path().join("a.tmp"), &[4.0, 5.0]);
        std::fs::rename(dir.path().join("a.tmp"), dir.path().join("a.npy")).unwrap();
        let report = registry.rescan().unwrap();
        assert_eq!(report.remapped, ["a"]);
        assert_eq!(registry.get("a").unwrap().shape, [2]);
        assert_eq!(registry.rescans(), 2);
    }

    /// A dataset whose description changed but whose file did not is rebuilt over the map it
    /// had: no second map of the same file.
    #[test]
    fn rescan_reuses_the_map_of_an_unchanged_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.bin"), [0u8; 64]).unwrap();
        let descriptor = |shape: &str| {
            let text = format!(r#"{{"file": "r.bin", "dtype": "<f4", "shape": {shape}}}"#);
            std::fs::write(dir.path().join("r.array.json"), text).unwrap();
        };
        descriptor("[16]");
        let (registry, _) = Registry::scan(dir.path()).unwrap();
        let before = registry.get("r").unwrap();
        descriptor("[4, 4]");
        let report = registry.rescan().unwrap();
        assert_eq!(report.remapped, ["r"]);
        let after = registry.get("r").unwrap();
        assert_eq!(after.shape, [4, 4]);
        assert!(Arc::ptr_eq(&before.mapped.map, &after.mapped.map));
        // A changed file is mapped anew.
        std::fs::write(dir.path().join("r.bin"), [1u8; 64]).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
        File::options()
            .write(true)
            .open(dir.path().join("r.bin"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        let report = registry.rescan().unwrap();
        assert_eq!(report.remapped, ["r"]);
        let rewritten = registry.get("r").unwrap();
        assert!(!Arc::ptr_eq(&after.mapped.map, &rewritten.mapped.map));
        assert_eq!(rewritten.view(0, 1)[0], 1);
    }
}
