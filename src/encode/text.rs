//! `json` and `csv`: the selected elements as text, laid out in the output shape.
//!
//! JSON nests lists (a 0-d result is a bare value); CSV writes one value a line for 0-d and
//! 1-d results and one row a line otherwise, flattening leading axes like NumPy's
//! `reshape(-1, last)`. Both walk the elements once, in output order, tracking the output
//! index only as far as the separators need it.

use half::f16;

use std::marker::PhantomData;

use super::number::{Style, Text};
use super::{Chunker, EncodeError, Job, Steps};
use crate::dtype::Scalar;
use crate::element::{Bool, Complex};
use crate::plan::{Run, Runs};

/// Elements decoded between two checks of the chunk size: bounds a chunk's overshoot.
const ELEMS_PER_STEP: usize = 4096;

/// Runs at least this long are prefetched before they are decoded.
const PREFETCH_MIN_RUN: u64 = 64 * 1024;

/// Bytes of a long run read ahead at a time (two windows are in flight).
const PREFETCH_WINDOW: u64 = 1 << 20;

/// The steps of a JSON or CSV body of `job` over `runs`.
pub(super) fn steps(job: &Job, runs: Runs, style: Style) -> Box<dyn Steps> {
    let shape = job.selection.out_shape();
    if shape.contains(&0) {
        return Box::new(EmptySteps::new(&shape, style));
    }
    let swapped = job.dataset.dtype.is_swapped();
    fn of<E: Text + Send + 'static>(
        runs: Runs,
        shape: &[u64],
        swapped: bool,
        style: Style,
    ) -> Box<dyn Steps> {
        Box::new(TextSteps::<E> {
            runs,
            run: None,
            layout: Layout::new(shape, style),
            opened: false,
            swapped,
            style,
            element: PhantomData,
        })
    }
    let args = (runs, shape.as_slice(), swapped, style);
    match job.dataset.dtype.scalar {
        Scalar::Bool => of::<Bool>(args.0, args.1, args.2, args.3),
        Scalar::I8 => of::<i8>(args.0, args.1, args.2, args.3),
        Scalar::I16 => of::<i16>(args.0, args.1, args.2, args.3),
        Scalar::I32 => of::<i32>(args.0, args.1, args.2, args.3),
        Scalar::I64 => of::<i64>(args.0, args.1, args.2, args.3),
        Scalar::U8 => of::<u8>(args.0, args.1, args.2, args.3),
        Scalar::U16 => of::<u16>(args.0, args.1, args.2, args.3),
        Scalar::U32 => of::<u32>(args.0, args.1, args.2, args.3),
        Scalar::U64 => of::<u64>(args.0, args.1, args.2, args.3),
        Scalar::F16 => of::<f16>(args.0, args.1, args.2, args.3),
        Scalar::F32 => of::<f32>(args.0, args.1, args.2, args.3),
        Scalar::F64 => of::<f64>(args.0, args.1, args.2, args.3),
        Scalar::C64 => of::<Complex<f32>>(args.0, args.1, args.2, args.3),
        Scalar::C128 => of::<Complex<f64>>(args.0, args.1, args.2, args.3),
    }
}

/// Where a text body stands: the runs left, the run being decoded and how far, and the
/// output index its separators need.
struct TextSteps<E> {
    runs: Runs,
    /// The run being decoded and the bytes of it done.
    run: Option<(Run, u64)>,
    layout: Layout,
    opened: bool,
    swapped: bool,
    style: Style,
    element: PhantomData<E>,
}

impl<E: Text + Send> Steps for TextSteps<E> {
    fn step(&mut self, chunker: &mut Chunker) -> Result<bool, EncodeError> {
        if !self.opened {
            self.layout.open(chunker.buf());
            self.opened = true;
        }
        let step_bytes = (E::SIZE * ELEMS_PER_STEP) as u64;
        loop {
            let Some((run, done)) = self.run.or_else(|| self.runs.next().map(|r| (r, 0))) else {
                self.layout.close(chunker.buf());
                return Ok(true);
            };
            let at = run.offset + done;
            let len = step_bytes.min(run.len - done);
            chunker.guard()?;
            if run.len >= PREFETCH_MIN_RUN {
                // Long runs are read ahead a window at a time and each step faulted in before
                // it is decoded, so cold data arrives in large reads, ahead of the encoder.
                if done % PREFETCH_WINDOW == 0 {
                    let end_exc = run.offset + run.len;
                    chunker.prefetch(at, PREFETCH_WINDOW.min(end_exc - at) * 2);
                }
                chunker.populate(at, len)?;
            }
            let (buf, dataset) = chunker.buf_and_dataset();
            for elem in dataset.view(at, len).chunks_exact(E::SIZE) {
                self.layout.separate(buf);
                E::decode(elem, self.swapped).write(buf, self.style);
            }
            self.run = (done + len < run.len).then_some((run, done + len));
            chunker.flush_if_full()?;
            if chunker.has_ready() {
                return Ok(false);
            }
        }
    }
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
struct EmptySteps {
    /// The lists around the first zero-length axis; `None` for CSV.
    layout: Option<Layout>,
    /// `[]` still to write.
    left: u64,
    opened: bool,
}

impl EmptySteps {
    fn new(shape: &[u64], style: Style) -> EmptySteps {
        // Lists nest down to the first zero-length axis; everything inside it is one `[]`.
        let depth = shape.iter().position(|&d| d == 0).unwrap_or(shape.len());
        let outer = &shape[..depth];
        // Saturating: a shape like (2^32, 2^32, 0) holds no bytes but more lists than a u64
        // counts; such a body never ends before the client gives up, which is the truth of it.
        let left = outer.iter().fold(1u64, |acc, &d| acc.saturating_mul(d));
        EmptySteps {
            layout: (style != Style::Csv).then(|| Layout::new(outer, Style::JsonNull)),
            left,
            opened: false,
        }
    }
}

impl Steps for EmptySteps {
    fn step(&mut self, chunker: &mut Chunker) -> Result<bool, EncodeError> {
        let Some(layout) = self.layout.as_mut() else {
            return Ok(true);
        };
        if !self.opened {
            layout.open(chunker.buf());
            self.opened = true;
        }
        while self.left > 0 {
            self.left -= 1;
            layout.separate(chunker.buf());
            chunker.buf().extend_from_slice(b"[]");
            chunker.flush_if_full()?;
            if chunker.has_ready() {
                return Ok(false);
            }
        }
        layout.close(chunker.buf());
        Ok(true)
    }
}
