//! One text field → one stored element, with `numpy.loadtxt`'s rules for each kind.
//!
//! - Floats are parsed as `f64` (correctly rounded, `fast-float2`) and then rounded to the
//!   target width, as NumPy parses every float field with `PyOS_string_to_double` and casts:
//!   `1e39` becomes `inf` in `f4` and `65520` becomes `inf` in `f2`. The spellings are
//!   Python's: `nan`, `inf` and `infinity` in any case, with an optional sign (`-nan` keeps
//!   its sign bit, as NumPy's does).
//! - Integers are an optional sign and decimal digits, nothing else (`1.0`, `1e3` and `0x10`
//!   are refused, as `loadtxt` refuses them); a value outside the type's range is refused,
//!   and so is any `-` for an unsigned type, even `-0`.
//! - Booleans are integers, and true when non-zero (`loadtxt` reads `2` as true and `True`
//!   not at all).
//! - Surrounding whitespace is ignored. An empty float field is NaN (as `numpy.genfromtxt`
//!   reads a missing value; `loadtxt` refuses it), an empty integer field an error.
//!
//! Complex kinds are not converted: [`Kind::of`] refuses them.

use half::f16;

use crate::dtype::{ByteOrder, DType, Scalar};

/// What a field is parsed into: the scalar kind and the byte order it is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kind {
    scalar: Scalar,
    big_endian: bool,
}

/// Why a field did not become a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldError {
    /// Not a number of the kind (the text is in the caller's hands).
    Invalid,
    /// An integer outside the type's range.
    OutOfRange,
    /// An empty integer field.
    Empty,
}

impl Kind {
    /// The kind for `dtype`, or `None` for the complex kinds, which have no converter.
    pub(super) fn of(dtype: DType) -> Option<Kind> {
        (!dtype.scalar.is_complex()).then_some(Kind {
            scalar: dtype.scalar,
            big_endian: dtype.order == ByteOrder::Big,
        })
    }

    /// Parses `text` and appends the element's bytes to `out`.
    ///
    /// # Errors
    /// [`FieldError`] when `text` is not a value of this kind; `out` is unchanged then.
    pub(super) fn put(self, text: &[u8], out: &mut Vec<u8>) -> Result<(), FieldError> {
        let text = trim(text);
        match self.scalar {
            Scalar::F64 => {
                let v = float(text)?;
                self.push(out, v.to_le_bytes(), v.to_be_bytes());
            }
            Scalar::F32 => {
                // `as` rounds to nearest even and overflows to infinity, as C's cast does.
                #[allow(clippy::cast_possible_truncation)]
                let v = float(text)? as f32;
                self.push(out, v.to_le_bytes(), v.to_be_bytes());
            }
            Scalar::F16 => {
                // Straight from f64, never through f32: NumPy's `npy_double_to_half`.
                let v = f16::from_f64(float(text)?);
                self.push(out, v.to_le_bytes(), v.to_be_bytes());
            }
            Scalar::Bool => out.push(u8::from(signed(text, i64::MIN, i64::MAX)? != 0)),
            Scalar::I8 => {
                let v = signed(text, i8::MIN.into(), i8::MAX.into())?;
                out.extend_from_slice(&narrow::<i8, _>(v).to_le_bytes());
            }
            Scalar::I16 => {
                let v = narrow::<i16, _>(signed(text, i16::MIN.into(), i16::MAX.into())?);
                self.push(out, v.to_le_bytes(), v.to_be_bytes());
            }
            Scalar::I32 => {
                let v = narrow::<i32, _>(signed(text, i32::MIN.into(), i32::MAX.into())?);
                self.push(out, v.to_le_bytes(), v.to_be_bytes());
            }
            Scalar::I64 => {
                let v = signed(text, i64::MIN, i64::MAX)?;
                self.push(out, v.to_le_bytes(), v.to_be_bytes());
            }
            Scalar::U8 => {
                let v = narrow::<u8, _>(unsigned(text, u8::MAX.into())?);
                out.push(v);
            }
            Scalar::U16 => {
                let v = narrow::<u16, _>(unsigned(text, u16::MAX.into())?);
                self.push(out, v.to_le_bytes(), v.to_be_bytes());
            }
            Scalar::U32 => {
                let v = narrow::<u32, _>(unsigned(text, u32::MAX.into())?);
                self.push(out, v.to_le_bytes(), v.to_be_bytes());
            }
            Scalar::U64 => {
                let v = unsigned(text, u64::MAX)?;
                self.push(out, v.to_le_bytes(), v.to_be_bytes());
            }
            Scalar::C64 | Scalar::C128 => unreachable!("Kind::of refuses complex kinds"),
        }
        Ok(())
    }

    fn push<const N: usize>(self, out: &mut Vec<u8>, le: [u8; N], be: [u8; N]) {
        out.extend_from_slice(if self.big_endian { &be } else { &le });
    }
}

/// Python's `str.strip()` set, less the line ends a line no longer holds.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

fn float(text: &[u8]) -> Result<f64, FieldError> {
    if text.is_empty() {
        return Ok(f64::NAN);
    }
    fast_float2::parse(text).map_err(|_| FieldError::Invalid)
}

/// `[+-]digits` within `[min, max]`.
fn signed(text: &[u8], min: i64, max: i64) -> Result<i64, FieldError> {
    let (negative, digits) = match text {
        [] => return Err(FieldError::Empty),
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    let magnitude = digits_value(digits)?;
    let value = if negative {
        // -2^63 is the one magnitude with no positive twin.
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    };
    match value {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(FieldError::OutOfRange),
    }
}

/// `[+]digits` up to `max`; NumPy refuses a `-` for unsigned types outright.
fn unsigned(text: &[u8], max: u64) -> Result<u64, FieldError> {
    let digits = match text {
        [] => return Err(FieldError::Empty),
        [b'-', ..] => return Err(FieldError::OutOfRange),
        [b'+', rest @ ..] => rest,
        _ => text,
    };
    match digits_value(digits)? {
        v if v <= max => Ok(v),
        _ => Err(FieldError::OutOfRange),
    }
}

fn digits_value(digits: &[u8]) -> Result<u64, FieldError> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(FieldError::Invalid);
    }
    digits.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(u64::from(d - b'0')))
            .ok_or(FieldError::OutOfRange)
    })
}

/// A value already checked against `T`'s range.
fn narrow<T: TryFrom<V>, V>(v: V) -> T {
    T::try_from(v).unwrap_or_else(|_| unreachable!("range checked by the parser"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(dtype: &str, text: &str) -> Result<Vec<u8>, FieldError> {
        let mut out = Vec::new();
        Kind::of(DType::parse(dtype).unwrap())
            .unwrap()
            .put(text.as_bytes(), &mut out)?;
        Ok(out)
    }

    fn f64_bits(text: &str) -> u64 {
        u64::from_le_bytes(put("<f8", text).unwrap().try_into().unwrap())
    }

    #[test]
    fn float_spellings_are_pythons() {
        for text in ["nan", "NaN", "+nan", " NAN\t"] {
            assert_eq!(f64_bits(text), 0x7ff8_0000_0000_0000, "{text}");
        }
        assert_eq!(f64_bits("-nan"), 0xfff8_0000_0000_0000);
        for text in ["inf", "+Inf", "infinity", "INFINITY"] {
            assert_eq!(f64_bits(text), f64::INFINITY.to_bits(), "{text}");
        }
        assert_eq!(f64_bits("-Infinity"), f64::NEG_INFINITY.to_bits());
        assert_eq!(f64_bits("1."), 1f64.to_bits());
        assert_eq!(f64_bits("-.5e-3"), (-0.0005f64).to_bits());
        assert_eq!(f64_bits("+1E+2"), 100f64.to_bits());
        for text in [
            "1_0", "0x10", "nan(1)", "infinit", "1e", "1e+", "+ 5", "1,5",
        ] {
            assert_eq!(put("<f8", text), Err(FieldError::Invalid), "{text}");
        }
    }

    #[test]
    fn narrow_floats_round_from_f64() {
        assert_eq!(put("<f4", "1e39").unwrap(), f32::INFINITY.to_le_bytes());
        assert_eq!(put("<f4", "1e-50").unwrap(), 0f32.to_le_bytes());
        assert_eq!(put("<f2", "65520").unwrap(), f16::INFINITY.to_le_bytes());
        assert_eq!(put("<f2", "65504").unwrap(), f16::MAX.to_le_bytes());
        assert_eq!(put(">f4", "1").unwrap(), 1f32.to_be_bytes());
    }

    #[test]
    fn empty_fields() {
        assert_eq!(f64_bits("  "), f64::NAN.to_bits());
        assert_eq!(put("<i4", " "), Err(FieldError::Empty));
        assert_eq!(put("|b1", ""), Err(FieldError::Empty));
    }

    #[test]
    fn integers_match_loadtxt() {
        assert_eq!(put("|u1", "255").unwrap(), [255]);
        assert_eq!(put("|u1", "+7").unwrap(), [7]);
        assert_eq!(put("|u1", "300"), Err(FieldError::OutOfRange));
        assert_eq!(put("|u1", "-0"), Err(FieldError::OutOfRange));
        assert_eq!(put("|i1", "-0").unwrap(), [0]);
        assert_eq!(put("|i1", "-128").unwrap(), [0x80]);
        assert_eq!(put("|i1", "128"), Err(FieldError::OutOfRange));
        assert_eq!(
            put("<i8", "-9223372036854775808").unwrap(),
            i64::MIN.to_le_bytes()
        );
        assert_eq!(
            put("<i8", "9223372036854775808"),
            Err(FieldError::OutOfRange)
        );
        assert_eq!(
            put("<u8", "18446744073709551615").unwrap(),
            u64::MAX.to_le_bytes()
        );
        assert_eq!(
            put("<u8", "18446744073709551616"),
            Err(FieldError::OutOfRange)
        );
        assert_eq!(put(">i2", "-2").unwrap(), (-2i16).to_be_bytes());
        for text in ["1.5", "1e3", "0x10", "+", "-", "nan", "1 2"] {
            assert_eq!(put("<i4", text), Err(FieldError::Invalid), "{text}");
        }
    }

    #[test]
    fn booleans_are_nonzero_integers() {
        assert_eq!(put("|b1", "0").unwrap(), [0]);
        assert_eq!(put("|b1", "2").unwrap(), [1]);
        assert_eq!(put("|b1", "-1").unwrap(), [1]);
        assert_eq!(put("|b1", "True"), Err(FieldError::Invalid));
    }

    #[test]
    fn complex_has_no_kind() {
        assert!(Kind::of(DType::parse("<c8").unwrap()).is_none());
    }
}
