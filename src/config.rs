//! Command line and environment: one `clap` struct per subcommand, each flag with an
//! `ARRAYD_*` environment fallback (README "Configuration").
//!
//! Running the binary with no subcommand is `serve` with every default, so `cargo run --release`
//! serves `./data` on `127.0.0.1:8080`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Default bound of one streamed body chunk, in bytes. Chosen by the `bench/run` sweep of
/// `--chunk-bytes` (README "Performance"): larger chunks stop paying once they exceed the
/// socket buffer, smaller ones cost a channel hop each.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// arrayd: serve slices and aggregates of huge on-disk arrays over HTTP.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `serve` with the flags below when absent.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// `serve`'s flags, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: Config,

    /// Log filter in `RUST_LOG` syntax (e.g. `info`, `arrayd=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "ARRAYD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the datasets of a data directory over HTTP.
    Serve(Config),
    /// Convert a CSV, TSV or whitespace-separated text table to a `.npy` file, as
    /// `np.save(OUTPUT, np.loadtxt(INPUT, ...))` would write it, in one streaming pass.
    Convert(ConvertArgs),
    /// Print the META the server would register for one file, or why it would skip it
    /// (exit status 1).
    Info(InfoArgs),
    /// Scan a data directory as `serve` would and list what it would serve and skip, with
    /// reasons; exit status 1 when anything would be skipped.
    Check(CheckArgs),
}

/// `arrayd convert INPUT OUTPUT`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConvertArgs {
    /// Text file to read; `-` reads standard input.
    pub input: PathBuf,
    /// The `.npy` file to write (replaced when the conversion succeeds).
    pub output: PathBuf,
    /// Element type: f2, f4, f8, i1..i8, u1..u8, b1 (native little-endian), a NumPy name
    /// (float32, uint8, bool) or a type string with byte order (>f4). As `loadtxt`, f8.
    #[arg(long, default_value = "f8", value_parser = crate::convert::parse_dtype)]
    pub dtype: crate::dtype::DType,
    /// Field delimiter, one character (`\t` for a tab); by default runs of whitespace.
    #[arg(long, value_parser = crate::convert::parse_delimiter)]
    pub delimiter: Option<u8>,
    /// Physical lines to skip first, comment and blank lines included.
    #[arg(long, default_value_t = 0)]
    pub skip_rows: u64,
    /// Columns to keep, 0-based, comma-separated, negative from the end (`0,3,-1`).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub usecols: Option<Vec<i64>>,
    /// Comment marker: the rest of a line from it is ignored; empty for none.
    #[arg(long, default_value = "#")]
    pub comments: String,
    /// Parsing threads; 0: one per core.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// `arrayd info PATH`.
#[derive(Debug, Clone, clap::Args)]
pub struct InfoArgs {
    /// A `.npy` file or an `.array.json` descriptor.
    pub path: PathBuf,
    /// The data directory the file would be served from, which fixes its dataset name and
    /// where a descriptor's data file may be; by default the file's own directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// `arrayd check DIR`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The data directory.
    #[arg(env = "ARRAYD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Directory of the registrations made over HTTP, checked too (as `serve --state-dir`).
    #[arg(long, env = "ARRAYD_STATE_DIR", default_value = ".arrayd")]
    pub state_dir: PathBuf,
    /// One JSON object (`datasets`, `skipped`) instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Everything `serve` needs: one struct, shared read-only by every request.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Directory scanned recursively for `*.npy` files and `*.array.json` descriptors.
    #[arg(long, env = "ARRAYD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Address to listen on.
    #[arg(long, env = "ARRAYD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Upper bound of one streamed body chunk, in bytes; the server holds a few chunks per
    /// response at most, so this bounds memory per slow client.
    #[arg(long, env = "ARRAYD_CHUNK_BYTES", default_value_t = DEFAULT_CHUNK_BYTES,
          value_parser = clap::value_parser!(usize))]
    pub chunk_bytes: usize,

    /// Threads serving requests, each with its own single-threaded runtime and listening
    /// socket (`SO_REUSEPORT`); 0 means one per core. Blocking work (page faults, encoding,
    /// reductions) runs on separate blocking threads either way.
    #[arg(long, env = "ARRAYD_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Memory-access hints: each long run is read ahead a few chunks at a time
    /// (`MADV_WILLNEED`) and faulted in (`MADV_POPULATE_READ`) on the producer thread before
    /// hyper writes it or the encoder reads it. `off` leaves everything to the kernel's page
    /// faults. README "Performance" shows what they buy on cold data.
    #[arg(long, env = "ARRAYD_MADVISE", default_value = "on", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub madvise: bool,

    /// Longest accepted request target (path and query), in bytes; longer ones get 414.
    #[arg(long, env = "ARRAYD_MAX_URI_BYTES", default_value_t = 8192)]
    pub max_uri_bytes: usize,

    /// Requests in progress at once, across all serving threads; a request counts until its
    /// whole body is sent (streams included). Past it, requests get `503` with `Retry-After`
    /// at once instead of queueing; `/healthz` and `/readyz` are never refused.
    #[arg(long, env = "ARRAYD_MAX_CONCURRENT", default_value_t = 16_384)]
    pub max_concurrent: usize,

    /// Time allowed to produce a response head, in seconds (bodies stream without a bound).
    #[arg(long, env = "ARRAYD_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub request_timeout_secs: u64,

    /// Time SIGTERM waits for in-flight requests before exiting, in seconds.
    #[arg(long, env = "ARRAYD_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Directory of the registrations made over HTTP (`datasets/NAME.json`, one file each).
    /// Never inside the data directory, which may be read-only; replicas may share it.
    #[arg(long, env = "ARRAYD_STATE_DIR", default_value = ".arrayd")]
    pub state_dir: PathBuf,

    /// Rescan the data directory and the registrations every this many seconds; 0: only on
    /// SIGHUP and `POST /v1/admin/rescan`.
    #[arg(long, env = "ARRAYD_RESCAN_SECS", default_value_t = 0)]
    pub rescan_secs: u64,

    /// Bearer token every `/v1` read needs; open when unset.
    #[arg(long, env = "ARRAYD_READ_TOKEN", hide_env_values = true)]
    pub read_token: Option<String>,

    /// File holding the read token (one line; a trailing newline is ignored).
    #[arg(long, env = "ARRAYD_READ_TOKEN_FILE", conflicts_with = "read_token")]
    pub read_token_file: Option<PathBuf>,

    /// Bearer token of `POST`/`DELETE` (registration, rescans); without one they answer 403.
    #[arg(long, env = "ARRAYD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// File holding the admin token (one line; a trailing newline is ignored).
    #[arg(long, env = "ARRAYD_ADMIN_TOKEN_FILE", conflicts_with = "admin_token")]
    pub admin_token_file: Option<PathBuf>,

    /// Origins allowed to call the API from a browser (CORS); repeat the flag or separate
    /// with commas; `*` allows any. None by default.
    #[arg(long, env = "ARRAYD_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,

    /// Largest request body, in bytes (413 past it).
    #[arg(long, env = "ARRAYD_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Largest request head (request line and headers), in bytes (431 past it).
    #[arg(long, env = "ARRAYD_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Time a client has to send a whole request head once it started one, in seconds;
    /// then the connection is closed (slowloris).
    #[arg(long, env = "ARRAYD_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Time an idle keep-alive connection stays open, in seconds.
    #[arg(long, env = "ARRAYD_KEEP_ALIVE_SECS", default_value_t = 60)]
    pub keep_alive_secs: u64,

    /// Time a client may accept no byte of an answer before the connection is cut, in
    /// seconds; a slow reader that keeps taking bytes is never cut.
    #[arg(long, env = "ARRAYD_SEND_TIMEOUT_SECS", default_value_t = 60)]
    pub send_timeout_secs: u64,

    /// Target size of one chunk of the Zarr view (`/zarr`), in bytes: each dataset's chunk
    /// shape is chosen so that a chunk is near this size (README "Zarr").
    #[arg(long, env = "ARRAYD_ZARR_CHUNK_BYTES", default_value_t = crate::zarr::DEFAULT_CHUNK_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub zarr_chunk_bytes: u64,
}

impl Config {
    /// A configuration for `data_dir` with every other field at its default, ignoring the
    /// environment, and a state directory of its own under the system's temporary directory
    /// (so tests never share registrations); tests and benches use it.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            madvise: true,
            threads: 0,
            max_uri_bytes: 8192,
            max_concurrent: 16_384,
            request_timeout_secs: 60,
            shutdown_grace_secs: 30,
            state_dir: data_dir_state(),
            rescan_secs: 0,
            read_token: None,
            read_token_file: None,
            admin_token: None,
            admin_token_file: None,
            cors_origin: Vec::new(),
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            header_read_timeout_secs: 10,
            keep_alive_secs: 60,
            send_timeout_secs: 60,
            zarr_chunk_bytes: crate::zarr::DEFAULT_CHUNK_BYTES,
        }
    }
}

/// A state directory no other `for_data_dir` configuration of any process uses.
fn data_dir_state() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("arrayd-state-{}-{n}", std::process::id()))
}
