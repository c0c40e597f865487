//! # arrayd
//!
//! An HTTP service that serves slices and aggregates of huge on-disk arrays (NumPy `.npy`
//! files and raw binary files with a JSON descriptor), reading only the pages a request
//! needs and streaming every answer in bounded chunks. The contract is README.md and
//! openapi.yaml.
//!
//! # Layout
//!
//! In the order a request travels:
//!
//! - [`config`]: command line and environment.
//! - [`server`]: the serving loop the binary runs: per-core runtimes, signals, rescans, drain.
//! - [`http`]: connections and their limits, router, the front middleware (request ids,
//!   tokens, shedding, metrics, logs), handlers, the error body, streamed bodies, byte ranges
//!   and cache validators.
//! - [`registry`]: name → dataset, the data-directory scan, the one memory map.
//! - [`registration`]: the descriptor of `POST /v1/datasets`; [`state`]: where registrations
//!   are saved.
//! - [`dataset`]: a named array over one region of one mapped file.
//! - [`sigbus`]: the SIGBUS guard that turns a truncated file's lost pages into a poisoned map.
//! - [`selection`]: `slice=` (NumPy basic indexing) parsed against a shape.
//! - [`plan`]: a selection on a C- or F-order layout → contiguous byte runs.
//! - [`produce`]: runs (or `/raw` byte ranges) read from the map a chunk at a time, with the
//!   read path's I/O policy: file checks, read-ahead, zero-copy slices, the inline paths.
//! - [`encode`]: stored bytes → the bytes of JSON, CSV, bin or npy; content negotiation.
//! - [`reduce`]: runs → aggregates (`/stats`, `/histogram`, `/downsample`), pure and sync.
//! - [`npy`]: `.npy` header parse and write, pure.
//! - [`dtype`]: NumPy type strings; `element`: stored elements decoded from their bytes.
//! - [`zarr`]: the Zarr view's chunk grid, store keys and metadata, pure.
//! - [`convert`]: `arrayd convert`, text tables to `.npy`; [`inspect`]: `arrayd info` and
//!   `arrayd check`.
//! - [`logline`]: the text log line; [`logsink`]: where log lines go, batched off the
//!   serving threads.

pub mod config;
pub mod convert;
pub mod dataset;
pub mod dtype;
pub(crate) mod element;
pub mod encode;
pub mod http;
pub mod inspect;
pub mod logline;
pub mod logsink;
pub mod npy;
pub mod plan;
pub mod produce;
pub mod reduce;
pub mod registration;
pub mod registry;
pub mod rescan;
pub mod selection;
pub mod server;
pub mod sigbus;
pub mod state;
pub mod zarr;

pub use http::Error;
