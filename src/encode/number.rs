//! Elements as text: shortest round-trip floats for the stored type, integers, booleans and
//! complex values, in the spellings of JSON and CSV (README "API").
//!
//! Each stored scalar is decoded from its bytes (either byte order) into an `Element`
//! implementation, which writes itself for a [`Style`]. The layout of elements (brackets,
//! commas, lines) is `text`'s business, not this module's.

use half::f16;

/// How non-finite floats and complex values are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// JSON, NaN and ±Inf as `null`.
    JsonNull,
    /// JSON, NaN and ±Inf as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
    JsonString,
    /// CSV: `nan`, `inf`, `-inf`; complex as `1.5+2j`.
    Csv,
}

/// A stored scalar that can be decoded from its bytes and written as text.
pub(crate) trait Element: Copy {
    /// Bytes per element.
    const SIZE: usize;
    /// Decodes one element from exactly `SIZE` bytes in little (`swapped == false`) or big
    /// byte order.
    fn decode(bytes: &[u8], swapped: bool) -> Self;
    /// Appends the element's text to `out`.
    fn write(self, out: &mut Vec<u8>, style: Style);
}

macro_rules! int_element {
    ($($t:ty),*) => {$(
        impl Element for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline]
            fn decode(bytes: &[u8], swapped: bool) -> Self {
                let raw = bytes.try_into().expect("caller passes SIZE bytes");
                if swapped { <$t>::from_be_bytes(raw) } else { <$t>::from_le_bytes(raw) }
            }
            #[inline]
            fn write(self, out: &mut Vec<u8>, _style: Style) {
                out.extend_from_slice(itoa::Buffer::new().format(self).as_bytes());
            }
        }
    )*};
}
int_element!(i8, i16, i32, i64, u8, u16, u32, u64);

/// A `|b1` element: any non-zero byte is true, as NumPy reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bool(bool);

impl Element for Bool {
    const SIZE: usize = 1;
    #[inline]
    fn decode(bytes: &[u8], _swapped: bool) -> Self {
        Bool(bytes[0] != 0)
    }
    #[inline]
    fn write(self, out: &mut Vec<u8>, _style: Style) {
        out.extend_from_slice(if self.0 { b"true" } else { b"false" });
    }
}

/// Writes the non-finite spelling of `v`, or returns false when `v` is finite.
#[inline]
fn write_nonfinite(v: f64, out: &mut Vec<u8>, style: Style) -> bool {
    if v.is_finite() {
        return false;
    }
    let text: &[u8] = match (style, v.is_nan(), v > 0.0) {
        (Style::JsonNull, _, _) => b"null",
        (Style::JsonString, true, _) => b"\"NaN\"",
        (Style::JsonString, false, true) => b"\"Infinity\"",
        (Style::JsonString, false, false) => b"\"-Infinity\"",
        (Style::Csv, true, _) => b"nan",
        (Style::Csv, false, true) => b"inf",
        (Style::Csv, false, false) => b"-inf",
    };
    out.extend_from_slice(text);
    true
}

impl Element for f32 {
    const SIZE: usize = 4;
    #[inline]
    fn decode(bytes: &[u8], swapped: bool) -> Self {
        f32::from_bits(u32::decode(bytes, swapped))
    }
    #[inline]
    fn write(self, out: &mut Vec<u8>, style: Style) {
        if !write_nonfinite(f64::from(self), out, style) {
            out.extend_from_slice(ryu::Buffer::new().format_finite(self).as_bytes());
        }
    }
}

impl Element for f64 {
    const SIZE: usize = 8;
    #[inline]
    fn decode(bytes: &[u8], swapped: bool) -> Self {
        f64::from_bits(u64::decode(bytes, swapped))
    }
    #[inline]
    fn write(self, out: &mut Vec<u8>, style: Style) {
        if !write_nonfinite(self, out, style) {
            out.extend_from_slice(ryu::Buffer::new().format_finite(self).as_bytes());
        }
    }
}

impl Element for f16 {
    const SIZE: usize = 2;
    #[inline]
    fn decode(bytes: &[u8], swapped: bool) -> Self {
        f16::from_bits(u16::decode(bytes, swapped))
    }
    fn write(self, out: &mut Vec<u8>, style: Style) {
        if !write_nonfinite(f64::from(self), out, style) {
            out.extend_from_slice(f16_text(self));
        }
    }
}

/// The shortest text of every float16, built once: there are only 65,536 of them, and the
/// search below costs about a microsecond per value.
fn f16_text(v: f16) -> &'static [u8] {
    static TABLE: std::sync::OnceLock<(Vec<u8>, Vec<u32>)> = std::sync::OnceLock::new();
    let (text, ends) = TABLE.get_or_init(|| {
        let mut text = Vec::with_capacity(65_536 * 8);
        let mut ends = Vec::with_capacity(65_537);
        ends.push(0);
        for bits in 0..=u16::MAX {
            let v = f16::from_bits(bits);
            if v.is_finite() {
                write_f16_shortest(v, &mut text);
            }
            ends.push(u32::try_from(text.len()).expect("the table is a few hundred KiB"));
        }
        (text, ends)
    });
    let i = usize::from(v.to_bits());
    &text[ends[i] as usize..ends[i + 1] as usize]
}

/// Writes the shortest decimal that reads back as the same `f16` (an f16 0.1 is `0.1`, not
/// the f32 expansion `0.099975586`; README "API"), spelled as NumPy's `repr` spells it. An
/// f16 has at most 5 significant digits, so at most six lengths are tried. At each length the
/// correctly rounded digits may miss while a neighbour reads back (0.015625 rounds to
/// `0.01562`, which is not that f16, while `0.01563` is), so both neighbours are candidates
/// and the one nearest the value wins, as in NumPy's shortest-digit (Dragon4) output;
/// `tests/python/check_f16_text.py` holds all 65,536 values to NumPy's text.
fn write_f16_shortest(v: f16, out: &mut Vec<u8>) {
    let magnitude = f16::from_bits(v.to_bits() & 0x7fff);
    let x = f64::from(magnitude);
    let reads_back =
        |m: u64, e: i32| format!("{m}e{e}").parse::<f32>().map(f16::from_f32) == Ok(magnitude);
    let (mut digits, mut exp) = (String::from("0"), 0);
    for precision in 0..=5usize {
        if x == 0.0 {
            break;
        }
        use std::fmt::Write;
        let mut sci = String::new();
        let _ = write!(sci, "{x:.precision$e}");
        let (mantissa, e) = sci
            .split_once('e')
            .expect("`{:e}` always writes an exponent");
        let e: i32 = e.parse().expect("`{:e}` writes a decimal exponent");
        let m: u64 = mantissa
            .replace('.', "")
            .parse()
            .expect("`{:e}` writes decimal digits");
        // Candidates m-1, m, m+1 units of the last digit, i.e. value = m * 10^(e - precision).
        let unit = e - precision as i32;
        let distance = |c: u64| exact_distance(magnitude, c, unit);
        let best = [m.checked_sub(1), Some(m), Some(m + 1)]
            .into_iter()
            .flatten()
            .filter(|&c| c > 0 && reads_back(c, unit))
            .min_by(|&a, &b| {
                let key = |c: u64| (distance(c), c % 2);
                key(a).cmp(&key(b))
            });
        if let Some(c) = best {
            digits = c.to_string();
            // The first digit's power of ten: a neighbour may have one digit more or fewer.
            exp = unit + digits.len() as i32 - 1;
            break;
        }
    }
    let digits = match digits.trim_end_matches('0') {
        "" => "0",
        d => d,
    };
    if v.is_sign_negative() {
        out.push(b'-');
    }
    if exp < -5 {
        // Subnormal-range values: scientific, as ryu writes small f32s (`6e-8`).
        out.extend_from_slice(&digits.as_bytes()[..1]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits.as_bytes()[1..]);
        }
        out.push(b'e');
        out.extend_from_slice(exp.to_string().as_bytes());
    } else if exp < 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
        out.extend_from_slice(digits.as_bytes());
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.extend_from_slice(digits.as_bytes());
            out.extend(std::iter::repeat_n(b'0', int_len - digits.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits.as_bytes()[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits.as_bytes()[int_len..]);
        }
    }
}

/// `|c * 10^unit - v|` for a non-negative finite `v`, scaled by a factor that depends only
/// on `unit` (so distances at one `unit` compare), in integers: the candidates of a tie such
/// as 0.04687 and 0.04688 for 0.046875 must come out exactly equal, which f64 cannot promise.
fn exact_distance(v: f16, c: u64, unit: i32) -> u128 {
    // v = k * 2^q exactly.
    let (field, frac) = (
        i32::from(v.to_bits() >> 10),
        u128::from(v.to_bits() & 0x3ff),
    );
    let (k, q) = if field == 0 {
        (frac, -24)
    } else {
        (frac | 0x400, field - 25)
    };
    // Both sides times 10^-unit (if unit < 0) and 2^-q (if q < 0): at most ~10^13 * 2^16.
    let pow10 = |n: i32| 10u128.pow(n.max(0).unsigned_abs());
    let lhs = (u128::from(c) * pow10(unit)) << (-q).max(0);
    let rhs = (k * pow10(-unit)) << q.max(0);
    lhs.abs_diff(rhs)
}

/// A complex element stored as two consecutive floats (real, imaginary).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Complex<F>(F, F);

impl<F: Element + Into<f64>> Element for Complex<F> {
    const SIZE: usize = 2 * F::SIZE;
    #[inline]
    fn decode(bytes: &[u8], swapped: bool) -> Self {
        let (re, im) = bytes.split_at(F::SIZE);
        Complex(F::decode(re, swapped), F::decode(im, swapped))
    }
    fn write(self, out: &mut Vec<u8>, style: Style) {
        match style {
            Style::JsonNull | Style::JsonString => {
                out.push(b'[');
                self.0.write(out, style);
                out.push(b',');
                self.1.write(out, style);
                out.push(b']');
            }
            Style::Csv => {
                // NumPy's spelling without parentheses: `1.5+2j`, `1-0j`, `1+nanj`; a
                // component with no fraction drops the `.0` that a lone float keeps.
                let integral = |out: &mut Vec<u8>, start: usize| {
                    if out[start..].ends_with(b".0") {
                        out.truncate(out.len() - 2);
                    }
                };
                let start = out.len();
                self.0.write(out, style);
                integral(out, start);
                let im: f64 = self.1.into();
                if im.is_nan() || im.is_sign_positive() {
                    out.push(b'+');
                }
                if im.is_nan() {
                    out.extend_from_slice(b"nan");
                } else {
                    let start = out.len();
                    self.1.write(out, style);
                    integral(out, start);
                }
                out.push(b'j');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<E: Element>(v: E, style: Style) -> String {
        let mut out = Vec::new();
        v.write(&mut out, style);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_are_shortest_for_their_own_type() {
        assert_eq!(text(0.1f32, Style::JsonNull), "0.1");
        assert_eq!(text(0.1f64, Style::JsonNull), "0.1");
        assert_eq!(text(f16::from_f32(0.1), Style::JsonNull), "0.1");
        assert_eq!(text(f16::from_f32(65504.0), Style::JsonNull), "65500.0"); // as NumPy prints it
        assert_eq!(text(f16::from_f32(1.0), Style::JsonNull), "1.0");
        assert_eq!(text(f16::from_f32(-2.5), Style::JsonNull), "-2.5");
        assert_eq!(text(f16::from_f32(0.000123), Style::JsonNull), "0.000123");
        assert_eq!(text(f16::from_bits(1), Style::JsonNull), "6e-8");
        assert_eq!(text(f16::from_f32(-0.0), Style::JsonNull), "-0.0");
    }

    #[test]
    fn every_f16_reads_back_exactly() {
        for bits in 0..=u16::MAX {
            let v = f16::from_bits(bits);
            if !v.is_finite() {
                continue;
            }
            let s = text(v, Style::Csv);
            let back = f16::from_f32(s.parse::<f32>().unwrap());
            assert_eq!(back.to_bits(), v.to_bits(), "{bits:#x} wrote {s}");
        }
    }

    #[test]
    fn nonfinite_spellings() {
        for (style, expect) in [
            (Style::JsonNull, ["null", "null", "null"]),
            (
                Style::JsonString,
                ["\"NaN\"", "\"Infinity\"", "\"-Infinity\""],
            ),
            (Style::Csv, ["nan", "inf", "-inf"]),
        ] {
            let got = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY].map(|v| text(v, style));
            assert_eq!(got, expect);
        }
    }

    #[test]
    fn complex_spellings() {
        assert_eq!(text(Complex(1.5f64, 2.0), Style::JsonNull), "[1.5,2.0]");
        assert_eq!(text(Complex(1.5f64, 2.0), Style::Csv), "1.5+2j");
        assert_eq!(text(Complex(1.5f32, -2.0), Style::Csv), "1.5-2j");
        assert_eq!(text(Complex(1.0f64, -0.0), Style::Csv), "1-0j");
        assert_eq!(text(Complex(-0.0f64, 1.0), Style::Csv), "-0+1j");
        assert_eq!(text(Complex(10.0f32, 0.25), Style::Csv), "10+0.25j");
        assert_eq!(text(Complex(1.0f64, f64::NAN), Style::Csv), "1+nanj");
        assert_eq!(
            text(Complex(1.0f64, f64::NEG_INFINITY), Style::Csv),
            "1-infj"
        );
        assert_eq!(text(Complex(1e20f64, 1.0), Style::Csv), "1e20+1j");
    }

    #[test]
    fn big_endian_decodes() {
        assert_eq!(i32::decode(&[0, 0, 1, 2], true), 258);
        assert_eq!(f64::decode(&1.5f64.to_be_bytes(), true), 1.5);
    }
}
