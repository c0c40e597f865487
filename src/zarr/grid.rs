//! The chunk grid of a dataset's Zarr view: a chunk shape for which every chunk is one
//! contiguous run of the array's bytes, so a chunk answer is a slice of the map, never a
//! gather.
//!
//! For C order the chunk shape is `(1, ..., 1, c, d_{k+1}, ..., d_{n-1})`: whole trailing
//! blocks, `c` of them along axis `k`, with `k` the outermost axis whose trailing block still
//! fits the target size and `c` as many blocks as fit (at least one). When even one element
//! row of the last axis is over the target, the chunk is `(1, ..., 1, c)` along the last axis.
//! An array no larger than the target is one chunk. Fortran order is the mirror image: the
//! shape is reversed, chunked as C, and reversed back.
//!
//! Only the chunks at the end of the split axis can be partial, and a partial chunk's
//! elements are a prefix of its full-size layout (the split axis is the slowest-varying axis
//! of the chunk that is longer than 1), so its answer is its run followed by zeros.

use crate::dataset::Order;

/// A dataset's chunk grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    /// The array shape.
    pub shape: Vec<u64>,
    /// The shape of every chunk (edge chunks included, as Zarr requires); every entry at
    /// least 1.
    pub chunk_shape: Vec<u64>,
    itemsize: u64,
    order: Order,
}

/// Where one chunk's bytes are, relative to the first byte of the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRun {
    /// Offset of the chunk's first element in the array region.
    pub offset: u64,
    /// Bytes of the array inside the chunk.
    pub len: u64,
    /// Bytes of the full-size chunk: `len` plus the zero padding of an edge chunk.
    pub padded: u64,
}

impl Grid {
    /// The grid of an array of `shape` with `itemsize`-byte elements in `order`, with chunks
    /// of about `target` bytes (at most `target`, unless one element is over it).
    pub fn new(shape: &[u64], itemsize: u64, order: Order, target: u64) -> Grid {
        let mut c_shape = shape.to_vec();
        if order == Order::F {
            c_shape.reverse();
        }
        let mut chunk = c_chunk_shape(&c_shape, itemsize, target);
        if order == Order::F {
            chunk.reverse();
        }
        Grid {
            shape: shape.to_vec(),
            chunk_shape: chunk,
            itemsize,
            order,
        }
    }

    /// Chunks along each axis (0 along a zero-length axis, so that array has no chunk).
    pub fn counts(&self) -> Vec<u64> {
        self.shape
            .iter()
            .zip(&self.chunk_shape)
            .map(|(&d, &c)| d.div_ceil(c))
            .collect()
    }

    /// The run of the chunk at grid position `index`, or `None` when `index` has the wrong
    /// length or lies outside the grid.
    pub fn chunk(&self, index: &[u64]) -> Option<ChunkRun> {
        if index.len() != self.shape.len() {
            return None;
        }
        if index
            .iter()
            .zip(self.counts())
            .any(|(&i, count)| i >= count)
        {
            return None;
        }
        // Walk the axes from the slowest to the fastest varying one in memory.
        let axes: Vec<usize> = match self.order {
            Order::C => (0..self.shape.len()).collect(),
            Order::F => (0..self.shape.len()).rev().collect(),
        };
        let mut offset = 0u64;
        let mut stride = self.itemsize;
        for &axis in axes.iter().rev() {
            offset += index[axis] * self.chunk_shape[axis] * stride;
            stride *= self.shape[axis];
        }
        let padded = self.chunk_shape.iter().product::<u64>() * self.itemsize;
        // The split axis is the slowest-varying one whose chunk is longer than 1; only it can
        // cut a chunk short.
        let mut len = padded;
        if let Some(&axis) = axes.iter().find(|&&a| self.chunk_shape[a] > 1) {
            let start = index[axis] * self.chunk_shape[axis];
            let rows = (self.shape[axis] - start).min(self.chunk_shape[axis]);
            len = padded / self.chunk_shape[axis] * rows;
        }
        Some(ChunkRun {
            offset,
            len,
            padded,
        })
    }
}

/// The chunk shape of a C-order array; see the module documentation.
fn c_chunk_shape(shape: &[u64], itemsize: u64, target: u64) -> Vec<u64> {
    let n = shape.len();
    let mut chunk: Vec<u64> = shape.iter().map(|&d| d.max(1)).collect();
    // block[k]: bytes of one index of axis k - 1, i.e. of the trailing block from axis k.
    let mut block = itemsize;
    for k in (0..n).rev() {
        let whole = block.saturating_mul(chunk[k]);
        if whole > target {
            // Axis k is split: as many trailing blocks as fit, at least one.
            chunk[k] = (target / block).clamp(1, chunk[k]);
            for c in &mut chunk[..k] {
                *c = 1;
            }
            return chunk;
        }
        block = whole;
    }
    chunk
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{ChunkRun, Grid};
    use crate::dataset::Order;

    #[test]
    fn c_order_splits_the_outermost_axis_that_does_not_fit() {
        // 1 GiB of f32 in 4 MiB chunks: 256 rows of 4096 floats each.
        let g = Grid::new(&[65536, 4096], 4, Order::C, 4 << 20);
        assert_eq!(g.chunk_shape, vec![256, 4096]);
        assert_eq!(g.counts(), vec![256, 1]);
        // A 3-d array whose planes are 1 MiB: 4 planes a chunk.
        let g = Grid::new(&[10, 512, 512], 4, Order::C, 4 << 20);
        assert_eq!(g.chunk_shape, vec![4, 512, 512]);
        // Planes over the target: rows of the plane, leading axis 1.
        let g = Grid::new(&[3, 4096, 4096], 4, Order::C, 4 << 20);
        assert_eq!(g.chunk_shape, vec![1, 256, 4096]);
        // Rows over the target: the last axis is split.
        let g = Grid::new(&[2, 3_000_000], 4, Order::C, 4 << 20);
        assert_eq!(g.chunk_shape, vec![1, 1 << 20]);
        // Small arrays are one chunk.
        assert_eq!(
            Grid::new(&[3, 4], 4, Order::C, 4 << 20).chunk_shape,
            vec![3, 4]
        );
    }

    #[test]
    fn f_order_mirrors_c_order() {
        let g = Grid::new(&[4096, 65536], 4, Order::F, 4 << 20);
        assert_eq!(g.chunk_shape, vec![4096, 256]);
        let g = Grid::new(&[4096, 4096, 3], 4, Order::F, 4 << 20);
        assert_eq!(g.chunk_shape, vec![4096, 256, 1]);
    }

    #[test]
    fn zero_d_and_zero_length_arrays() {
        let g = Grid::new(&[], 8, Order::C, 16);
        assert_eq!(g.chunk_shape, Vec::<u64>::new());
        assert_eq!(
            g.chunk(&[]),
            Some(ChunkRun {
                offset: 0,
                len: 8,
                padded: 8
            })
        );
        let g = Grid::new(&[3, 0, 2], 4, Order::C, 16);
        assert!(g.chunk_shape.iter().all(|&c| c >= 1));
        assert_eq!(g.counts()[1], 0);
        assert_eq!(g.chunk(&[0, 0, 0]), None);
    }

    #[test]
    fn edge_chunks_are_padded_to_full_size() {
        // 10 rows of 3 u16 in chunks of 4 rows: rows 8 and 9 are the edge chunk.
        let g = Grid::new(&[10, 3], 2, Order::C, 24);
        assert_eq!(g.chunk_shape, vec![4, 3]);
        assert_eq!(
            g.chunk(&[2, 0]),
            Some(ChunkRun {
                offset: 48,
                len: 12,
                padded: 24
            })
        );
        assert_eq!(g.chunk(&[3, 0]), None);
        assert_eq!(g.chunk(&[0, 1]), None);
        assert_eq!(g.chunk(&[0]), None);
    }

    fn array() -> impl Strategy<Value = (Vec<u64>, u64, Order, u64)> {
        (
            prop::collection::vec(0u64..9, 0..5),
            prop_oneof![Just(1u64), Just(2), Just(4), Just(8), Just(16)],
            prop_oneof![Just(Order::C), Just(Order::F)],
            1u64..400,
        )
    }

    /// The flat index, in memory order, of element `at` of an array of `shape` in `order`.
    fn flat(shape: &[u64], order: Order, at: &[u64]) -> u64 {
        let axes: Vec<usize> = match order {
            Order::C => (0..shape.len()).collect(),
            Order::F => (0..shape.len()).rev().collect(),
        };
        axes.iter().fold(0, |acc, &a| acc * shape[a] + at[a])
    }

    proptest! {
        /// Every element of the array lies in exactly one chunk's run, at the byte the
        /// chunk's own layout puts it, and runs are in bounds and never over `padded`.
        #[test]
        fn chunks_tile_the_array_as_contiguous_runs((shape, itemsize, order, target) in array()) {
            let g = Grid::new(&shape, itemsize, order, target);
            let n: u64 = shape.iter().product();
            let nbytes = n * itemsize;
            prop_assert!(g.chunk_shape.iter().all(|&c| c >= 1));
            let elems: u64 = g.chunk_shape.iter().product();
            prop_assert!(elems == 1 || elems * itemsize <= target);
            let mut covered = vec![false; n as usize];
            let counts = g.counts();
            let total: u64 = counts.iter().product();
            for c in 0..total {
                // The c-th grid position, C order over the grid.
                let mut idx = vec![0u64; shape.len()];
                let mut rest = c;
                for a in (0..shape.len()).rev() {
                    idx[a] = rest % counts[a];
                    rest /= counts[a];
                }
                let run = g.chunk(&idx).unwrap();
                prop_assert!(run.len <= run.padded && run.offset + run.len <= nbytes);
                prop_assert_eq!(run.padded, elems * itemsize);
                // Every element of the chunk inside the array, at its place in the chunk.
                let mut inside = 0u64;
                for e in 0..elems {
                    let mut local = vec![0u64; shape.len()];
                    let mut rest = e;
                    let axes: Vec<usize> = match order {
                        Order::C => (0..shape.len()).rev().collect(),
                        Order::F => (0..shape.len()).collect(),
                    };
                    for &a in &axes {
                        local[a] = rest % g.chunk_shape[a];
                        rest /= g.chunk_shape[a];
                    }
                    let at: Vec<u64> = (0..shape.len()).map(|a| idx[a] * g.chunk_shape[a] + local[a]).collect();
                    if at.iter().zip(&shape).all(|(&x, &d)| x < d) {
                        inside += 1;
                        let f = flat(&shape, order, &at);
                        prop_assert_eq!(f * itemsize, run.offset + e * itemsize);
                        prop_assert!(e * itemsize < run.len);
                        prop_assert!(!covered[f as usize]);
                        covered[f as usize] = true;
                    } else {
                        // Outside the array: only ever in the padding after the run.
                        prop_assert!(e * itemsize >= run.len);
                    }
                }
                prop_assert_eq!(inside * itemsize, run.len);
            }
            prop_assert!(covered.iter().all(|&c| c));
        }
    }
}
