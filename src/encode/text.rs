//! `json` and `csv`: the selected elements as text, laid out in the output shape.
//!
//! JSON nests lists (a 0-d result is a bare value); CSV writes one value a line for 0-d and
//! 1-d results and one row a line otherwise, flattening leading axes like NumPy's
//! `reshape(-1, last)`. Both walk the elements once, in output order, tracking the output
//! index only as far as the separators need it.

use half::f16;

use super::number::{Bool, Complex, Element, Style};
use super::{Chunker, EncodeError, Job};
use crate::dtype::Scalar;
use crate::plan::Runs;

/// Elements decoded between two checks of the chunk size: bounds a chunk's overshoot.
const ELEMS_PER_STEP: usize = 4096;

/// Runs at least this long are prefetched before they are decoded.
const PREFETCH_MIN_RUN: u64 = 64 * 1024;

/// Bytes of a long run read ahead at a time (two windows are in flight).
const PREFETCH_WINDOW: u64 = 1 << 20;

pub(super) fn write(
    job: &Job,
    runs: Runs,
    style: Style,
    chunker: &mut Chunker<'_>,
) -> Result<(), EncodeError> {
    let shape = job.selection.out_shape();
    let swapped = job.dataset.dtype.is_swapped();
    let args = (runs, shape.as_slice(), swapped, style, chunker);
    match job.dataset.dtype.scalar {
        Scalar::Bool => elements::<Bool>(args),
        Scalar::I8 => elements::<i8>(args),
        Scalar::I16 => elements::<i16>(args),
        Scalar::I32 => elements::<i32>(args),
        Scalar::I64 => elements::<i64>(args),
        Scalar::U8 => elements::<u8>(args),
        Scalar::U16 => elements::<u16>(args),
        Scalar::U32 => elements::<u32>(args),
        Scalar::U64 => elements::<u64>(args),
        Scalar::F16 => elements::<f16>(args),
        Scalar::F32 => elements::<f32>(args),
        Scalar::F64 => elements::<f64>(args),
        Scalar::C64 => elements::<Complex<f32>>(args),
        Scalar::C128 => elements::<Complex<f64>>(args),
    }
}

type Args<'s, 'c, 'd> = (Runs, &'s [u64], bool, Style, &'c mut Chunker<'d>);

fn elements<E: Element>(
    (runs, shape, swapped, style, chunker): Args<'_, '_, '_>,
) -> Result<(), EncodeError> {
    if shape.contains(&0) {
        return empty(shape, style, chunker);
    }
    let mut layout = Layout::new(shape, style);
    layout.open(chunker.buf());
    let dataset = chunker.dataset;
    let step_bytes = E::SIZE * ELEMS_PER_STEP;
    for run in runs {
        let bytes = dataset.view(run.offset, run.len);
        for (i, step) in bytes.chunks(step_bytes).enumerate() {
            chunker.guard()?;
            if run.len >= PREFETCH_MIN_RUN {
                // Long runs are read ahead a window at a time and each step faulted in before
                // it is decoded, so cold data arrives in large reads, ahead of the encoder.
                let at = run.offset + (i * step_bytes) as u64;
                if (i * step_bytes) as u64 % PREFETCH_WINDOW == 0 {
                    let end_exc = run.offset + run.len;
                    chunker.prefetch(at, PREFETCH_WINDOW.min(end_exc - at) * 2);
                }
                chunker.populate(at, step.len() as u64)?;
            }
            let buf = chunker.buf();
            for elem in step.chunks_exact(E::SIZE) {
                layout.separate(buf);
                E::decode(elem, swapped).write(buf, style);
            }
            chunker.flush_if_full()?;
        }
    }
    layout.close(chunker.buf());
    Ok(())
}

/// Separators between elements in output order.
struct Layout {
    json: bool,
    /// Output shape; for CSV only its last length matters.
    shape: Vec<u64>,
    /// Output index of the element last written, innermost last; `None` before the first.
    index: Option<Vec<u64>>,
}

impl Layout {
    fn new(shape: &[u64], style: Style) -> Layout {
        Layout {
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
fn empty(shape: &[u64], style: Style, chunker: &mut Chunker<'_>) -> Result<(), EncodeError> {
    if style == Style::Csv {
        return Ok(());
    }
    // Lists nest down to the first zero-length axis; everything inside it is one `[]`.
    let depth = shape.iter().position(|&d| d == 0).unwrap_or(shape.len());
    let outer = &shape[..depth];
    let mut layout = Layout::new(outer, Style::JsonNull);
    layout.open(chunker.buf());
    // Saturating: a shape like (2^32, 2^32, 0) holds no bytes but more lists than a u64
    // counts; such a body never ends before the client gives up, which is the truth of it.
    let count = outer.iter().fold(1u64, |acc, &d| acc.saturating_mul(d));
    for _ in 0..count {
        layout.separate(chunker.buf());
        chunker.buf().extend_from_slice(b"[]");
        chunker.flush_if_full()?;
    }
    layout.close(chunker.buf());
    Ok(())
}
