//! `bin` (and the body of `npy` and `/raw`): the selected elements' bytes exactly as stored, in
//! output order. Large runs go out as zero-copy slices of the map; small ones are copied together
//! so a strided selection does not become one tiny chunk per element.

use super::{Chunker, EncodeError, Piece, Steps};
use crate::plan::Run;

/// Runs at least this long are sent as slices of the map instead of being copied. Below it,
/// a chunk per run would cost more in per-chunk overhead than the copy saves.
const ZERO_COPY_MIN: u64 = 64 * 1024;

/// Chunks read ahead of the one being sent, on cold data.
const LOOKAHEAD_CHUNKS: u64 = 4;

/// The runs of a `bin` body, and where it stands in a long run that goes out zero-copy.
pub(super) struct BinSteps<R> {
    runs: R,
    /// The rest of a long run, `[next, end)`, when one is being sent.
    zero_copy: Option<(u64, u64)>,
}

impl<R: Iterator<Item = Run>> BinSteps<R> {
    pub(super) fn new(runs: R) -> BinSteps<R> {
        BinSteps {
            runs,
            zero_copy: None,
        }
    }
}

impl<R: Iterator<Item = Run> + Send> Steps for BinSteps<R> {
    fn step(&mut self, chunker: &mut Chunker) -> Result<bool, EncodeError> {
        loop {
            if let Some((offset, end)) = self.zero_copy {
                let limit = chunker.limit as u64;
                let len = limit.min(end - offset);
                chunker.guard()?;
                // Read the next windows ahead while this one goes out, then fault this one in
                // here, off the async workers, so hyper's write from the map never stalls one
                // on a cold page.
                let ahead = (end - offset - len).min(LOOKAHEAD_CHUNKS * limit);
                chunker.prefetch(offset + len, ahead);
                chunker.populate(offset, len)?;
                let piece = chunker.dataset.slice(offset, len);
                chunker.send(piece)?;
                self.zero_copy = (offset + len < end).then_some((offset + len, end));
                return Ok(false);
            }
            let Some(run) = self.runs.next() else {
                return Ok(true);
            };
            if run.len >= ZERO_COPY_MIN {
                chunker.flush()?;
                self.zero_copy = Some((run.offset, run.offset + run.len));
            } else {
                chunker.guard()?;
                let (buf, dataset) = chunker.buf_and_dataset();
                buf.extend_from_slice(dataset.view(run.offset, run.len));
                chunker.flush_if_full()?;
                if chunker.has_ready() {
                    return Ok(false);
                }
            }
        }
    }
}

/// The pieces of a `/raw` body: literal bytes, and runs sent as `bin` sends them.
pub(super) struct RawSteps {
    pieces: std::vec::IntoIter<Piece>,
    /// The run being sent.
    run: Option<BinSteps<std::iter::Once<Run>>>,
}

impl RawSteps {
    pub(super) fn new(pieces: Vec<Piece>) -> RawSteps {
        RawSteps {
            pieces: pieces.into_iter(),
            run: None,
        }
    }
}

impl Steps for RawSteps {
    fn step(&mut self, chunker: &mut Chunker) -> Result<bool, EncodeError> {
        loop {
            if let Some(run) = &mut self.run {
                if run.step(chunker)? {
                    self.run = None;
                }
            } else {
                match self.pieces.next() {
                    None => return Ok(true),
                    Some(Piece::Literal(bytes)) => {
                        chunker.buf().extend_from_slice(&bytes);
                        chunker.flush_if_full()?;
                    }
                    Some(Piece::Run(run)) => {
                        self.run = Some(BinSteps::new(std::iter::once(run)));
                    }
                }
            }
            if chunker.has_ready() {
                return Ok(false);
            }
        }
    }
}
