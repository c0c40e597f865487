//! A dataset: a named N-d array backed by one region of one mapped file (docs/design.md
//! "Vocabulary"). It owns its memory map, so the map lives exactly as long as the last request
//! that reads it.
//!
//! This module checks that a region fits its file and turns it into the [`Layout`] the planner
//! walks; it does not find files (that is `registry`) nor read headers (that is `npy`).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use serde::Serialize;

use crate::dtype::DType;
use crate::sigbus::GuardedMap;

/// Why a file cannot become a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened, stat'ed or mapped.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Path relative to the data directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The `.npy` header is malformed or unsupported.
    #[error("{path}: {source}")]
    Npy {
        /// Path relative to the data directory.
        path: String,
        /// What the header parser refused.
        source: crate::npy::NpyError,
    },
    /// The descriptor JSON is malformed or names a bad dtype, order or file.
    #[error("{path}: bad descriptor: {reason}")]
    Descriptor {
        /// Path relative to the data directory.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `offset + prod(shape) * itemsize` overflows or passes the end of the file.
    #[error("{path}: array needs {needed} bytes from offset {offset}, file has {file_len}")]
    TooShort {
        /// Path relative to the data directory.
        path: String,
        /// Where the array starts.
        offset: u64,
        /// Bytes the array needs (saturated at `u64::MAX` on overflow).
        needed: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// The file's path cannot make a dataset name.
    #[error("{path}: {reason}")]
    BadName {
        /// Path relative to the data directory.
        path: String,
        /// Why not.
        reason: &'static str,
    },
}

/// Identity of the backing file when it was mapped: what ETags and `Last-Modified` derive from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// File length in bytes.
    pub len: u64,
    /// Modification time.
    pub mtime: SystemTime,
}

/// Memory order of a dataset's elements, NumPy's `fortran_order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Row-major: the last axis varies fastest.
    C,
    /// Column-major: the first axis varies fastest.
    F,
}

/// Where and how a dataset's elements sit in its file: all the planner needs of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// File byte where the array's first element starts (a `.npy` header's length, or a
    /// descriptor's `offset`).
    pub offset: u64,
    /// Dataset shape, in elements per axis.
    pub shape: Vec<u64>,
    /// Bytes per element, NumPy's `itemsize`.
    pub itemsize: u64,
    /// Memory order; it changes only the byte stride of each axis.
    pub order: Order,
}

impl Layout {
    /// Byte distance between neighbouring elements of each axis: C order
    /// `itemsize * prod(shape[k+1..])`, F order `itemsize * prod(shape[..k])`. Saturates
    /// instead of overflowing; a dataset's strides never do, since its region fits its file.
    pub fn strides(&self) -> Vec<u64> {
        let mut strides = vec![0; self.shape.len()];
        let mut acc = self.itemsize;
        let mut set = |k: usize| {
            strides[k] = acc;
            acc = acc.saturating_mul(self.shape[k]);
        };
        match self.order {
            Order::C => (0..self.shape.len()).rev().for_each(&mut set),
            Order::F => (0..self.shape.len()).for_each(&mut set),
        }
        strides
    }
}

/// One registered array: immutable after registration, shared as `Arc<Dataset>`.
#[derive(Debug)]
pub struct Dataset {
    /// The name requests use (`climate.t2m`).
    pub name: String,
    /// Data file path relative to the data directory, with `/` separators (META `file`).
    pub file: String,
    /// Absolute path of the data file, for logs only; never sent to clients.
    pub abs_path: PathBuf,
    /// Element type as stored.
    pub dtype: DType,
    /// Array shape.
    pub shape: Vec<u64>,
    /// Memory order of the stored elements.
    pub order: Order,
    /// Byte offset of the first element in the file.
    pub offset: u64,
    /// `prod(shape) * itemsize`, checked at construction.
    pub nbytes: u64,
    /// The open, mapped data file.
    pub mapped: MappedFile,
    /// Axis names, from a registration.
    pub dims: Option<Vec<String>>,
    /// Free-form attributes, from a registration.
    pub attrs: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An open data file and its read-only memory map.
#[derive(Debug)]
pub struct MappedFile {
    /// The file identity when mapped.
    pub identity: FileIdentity,
    /// The whole mapped file, registered with the SIGBUS guard. Kept beside `bytes` for
    /// `madvise` and the poisoned flag.
    pub map: Arc<GuardedMap>,
    /// The open data file, for the `fstat` that detects truncation before a chunk is read.
    pub handle: File,
    /// The whole mapped file as a refcounted buffer: `bytes.slice(run)` is a zero-copy chunk.
    pub bytes: Bytes,
}

/// The JSON description of a dataset: META in README "API".
#[derive(Debug, Serialize)]
pub struct Meta<'a> {
    /// Dataset name.
    pub name: &'a str,
    /// Stored type string, e.g. `<f4`.
    pub dtype: String,
    /// Array shape.
    pub shape: &'a [u64],
    /// `"C"` or `"F"`.
    pub order: &'static str,
    /// Bytes per element.
    pub itemsize: usize,
    /// Bytes of the array region.
    pub nbytes: u64,
    /// Data file, relative to the data directory.
    pub file: &'a str,
    /// Where the array starts in `file`.
    pub offset: u64,
    /// Axis names, when registered with them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dims: Option<&'a [String]>,
    /// Attributes, when registered with them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attrs: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// Everything about a region except the map, as read from a header or descriptor.
#[derive(Debug, Clone)]
pub struct Region {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<u64>,
    /// Memory order.
    pub order: Order,
    /// Byte offset of the first element.
    pub offset: u64,
}

impl Dataset {
    /// Builds a dataset over an already mapped file after checking the region fits it.
    ///
    /// # Errors
    /// [`DatasetError::TooShort`] when the region overflows or passes the end of the map, and
    /// also when it does not fit this platform's address space.
    pub fn new(
        name: String,
        file: String,
        abs_path: PathBuf,
        region: Region,
        mapped: MappedFile,
    ) -> Result<Dataset, DatasetError> {
        let file_len = mapped.bytes.len() as u64;
        let nbytes = region.dtype.nbytes(&region.shape);
        let end = nbytes.and_then(|n| n.checked_add(region.offset));
        match end {
            Some(end) if end <= file_len && usize::try_from(end).is_ok() => {}
            _ => {
                return Err(DatasetError::TooShort {
                    path: file,
                    offset: region.offset,
                    needed: nbytes.unwrap_or(u64::MAX),
                    file_len,
                })
            }
        }
        Ok(Dataset {
            name,
            file,
            abs_path,
            dtype: region.dtype,
            shape: region.shape,
            order: region.order,
            offset: region.offset,
            nbytes: nbytes.unwrap_or(0),
            mapped,
            dims: None,
            attrs: None,
        })
    }

    /// The layout the planner walks.
    pub fn layout(&self) -> Layout {
        Layout {
            offset: self.offset,
            shape: self.shape.clone(),
            itemsize: self.dtype.itemsize() as u64,
            order: self.order,
        }
    }

    /// The META object of `GET /v1/datasets/{name}`.
    pub fn meta(&self) -> Meta<'_> {
        Meta {
            name: &self.name,
            dtype: self.dtype.descr(),
            shape: &self.shape,
            order: match self.order {
                Order::C => "C",
                Order::F => "F",
            },
            itemsize: self.dtype.itemsize(),
            nbytes: self.nbytes,
            file: &self.file,
            offset: self.offset,
            dims: self.dims.as_deref(),
            attrs: self.attrs.as_ref(),
        }
    }

    /// Bytes `[offset, offset + len)` of the mapped file as a zero-copy buffer.
    ///
    /// # Panics
    /// If the range passes the end of the map; runs from the planner never do, because the
    /// region was checked against the file length in [`Dataset::new`].
    pub fn slice(&self, offset: u64, len: u64) -> Bytes {
        let start = offset as usize;
        self.mapped.bytes.slice(start..start + len as usize)
    }

    /// Bytes `[offset, offset + len)` of the mapped file, borrowed.
    ///
    /// # Panics
    /// As [`Dataset::slice`].
    pub fn view(&self, offset: u64, len: u64) -> &[u8] {
        let start = offset as usize;
        &self.mapped.bytes[start..start + len as usize]
    }

    /// The identity of the open data file now, by one `fstat`: unlike `mapped.identity`, it
    /// sees a file rewritten in place (the shared map shows the new bytes, so validators must
    /// change too). A file replaced by rename keeps the old inode here, as the map does.
    /// Falls back to the identity at map time when `fstat` fails.
    pub fn identity(&self) -> FileIdentity {
        use std::os::unix::fs::MetadataExt;
        match self.mapped.handle.metadata() {
            Ok(meta) => FileIdentity {
                dev: meta.dev(),
                ino: meta.ino(),
                len: meta.len(),
                mtime: meta.modified().unwrap_or(self.mapped.identity.mtime),
            },
            Err(_) => self.mapped.identity,
        }
    }

    /// Whether a truncation of the file already cost this map pages: the SIGBUS guard
    /// replaced them with zeros (see [`crate::sigbus`]). Readers check it after each step
    /// they copy or reduce, before using the result; once true it stays true.
    pub fn poisoned(&self) -> bool {
        self.mapped.map.poisoned()
    }

    /// [`Dataset::poisoned`] as an error.
    ///
    /// # Errors
    /// `UnexpectedEof` when the map is poisoned.
    pub fn check_poisoned(&self) -> std::io::Result<()> {
        if self.poisoned() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "data file was truncated while mapped; its lost pages read as zeros",
            ));
        }
        Ok(())
    }

    /// Checks that the map is not poisoned and that the file still covers the whole array
    /// region. A file truncated since it was mapped faults on the lost pages (the SIGBUS
    /// guard turns them into zeros and poisons the map), so readers call this before each
    /// chunk to fail early and cheaply.
    ///
    /// # Errors
    /// `UnexpectedEof` when the map is poisoned or the file is now shorter than the region,
    /// or the `fstat` error.
    pub fn check_len(&self) -> std::io::Result<()> {
        self.check_poisoned()?;
        let len = self.mapped.handle.metadata()?.len();
        if len < self.offset + self.nbytes {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("data file shrank to {len} bytes while mapped"),
            ));
        }
        Ok(())
    }

    /// Whether every page of `[offset, offset + len)` is in memory now, so reading it cannot
    /// block on the disk (`mincore(2)`). Errors count as "not resident".
    pub fn is_resident(&self, offset: u64, len: u64) -> bool {
        if len == 0 {
            return true;
        }
        let map_len = self.mapped.map.len() as u64;
        if offset.checked_add(len).is_none_or(|end| end > map_len) {
            return false;
        }
        let page = crate::sigbus::page_size();
        let start = offset as usize / page * page;
        let end = (offset + len) as usize;
        let pages = (end - start).div_ceil(page);
        let mut stack = [0u8; 256];
        let mut heap = Vec::new();
        let vec: &mut [u8] = if pages <= stack.len() {
            &mut stack[..pages]
        } else {
            heap.resize(pages, 0);
            &mut heap
        };
        let base = self.mapped.map.as_ptr();
        #[allow(unsafe_code)]
        // SAFETY: `[start, end)` lies inside the mapping (checked above; `start` only rounds
        // down to a page boundary, which the mapping starts on), `start` is page-aligned, and
        // `vec` has one byte per page of the range, as mincore(2) requires.
        let rc = unsafe {
            libc::mincore(
                base.add(start) as *mut libc::c_void,
                end - start,
                vec.as_mut_ptr(),
            )
        };
        rc == 0 && vec.iter().all(|b| b & 1 == 1)
    }

    /// A copy of `[offset, offset + len)` of the file, read only if every byte is already in
    /// the page cache: `None` when a page would have to come from disk, when the file no
    /// longer covers the range, or off Linux. Never blocks on I/O and never touches the map
    /// (so it cannot fault), which makes it safe to call on an async worker.
    ///
    /// Linux's `preadv2` with `RWF_NOWAIT` (4.14+) returns what is cached and `EAGAIN` for
    /// the rest; filesystems without support answer `EOPNOTSUPP`, which is `None` here too.
    pub fn read_cached(&self, offset: u64, len: u64) -> Option<Bytes> {
        #[cfg(target_os = "linux")]
        {
            use rustix::io::{preadv2, IoSliceMut, ReadWriteFlags};
            let len = usize::try_from(len).ok()?;
            let mut buf = vec![0u8; len];
            let mut filled = 0;
            while filled < len {
                let at = offset + filled as u64;
                let slices = &mut [IoSliceMut::new(&mut buf[filled..])];
                match preadv2(&self.mapped.handle, slices, at, ReadWriteFlags::NOWAIT) {
                    Ok(n) if n > 0 => filled += n,
                    _ => return None,
                }
            }
            Some(Bytes::from(buf))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (offset, len);
            None
        }
    }

    /// Starts reading `[offset, offset + len)` into the page cache without waiting
    /// (`MADV_WILLNEED`): producers call it on the next window while they send this one, so
    /// disk reads overlap the socket writes. A hint: errors are ignored.
    pub fn prefetch(&self, offset: u64, len: u64) {
        let end = (offset.saturating_add(len)).min(self.mapped.map.len() as u64);
        if end > offset {
            let _ = self.mapped.map.advise_range(
                memmap2::Advice::WillNeed,
                offset as usize,
                (end - offset) as usize,
            );
        }
    }

    /// Asks the kernel to read `[offset, offset + len)` of the map into memory now, so the
    /// bytes can be touched without a page fault. Run it off the async workers.
    ///
    /// Linux's `MADV_POPULATE_READ` reports a range past the end of a truncated file as an
    /// error instead of raising SIGBUS, which makes it the check that a run is still backed
    /// by the file (README "Limits and known gaps").
    ///
    /// # Errors
    /// The OS error: `EFAULT` when the file no longer covers the range. `EINVAL` (kernels
    /// before 5.14) is not an error: the hint is skipped.
    pub fn populate(&self, offset: u64, len: u64) -> std::io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        // Start readahead of the whole range first (asynchronous), then wait for it with
        // POPULATE_READ, which alone faults pages in a few at a time.
        self.prefetch(offset, len);
        match self.mapped.map.advise_range(
            memmap2::Advice::PopulateRead,
            offset as usize,
            len as usize,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::registry::Registry;

    #[test]
    fn read_cached_copies_cached_bytes_and_refuses_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        std::fs::write(dir.path().join("r.u1"), &data).unwrap();
        std::fs::write(
            dir.path().join("r.array.json"),
            r#"{"file": "r.u1", "dtype": "|u1", "shape": [10000]}"#,
        )
        .unwrap();
        let (registry, _) = Registry::scan(dir.path()).unwrap();
        let dataset = registry.get("r").unwrap();
        // Just written, so cached; on a kernel or filesystem without RWF_NOWAIT it is `None`.
        if let Some(bytes) = dataset.read_cached(100, 5000) {
            assert_eq!(bytes.as_ref(), &data[100..5100]);
        }
        assert!(dataset.read_cached(9_000, 2_000).is_none());
        assert!(dataset.read_cached(u64::MAX - 1, 1).is_none());
    }
}
