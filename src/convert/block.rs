//! The input cut into blocks of whole lines, so that workers can parse blocks independently.
//!
//! A block is about [`BLOCK_BYTES`] of input ending just after a `\n` (the last block may
//! end without one). The partial line at the end of a read is carried into the next block.
//! A line that has no end within [`MAX_LINE_BYTES`] stops the input there: the block holding
//! it is returned as [`Fill::Overlong`], so the line is reported in order, after any error in
//! earlier lines. The lines `--skip-rows` skips are read and dropped here, without a length
//! bound, as `loadtxt` skips them unread.

use std::io::{self, Read};

/// Bytes of input per block: large enough that handing a block to a worker costs nothing
/// next to parsing it, small enough that the blocks in flight stay a few MiB.
pub(super) const BLOCK_BYTES: usize = 1 << 20;

/// The longest line read (its `\n` included): a longer one is an error, which bounds the
/// memory one line can take, whatever the input.
pub(super) const MAX_LINE_BYTES: usize = BLOCK_BYTES;

/// How much one `read` asks for.
const READ_BYTES: usize = 256 << 10;

/// What [`Blocks::fill`] put into the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fill {
    /// Whole lines (the last of the input may lack its `\n`).
    Lines,
    /// Lines, the last of which is longer than [`MAX_LINE_BYTES`]; nothing follows.
    Overlong,
    /// The input is exhausted; the buffer is empty.
    End,
}

/// The input as a sequence of blocks.
pub(super) struct Blocks<R> {
    input: R,
    /// The start of a line, read past the end of the previous block.
    carry: Vec<u8>,
    eof: bool,
    /// Input bytes read so far, skipped lines included.
    pub(super) bytes_read: u64,
}

impl<R: Read> Blocks<R> {
    /// Blocks of `input`.
    pub(super) fn new(input: R) -> Blocks<R> {
        Blocks {
            input,
            carry: Vec::new(),
            eof: false,
            bytes_read: 0,
        }
    }

    /// Drops the first `n` physical lines; returns how many there were (fewer at the end of
    /// the input).
    ///
    /// # Errors
    /// A read error of the input.
    pub(super) fn skip_lines(&mut self, n: u64) -> io::Result<u64> {
        let mut skipped = 0;
        // Bytes of a line whose end was not read yet: at the end of the input, a line too.
        let mut open = false;
        let mut buf = vec![0; READ_BYTES];
        while skipped < n {
            let len = self.read(&mut buf)?;
            if len == 0 {
                self.eof = true;
                return Ok(skipped + u64::from(open));
            }
            let mut at = 0;
            while skipped < n {
                let Some(i) = memchr::memchr(b'\n', &buf[at..len]) else {
                    break;
                };
                skipped += 1;
                at += i + 1;
            }
            if skipped == n {
                self.carry.extend_from_slice(&buf[at..len]);
            } else {
                open = at < len;
            }
        }
        Ok(skipped)
    }

    /// Replaces the contents of `buf` with the next block.
    ///
    /// # Errors
    /// A read error of the input.
    pub(super) fn fill(&mut self, buf: &mut Vec<u8>) -> io::Result<Fill> {
        buf.clear();
        buf.append(&mut self.carry);
        while buf.len() < BLOCK_BYTES && !self.eof {
            let start = buf.len();
            buf.resize(start + READ_BYTES, 0);
            let len = self.read(&mut buf[start..])?;
            buf.truncate(start + len);
            self.eof = len == 0;
        }
        if self.eof {
            return Ok(if buf.is_empty() {
                Fill::End
            } else {
                Fill::Lines
            });
        }
        match memchr::memrchr(b'\n', buf) {
            Some(last) => {
                self.carry.extend_from_slice(&buf[last + 1..]);
                buf.truncate(last + 1);
                Ok(Fill::Lines)
            }
            // `buf` starts a line and holds no line end: one line of BLOCK_BYTES or more.
            None => Ok(Fill::Overlong),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.input.read(buf) {
                Ok(n) => {
                    self.bytes_read += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one byte at a time, the worst case for line boundaries.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.split_first() {
                Some((b, rest)) if !buf.is_empty() => {
                    buf[0] = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn all_blocks(input: &[u8], skip: u64) -> (u64, Vec<Vec<u8>>, Fill) {
        let mut blocks = Blocks::new(input);
        let skipped = blocks.skip_lines(skip).unwrap();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match blocks.fill(&mut buf).unwrap() {
                Fill::Lines => out.push(buf.clone()),
                last => return (skipped, out, last),
            }
        }
    }

    #[test]
    fn blocks_end_at_line_ends() {
        let line = b"123456789,123456789\n";
        let input: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(line.len() * 200_000)
            .collect();
        let (_, blocks, last) = all_blocks(&input, 0);
        assert_eq!(last, Fill::End);
        assert!(blocks.len() > 2);
        for b in &blocks {
            assert_eq!(b.last(), Some(&b'\n'));
            assert!(b.len() <= BLOCK_BYTES + READ_BYTES);
        }
        assert_eq!(blocks.concat(), input);
    }

    #[test]
    fn last_line_without_newline() {
        let (_, blocks, _) = all_blocks(b"1\n2", 0);
        assert_eq!(blocks.concat(), b"1\n2");
    }

    #[test]
    fn skip_counts_physical_lines() {
        assert_eq!(
            all_blocks(b"a\n#b\n\n1\n2", 3),
            (3, vec![b"1\n2".to_vec()], Fill::End)
        );
        assert_eq!(all_blocks(b"a\nb", 5).0, 2);
        assert_eq!(all_blocks(b"a\nb\n", 5).0, 2);
        let mut trickle = Blocks::new(Trickle(b"x\ny\n3\n"));
        assert_eq!(trickle.skip_lines(2).unwrap(), 2);
        let mut buf = Vec::new();
        assert_eq!(trickle.fill(&mut buf).unwrap(), Fill::Lines);
        assert_eq!(buf, b"3\n");
    }

    #[test]
    fn overlong_line_stops_the_input() {
        let mut input = b"1\n".to_vec();
        input.extend(std::iter::repeat_n(b'7', 3 * MAX_LINE_BYTES));
        input.extend_from_slice(b"\n2\n");
        let (_, blocks, last) = all_blocks(&input, 0);
        assert_eq!(last, Fill::Overlong);
        assert_eq!(blocks, [b"1\n".to_vec()]);
    }
}
