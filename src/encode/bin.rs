//! `bin` (and the body of `npy` and `/raw`): the selected elements' bytes exactly as stored, in
//! output order. Large runs go out as zero-copy slices of the map; small ones are copied together
//! so a strided selection does not become one tiny chunk per element.

use super::{Chunker, EncodeError};
use crate::plan::Run;

/// Runs at least this long are sent as slices of the map instead of being copied. Below it,
/// a chunk per run would cost more in per-chunk overhead than the copy saves.
const ZERO_COPY_MIN: u64 = 64 * 1024;

/// Chunks read ahead of the one being sent, on cold data.
const LOOKAHEAD_CHUNKS: u64 = 4;

pub(super) fn write(
    runs: impl Iterator<Item = Run>,
    chunker: &mut Chunker<'_>,
) -> Result<(), EncodeError> {
    let limit = chunker.limit as u64;
    for run in runs {
        if run.len >= ZERO_COPY_MIN {
            chunker.flush()?;
            let end_exc = run.offset + run.len;
            let mut offset = run.offset;
            while offset < end_exc {
                let len = limit.min(end_exc - offset);
                chunker.guard()?;
                // Read the next windows ahead while this one goes out, then fault this one in
                // here, on the blocking thread, so hyper's write from the map never stalls an
                // async worker on a cold page.
                let ahead = (end_exc - offset - len).min(LOOKAHEAD_CHUNKS * limit);
                chunker.prefetch(offset + len, ahead);
                chunker.populate(offset, len)?;
                let piece = chunker.dataset.slice(offset, len);
                chunker.send(piece)?;
                offset += len;
            }
        } else {
            chunker.guard()?;
            let dataset = chunker.dataset;
            chunker
                .buf()
                .extend_from_slice(dataset.view(run.offset, run.len));
            chunker.flush_if_full()?;
        }
    }
    Ok(())
}
