//! Encoders: the stored bytes of a selection, in output order, turned into the bytes of one
//! of the `/data` formats (README "API"), plus content negotiation.
//!
//! An [`Encoder`] is pure: it is handed whole elements as stored and appends its format's
//! bytes to a buffer. Reading the file (which runs, when, with which checks and read-ahead)
//! is the producer's ([`crate::produce`]); `bin` and `npy` tell it the stored bytes pass
//! through, so it sends long runs as slices of the map without copying them.

mod bin;
mod negotiate;
pub mod number;
mod text;

use crate::dtype::DType;

pub use negotiate::{negotiate, FormatError};
pub use number::Style;

/// A `/data` response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Nested lists; the default.
    Json,
    /// One row a line.
    Csv,
    /// Raw bytes of the elements, as stored.
    Bin,
    /// A `.npy` file.
    Npy,
}

impl Format {
    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Bin => "application/octet-stream",
            Format::Npy => "application/x-npy",
        }
    }

    /// The `format=` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Bin => "bin",
            Format::Npy => "npy",
        }
    }
}

/// A `/data` body's encoding, fixed before its head goes out.
#[derive(Debug, Clone)]
pub struct Output {
    /// The format.
    pub format: Format,
    /// The stored element type.
    pub dtype: DType,
    /// The selection's output shape.
    pub shape: Vec<u64>,
    /// Spelling of non-finite values in JSON (`Style::JsonNull` or `Style::JsonString`).
    pub json_style: Style,
}

impl Output {
    /// The exact body length for `bin` and `npy` (whose sizes are known before the first
    /// byte); `None` for the text formats.
    pub fn content_length(&self) -> Option<u64> {
        match self.format {
            Format::Bin => Some(self.data_bytes()),
            Format::Npy => Some(self.npy_header().len() as u64 + self.data_bytes()),
            Format::Json | Format::Csv => None,
        }
    }

    /// About how long the body is: exact for `bin` and `npy`, an upper estimate for text.
    pub fn size_estimate(&self) -> u64 {
        match self.format {
            Format::Bin | Format::Npy => self.content_length().unwrap_or(0),
            // Text is at most ~25 bytes an element (a complex128 in JSON is more; it is rare).
            Format::Json | Format::Csv => self.n_elems().saturating_mul(25),
        }
    }

    /// The encoder of the body.
    pub fn encoder(&self) -> Box<dyn Encoder> {
        match self.format {
            Format::Bin => Box::new(bin::Stored::new(Vec::new())),
            Format::Npy => Box::new(bin::Stored::new(self.npy_header())),
            Format::Json => text::encoder(self.dtype, &self.shape, self.json_style),
            Format::Csv => text::encoder(self.dtype, &self.shape, Style::Csv),
        }
    }

    fn n_elems(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Bytes of the selected elements as stored.
    fn data_bytes(&self) -> u64 {
        self.n_elems() * self.dtype.itemsize() as u64
    }

    fn npy_header(&self) -> Vec<u8> {
        crate::npy::write_header(self.dtype, &self.shape)
    }
}

/// Turns stored bytes into a format's bytes, resumably: the producer hands it a bounded
/// slice at a time and keeps the chunks it appends to bounded.
pub trait Encoder: Send {
    /// True when the format is the stored bytes themselves, after what [`Encoder::open`]
    /// writes: the producer then copies or slices them without calling [`Encoder::encode`].
    fn is_stored(&self) -> bool;
    /// Most stored bytes handed to one [`Encoder::encode`]: a whole number of elements.
    fn step_bytes(&self) -> u64;
    /// Appends what comes before the first element.
    fn open(&mut self, out: &mut Vec<u8>);
    /// Appends the encoding of `stored`: whole elements, the next ones in output order.
    fn encode(&mut self, stored: &[u8], out: &mut Vec<u8>);
    /// Appends what comes after the last element, a bounded amount per call; true once it
    /// is all written.
    fn close(&mut self, out: &mut Vec<u8>) -> bool;
}
