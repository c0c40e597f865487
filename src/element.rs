//! Stored elements decoded from their bytes, in either byte order: what the encoders write
//! as text and the reductions compute on. A [`DType`](crate::dtype::DType) names the type;
//! this module reads values of it. Writing them as text is `encode`'s business.

use half::f16;

/// A stored scalar that can be decoded from its bytes.
pub(crate) trait Element: Copy {
    /// Bytes per element.
    const SIZE: usize;
    /// Decodes one element from exactly `SIZE` bytes in little (`swapped == false`) or big
    /// byte order.
    fn decode(bytes: &[u8], swapped: bool) -> Self;
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
        }
    )*};
}
int_element!(i8, i16, i32, i64, u8, u16, u32, u64);

/// A `|b1` element: any non-zero byte is true, as NumPy reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bool(pub(crate) bool);

impl Element for Bool {
    const SIZE: usize = 1;
    #[inline]
    fn decode(bytes: &[u8], _swapped: bool) -> Self {
        Bool(bytes[0] != 0)
    }
}

impl Element for f16 {
    const SIZE: usize = 2;
    #[inline]
    fn decode(bytes: &[u8], swapped: bool) -> Self {
        f16::from_bits(u16::decode(bytes, swapped))
    }
}

impl Element for f32 {
    const SIZE: usize = 4;
    #[inline]
    fn decode(bytes: &[u8], swapped: bool) -> Self {
        f32::from_bits(u32::decode(bytes, swapped))
    }
}

impl Element for f64 {
    const SIZE: usize = 8;
    #[inline]
    fn decode(bytes: &[u8], swapped: bool) -> Self {
        f64::from_bits(u64::decode(bytes, swapped))
    }
}

/// A complex element stored as two consecutive floats (real, imaginary).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Complex<F>(pub(crate) F, pub(crate) F);

impl<F: Element> Element for Complex<F> {
    const SIZE: usize = 2 * F::SIZE;
    #[inline]
    fn decode(bytes: &[u8], swapped: bool) -> Self {
        let (re, im) = bytes.split_at(F::SIZE);
        Complex(F::decode(re, swapped), F::decode(im, swapped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_decodes() {
        assert_eq!(i32::decode(&[0, 0, 1, 2], true), 258);
        assert_eq!(f64::decode(&1.5f64.to_be_bytes(), true), 1.5);
        let c = Complex::<f32>::decode(&[0, 0, 0xc0, 0x3f, 0, 0, 0, 0x40], false);
        assert_eq!((c.0, c.1), (1.5, 2.0));
        assert!(Bool::decode(&[7], false).0);
    }
}
