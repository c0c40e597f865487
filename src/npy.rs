//! The `.npy` header: parse it when a dataset is registered, write it for `format=npy` answers.
//!
//! A `.npy` file is the magic string, a two-byte version, a little-endian header length (`u16`
//! for version 1.0, `u32` for 2.0 and 3.0), a Python dict literal naming `descr`,
//! `fortran_order` and `shape`, and then the array data. [`parse_header`] turns a prefix of such
//! a file into a [`Header`] whose `data_offset` is the dataset's `offset` (README "Datasets"),
//! and [`write_header`] produces the header of the `npy` format of README "API" byte for byte as NumPy's
//! `np.save` would.
//!
//! This module is pure: it reads and writes byte slices and never touches a file. It does not
//! check that a file is long enough for its shape; the dataset loader compares the file length
//! with `data_offset + nbytes` (see [`DType::nbytes`]).
//!
//! The dict is read with a small parser for the Python literals NumPy's own reader
//! (`numpy/lib/_format_impl.py`, `_read_array_header`) accepts in practice: single or double
//! quotes, any whitespace, keys in any order, trailing commas, and the `L` suffix of Python 2
//! writers (versions 1.0 and 2.0 only, as in NumPy). The header text is expected to end in
//! `'\n'`, but like NumPy the reader does not insist on it.

use crate::dtype::{DType, DTypeError};

/// The six bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The largest header (the `len` field: dict text plus padding) [`parse_header`] accepts.
///
/// NumPy's `np.load` refuses dicts over 10,000 characters by default (`max_header_size`); the
/// longest header NumPy itself writes (64 dimensions of 20 digits) is about 1.5 KiB. The limit
/// bounds what a caller reads into memory before [`parse_header`] can judge the header.
pub const MAX_HEADER_LEN: u64 = 1 << 20;

/// The most dimensions a shape may have: NumPy 2's `NPY_MAXDIMS`, so every header this module
/// accepts describes an array NumPy can create.
pub const MAX_NDIM: usize = 64;

/// NumPy pads the header so that the data starts on a multiple of this many bytes
/// (`ARRAY_ALIGN`). If this changes, update the docs of [`write_header`].
const HEADER_DIVISOR: usize = 64;

/// Recent NumPy (checked against 2.4.6) leaves room after the dict for the growth axis (the first for C order) to
/// reach this many digits, so that a header can be rewritten in place when an array grows
/// (`GROWTH_AXIS_MAX_DIGITS`). Copied so that [`write_header`] matches `np.save` byte for byte.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// How deeply lists, tuples and dicts may nest inside the header dict; bounds the parser's
/// recursion on hostile input. A structured `descr` nests three levels per sub-structure.
const MAX_NESTING: usize = 32;

/// Longest piece of header text quoted in an error message.
const MAX_QUOTE_CHARS: usize = 64;

/// What a `.npy` header says about its array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Element type and byte order (`descr`).
    pub dtype: DType,
    /// True when the data is in Fortran (column-major) order; the planner walks axes
    /// accordingly.
    pub fortran_order: bool,
    /// Length of each axis; empty for a 0-d array. Its element count times `itemsize` is known
    /// not to overflow (see [`DType::nbytes`]).
    pub shape: Vec<u64>,
    /// File offset where the array data begins: the total header length, which is the
    /// dataset's `offset` in META.
    pub data_offset: u64,
}

/// Why a byte prefix is not a `.npy` header arrayd can serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpyError {
    /// The first six bytes are not [`MAGIC`].
    #[error("not a .npy file: it does not start with the \\x93NUMPY magic string")]
    MagicString,
    /// A format version other than 1.0, 2.0 and 3.0.
    #[error("unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are read)")]
    Version {
        /// First version byte.
        major: u8,
        /// Second version byte.
        minor: u8,
    },
    /// The prefix given ends before the header does; read `needed` bytes and try again.
    #[error("the .npy header needs {needed} bytes but only {got} were given")]
    Truncated {
        /// Bytes from the start of the file needed to go on (at least the whole header when
        /// its length is known).
        needed: u64,
        /// Bytes given.
        got: u64,
    },
    /// The header length field is over [`MAX_HEADER_LEN`] (when parsing), or the header does
    /// not fit the length field of the chosen version (when writing).
    #[error("the .npy header length {0} is too large")]
    HeaderLengthOverflow(u64),
    /// A version 3.0 header that is not UTF-8.
    #[error("the .npy header is not valid UTF-8 (byte {offset} of the file)")]
    NotUtf8 {
        /// File offset of the first invalid byte.
        offset: u64,
    },
    /// The header text is not a Python dict literal.
    #[error("malformed .npy header at byte {offset}: {message}")]
    Syntax {
        /// File offset where the problem was found.
        offset: u64,
        /// What was expected or found there.
        message: String,
    },
    /// One of `descr`, `fortran_order` and `shape` is absent.
    #[error("the .npy header has no {0:?} key")]
    MissingKey(&'static str),
    /// A key other than `descr`, `fortran_order` and `shape`, which NumPy also rejects.
    #[error("unknown key {0} in the .npy header")]
    UnknownKey(String),
    /// A key given twice (Python would keep the last; we refuse the ambiguity).
    #[error("key {0:?} appears twice in the .npy header")]
    DuplicateKey(String),
    /// A value of the wrong kind: `fortran_order` not `True`/`False`, `shape` not a tuple of
    /// integers, `descr` neither a string nor a list.
    #[error("illegal value for {key:?} in the .npy header: {value}")]
    IllegalValue {
        /// The key whose value is wrong.
        key: String,
        /// The value as written in the header (shortened if long).
        value: String,
    },
    /// A `descr` outside the dtype list in README "Datasets", structured dtypes included.
    #[error(transparent)]
    UnsupportedDtype(DTypeError),
    /// A negative entry in `shape`.
    #[error("axis {axis} of the shape is negative: {value}")]
    NegativeDim {
        /// Position of the entry in `shape`.
        axis: usize,
        /// The entry as written.
        value: String,
    },
    /// An entry in `shape` that does not fit in a `u64`.
    #[error("axis {axis} of the shape does not fit in 64 bits: {value}")]
    DimOverflow {
        /// Position of the entry in `shape`.
        axis: usize,
        /// The entry as written.
        value: String,
    },
    /// More than [`MAX_NDIM`] dimensions.
    #[error("the shape has {0} dimensions, more than NumPy's limit of {MAX_NDIM}")]
    TooManyDims(usize),
    /// The array would hold more than `i64::MAX` bytes, NumPy's limit (see [`DType::nbytes`]).
    #[error("an array of shape {shape:?} with itemsize {itemsize} is too big")]
    NbytesOverflow {
        /// The shape as parsed.
        shape: Vec<u64>,
        /// Bytes per element of the dtype.
        itemsize: usize,
    },
}

/// Format versions arrayd reads; they differ in the width of the length field and the text
/// encoding of the dict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// 1.0: `u16` length, latin-1 text.
    V1,
    /// 2.0: `u32` length, latin-1 text (NumPy >= 1.9).
    V2,
    /// 3.0: `u32` length, UTF-8 text (NumPy >= 1.17).
    V3,
}

impl Version {
    /// Bytes before the dict text: magic, version and length field.
    fn prefix_len(self) -> usize {
        match self {
            Version::V1 => 10,
            Version::V2 | Version::V3 => 12,
        }
    }

    fn major(self) -> u8 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// Reads magic, version and length field: the version and the total header length.
fn parse_prefix(prefix: &[u8]) -> Result<(Version, u64), NpyError> {
    let got = prefix.len() as u64;
    let n_magic = prefix.len().min(MAGIC.len());
    if prefix[..n_magic] != MAGIC[..n_magic] {
        return Err(NpyError::MagicString);
    }
    let [_, _, _, _, _, _, major, minor, rest @ ..] = prefix else {
        return Err(NpyError::Truncated { needed: 10, got });
    };
    let version = match (major, minor) {
        (1, 0) => Version::V1,
        (2, 0) => Version::V2,
        (3, 0) => Version::V3,
        _ => {
            return Err(NpyError::Version {
                major: *major,
                minor: *minor,
            })
        }
    };
    let header_len = match (version, rest) {
        (Version::V1, [a, b, ..]) => u64::from(u16::from_le_bytes([*a, *b])),
        (Version::V2 | Version::V3, [a, b, c, d, ..]) => {
            u64::from(u32::from_le_bytes([*a, *b, *c, *d]))
        }
        _ => {
            return Err(NpyError::Truncated {
                needed: version.prefix_len() as u64,
                got,
            })
        }
    };
    if header_len > MAX_HEADER_LEN {
        return Err(NpyError::HeaderLengthOverflow(header_len));
    }
    Ok((version, version.prefix_len() as u64 + header_len))
}

/// The total header length (magic, version, length field and dict), which is where the data
/// begins, from the first 10 to 12 bytes of a file.
///
/// ```
/// use arrayd::npy::{header_len_hint, NpyError};
/// assert_eq!(header_len_hint(b"\x93NUMPY\x01\x00\x76\x00"), Ok(128));
/// assert_eq!(header_len_hint(b"\x93NUMPY\x02\x00\x74\x00"),
///            Err(NpyError::Truncated { needed: 12, got: 10 }));
/// ```
///
/// # Errors
/// [`NpyError::Truncated`] when `prefix` is too short to tell (read `needed` bytes and call
/// again); [`NpyError::MagicString`], [`NpyError::Version`] and
/// [`NpyError::HeaderLengthOverflow`] as for [`parse_header`].
pub fn header_len_hint(prefix: &[u8]) -> Result<u64, NpyError> {
    parse_prefix(prefix).map(|(_, data_offset)| data_offset)
}

/// Parses the header at the start of `bytes`, a prefix of a `.npy` file.
///
/// `bytes` may hold more than the header (the whole file, say); if it holds less, the answer is
/// [`NpyError::Truncated`] with the number of bytes to read before trying again. Reading 4 KiB
/// first is enough for every header NumPy writes.
///
/// The text after the dict may be any whitespace; NumPy writes spaces and a final `'\n'` but, like
/// NumPy's reader, this one does not require the `'\n'`.
///
/// ```
/// use arrayd::dtype::DType;
/// use arrayd::npy::{parse_header, write_header};
/// let bytes = write_header(DType::parse("<f4").unwrap(), &[3, 4]);
/// let header = parse_header(&bytes).unwrap();
/// assert_eq!((header.shape, header.fortran_order, header.data_offset), (vec![3, 4], false, 128));
/// ```
///
/// # Errors
/// One [`NpyError`] variant per failure: a missing magic string, an unknown version, a short
/// prefix, a header over [`MAX_HEADER_LEN`], bad text, missing, unknown or duplicate keys, a
/// `descr` outside README's dtypes ([`NpyError::UnsupportedDtype`], structured ones included),
/// negative or oversized dimensions, more than [`MAX_NDIM`] of them, and arrays whose byte size
/// overflows.
pub fn parse_header(bytes: &[u8]) -> Result<Header, NpyError> {
    let (version, data_offset) = parse_prefix(bytes)?;
    let got = bytes.len() as u64;
    if got < data_offset {
        return Err(NpyError::Truncated {
            needed: data_offset,
            got,
        });
    }
    let start = version.prefix_len();
    // data_offset <= got, and got came from a usize.
    let end =
        usize::try_from(data_offset).map_err(|_| NpyError::HeaderLengthOverflow(data_offset))?;
    let text = &bytes[start..end];
    if version == Version::V3 {
        if let Err(e) = std::str::from_utf8(text) {
            return Err(NpyError::NotUtf8 {
                offset: (start + e.valid_up_to()) as u64,
            });
        }
    }
    let mut parser = Parser {
        text,
        base: start as u64,
        pos: 0,
        version,
    };
    let fields = parser.header_dict()?;

    let dtype = match &fields.descr.lit {
        Lit::Str(s) => DType::parse(s).map_err(NpyError::UnsupportedDtype)?,
        Lit::List => {
            return Err(NpyError::UnsupportedDtype(DTypeError {
                descr: parser.quote(&fields.descr),
                reason: "structured dtypes (a list of fields) are not served",
            }))
        }
        _ => return Err(parser.illegal("descr", &fields.descr)),
    };
    let fortran_order = match parser.span_text(&fields.fortran_order) {
        b"True" => true,
        b"False" => false,
        _ => return Err(parser.illegal("fortran_order", &fields.fortran_order)),
    };
    let Lit::Tuple(items) = &fields.shape.lit else {
        return Err(parser.illegal("shape", &fields.shape));
    };
    if items.len() > MAX_NDIM {
        return Err(NpyError::TooManyDims(items.len()));
    }
    let mut shape = Vec::with_capacity(items.len());
    for (axis, item) in items.iter().enumerate() {
        let int = match item.lit {
            Lit::Atom => parser.int(item),
            _ => Int::Invalid,
        };
        let dim = match int {
            Int::NonNegative(n) => n,
            Int::Negative => {
                return Err(NpyError::NegativeDim {
                    axis,
                    value: parser.quote(item),
                })
            }
            Int::Overflow => {
                return Err(NpyError::DimOverflow {
                    axis,
                    value: parser.quote(item),
                })
            }
            Int::Invalid => return Err(parser.illegal("shape", &fields.shape)),
        };
        shape.push(dim);
    }
    if dtype.nbytes(&shape).is_none() {
        return Err(NpyError::NbytesOverflow {
            shape,
            itemsize: dtype.itemsize(),
        });
    }
    Ok(Header {
        dtype,
        fortran_order,
        shape,
        data_offset,
    })
}

/// The header of a C-order `.npy` file holding `dtype` elements in `shape`: what `np.save`
/// writes, byte for byte.
///
/// The version is 1.0 unless the header does not fit its `u16` length, then 2.0. The dict is
/// NumPy's (`{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`, with `(5,)` for one
/// dimension and `()` for none), followed by NumPy's spare room for the first axis to grow to
/// 21 digits, then spaces and a final `'\n'` so that the data starts on a multiple of 64 bytes.
///
/// ```
/// use arrayd::dtype::DType;
/// use arrayd::npy::write_header;
/// let bytes = write_header(DType::parse("<f4").unwrap(), &[3, 4]);
/// assert_eq!(bytes.len(), 128);
/// assert!(bytes.starts_with(b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }  "));
/// assert!(bytes.ends_with(b"   \n"));
/// ```
///
/// # Panics
/// If the header is over 4 GiB, which takes a shape of hundreds of millions of dimensions.
/// Shapes from [`parse_header`] have at most [`MAX_NDIM`].
pub fn write_header(dtype: DType, shape: &[u64]) -> Vec<u8> {
    write_header_version(dtype, shape, Version::V1)
        .or_else(|_| write_header_version(dtype, shape, Version::V2))
        .expect("a .npy header longer than u32::MAX bytes")
}

/// [`write_header`] with a chosen version; [`NpyError::HeaderLengthOverflow`] when the header
/// does not fit the version's length field.
fn write_header_version(
    dtype: DType,
    shape: &[u64],
    version: Version,
) -> Result<Vec<u8>, NpyError> {
    let shape_text = match shape {
        [] => "()".to_owned(),
        [dim] => format!("({dim},)"),
        [first, rest @ ..] => {
            let mut text = format!("({first}");
            for dim in rest {
                text.push_str(&format!(", {dim}"));
            }
            text.push(')');
            text
        }
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        dtype.descr()
    );
    if let Some(first) = shape.first() {
        let growth = GROWTH_AXIS_MAX_DIGITS.saturating_sub(first.to_string().len());
        dict.extend(std::iter::repeat_n(' ', growth));
    }
    // NumPy's `_wrap_header`: the padding is 1 to 64 spaces (never 0), then '\n'.
    let prefix_len = version.prefix_len();
    let text_len = dict.len() + 1;
    let pad = HEADER_DIVISOR - (prefix_len + text_len) % HEADER_DIVISOR;
    let header_len = text_len + pad;
    let mut out = Vec::with_capacity(prefix_len + header_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version.major(), 0]);
    let overflow = || NpyError::HeaderLengthOverflow(header_len as u64);
    match version {
        Version::V1 => {
            let len = u16::try_from(header_len).map_err(|_| overflow())?;
            out.extend_from_slice(&len.to_le_bytes());
        }
        Version::V2 | Version::V3 => {
            let len = u32::try_from(header_len).map_err(|_| overflow())?;
            out.extend_from_slice(&len.to_le_bytes());
        }
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    Ok(out)
}

/// A Python literal in the header text, with its byte span in the text.
#[derive(Debug)]
struct Node {
    lit: Lit,
    start: usize,
    end_exc: usize,
}

/// The kinds of Python literal the reader tells apart; anything else is a syntax error.
#[derive(Debug)]
enum Lit {
    /// A quoted string, decoded.
    Str(String),
    /// A bare word or number (`True`, `12`, `3L`, `-1`, `1.5`); judged by its text.
    Atom,
    /// `(a, b)`, `(a,)` or `()`; `(a)` is `a`, as in Python.
    Tuple(Vec<Node>),
    /// `[a, b]`, kept only to refuse structured `descr` values clearly.
    List,
    /// A nested `{...}`, accepted by the grammar and refused by the key checks.
    Dict,
}

/// An integer entry of `shape`, as Python reads it.
enum Int {
    NonNegative(u64),
    Negative,
    Overflow,
    Invalid,
}

/// The three values of the header dict.
struct Fields {
    descr: Node,
    fortran_order: Node,
    shape: Node,
}

/// A recursive-descent reader of the header dict.
struct Parser<'a> {
    /// The dict text: everything between the length field and `data_offset`.
    text: &'a [u8],
    /// File offset of `text[0]`, for error positions.
    base: u64,
    pos: usize,
    version: Version,
}

impl Parser<'_> {
    fn syntax(&self, message: impl Into<String>) -> NpyError {
        NpyError::Syntax {
            offset: self.base + self.pos as u64,
            message: message.into(),
        }
    }

    fn illegal(&self, key: &str, node: &Node) -> NpyError {
        NpyError::IllegalValue {
            key: key.to_owned(),
            value: self.quote(node),
        }
    }

    fn span_text(&self, node: &Node) -> &[u8] {
        &self.text[node.start..node.end_exc]
    }

    /// Decodes text as the version's encoding says (latin-1 or UTF-8).
    fn decode(&self, bytes: &[u8]) -> String {
        match self.version {
            Version::V1 | Version::V2 => bytes.iter().map(|&b| char::from(b)).collect(),
            Version::V3 => String::from_utf8_lossy(bytes).into_owned(),
        }
    }

    /// The node's text for an error message, shortened to [`MAX_QUOTE_CHARS`].
    fn quote(&self, node: &Node) -> String {
        let text = self.decode(self.span_text(node));
        if text.chars().count() > MAX_QUOTE_CHARS {
            let mut short: String = text.chars().take(MAX_QUOTE_CHARS).collect();
            short.push_str("...");
            short
        } else {
            text
        }
    }

    /// Python's reading of an atom as an integer: optional sign, decimal digits, no leading
    /// zeros unless all zeros, and the `L` suffix of Python 2 in versions 1.0 and 2.0 (NumPy
    /// retries those with `_filter_header`). Underscores, hex and octal are not accepted.
    fn int(&self, node: &Node) -> Int {
        let mut text = self.span_text(node);
        let mut negative = false;
        if let [sign @ (b'+' | b'-'), rest @ ..] = text {
            negative = *sign == b'-';
            text = rest;
        }
        if self.version != Version::V3 {
            if let [rest @ .., b'L' | b'l'] = text {
                text = rest;
            }
        }
        let all_zero = text.iter().all(|&b| b == b'0');
        if text.is_empty() || !text.iter().all(u8::is_ascii_digit) || (text[0] == b'0' && !all_zero)
        {
            return Int::Invalid;
        }
        if negative && !all_zero {
            return Int::Negative;
        }
        text.iter()
            .try_fold(0u64, |acc, &b| {
                acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
            })
            .map_or(Int::Overflow, Int::NonNegative)
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    /// Skips Python whitespace; newlines are whitespace inside brackets.
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8, context: &str) -> Result<(), NpyError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(context))
        }
    }

    fn unexpected(&self, context: &str) -> NpyError {
        match self.peek() {
            None => self.syntax(format!("header ends {context}")),
            Some(b) => self.syntax(format!("unexpected {:?} {context}", char::from(b))),
        }
    }

    /// The top-level dict, its keys checked as they come.
    fn header_dict(&mut self) -> Result<Fields, NpyError> {
        self.expect(b'{', "where the header dict should start")?;
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                break;
            }
            let key = self.value(1)?;
            let slot = match &key.lit {
                Lit::Str(name) if name == "descr" => &mut descr,
                Lit::Str(name) if name == "fortran_order" => &mut fortran_order,
                Lit::Str(name) if name == "shape" => &mut shape,
                _ => return Err(NpyError::UnknownKey(self.quote(&key))),
            };
            if slot.is_some() {
                return Err(NpyError::DuplicateKey(self.decode(self.span_text(&key))));
            }
            self.expect(b':', "after a key")?;
            *slot = Some(self.value(1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.unexpected("after a value (expected ',' or '}')")),
            }
        }
        self.skip_ws();
        if self.pos != self.text.len() {
            return Err(self.unexpected("after the header dict"));
        }
        Ok(Fields {
            descr: descr.ok_or(NpyError::MissingKey("descr"))?,
            fortran_order: fortran_order.ok_or(NpyError::MissingKey("fortran_order"))?,
            shape: shape.ok_or(NpyError::MissingKey("shape"))?,
        })
    }

    /// One literal; `depth` counts the brackets around it.
    fn value(&mut self, depth: usize) -> Result<Node, NpyError> {
        if depth > MAX_NESTING {
            return Err(self.syntax(format!("brackets nested deeper than {MAX_NESTING}")));
        }
        self.skip_ws();
        let start = self.pos;
        let lit = match self.peek() {
            Some(b'\'' | b'"') => self.string()?,
            // Python 2 writers may have written u'...' strings; Python 3 still reads them.
            Some(b'u' | b'U') if matches!(self.text.get(self.pos + 1), Some(b'\'' | b'"')) => {
                self.pos += 1;
                self.string()?
            }
            Some(b'(') => {
                let (mut items, trailing_comma) = self.sequence(b')', depth)?;
                if items.len() == 1 && !trailing_comma {
                    // Parentheses around one value only group it.
                    return Ok(items.remove(0));
                }
                Lit::Tuple(items)
            }
            Some(b'[') => {
                self.sequence(b']', depth)?;
                Lit::List
            }
            Some(b'{') => {
                self.nested_dict(depth)?;
                Lit::Dict
            }
            Some(b) if is_atom_byte(b) => {
                while self.peek().is_some_and(is_atom_byte) {
                    self.pos += 1;
                }
                Lit::Atom
            }
            _ => return Err(self.unexpected("where a value should be")),
        };
        Ok(Node {
            lit,
            start,
            end_exc: self.pos,
        })
    }

    /// A quoted string without escapes; `pos` is at the opening quote.
    fn string(&mut self) -> Result<Lit, NpyError> {
        let quote = self.text[self.pos];
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b) if b == quote => break,
                // NumPy never writes escapes, and no valid descr needs one.
                Some(b'\\') => {
                    return Err(self.syntax("escape sequences in strings are not supported"))
                }
                None | Some(b'\n' | b'\r') => return Err(self.syntax("unterminated string")),
                Some(_) => self.pos += 1,
            }
        }
        let text = self.decode(&self.text[start..self.pos]);
        self.pos += 1;
        Ok(Lit::Str(text))
    }

    /// Items of a tuple or list up to `close`, and whether a comma ended them.
    fn sequence(&mut self, close: u8, depth: usize) -> Result<(Vec<Node>, bool), NpyError> {
        self.pos += 1;
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, trailing_comma));
            }
            items.push(self.value(depth + 1)?);
            trailing_comma = false;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    trailing_comma = true;
                }
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok((items, trailing_comma));
                }
                _ => {
                    let context =
                        format!("in a sequence (expected ',' or '{}')", char::from(close));
                    return Err(self.unexpected(&context));
                }
            }
        }
    }

    /// A dict inside a value, checked for syntax and discarded.
    fn nested_dict(&mut self, depth: usize) -> Result<(), NpyError> {
        self.pos += 1;
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(());
            }
            self.value(depth + 1)?;
            self.expect(b':', "after a key")?;
            self.value(depth + 1)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected("in a dict (expected ',' or '}')")),
            }
        }
    }
}

/// Bytes of a bare word or number: `True`, `None`, `3L`, `-1`, `1.5e3`.
fn is_atom_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Headers written by NumPy 2.4.6 (`np.save`, or `np.lib.format.write_array` with
    // `version=`), cut at `data_offset`.

    /// `np.zeros((3, 4), '<f4')`.
    const V1_F4_3X4: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }                                                          \n";
    /// The same, `version=(2, 0)`.
    const V2_F4_3X4: &[u8] = b"\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }                                                        \n";
    /// The same, `version=(3, 0)`.
    const V3_F4_3X4: &[u8] = b"\x93NUMPY\x03\x00t\x00\x00\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }                                                        \n";
    /// `np.zeros((5,), '>i8')`.
    const V1_BE_I8_5: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '>i8', 'fortran_order': False, 'shape': (5,), }                                                            \n";
    /// `np.asfortranarray(np.zeros((2, 3), '<u2'))`.
    const V1_FORTRAN_U2_2X3: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<u2', 'fortran_order': True, 'shape': (2, 3), }                                                           \n";
    /// `np.zeros((), '<f8')`: no growth padding for a 0-d array.
    const V1_SCALAR_F8: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (), }                                                              \n";
    /// `np.zeros((7,), '?')`.
    const V1_BOOL_7: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|b1', 'fortran_order': False, 'shape': (7,), }                                                            \n";
    /// `np.zeros((2, 2, 2), '<f2')`.
    const V1_F2_2X2X2: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2, 2), }                                                       \n";
    /// `np.zeros((0, 3), '<c16')`.
    const V1_C16_0X3: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<c16', 'fortran_order': False, 'shape': (0, 3), }                                                         \n";
    /// `np.zeros((0,), 'u1')`.
    const V1_U1_EMPTY_1D: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (0,), }                                                            \n";
    /// Header for shape `(123456789012, 10, 3)`, `<f4`.
    const V1_BIG_DIMS: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (123456789012, 10, 3), }                                           \n";
    /// Header for shape `(1,) * 15`, `<f4`: the 20 spaces of growth room push it from 128 to
    /// 192 bytes.
    const V1_RANK15_GROWTH: &[u8] = b"\x93NUMPY\x01\x00\xb6\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), }                                                                                   \n";
    /// `np.zeros(2, [('a', '<i4'), ('b', '<f8')])`: structured, refused.
    const V1_STRUCTURED: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': [('a', '<i4'), ('b', '<f8')], 'fortran_order': False, 'shape': (2,), }                                     \n";
    /// Header for shape `(2**64 - 1, 1)`, `|u1`: NumPy writes it, but no array has it.
    const V1_MAX_DIM: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (18446744073709551615, 1), }                                       \n";

    fn dt(descr: &str) -> DType {
        DType::parse(descr).unwrap()
    }

    fn header(descr: &str, fortran_order: bool, shape: &[u64], data_offset: u64) -> Header {
        Header {
            dtype: dt(descr),
            fortran_order,
            shape: shape.to_vec(),
            data_offset,
        }
    }

    /// A version 1.0 file prefix around `dict`, with a correct length field.
    fn v1(dict: &str) -> Vec<u8> {
        with_version(1, dict.as_bytes())
    }

    fn with_version(major: u8, dict: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[major, 0]);
        if major == 1 {
            out.extend_from_slice(&u16::try_from(dict.len()).unwrap().to_le_bytes());
        } else {
            out.extend_from_slice(&u32::try_from(dict.len()).unwrap().to_le_bytes());
        }
        out.extend_from_slice(dict);
        out
    }

    #[test]
    fn parses_numpy_fixtures() {
        let cases: &[(&[u8], Header)] = &[
            (V1_F4_3X4, header("<f4", false, &[3, 4], 128)),
            (V2_F4_3X4, header("<f4", false, &[3, 4], 128)),
            (V3_F4_3X4, header("<f4", false, &[3, 4], 128)),
            (V1_BE_I8_5, header(">i8", false, &[5], 128)),
            (V1_FORTRAN_U2_2X3, header("<u2", true, &[2, 3], 128)),
            (V1_SCALAR_F8, header("<f8", false, &[], 128)),
            (V1_BOOL_7, header("|b1", false, &[7], 128)),
            (V1_F2_2X2X2, header("<f2", false, &[2, 2, 2], 128)),
            (V1_C16_0X3, header("<c16", false, &[0, 3], 128)),
            (V1_U1_EMPTY_1D, header("|u1", false, &[0], 128)),
            (
                V1_BIG_DIMS,
                header("<f4", false, &[123_456_789_012, 10, 3], 128),
            ),
            (V1_RANK15_GROWTH, header("<f4", false, &[1; 15], 192)),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                parse_header(bytes).as_ref(),
                Ok(expected),
                "{}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(header_len_hint(bytes), Ok(expected.data_offset));
            // Data after the header is not looked at.
            let mut file = bytes.to_vec();
            file.extend_from_slice(&[0xff; 100]);
            assert_eq!(parse_header(&file).as_ref(), Ok(expected));
        }
    }

    #[test]
    fn writes_numpy_fixtures_byte_for_byte() {
        let cases: &[(&[u8], &str, &[u64])] = &[
            (V1_F4_3X4, "<f4", &[3, 4]),
            (V1_BE_I8_5, ">i8", &[5]),
            (V1_SCALAR_F8, "<f8", &[]),
            (V1_BOOL_7, "|b1", &[7]),
            (V1_F2_2X2X2, "<f2", &[2, 2, 2]),
            (V1_C16_0X3, "<c16", &[0, 3]),
            (V1_U1_EMPTY_1D, "|u1", &[0]),
            (V1_BIG_DIMS, "<f4", &[123_456_789_012, 10, 3]),
            (V1_RANK15_GROWTH, "<f4", &[1; 15]),
            (V1_MAX_DIM, "|u1", &[u64::MAX, 1]),
        ];
        for (bytes, descr, shape) in cases {
            let written = write_header(dt(descr), shape);
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(&written, bytes);
        }
        assert_eq!(
            write_header_version(dt("<f4"), &[3, 4], Version::V2).unwrap(),
            V2_F4_3X4
        );
        assert_eq!(
            write_header_version(dt("<f4"), &[3, 4], Version::V3).unwrap(),
            V3_F4_3X4
        );
    }

    #[test]
    fn round_trips_every_dtype_and_many_shapes() {
        let shapes: &[&[u64]] = &[
            &[],
            &[0],
            &[1],
            &[5],
            &[3, 4],
            &[0, 7],
            &[1000, 1000, 1000],
            &[1; 14],
            &[1; 15],
            &[1; 64],
            &[2; 40],
            &[u64::from(u32::MAX), 2],
            &[(1 << 59) - 1],
        ];
        for code in [
            "b1", "i1", "u1", "i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16",
        ] {
            for mark in ['<', '>'] {
                let dtype = dt(&format!("{mark}{code}"));
                for shape in shapes {
                    for version in [Version::V1, Version::V2, Version::V3] {
                        let bytes = write_header_version(dtype, shape, version).unwrap();
                        assert_eq!(bytes.len() % HEADER_DIVISOR, 0);
                        assert_eq!(bytes.last(), Some(&b'\n'));
                        let parsed = parse_header(&bytes).unwrap();
                        assert_eq!(parsed.dtype, dtype);
                        assert!(!parsed.fortran_order);
                        assert_eq!(parsed.shape, *shape);
                        assert_eq!(parsed.data_offset, bytes.len() as u64);
                        assert_eq!(parsed.data_offset % 64, 0);
                    }
                }
            }
        }
    }

    #[test]
    fn switches_to_version_2_when_the_header_outgrows_u16() {
        // "(1, 1, ...)" takes 3 bytes a dimension: 30,000 of them need about 90 KB.
        let shape = vec![1; 30_000];
        let bytes = write_header(dt("<f4"), &shape);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x02\x00");
        assert_eq!(bytes.len() % 64, 0);
        let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        assert_eq!(u64::from(len) + 12, bytes.len() as u64);
        assert_eq!(header_len_hint(&bytes), Ok(bytes.len() as u64));
        assert!(matches!(
            write_header_version(dt("<f4"), &shape, Version::V1),
            Err(NpyError::HeaderLengthOverflow(n)) if n > 65_535
        ));
        // It parses as far as the rank limit.
        assert_eq!(parse_header(&bytes), Err(NpyError::TooManyDims(30_000)));
        // Just under the limit stays 1.0.
        let bytes = write_header(dt("<f4"), &[1; 21_800]);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(bytes.len() % 64, 0);
    }

    #[test]
    fn truncated_prefixes_say_how_much_to_read() {
        for full in [V1_F4_3X4, V2_F4_3X4, V3_F4_3X4, V1_RANK15_GROWTH] {
            for cut in 0..full.len() {
                let got = cut as u64;
                let Err(NpyError::Truncated {
                    needed,
                    got: reported,
                }) = parse_header(&full[..cut])
                else {
                    panic!("prefix of {cut} bytes should be truncated");
                };
                assert_eq!(reported, got);
                assert!(
                    needed > got && needed <= full.len() as u64,
                    "cut {cut}: needed {needed}"
                );
                if cut >= 12 {
                    assert_eq!(needed, full.len() as u64);
                    assert_eq!(header_len_hint(&full[..cut]), Ok(full.len() as u64));
                }
            }
        }
        assert_eq!(
            header_len_hint(b""),
            Err(NpyError::Truncated { needed: 10, got: 0 })
        );
        assert_eq!(
            header_len_hint(b"\x93NUMPY\x01\x00\x76"),
            Err(NpyError::Truncated { needed: 10, got: 9 })
        );
        assert_eq!(
            header_len_hint(b"\x93NUMPY\x03\x00\x76\x00"),
            Err(NpyError::Truncated {
                needed: 12,
                got: 10
            })
        );
    }

    #[test]
    fn refuses_bad_prefixes() {
        assert_eq!(parse_header(b"PK\x03\x04"), Err(NpyError::MagicString));
        assert_eq!(
            parse_header(b"\x93NUMPX\x01\x00"),
            Err(NpyError::MagicString)
        );
        assert_eq!(
            parse_header(b"\x93"),
            Err(NpyError::Truncated { needed: 10, got: 1 })
        );
        assert_eq!(
            parse_header(b"\x93NUMPY\x01\x01\x76\x00"),
            Err(NpyError::Version { major: 1, minor: 1 })
        );
        assert_eq!(
            parse_header(b"\x93NUMPY\x04\x00\x76\x00"),
            Err(NpyError::Version { major: 4, minor: 0 })
        );
        assert_eq!(
            parse_header(b"\x93NUMPY\x02\x00\xff\xff\xff\xff"),
            Err(NpyError::HeaderLengthOverflow(u64::from(u32::MAX)))
        );
        assert_eq!(
            header_len_hint(b"\x93NUMPY\x02\x00\x00\x00\x10\x00"),
            Ok(12 + (1 << 20))
        );
        assert_eq!(
            header_len_hint(b"\x93NUMPY\x02\x00\x01\x00\x10\x00"),
            Err(NpyError::HeaderLengthOverflow((1 << 20) + 1))
        );
    }

    #[test]
    fn accepts_what_python_and_numpy_accept() {
        let f4_3x4 = |data_offset| header("<f4", false, &[3, 4], data_offset);
        for dict in [
            // Double quotes, other key order, no trailing comma, no newline.
            r#"{"shape": (3, 4), "fortran_order": False, "descr": "<f4"}"#,
            // Whitespace of every kind, newlines inside the braces, trailing commas.
            "\t{ 'descr' :'<f4' ,\n'fortran_order':False,'shape':(3,4,),\r\n}  \n",
            // Python 2 writers: long integers and unicode strings.
            "{u'descr': u'<f4', 'fortran_order': False, 'shape': (3L, 4l), }\n",
            // Parentheses only group; an explicit sign is still an integer.
            "{'descr': ('<f4'), 'fortran_order': (False), 'shape': ((3, +4)), }\n",
            // No padding and no final newline.
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
        ] {
            let bytes = v1(dict);
            assert_eq!(
                parse_header(&bytes),
                Ok(f4_3x4(bytes.len() as u64)),
                "{dict:?}"
            );
        }
        // Leading zeros are a syntax error in Python 3 except in zero itself; -0 is 0.
        let bytes = v1("{'descr': '<f4', 'fortran_order': False, 'shape': (00, -0), }\n");
        assert_eq!(parse_header(&bytes).map(|h| h.shape), Ok(vec![0, 0]));
        // `=` is native order, little-endian on every target arrayd builds for.
        let bytes = v1("{'descr': '=f8', 'fortran_order': True, 'shape': (2,), }\n");
        assert_eq!(
            parse_header(&bytes),
            Ok(header("<f8", true, &[2], bytes.len() as u64))
        );
    }

    /// The error for a version 1.0 header around `dict`.
    fn err(dict: &str) -> NpyError {
        parse_header(&v1(dict)).unwrap_err()
    }

    fn illegal(key: &str, value: &str) -> NpyError {
        NpyError::IllegalValue {
            key: key.to_owned(),
            value: value.to_owned(),
        }
    }

    #[test]
    fn refuses_what_numpy_refuses_with_the_bad_value() {
        assert_eq!(
            err("{'descr': '<f4', 'shape': (3,), }"),
            NpyError::MissingKey("fortran_order")
        );
        assert_eq!(
            err("{'fortran_order': False, 'shape': (3,), }"),
            NpyError::MissingKey("descr")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': False}"),
            NpyError::MissingKey("shape")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}"),
            NpyError::UnknownKey("'extra'".to_owned())
        );
        assert_eq!(err("{3: 4}"), NpyError::UnknownKey("3".to_owned()));
        assert_eq!(
            err("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (3,)}"),
            NpyError::DuplicateKey("'descr'".to_owned())
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}"),
            illegal("fortran_order", "0")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': 'False', 'shape': (3,)}"),
            illegal("fortran_order", "'False'")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': false, 'shape': (3,)}"),
            illegal("fortran_order", "false")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': [3, 4]}"),
            illegal("shape", "[3, 4]")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': (5)}"),
            illegal("shape", "5")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4.0)}"),
            illegal("shape", "(3, 4.0)")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': (3, '4')}"),
            illegal("shape", "(3, '4')")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 04)}"),
            illegal("shape", "(3, 04)")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': (0x10,)}"),
            illegal("shape", "(0x10,)")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': (True,)}"),
            illegal("shape", "(True,)")
        );
        assert_eq!(
            err("{'descr': 4, 'fortran_order': False, 'shape': (3,)}"),
            illegal("descr", "4")
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': (3, -2)}"),
            NpyError::NegativeDim {
                axis: 1,
                value: "-2".to_owned()
            }
        );
        assert_eq!(
            err("{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616,)}"),
            NpyError::DimOverflow {
                axis: 0,
                value: "18446744073709551616".to_owned()
            }
        );
        let rank65 = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}",
            "1, ".repeat(65)
        );
        assert_eq!(err(&rank65), NpyError::TooManyDims(65));
    }

    #[test]
    fn refuses_arrays_numpy_could_not_hold() {
        assert_eq!(
            parse_header(V1_MAX_DIM),
            Err(NpyError::NbytesOverflow {
                shape: vec![u64::MAX, 1],
                itemsize: 1
            })
        );
        // 2**62 elements of 2 bytes is 2**63 bytes, one more than i64::MAX.
        assert_eq!(
            err("{'descr': '<i2', 'fortran_order': False, 'shape': (4611686018427387904,)}"),
            NpyError::NbytesOverflow {
                shape: vec![1 << 62],
                itemsize: 2
            }
        );
        // A zero does not excuse the other dimensions (NumPy: "array is too big").
        assert_eq!(
            err("{'descr': '|u1', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4)}"),
            NpyError::NbytesOverflow {
                shape: vec![0, 1 << 62, 4],
                itemsize: 1
            }
        );
        let bytes =
            v1("{'descr': '|u1', 'fortran_order': False, 'shape': (0, 9223372036854775807)}");
        assert_eq!(
            parse_header(&bytes).map(|h| h.shape),
            Ok(vec![0, i64::MAX as u64])
        );
        assert_eq!(dt("<c16").nbytes(&[1 << 59]), None);
        assert_eq!(
            dt("<c16").nbytes(&[(1 << 59) - 1]),
            Some(((1 << 59) - 1) * 16)
        );
    }

    #[test]
    fn refuses_unsupported_dtypes_with_a_reason() {
        let Err(NpyError::UnsupportedDtype(e)) = parse_header(V1_STRUCTURED) else {
            panic!("structured descr accepted");
        };
        assert_eq!(e.descr, "[('a', '<i4'), ('b', '<f8')]");
        assert!(e.reason.contains("structured"), "{}", e.reason);
        assert!(NpyError::UnsupportedDtype(e)
            .to_string()
            .contains("structured"));
        for descr in ["<U8", "|O", "<M8[ns]", "|V16", "float32", ""] {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (3,)}}");
            assert_eq!(
                err(&dict),
                NpyError::UnsupportedDtype(DType::parse(descr).unwrap_err())
            );
        }
    }

    #[test]
    fn refuses_malformed_text_with_its_position() {
        let syntax_at = |dict: &str| match err(dict) {
            NpyError::Syntax { offset, message } => (offset, message),
            other => panic!("{dict:?}: expected a syntax error, got {other:?}"),
        };
        // Offsets count from the start of the file; the dict starts at byte 10.
        assert_eq!(syntax_at("").0, 10);
        assert_eq!(syntax_at("['descr']").0, 10);
        assert_eq!(syntax_at("{'descr' '<f4'}").0, 19);
        let (offset, message) =
            syntax_at("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}x");
        assert_eq!(
            (offset, message.as_str()),
            (65, "unexpected 'x' after the header dict")
        );
        for dict in [
            "{'descr': '<f4\n', 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f4\", 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3 4)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}\0",
            "{'descr': '<f4',, 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} {}",
            "{'descr': b'<f4', 'fortran_order': False, 'shape': (3,)}",
        ] {
            syntax_at(dict);
        }
        let deep = format!(
            "{{'descr': {}{}, 'fortran_order': False, 'shape': (3,)}}",
            "[".repeat(40),
            "]".repeat(40)
        );
        assert!(syntax_at(&deep).1.contains("nested deeper"));
        let deep = format!("{{'descr': {}", "(".repeat(100_000));
        let e = parse_header(&with_version(2, deep.as_bytes())).unwrap_err();
        assert!(
            matches!(e, NpyError::Syntax { offset: 54, ref message } if message.contains("nested deeper")),
            "{e:?}"
        );
    }

    #[test]
    fn python_2_long_suffix_is_not_read_in_version_3() {
        let dict = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3L,), }\n";
        assert_eq!(
            parse_header(&with_version(2, dict)).map(|h| h.shape),
            Ok(vec![3])
        );
        assert_eq!(
            parse_header(&with_version(3, dict)),
            Err(illegal("shape", "(3L,)"))
        );
    }

    #[test]
    fn decodes_latin1_in_1_0_and_2_0_and_utf8_in_3_0() {
        let dict = "{'descr': '<f\u{e9}', 'fortran_order': False, 'shape': (3,)}".as_bytes();
        let e = parse_header(&with_version(3, dict)).unwrap_err();
        assert_eq!(
            e,
            NpyError::UnsupportedDtype(DType::parse("<f\u{e9}").unwrap_err())
        );
        // The same bytes read as latin-1 are two characters.
        let e = parse_header(&with_version(1, dict)).unwrap_err();
        assert_eq!(
            e,
            NpyError::UnsupportedDtype(DType::parse("<f\u{c3}\u{a9}").unwrap_err())
        );
        let bad = b"{'descr': '<f\xff', 'fortran_order': False, 'shape': (3,)}";
        assert_eq!(
            parse_header(&with_version(3, bad)),
            Err(NpyError::NotUtf8 { offset: 12 + 13 })
        );
        assert!(matches!(
            parse_header(&with_version(2, bad)),
            Err(NpyError::UnsupportedDtype(_))
        ));
        assert!(matches!(
            parse_header(&with_version(1, b"{'descr': \xe9}")),
            Err(NpyError::Syntax { offset: 20, .. })
        ));
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "1.5555, ".repeat(30);
        let NpyError::IllegalValue { value, .. } = err(&format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({long})}}"
        )) else {
            panic!("expected an illegal value");
        };
        assert_eq!(value.chars().count(), MAX_QUOTE_CHARS + 3);
        assert!(value.ends_with("..."));
    }

    #[test]
    fn messages_are_short_and_name_the_value() {
        assert_eq!(
            NpyError::Truncated {
                needed: 128,
                got: 12
            }
            .to_string(),
            "the .npy header needs 128 bytes but only 12 were given"
        );
        assert_eq!(
            illegal("shape", "[3, 4]").to_string(),
            "illegal value for \"shape\" in the .npy header: [3, 4]"
        );
        assert_eq!(
            NpyError::Version { major: 4, minor: 0 }.to_string(),
            "unsupported .npy format version 4.0 (1.0, 2.0 and 3.0 are read)"
        );
    }

    fn any_dtype() -> impl Strategy<Value = DType> {
        prop::sample::select(vec![
            "|b1", "|i1", "|u1", "<i2", ">i2", "<i4", ">i4", "<i8", ">i8", "<u2", ">u2", "<u4",
            ">u4", "<u8", ">u8", "<f2", ">f2", "<f4", ">f4", "<f8", ">f8", "<c8", ">c8", "<c16",
            ">c16",
        ])
        .prop_map(dt)
    }

    fn any_dim() -> impl Strategy<Value = u64> {
        prop_oneof![
            0..10u64,
            any::<u64>(),
            Just(u64::MAX),
            Just(i64::MAX as u64)
        ]
    }

    fn any_version() -> impl Strategy<Value = Version> {
        prop::sample::select(vec![Version::V1, Version::V2, Version::V3])
    }

    proptest! {
        #[test]
        fn write_then_parse_round_trips(
            dtype in any_dtype(),
            shape in prop::collection::vec(any_dim(), 0..=MAX_NDIM),
            version in any_version(),
        ) {
            let bytes = write_header_version(dtype, &shape, version).unwrap();
            prop_assert_eq!(bytes.len() % HEADER_DIVISOR, 0);
            let parsed = parse_header(&bytes);
            if dtype.nbytes(&shape).is_some() {
                let expected = Header { dtype, fortran_order: false, shape, data_offset: bytes.len() as u64 };
                prop_assert_eq!(parsed, Ok(expected));
            } else {
                prop_assert_eq!(parsed, Err(NpyError::NbytesOverflow { shape, itemsize: dtype.itemsize() }));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = header_len_hint(&bytes);
            let _ = parse_header(&bytes);
        }

        #[test]
        fn arbitrary_dicts_never_panic(
            version in any_version(),
            dict in r#"[{}()\[\]'":, 0-9LTFaeu\-+_.\n\xe9]{0,120}"#,
        ) {
            let bytes = with_version(version.major(), dict.as_bytes());
            if let Ok(header) = parse_header(&bytes) {
                prop_assert_eq!(header.data_offset, bytes.len() as u64);
            }
        }

        #[test]
        fn mutated_headers_never_panic(
            dtype in any_dtype(),
            shape in prop::collection::vec(any_dim(), 0..6),
            version in any_version(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..4u8), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = write_header_version(dtype, &shape, version).unwrap();
            for (at, byte, kind) in edits {
                let i = at.index(bytes.len());
                match kind {
                    0 => bytes[i] = byte,
                    1 => { bytes.insert(i, byte); }
                    2 => { bytes.remove(i); }
                    _ => bytes[i] = b"{}()[]',: L-"[usize::from(byte) % 12],
                }
            }
            let prefix = &bytes[..cut.index(bytes.len() + 1)];
            match parse_header(prefix) {
                Ok(header) => prop_assert!(header.data_offset <= prefix.len() as u64),
                Err(NpyError::Truncated { needed, got }) => {
                    prop_assert_eq!(got, prefix.len() as u64);
                    prop_assert!(needed > got);
                }
                Err(_) => {}
            }
        }
    }
}
