//! `bin` and `npy`: the selected elements' bytes exactly as stored, in output order, after
//! the `.npy` header for `npy`. The producer copies or slices the stored bytes itself (it
//! sends long runs as zero-copy slices of the map), so this encoder only opens the body.

use super::Encoder;

/// The stored bytes after `header`.
pub(super) struct Stored {
    header: Vec<u8>,
}

impl Stored {
    pub(super) fn new(header: Vec<u8>) -> Stored {
        Stored { header }
    }
}

impl Encoder for Stored {
    fn is_stored(&self) -> bool {
        true
    }

    fn step_bytes(&self) -> u64 {
        u64::MAX
    }

    fn open(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.header);
    }

    fn encode(&mut self, stored: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(stored);
    }

    fn close(&mut self, _out: &mut Vec<u8>) -> bool {
        true
    }
}
