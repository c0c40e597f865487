//! End-to-end tests: each starts the real server on an ephemeral port over a temporary data
//! directory and talks HTTP to it with reqwest.

mod helpers;

/// Tokens, CORS, compression.
mod access;
/// Head size, head and idle timeouts, shedding, send timeout.
mod limits;
/// `/metrics`, request ids, the drain, the binary's logs.
mod ops;

/// `arrayd convert`, `info` and `check`, the real binary against NumPy.
mod convert;

/// `kill -9` during registrations and deletions, the real binary restarted.
mod crash;

/// `/data`: formats, negotiation, errors, streaming.
mod data;
/// Datasets discovery and META.
mod datasets;
/// The explorer page at `/`, and in headless Chromium.
mod explorer;
/// NumPy as ground truth, through the project's venv.
mod numpy;
/// `/raw`: byte ranges, multipart, validators and conditional requests, real curl.
mod raw;
/// `POST` and `DELETE /v1/datasets`: registrations and the state directory.
mod registration;
/// Data files truncated while mapped (README "Limits and known gaps").
mod reliability;
/// Rescans: SIGHUP and `POST /v1/admin/rescan`.
mod rescan;
/// Stalled clients hold no thread and block nothing.
mod slow_clients;
/// `/stats`, `/histogram`, `/downsample`.
mod stats;
/// `/zarr`: zarr-python, xarray and zarrita.js, and the raw HTTP of the Zarr view.
mod zarr;
