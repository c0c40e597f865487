//! Element types: the NumPy type strings of README "Datasets" (`|b1`, `<i4`, `>f8`, ...).
//!
//! A [`DType`] is a scalar kind plus a byte order. It knows its `itemsize` and how to write
//! itself back as a NumPy descriptor; it does not decode values (`element` does, for the
//! encoders and reducers, which dispatch on [`Scalar`] in one `match`).

use std::fmt;

/// Byte order of a stored element. Single-byte types carry [`ByteOrder::Little`] internally
/// and are written with NumPy's `|` marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// `<`: least significant byte first.
    Little,
    /// `>`: most significant byte first.
    Big,
}

/// The scalar kinds arrayd serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the names are NumPy's
pub enum Scalar {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F16,
    F32,
    F64,
    C64,
    C128,
}

impl Scalar {
    /// NumPy's name of the kind (`uint8`, `float32`): what `loadtxt`'s messages say, and
    /// Zarr format 3's `data_type`.
    pub fn numpy_name(self) -> &'static str {
        match self {
            Scalar::Bool => "bool",
            Scalar::I8 => "int8",
            Scalar::I16 => "int16",
            Scalar::I32 => "int32",
            Scalar::I64 => "int64",
            Scalar::U8 => "uint8",
            Scalar::U16 => "uint16",
            Scalar::U32 => "uint32",
            Scalar::U64 => "uint64",
            Scalar::F16 => "float16",
            Scalar::F32 => "float32",
            Scalar::F64 => "float64",
            Scalar::C64 => "complex64",
            Scalar::C128 => "complex128",
        }
    }

    /// Bytes per element, NumPy's `itemsize`.
    pub fn itemsize(self) -> usize {
        match self {
            Scalar::Bool | Scalar::I8 | Scalar::U8 => 1,
            Scalar::I16 | Scalar::U16 | Scalar::F16 => 2,
            Scalar::I32 | Scalar::U32 | Scalar::F32 => 4,
            Scalar::I64 | Scalar::U64 | Scalar::F64 | Scalar::C64 => 8,
            Scalar::C128 => 16,
        }
    }

    /// NumPy's kind character and size, as in `f4`.
    fn code(self) -> &'static str {
        match self {
            Scalar::Bool => "b1",
            Scalar::I8 => "i1",
            Scalar::I16 => "i2",
            Scalar::I32 => "i4",
            Scalar::I64 => "i8",
            Scalar::U8 => "u1",
            Scalar::U16 => "u2",
            Scalar::U32 => "u4",
            Scalar::U64 => "u8",
            Scalar::F16 => "f2",
            Scalar::F32 => "f4",
            Scalar::F64 => "f8",
            Scalar::C64 => "c8",
            Scalar::C128 => "c16",
        }
    }

    /// True for the complex kinds, which the aggregates refuse.
    pub fn is_complex(self) -> bool {
        matches!(self, Scalar::C64 | Scalar::C128)
    }
}

/// A stored element type: scalar kind and byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DType {
    /// What the bytes mean.
    pub scalar: Scalar,
    /// How multi-byte values are laid out; always `Little` for one-byte kinds.
    pub order: ByteOrder,
}

/// A type string that arrayd does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported dtype {descr:?}: {reason}")]
pub struct DTypeError {
    /// The descriptor as given.
    pub descr: String,
    /// Why it is refused.
    pub reason: &'static str,
}

impl DType {
    /// Parses a NumPy type string such as `<f4`, `|u1` or `>c16`.
    ///
    /// `=` means native order, which is little-endian on every platform arrayd builds for.
    ///
    /// # Errors
    /// [`DTypeError`] for structured, object, string, datetime and other types outside
    /// the list in README "Datasets", naming the reason.
    ///
    /// ```
    /// use arrayd::dtype::{DType, Scalar, ByteOrder};
    /// let d = DType::parse(">f8").unwrap();
    /// assert_eq!((d.scalar, d.order, d.itemsize()), (Scalar::F64, ByteOrder::Big, 8));
    /// assert_eq!(DType::parse("|u1").unwrap().descr(), "|u1");
    /// assert!(DType::parse("<U8").is_err());
    /// ```
    pub fn parse(descr: &str) -> Result<DType, DTypeError> {
        let err = |reason| DTypeError {
            descr: descr.chars().take(64).collect(),
            reason,
        };
        let mut chars = descr.chars();
        let (order, code) = match chars.next() {
            Some('<') | Some('=') => (ByteOrder::Little, chars.as_str()),
            Some('>') => (ByteOrder::Big, chars.as_str()),
            Some('|') => (ByteOrder::Little, chars.as_str()),
            _ => return Err(err("expected a byte-order mark (<, >, | or =) first")),
        };
        let scalar = match code {
            "b1" => Scalar::Bool,
            "i1" => Scalar::I8,
            "i2" => Scalar::I16,
            "i4" => Scalar::I32,
            "i8" => Scalar::I64,
            "u1" => Scalar::U8,
            "u2" => Scalar::U16,
            "u4" => Scalar::U32,
            "u8" => Scalar::U64,
            "f2" => Scalar::F16,
            "f4" => Scalar::F32,
            "f8" => Scalar::F64,
            "c8" => Scalar::C64,
            "c16" => Scalar::C128,
            _ => {
                return Err(err("only bool, integers, f2/f4/f8 and c8/c16 are served \
                     (no structured, object, string or datetime types)"))
            }
        };
        if scalar.itemsize() > 1 && descr.starts_with('|') {
            return Err(err("a multi-byte type needs < or >, not |"));
        }
        Ok(DType {
            scalar,
            order: if scalar.itemsize() == 1 {
                ByteOrder::Little
            } else {
                order
            },
        })
    }

    /// Bytes per element.
    pub fn itemsize(self) -> usize {
        self.scalar.itemsize()
    }

    /// Bytes of an array of `shape` with elements of this type: [`nbytes`].
    pub fn nbytes(self, shape: &[u64]) -> Option<u64> {
        nbytes(self.itemsize() as u64, shape)
    }

    /// The NumPy descriptor, as `.npy` headers and `X-Array-Dtype` write it.
    pub fn descr(self) -> String {
        self.to_string()
    }

    /// True when values must be byte-swapped on this (little-endian) host.
    pub fn is_swapped(self) -> bool {
        self.order == ByteOrder::Big && self.itemsize() > 1
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.itemsize() == 1 {
            '|'
        } else if self.order == ByteOrder::Big {
            '>'
        } else {
            '<'
        };
        write!(f, "{mark}{}", self.scalar.code())
    }
}

/// Bytes of an array of `shape` with elements of `itemsize` bytes, or `None` when NumPy could
/// not hold it: the product of the nonzero dimensions times `itemsize` must not exceed
/// `i64::MAX` (`npy_intp`). NumPy checks the nonzero dimensions even when another one is 0
/// (`np.empty((0, 2**62, 2**62), 'u1')` is "array is too big"), and so does this. The one
/// size computation of `.npy` headers, descriptors, datasets and the planner.
///
/// ```
/// use arrayd::dtype::{nbytes, DType};
/// let f4 = DType::parse("<f4").unwrap();
/// assert_eq!(f4.nbytes(&[3, 4]), Some(48));
/// assert_eq!(f4.nbytes(&[]), Some(4));
/// assert_eq!(f4.nbytes(&[0, 1 << 40]), Some(0));
/// assert_eq!(f4.nbytes(&[0, 1 << 62]), None);
/// assert_eq!(nbytes(8, &[1 << 60]), None);
/// ```
pub fn nbytes(itemsize: u64, shape: &[u64]) -> Option<u64> {
    let nonzero = shape
        .iter()
        .filter(|&&dim| dim != 0)
        .try_fold(itemsize, |acc, &dim| acc.checked_mul(dim))
        .filter(|&n| n <= i64::MAX as u64)?;
    Some(if shape.contains(&0) { 0 } else { nonzero })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_design_dtype_round_trips() {
        for code in [
            "b1", "i1", "u1", "i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16",
        ] {
            for mark in ['<', '>'] {
                let text = format!("{mark}{code}");
                let d = DType::parse(&text).unwrap();
                let expect = if d.itemsize() == 1 {
                    format!("|{code}")
                } else {
                    text
                };
                assert_eq!(d.descr(), expect);
                assert_eq!(DType::parse(&d.descr()).unwrap(), d);
            }
        }
    }

    #[test]
    fn refuses_what_design_refuses() {
        for bad in [
            "", "f4", "<U10", "|O", "<M8[ns]", "|V16", "|f4", "<f4 ", "<i16", "<f8\0",
        ] {
            assert!(DType::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
