//! The Zarr view: every dataset as a Zarr array (formats 3 and 2) in one root group, so Zarr
//! readers (zarr-python, xarray, zarrita.js) open the server with no client of ours
//! (README "Zarr").
//!
//! Pure and free of HTTP: [`grid`] picks the chunk shape and maps a chunk to its byte run,
//! [`key`] parses store keys, [`meta`] writes the metadata documents and [`listing`] the HTML
//! listings. The handler in `http` serves chunks through the same producer as `/raw`.

pub mod grid;
pub mod key;
pub mod listing;
pub mod meta;

/// Default target size of one chunk, in bytes: a chunk is near this size unless the array is
/// smaller (README "Zarr" gives the reasoning: large enough that per-request costs vanish
/// behind the bytes, small enough that a reader's slices fetch little they do not need).
pub const DEFAULT_CHUNK_BYTES: u64 = 4 << 20;
