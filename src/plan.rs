//! Planning: a [`Selection`] over a dataset's [`Layout`] becomes a lazy iterator of runs
//! (README "How a request runs": a run is a maximal contiguous byte range of the file that a selection
//! covers).
//!
//! The runs, read in order and concatenated, are the selected elements in C (row-major) order of
//! the output shape, bytes as stored. A strip is the contiguous bytes one odometer position
//! covers. The planner walks from the innermost axis outwards and grows the strip while each axis either has a single selected element or steps exactly one strip
//! (zarrs' `ContiguousIndices`); the axes left over are walked with an odometer, one strip per
//! position, and neighbouring strips are coalesced as they are produced. Cost is O(ndim) to set up
//! and O(1) per strip: never proportional to the dataset, and never a `Vec` of runs.
//!
//! This module does no I/O and does not decode elements; encoders and reducers read the bytes.

use std::iter::FusedIterator;

use crate::dataset::Layout;
use crate::selection::{AxisSel, Selection};

/// One contiguous byte range of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Absolute file byte offset of the first byte.
    pub offset: u64,
    /// Length in bytes; never 0 in what [`Runs`] yields.
    pub len: u64,
}

/// The runs of one selection, in output order; built by [`runs`].
#[derive(Debug, Clone)]
pub struct Runs {
    /// Axes outside the strip with more than one selected element, in dataset order (the
    /// odometer; the last varies fastest). Axes with one element are folded into `next_offset`.
    outer: Vec<OuterAxis>,
    /// File offset of the next strip the odometer yields.
    next_offset: u64,
    /// Bytes per strip: the innermost axes that merged, before coalescing.
    strip_len: u64,
    /// Strips the odometer has not yielded yet.
    strips_left: u64,
    /// The run being coalesced, yielded once the next strip does not continue it.
    pending: Option<Run>,
}

/// One odometer wheel.
#[derive(Debug, Clone, Copy)]
struct OuterAxis {
    /// Selected elements along the axis (always > 1).
    len: u64,
    /// Current position of the wheel, in `0..len`.
    i: u64,
    /// Byte distance between neighbouring selected elements: `step * stride`, negative for a
    /// negative step. It fits in an `i64` because `runs` checked that the array's end does.
    delta: i64,
    /// Byte distance from the wheel's last position back to its first: `-delta * (len - 1)`.
    rewind: i64,
}

/// Plans `sel` over `layout` into runs.
///
/// Setup is O(ndim); the iterator then costs O(1) per strip. An empty selection (or a zero
/// `itemsize`) yields no runs, and a 0-d array one run of `itemsize` bytes.
///
/// # Panics
///
/// If `sel` was not resolved against `layout.shape` (a different number of dimensions, or an
/// axis reaching outside its dimension), or if a non-empty selection's array ends past
/// `i64::MAX` bytes (no file can: `off_t` is signed). Both are bugs in the caller; the dataset
/// loader guarantees the second.
///
/// # Examples
///
/// ```
/// use arrayd::dataset::{Layout, Order};
/// use arrayd::plan::{runs, Run};
/// use arrayd::selection::Selection;
///
/// // Rows 1..3, columns 1..3 of a 4x4 u8 array stored in C order from byte 0.
/// let layout = Layout { offset: 0, shape: vec![4, 4], itemsize: 1, order: Order::C };
/// let sel = Selection::parse("[1:3,1:3]", &layout.shape).unwrap();
/// let planned: Vec<Run> = runs(&sel, &layout).collect();
/// assert_eq!(planned, [Run { offset: 5, len: 2 }, Run { offset: 9, len: 2 }]);
/// ```
pub fn runs(sel: &Selection, layout: &Layout) -> Runs {
    let axes = sel.axes();
    assert_eq!(
        axes.len(),
        layout.shape.len(),
        "selection has {} dimensions, layout {}",
        axes.len(),
        layout.shape.len()
    );
    if sel.n_elems() == 0 || layout.itemsize == 0 {
        return Runs {
            outer: Vec::new(),
            next_offset: 0,
            strip_len: 0,
            strips_left: 0,
            pending: None,
        };
    }
    for (a, &axis_len) in axes.iter().zip(&layout.shape) {
        let last = i128::from(a.start) + i128::from(a.step) * (i128::from(a.len) - 1);
        assert!(
            a.start < axis_len && (0..i128::from(axis_len)).contains(&last),
            "selection axis {a:?} outside a dimension of {axis_len}"
        );
    }
    // Every dimension is at least 1 here, so each stride is at most the array's byte size, and
    // every element's offset lies in [offset, array_end).
    let array_end = crate::dtype::nbytes(layout.itemsize, &layout.shape)
        .and_then(|nbytes| nbytes.checked_add(layout.offset))
        .filter(|&end| i64::try_from(end).is_ok())
        .unwrap_or_else(|| panic!("array of {layout:?} ends past i64::MAX bytes"));
    debug_assert!(array_end > layout.offset);

    let strides = layout.strides();
    let mut next_offset = layout.offset;
    for (a, &stride) in axes.iter().zip(&strides) {
        next_offset += a.start * stride;
    }

    // Grow the strip from the innermost axis (zarrs `ContiguousIndices::new`).
    let mut strip_len = layout.itemsize;
    let mut n_outer = axes.len();
    while n_outer > 0 {
        let (a, stride) = (axes[n_outer - 1], strides[n_outer - 1]);
        if a.len == 1 {
            n_outer -= 1;
        } else if i128::from(a.step) * i128::from(stride) == i128::from(strip_len) {
            strip_len *= a.len;
            n_outer -= 1;
        } else {
            break;
        }
    }

    let outer: Vec<OuterAxis> = axes[..n_outer]
        .iter()
        .zip(&strides)
        .filter(|(a, _)| a.len > 1)
        .map(|(a, &stride)| outer_axis(a, stride))
        .collect();
    let strips_left = outer.iter().map(|w| w.len).product();
    Runs {
        outer,
        next_offset,
        strip_len,
        strips_left,
        pending: None,
    }
}

/// An odometer wheel for `a`, whose selected elements lie `a.step * stride` bytes apart.
fn outer_axis(a: &AxisSel, stride: u64) -> OuterAxis {
    // `|step| * stride * (len - 1)` is the distance between two elements of the array, less
    // than its byte size, which `runs` checked fits in an i64.
    let delta = i128::from(a.step) * i128::from(stride);
    let rewind = -delta * (i128::from(a.len) - 1);
    OuterAxis {
        len: a.len,
        i: 0,
        delta: i64::try_from(delta).expect("element distance fits the array"),
        rewind: i64::try_from(rewind).expect("element distance fits the array"),
    }
}

impl Runs {
    /// Length in bytes of one strip: the longest run the selection yields before coalescing
    /// (`0` for an empty selection). Every run is a whole multiple of it.
    pub fn max_run_len(&self) -> u64 {
        self.strip_len
    }

    /// The next strip from the odometer, before coalescing.
    #[inline]
    fn next_strip(&mut self) -> Option<Run> {
        if self.strips_left == 0 {
            return None;
        }
        self.strips_left -= 1;
        let strip = Run {
            offset: self.next_offset,
            len: self.strip_len,
        };
        if self.strips_left > 0 {
            for wheel in self.outer.iter_mut().rev() {
                let (step, next_i) = if wheel.i + 1 < wheel.len {
                    (wheel.delta, wheel.i + 1)
                } else {
                    (wheel.rewind, 0)
                };
                wheel.i = next_i;
                // Stays in [offset, array_end): every position the odometer visits is an
                // element of the selection, checked in `runs`.
                self.next_offset = self
                    .next_offset
                    .checked_add_signed(step)
                    .expect("odometer stays inside the array");
                if next_i != 0 {
                    break;
                }
            }
        }
        Some(strip)
    }
}

impl Iterator for Runs {
    type Item = Run;

    fn next(&mut self) -> Option<Run> {
        loop {
            let Some(strip) = self.next_strip() else {
                return self.pending.take();
            };
            match &mut self.pending {
                Some(run) if run.offset + run.len == strip.offset => run.len += strip.len,
                Some(run) => return Some(std::mem::replace(run, strip)),
                None => self.pending = Some(strip),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pending = usize::from(self.pending.is_some());
        let least = usize::from(self.pending.is_some() || self.strips_left > 0);
        let most = usize::try_from(self.strips_left)
            .ok()
            .and_then(|b| b.checked_add(pending));
        (least, most)
    }
}

impl FusedIterator for Runs {}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::dataset::Order;

    fn layout(shape: &[u64], order: Order, itemsize: u64, offset: u64) -> Layout {
        Layout {
            offset,
            shape: shape.to_vec(),
            itemsize,
            order,
        }
    }

    /// Table helper: the runs of `text` over `layout`, as `(offset, len)` pairs.
    fn check(layout: &Layout, text: &str, expected: &[(u64, u64)]) {
        let sel = Selection::parse(text, &layout.shape).unwrap();
        let got: Vec<(u64, u64)> = runs(&sel, layout).map(|r| (r.offset, r.len)).collect();
        assert_eq!(got, expected, "{text:?} over {layout:?}");
    }

    #[test]
    fn c_order_runs() {
        let u8_4x4 = layout(&[4, 4], Order::C, 1, 0);
        check(&u8_4x4, "[1:3,1:3]", &[(5, 2), (9, 2)]);
        check(&u8_4x4, "", &[(0, 16)]);
        check(&u8_4x4, "1:3", &[(4, 8)]);
        check(&u8_4x4, "2", &[(8, 4)]);
        check(&u8_4x4, "2,3", &[(11, 1)]);
        check(&u8_4x4, ":,1", &[(1, 1), (5, 1), (9, 1), (13, 1)]);
        check(&u8_4x4, "::2,::2", &[(0, 1), (2, 1), (8, 1), (10, 1)]);
        check(&u8_4x4, "1:,...", &[(4, 12)]);

        let i2_2x3x4 = layout(&[2, 3, 4], Order::C, 2, 100);
        check(&i2_2x3x4, "1", &[(124, 24)]);
        check(&i2_2x3x4, ":,1", &[(108, 8), (132, 8)]);
        check(&i2_2x3x4, "1,...,2", &[(128, 2), (136, 2), (144, 2)]);
        check(
            &i2_2x3x4,
            "...,1:3",
            &[(102, 4), (110, 4), (118, 4), (126, 4), (134, 4), (142, 4)],
        );
        check(&i2_2x3x4, ":,0:2", &[(100, 16), (124, 16)]);
        // A length-1 axis merges whatever its stride, so a row of a 1-column strip stays whole.
        check(&layout(&[3, 1, 4], Order::C, 1, 0), ":,0,:", &[(0, 12)]);
    }

    #[test]
    fn f_order_runs() {
        let u8_4x4 = layout(&[4, 4], Order::F, 1, 0);
        check(&u8_4x4, ":,1", &[(4, 4)]);
        check(&u8_4x4, "1,:", &[(1, 1), (5, 1), (9, 1), (13, 1)]);
        check(&u8_4x4, "[1:3,1:3]", &[(5, 1), (9, 1), (6, 1), (10, 1)]);
        // Output is C order, so a whole F-order matrix comes out transposed, element by element.
        let whole: Vec<(u64, u64)> = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15]
            .map(|o| (o, 1))
            .to_vec();
        check(&u8_4x4, "", &whole);
        check(&layout(&[4, 8], Order::F, 4, 64), "[:,5]", &[(144, 16)]);
        check(&layout(&[4], Order::F, 8, 0), "", &[(0, 32)]);
        // A matrix with one row is contiguous in either order.
        check(&layout(&[1, 5], Order::F, 1, 0), "", &[(0, 5)]);
        check(
            &layout(&[2, 3, 1], Order::F, 1, 0),
            "0",
            &[(0, 1), (2, 1), (4, 1)],
        );
    }

    #[test]
    fn negative_steps_give_element_runs() {
        let u8_4x4 = layout(&[4, 4], Order::C, 1, 0);
        check(&u8_4x4, "::-1", &[(12, 4), (8, 4), (4, 4), (0, 4)]);
        check(&u8_4x4, "1,::-1", &[(7, 1), (6, 1), (5, 1), (4, 1)]);
        check(
            &u8_4x4,
            "3:1:-1,:0:-2",
            &[(15, 1), (13, 1), (11, 1), (9, 1)],
        );
        check(
            &layout(&[3], Order::C, 4, 8),
            "::-1",
            &[(16, 4), (12, 4), (8, 4)],
        );
        // Neighbours coalesce even across an odometer carry: output (0,1) then (1,0) of a
        // reversed 2x2 F-order matrix are bytes 1 and 2.
        check(
            &layout(&[2, 2], Order::F, 1, 0),
            "::-1,::-1",
            &[(3, 1), (1, 2), (0, 1)],
        );
    }

    #[test]
    fn zero_d_and_empty() {
        check(&layout(&[], Order::C, 8, 128), "", &[(128, 8)]);
        check(&layout(&[], Order::F, 16, 0), "...", &[(0, 16)]);
        check(&layout(&[4, 4], Order::C, 1, 0), "2:2", &[]);
        check(&layout(&[4, 4], Order::C, 1, 0), "1,3:1", &[]);
        check(&layout(&[0, 3], Order::C, 4, 0), "", &[]);
        check(&layout(&[3, 0, 2], Order::F, 4, 0), "1", &[]);
        let sel = Selection::parse("2:2", &[4, 4]).unwrap();
        assert_eq!(
            runs(&sel, &layout(&[4, 4], Order::C, 1, 0)).max_run_len(),
            0
        );
    }

    #[test]
    fn max_run_len_is_the_strip() {
        let sel = Selection::parse(":,1:3", &[5, 4]).unwrap();
        let planned = runs(&sel, &layout(&[5, 4], Order::C, 8, 0));
        assert_eq!(planned.max_run_len(), 16);
        assert_eq!(planned.size_hint(), (1, Some(5)));
        assert_eq!(planned.count(), 5);
    }

    #[test]
    #[should_panic(expected = "selection has 1 dimensions, layout 2")]
    fn refuses_a_selection_of_another_shape() {
        let sel = Selection::all(&[4]);
        let _ = runs(&sel, &layout(&[4, 4], Order::C, 1, 0));
    }

    /// README "Performance": the cost depends on the bytes touched, not the dataset's size.
    #[test]
    fn cost_follows_the_selection_not_the_dataset() {
        let tib = layout(&[1 << 20, 1 << 20], Order::C, 1, 0);
        let sel = Selection::parse("123456,4096:8192", &tib.shape).unwrap();
        check(&tib, "123456,4096:8192", &[((123456 << 20) + 4096, 4096)]);
        assert_eq!(runs(&sel, &tib).count(), 1);

        let column = Selection::parse("::64,7", &tib.shape).unwrap();
        let mut n_runs = 0u64;
        for run in runs(&column, &tib) {
            assert_eq!(run.offset, ((n_runs * 64) << 20) + 7);
            n_runs += 1;
        }
        // One run per selected element, and the walk visits nothing else: the 1 TiB dataset's
        // other 2^20 - 16384 rows and 2^20 - 1 columns cost no step (work counted, not timed).
        assert_eq!(n_runs, 16384);
        assert_eq!(n_runs, column.n_elems());
    }

    /// A selection item as the property test writes it, kept structured for the reference.
    #[derive(Debug, Clone)]
    enum TestItem {
        Index(i64),
        /// `start:stop` with an optional `:step` part (whose value may itself be empty).
        Slice(Option<i64>, Option<i64>, Option<Option<i64>>),
        Ellipsis,
    }

    fn render(items: &[TestItem], brackets: bool) -> String {
        let num = |n: &Option<i64>| n.map_or(String::new(), |n| n.to_string());
        let text = items
            .iter()
            .map(|item| match item {
                TestItem::Index(i) => i.to_string(),
                TestItem::Slice(a, b, None) => format!("{}:{}", num(a), num(b)),
                TestItem::Slice(a, b, Some(c)) => format!("{}:{}:{}", num(a), num(b), num(c)),
                TestItem::Ellipsis => "...".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",");
        if brackets {
            format!("[{text}]")
        } else {
            text
        }
    }

    /// `range(n)[start:stop:step]` walked one element at a time, per the Python docs: bounds
    /// count from the end when negative, then the walk stays inside `[0, n)`.
    fn py_slice(start: Option<i64>, stop: Option<i64>, step: i64, n: u64) -> Vec<u64> {
        let n = i128::from(n);
        let from_end = |x: i64| {
            if x < 0 {
                i128::from(x) + n
            } else {
                i128::from(x)
            }
        };
        let mut out = Vec::new();
        if step > 0 {
            let (mut x, end) = (
                start.map_or(0, from_end).max(0),
                stop.map_or(n, from_end).min(n),
            );
            while x < end {
                out.push(u64::try_from(x).unwrap());
                x += i128::from(step);
            }
        } else {
            let mut x = start.map_or(n - 1, from_end).min(n - 1);
            let end = stop.map_or(-1, from_end).max(-1);
            while x > end {
                out.push(u64::try_from(x).unwrap());
                x += i128::from(step);
            }
        }
        out
    }

    /// NumPy's answer for `items` on `shape`, independent of `Selection`: the dataset indices of
    /// each axis, or the error code.
    fn reference(items: &[TestItem], shape: &[u64]) -> Result<Vec<Vec<u64>>, &'static str> {
        let n_ellipsis = items
            .iter()
            .filter(|i| matches!(i, TestItem::Ellipsis))
            .count();
        if n_ellipsis > 1 || items.len() - n_ellipsis > shape.len() {
            return Err("bad_slice");
        }
        let mut expanded = Vec::new();
        for item in items {
            if let TestItem::Ellipsis = item {
                let fill = shape.len() - (items.len() - 1);
                expanded.extend(std::iter::repeat_n(TestItem::Slice(None, None, None), fill));
            } else {
                expanded.push(item.clone());
            }
        }
        expanded.resize(shape.len(), TestItem::Slice(None, None, None));
        let mut indices = Vec::new();
        for (item, &n) in expanded.iter().zip(shape) {
            indices.push(match *item {
                TestItem::Index(i) => {
                    let i = if i < 0 {
                        i128::from(i) + i128::from(n)
                    } else {
                        i128::from(i)
                    };
                    if i < 0 || i >= i128::from(n) {
                        return Err("index_out_of_range");
                    }
                    vec![u64::try_from(i).unwrap()]
                }
                TestItem::Slice(_, _, Some(Some(0))) => return Err("bad_slice"),
                TestItem::Slice(a, b, c) => py_slice(a, b, c.flatten().unwrap_or(1), n),
                TestItem::Ellipsis => unreachable!("expanded above"),
            });
        }
        Ok(indices)
    }

    /// File byte of every selected byte, element by element in C order of the output.
    fn gather_bytes(indices: &[Vec<u64>], layout: &Layout) -> Vec<u64> {
        let stride = |k: usize| -> u64 {
            let others = match layout.order {
                Order::C => &layout.shape[k + 1..],
                Order::F => &layout.shape[..k],
            };
            layout.itemsize * others.iter().product::<u64>()
        };
        let mut elems = vec![layout.offset];
        for (k, axis) in indices.iter().enumerate() {
            elems = elems
                .iter()
                .flat_map(|e| axis.iter().map(move |i| e + i * stride(k)))
                .collect();
        }
        elems.iter().flat_map(|&e| e..e + layout.itemsize).collect()
    }

    fn test_item() -> impl Strategy<Value = TestItem> {
        let num = prop_oneof![
            6 => -7i64..8,
            1 => prop::sample::select(vec![i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX]),
            1 => any::<i64>(),
        ];
        let bound = prop::option::of(num.clone());
        let step = prop_oneof![
            Just(None),
            Just(Some(None)),
            num.prop_map(|n| Some(Some(n))),
            (-3i64..4).prop_map(|n| Some(Some(n))),
        ];
        prop_oneof![
            3 => (-6i64..6).prop_map(TestItem::Index),
            1 => Just(TestItem::Ellipsis),
            6 => (bound.clone(), bound, step).prop_map(|(a, b, c)| TestItem::Slice(a, b, c)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn runs_equal_a_naive_gather(
            shape in prop::collection::vec(0u64..6, 0..=4),
            items in prop::collection::vec(test_item(), 0..=5),
            brackets in any::<bool>(),
            f_order in any::<bool>(),
            itemsize in prop::sample::select(vec![1u64, 2, 4, 8, 16]),
            offset in prop_oneof![0u64..200, Just(1 << 40)],
        ) {
            let text = render(&items, brackets);
            let layout = Layout {
                offset,
                shape: shape.clone(),
                itemsize,
                order: if f_order { Order::F } else { Order::C },
            };
            let parsed = Selection::parse(&text, &shape);
            let expected = reference(&items, &shape);
            let (sel, ref_indices) = match (parsed, expected) {
                (Ok(sel), Ok(indices)) => (sel, indices),
                (Err(err), Err(code)) => {
                    prop_assert_eq!(err.code(), code, "{}", err);
                    return Ok(());
                }
                (parsed, expected) => {
                    return Err(TestCaseError::fail(format!("{parsed:?} vs {expected:?}")));
                }
            };

            let axis_indices: Vec<Vec<u64>> = sel
                .axes()
                .iter()
                .map(|a| {
                    (0..a.len)
                        .map(|i| {
                            u64::try_from(i128::from(a.start) + i128::from(i) * i128::from(a.step))
                                .unwrap()
                        })
                        .collect()
                })
                .collect();
            prop_assert_eq!(&axis_indices, &ref_indices, "{}", text);
            let ref_out_shape: Vec<u64> = items_out_shape(&items, &ref_indices, shape.len());
            prop_assert_eq!(sel.out_shape(), ref_out_shape);

            let expected_bytes = gather_bytes(&ref_indices, &layout);
            prop_assert_eq!(&gather_bytes(&axis_indices, &layout), &expected_bytes);

            let planned = runs(&sel, &layout);
            let strip = planned.max_run_len();
            let nbytes = itemsize * shape.iter().product::<u64>();
            let mut got_bytes = Vec::new();
            let mut prev_end = None;
            for run in planned {
                prop_assert!(run.len > 0 && run.len % strip == 0, "{:?} strip {}", run, strip);
                prop_assert!(run.offset >= offset && run.offset + run.len <= offset + nbytes);
                prop_assert_ne!(prev_end, Some(run.offset), "uncoalesced neighbours");
                prev_end = Some(run.offset + run.len);
                got_bytes.extend(run.offset..run.offset + run.len);
            }
            prop_assert_eq!(got_bytes.len() as u64, sel.n_elems() * itemsize);
            prop_assert_eq!(got_bytes, expected_bytes, "{} over {:?}", text, layout);
        }
    }

    /// Output shape NumPy gives: every axis not taken by an integer item.
    fn items_out_shape(items: &[TestItem], indices: &[Vec<u64>], ndim: usize) -> Vec<u64> {
        let mut dropped = Vec::new();
        let n_explicit = items
            .iter()
            .filter(|i| !matches!(i, TestItem::Ellipsis))
            .count();
        let mut axis = 0;
        for item in items {
            match item {
                TestItem::Ellipsis => axis += ndim - n_explicit,
                TestItem::Index(_) => {
                    dropped.push(axis);
                    axis += 1;
                }
                TestItem::Slice(..) => axis += 1,
            }
        }
        (0..ndim)
            .filter(|k| !dropped.contains(k))
            .map(|k| indices[k].len() as u64)
            .collect()
    }
}
