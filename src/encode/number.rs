//! Elements as text: shortest round-trip floats for the stored type, integers, booleans and
//! complex values, in the spellings of JSON and CSV (README "API").
//!
//! Each stored scalar, decoded by `element`, writes itself for a [`Style`]. The layout of
//! elements (brackets, commas, lines) is `text`'s business, not this module's.

use half::f16;

use crate::element::{Bool, Complex, Element};

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

/// A stored element that writes itself as text.
pub(crate) trait Text: Element {
    /// Appends the element's text to `out`.
    fn write(self, out: &mut Vec<u8>, style: Style);
}

macro_rules! int_text {
    ($($t:ty),*) => {$(
        impl Text for $t {
            #[inline]
            fn write(self, out: &mut Vec<u8>, _style: Style) {
                out.extend_from_slice(itoa::Buffer::new().format(self).as_bytes());
            }
        }
    )*};
}
int_text!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Text for Bool {
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

impl Text for f32 {
    #[inline]
    fn write(self, out: &mut Vec<u8>, style: Style) {
        if !write_nonfinite(f64::from(self), out, style) {
            out.extend_from_slice(ryu::Buffer::new().format_finite(self).as_bytes());
        }
    }
}

impl Text for f64 {
    #[inline]
    fn write(self, out: &mut Vec<u8>, style: Style) {
        if !write_nonfinite(self, out, style) {
            out.extend_from_slice(ryu::Buffer::new().format_finite(self).as_bytes());
        }
    }
}

impl Text for f16 {
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
/// the f32 expansion `0.099975586`; README "API"). An f16 has at most 5 significant
/// digits, so at most five candidates are tried.
fn write_f16_shortest(v: f16, out: &mut Vec<u8>) {
    let x = f32::from(v);
    let mut sci = String::new();
    for precision in 0..=5 {
        sci.clear();
        use std::fmt::Write;
        let _ = write!(sci, "{x:.precision$e}");
        if sci.parse::<f32>().map(f16::from_f32) == Ok(v) {
            break;
        }
    }
    // `sci` is `[-]d[.ddd]e[-]x`: lay it out positionally like ryu does for these magnitudes.
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` writes a decimal exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    out.extend_from_slice(sign.as_bytes());
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

impl<F: Text + Into<f64>> Text for Complex<F> {
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
                // NumPy's spelling without parentheses: `1.5+2j`, `1.5-2j`, `1.0+nanj`.
                self.0.write(out, style);
                let im: f64 = self.1.into();
                if im.is_nan() || im.is_sign_positive() {
                    out.push(b'+');
                }
                if im.is_nan() {
                    out.extend_from_slice(b"nan");
                } else {
                    self.1.write(out, style);
                }
                out.push(b'j');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<E: Text>(v: E, style: Style) -> String {
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
        assert_eq!(text(Complex(1.5f64, 2.0), Style::Csv), "1.5+2.0j");
        assert_eq!(text(Complex(1.5f32, -2.0), Style::Csv), "1.5-2.0j");
        assert_eq!(text(Complex(1.0f64, f64::NAN), Style::Csv), "1.0+nanj");
        assert_eq!(
            text(Complex(1.0f64, f64::NEG_INFINITY), Style::Csv),
            "1.0-infj"
        );
    }
}
