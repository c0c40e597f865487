//! `json` and `csv`: the selected elements as text, laid out in the output shape.
//!
//! JSON nests lists (a 0-d result is a bare value); CSV writes one value a line for 0-d and
//! 1-d results and one row a line otherwise, flattening leading axes like NumPy's
//! `reshape(-1, last)`. Both walk the elements once, in output order, tracking the output
//! index only as far as the separators need it.

use half::f16;

use std::marker::PhantomData;

use super::number::{Style, Text};
use super::Encoder;
use crate::dtype::{DType, Scalar};
use crate::element::{Bool, Complex};

/// Elements encoded per call: bounds a chunk's overshoot.
const ELEMS_PER_STEP: u64 = 4096;

/// The encoder of a JSON or CSV body of `dtype` elements in output `shape`.
pub(super) fn encoder(dtype: DType, shape: &[u64], style: Style) -> Box<dyn Encoder> {
    if shape.contains(&0) {
        return Box::new(Empty::new(shape, style));
    }
    fn of<E: Text + Send + 'static>(
        shape: &[u64],
        swapped: bool,
        style: Style,
    ) -> Box<dyn Encoder> {
        Box::new(Elements::<E> {
            separators: Separators::new(shape, style),
            swapped,
            style,
            element: PhantomData,
        })
    }
    let args = (shape, dtype.is_swapped(), style);
    match dtype.scalar {
        Scalar::Bool => of::<Bool>(args.0, args.1, args.2),
        Scalar::I8 => of::<i8>(args.0, args.1, args.2),
        Scalar::I16 => of::<i16>(args.0, args.1, args.2),
        Scalar::I32 => of::<i32>(args.0, args.1, args.2),
        Scalar::I64 => of::<i64>(args.0, args.1, args.2),
        Scalar::U8 => of::<u8>(args.0, args.1, args.2),
        Scalar::U16 => of::<u16>(args.0, args.1, args.2),
        Scalar::U32 => of::<u32>(args.0, args.1, args.2),
        Scalar::U64 => of::<u64>(args.0, args.1, args.2),
        Scalar::F16 => of::<f16>(args.0, args.1, args.2),
        Scalar::F32 => of::<f32>(args.0, args.1, args.2),
        Scalar::F64 => of::<f64>(args.0, args.1, args.2),
        Scalar::C64 => of::<Complex<f32>>(args.0, args.1, args.2),
        Scalar::C128 => of::<Complex<f64>>(args.0, args.1, args.2),
    }
}

/// A text body of `E` elements: the output index its separators need, and how to read and
/// spell an element.
struct Elements<E> {
    separators: Separators,
    swapped: bool,
    style: Style,
    element: PhantomData<E>,
}

impl<E: Text + Send> Encoder for Elements<E> {
    fn is_stored(&self) -> bool {
        false
    }

    fn step_bytes(&self) -> u64 {
        E::SIZE as u64 * ELEMS_PER_STEP
    }

    fn open(&mut self, out: &mut Vec<u8>) {
        self.separators.open(out);
    }

    fn encode(&mut self, stored: &[u8], out: &mut Vec<u8>) {
        for elem in stored.chunks_exact(E::SIZE) {
            self.separators.separate(out);
            E::decode(elem, self.swapped).write(out, self.style);
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) -> bool {
        self.separators.close(out);
        true
    }
}

/// Separators between elements in output order.
struct Separators {
    json: bool,
    /// Output shape; for CSV only its last length matters.
    shape: Vec<u64>,
    /// Output index of the element last written, innermost last; `None` before the first.
    index: Option<Vec<u64>>,
}

impl Separators {
    fn new(shape: &[u64], style: Style) -> Separators {
        Separators {
            json: style != Style::Csv,
            shape: shape.to_vec(),
            index: None,
        }
    }

    fn open(&self, out: &mut Vec<u8>) {
        if self.json {
            out.extend(std::iter::repeat_n(b'[', self.shape.len()));
        }
    }

    /// Writes what goes before the next element.
    #[inline]
    fn separate(&mut self, out: &mut Vec<u8>) {
        let Some(index) = self.index.as_mut() else {
            self.index = Some(vec![0; self.shape.len()]);
            return;
        };
        // Advance the odometer; `closed` counts the axes that wrapped around.
        let mut closed = 0;
        for (i, len) in index.iter_mut().zip(&self.shape).rev() {
            *i += 1;
            if *i < *len {
                break;
            }
            *i = 0;
            closed += 1;
        }
        if self.json {
            out.extend(std::iter::repeat_n(b']', closed));
            out.push(b',');
            out.extend(std::iter::repeat_n(b'[', closed));
        } else if self.shape.len() >= 2 && closed == 0 {
            out.push(b',');
        } else {
            out.push(b'\n');
        }
    }

    fn close(&self, out: &mut Vec<u8>) {
        if self.json {
            out.extend(std::iter::repeat_n(b']', self.shape.len()));
        } else {
            out.push(b'\n');
        }
    }
}

/// The body of a selection with no elements: nested empty lists in JSON (NumPy's `tolist()`
/// of a `(3, 0, 2)` array is `[[], [], []]`), nothing at all in CSV.
struct Empty {
    /// The lists around the first zero-length axis; `None` for CSV.
    separators: Option<Separators>,
    /// `[]` still to write.
    left: u64,
}

impl Empty {
    fn new(shape: &[u64], style: Style) -> Empty {
        // Lists nest down to the first zero-length axis; everything inside it is one `[]`.
        let depth = shape.iter().position(|&d| d == 0).unwrap_or(shape.len());
        let outer = &shape[..depth];
        // Saturating: a shape like (2^32, 2^32, 0) holds no bytes but more lists than a u64
        // counts; such a body never ends before the client gives up, which is the truth of it.
        let left = outer.iter().fold(1u64, |acc, &d| acc.saturating_mul(d));
        Empty {
            separators: (style != Style::Csv).then(|| Separators::new(outer, Style::JsonNull)),
            left,
        }
    }
}

impl Encoder for Empty {
    fn is_stored(&self) -> bool {
        false
    }

    fn step_bytes(&self) -> u64 {
        ELEMS_PER_STEP
    }

    fn open(&mut self, out: &mut Vec<u8>) {
        if let Some(separators) = &self.separators {
            separators.open(out);
        }
    }

    fn encode(&mut self, _stored: &[u8], _out: &mut Vec<u8>) {}

    fn close(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(separators) = self.separators.as_mut() else {
            return true;
        };
        // A step of `[]`s at a time: the producer flushes between calls.
        for _ in 0..ELEMS_PER_STEP.min(self.left) {
            self.left -= 1;
            separators.separate(out);
            out.extend_from_slice(b"[]");
        }
        if self.left > 0 {
            return false;
        }
        separators.close(out);
        true
    }
}
