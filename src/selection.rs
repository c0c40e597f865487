//! Selections: the `slice=` text of README "API" (NumPy basic indexing), parsed
//! against a dataset's shape.
//!
//! A [`Selection`] holds one resolved [`AxisSel`] per dataset dimension: negative indices are
//! already counted from the end, slice bounds are clamped the way Python's `slice.indices` does,
//! `...` and missing trailing items are expanded to `:`, and integer indices are marked as dropped
//! dimensions. Nothing downstream re-checks a selection; the planner only turns it into runs.
//!
//! This module is not the planner and knows nothing of bytes, strides or memory order. It does not
//! support NumPy's advanced indexing (integer arrays, boolean masks) or `np.newaxis`, which the
//! grammar does not contain.

/// Longest piece of request text an error carries, in chars; longer text is cut and ends in `…`.
const MAX_ERROR_TEXT_CHARS: usize = 40;

/// A selection resolved against a shape: exactly one [`AxisSel`] per dataset dimension, in
/// dataset order.
///
/// Built by [`Selection::parse`] or [`Selection::all`], so every axis is in bounds of the shape
/// it was built for.
///
/// # Examples
///
/// ```
/// use arrayd::selection::{AxisSel, Selection};
///
/// // A 4x3 dataset: rows 3, 2, 1 (negative step from the end), column 1 dropped.
/// let sel = Selection::parse("[:0:-1,1]", &[4, 3]).unwrap();
/// assert_eq!(
///     sel.axes(),
///     &[
///         AxisSel { start: 3, step: -1, len: 3, keep: true },
///         AxisSel { start: 1, step: 1, len: 1, keep: false },
///     ]
/// );
/// assert_eq!(sel.out_shape(), vec![3]);
/// assert_eq!(sel.n_elems(), 3);
///
/// // The whole 4x3 array has 12 elements.
/// assert_eq!(Selection::parse("", &[4, 3]).unwrap().n_elems(), 12);
/// assert_eq!(Selection::all(&[4, 3]).out_shape(), vec![4, 3]);
///
/// // The grammar has no whitespace; an integer index must be inside its axis.
/// assert_eq!(Selection::parse("[:0:-1, 1]", &[4, 3]).unwrap_err().code(), "bad_slice");
/// assert_eq!(Selection::parse("0,3", &[4, 3]).unwrap_err().code(), "index_out_of_range");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    axes: Vec<AxisSel>,
}

/// What a selection takes from one dataset dimension.
///
/// Element `i` (for `0 <= i < len`) of this axis is dataset index `start + i * step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisSel {
    /// Dataset index of the first selected element; `0` when `len == 0`.
    pub start: u64,
    /// Distance between selected dataset indices; negative walks backwards, never `0`. It is `1`
    /// for an integer index and when `len == 0`, so nothing downstream meets an odd value there.
    pub step: i64,
    /// Number of selected elements along this axis (`n_elems` of the axis).
    pub len: u64,
    /// Whether the dimension appears in the output shape: `false` for an integer index, which
    /// NumPy drops (then `len == 1`).
    pub keep: bool,
}

/// Why a selection text was refused. Each variant carries the offending text (cut to 40 chars)
/// and the values involved; [`SelectionError::code`] gives the HTTP error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// `[` without a closing `]` at the end, or a `]` without an opening `[`.
    #[error("bad slice {text:?}: unbalanced brackets")]
    UnbalancedBrackets {
        /// The whole selection text.
        text: String,
    },
    /// An item with nothing in it, as in `1,,2` or `1,`.
    #[error("bad slice {text:?}: item {position} is empty")]
    EmptyItem {
        /// The whole selection text.
        text: String,
        /// 1-based position of the empty item.
        position: usize,
    },
    /// A slice item with more than two colons, as in `1:2:3:4`.
    #[error("bad slice item {item:?}: too many colons")]
    TooManyColons {
        /// The offending item.
        item: String,
    },
    /// A number that is not `-` followed by digits (whitespace, `+`, letters, a lone `-` ...).
    #[error("bad slice item {item:?}: {number:?} is not an integer")]
    NotAnInteger {
        /// The offending item.
        item: String,
        /// The part of the item that should have been an integer.
        number: String,
    },
    /// A well-formed integer outside −2^63 … 2^63−1 (README "API").
    #[error("bad slice item {item:?}: {number} does not fit in a signed 64-bit integer")]
    NumberOverflow {
        /// The offending item.
        item: String,
        /// The integer as written.
        number: String,
    },
    /// A slice step of zero, which NumPy refuses ("slice step cannot be zero").
    #[error("bad slice item {item:?}: slice step cannot be zero")]
    ZeroStep {
        /// The offending item.
        item: String,
    },
    /// A second `...`; NumPy allows one.
    #[error("bad slice item {item:?}: an index can only have a single ellipsis")]
    MultipleEllipsis {
        /// The offending item (always `...`).
        item: String,
    },
    /// More integer and slice items than the dataset has dimensions.
    #[error(
        "bad slice {text:?}: too many indices: {n_indices} indexed, but the dataset is \
         {ndim}-dimensional"
    )]
    TooManyIndices {
        /// The whole selection text.
        text: String,
        /// Integer and slice items given (`...` not counted).
        n_indices: usize,
        /// Dimensions of the dataset.
        ndim: usize,
    },
    /// An integer index outside `[-axis_len, axis_len)`.
    #[error(
        "slice item {item:?}: index {index} is out of bounds for axis {axis} with size {axis_len}"
    )]
    IndexOutOfRange {
        /// The offending item.
        item: String,
        /// The index as written.
        index: i64,
        /// Dataset axis the item applies to (after `...` expansion), 0-based.
        axis: usize,
        /// Length of that axis.
        axis_len: u64,
    },
}

impl SelectionError {
    /// The error code for the HTTP error body (README "API"): `index_out_of_range` for an
    /// integer index outside its axis, `bad_slice` for everything else.
    pub fn code(&self) -> &'static str {
        match self {
            SelectionError::IndexOutOfRange { .. } => "index_out_of_range",
            SelectionError::UnbalancedBrackets { .. }
            | SelectionError::EmptyItem { .. }
            | SelectionError::TooManyColons { .. }
            | SelectionError::NotAnInteger { .. }
            | SelectionError::NumberOverflow { .. }
            | SelectionError::ZeroStep { .. }
            | SelectionError::MultipleEllipsis { .. }
            | SelectionError::TooManyIndices { .. } => "bad_slice",
        }
    }
}

/// One item of the text, syntax-checked but not yet resolved against an axis.
#[derive(Debug, Clone, Copy)]
enum Item<'a> {
    Index {
        text: &'a str,
        index: i64,
    },
    Slice {
        text: &'a str,
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
    },
    Ellipsis,
}

impl Selection {
    /// Parses `text` (README "API") against a dataset of shape `shape`.
    ///
    /// Semantics are NumPy's `a[text]`: negative indices count from the end, slice bounds clamp
    /// (including `i64::MIN`/`i64::MAX` bounds and steps), an integer index drops its dimension,
    /// at most one `...`, and missing trailing items mean `:`. `""` and `"[]"` select everything.
    ///
    /// # Errors
    ///
    /// [`SelectionError::IndexOutOfRange`] for an integer index outside its axis; every other
    /// variant for bad syntax, a zero step, a second `...`, more items than dimensions, or a
    /// number outside the signed 64-bit range.
    pub fn parse(text: &str, shape: &[u64]) -> Result<Selection, SelectionError> {
        let inner = match (text.strip_prefix('['), text.ends_with(']')) {
            (Some(rest), true) => &rest[..rest.len() - 1],
            (None, false) => text,
            _ => return Err(SelectionError::UnbalancedBrackets { text: clip(text) }),
        };

        let mut items = Vec::new();
        if !inner.is_empty() {
            for (i, item) in inner.split(',').enumerate() {
                if item.is_empty() {
                    return Err(SelectionError::EmptyItem {
                        text: clip(text),
                        position: i + 1,
                    });
                }
                items.push(parse_item(item)?);
            }
        }

        let mut seen_ellipsis = false;
        for item in &items {
            if let Item::Ellipsis = item {
                if seen_ellipsis {
                    return Err(SelectionError::MultipleEllipsis {
                        item: "...".to_owned(),
                    });
                }
                seen_ellipsis = true;
            }
        }
        let n_indices = items.len() - usize::from(seen_ellipsis);
        if n_indices > shape.len() {
            return Err(SelectionError::TooManyIndices {
                text: clip(text),
                n_indices,
                ndim: shape.len(),
            });
        }

        let mut axes = Vec::with_capacity(shape.len());
        for item in items {
            match item {
                Item::Ellipsis => {
                    let n_expanded = shape.len() - n_indices;
                    for &axis_len in &shape[axes.len()..axes.len() + n_expanded] {
                        axes.push(AxisSel::full(axis_len));
                    }
                }
                Item::Index { text, index } => {
                    let axis = axes.len();
                    axes.push(resolve_index(text, index, axis, shape[axis])?);
                }
                // NumPy refuses a zero step only when it reaches the item, so an out-of-range
                // integer before it is reported first (`a[10, ::0]` is an IndexError).
                Item::Slice {
                    text,
                    step: Some(0),
                    ..
                } => {
                    return Err(SelectionError::ZeroStep { item: clip(text) });
                }
                Item::Slice {
                    start, stop, step, ..
                } => {
                    let step = step.unwrap_or(1);
                    axes.push(resolve_slice(start, stop, step, shape[axes.len()]));
                }
            }
        }
        for &axis_len in &shape[axes.len()..] {
            axes.push(AxisSel::full(axis_len));
        }
        Ok(Selection { axes })
    }

    /// The whole dataset of shape `shape`, as `""` would parse.
    pub fn all(shape: &[u64]) -> Selection {
        Selection {
            axes: shape
                .iter()
                .map(|&axis_len| AxisSel::full(axis_len))
                .collect(),
        }
    }

    /// One entry per dataset dimension, in dataset order (dropped dimensions included).
    pub fn axes(&self) -> &[AxisSel] {
        &self.axes
    }

    /// Shape of the output: the `len` of each kept axis, in dataset order.
    pub fn out_shape(&self) -> Vec<u64> {
        self.axes.iter().filter(|a| a.keep).map(|a| a.len).collect()
    }

    /// Number of selected elements (the product of all `len`s; `1` for a 0-d dataset).
    ///
    /// Exact whenever the dataset's element count fits in a `u64`, which the dataset loader
    /// guarantees; otherwise it saturates at `u64::MAX` rather than wrapping.
    pub fn n_elems(&self) -> u64 {
        self.axes
            .iter()
            .fold(1u64, |acc, a| acc.saturating_mul(a.len))
    }

    /// The axis that varies fastest in output order (the last one with more than one element,
    /// with its index), and this selection with that axis cut to its first element: the
    /// selection of the first element of every output row. `None` when no axis has more than
    /// one element.
    pub fn row_starts(&self) -> Option<(Selection, usize, AxisSel)> {
        let k = self.axes.iter().rposition(|a| a.len > 1)?;
        let mut starts = self.clone();
        starts.axes[k].len = 1;
        Some((starts, k, self.axes[k]))
    }

    /// Splits the selection into at most `parts` selections along its first axis with more
    /// than one element; each comes with the output position of its first element. Read in
    /// order, the parts' elements are this selection's elements in output order. Reducers use
    /// it to hand contiguous pieces of the output to different threads without walking the
    /// runs before their piece.
    pub fn split(&self, parts: u64) -> Vec<(Selection, u64)> {
        let Some(k) = self.axes.iter().position(|a| a.len > 1) else {
            return vec![(self.clone(), 0)];
        };
        let axis = self.axes[k];
        let parts = parts.clamp(1, axis.len);
        let per_index = self.n_elems() / axis.len;
        (0..parts)
            .map(|p| {
                let from = axis.len * p / parts;
                let to = axis.len * (p + 1) / parts;
                let mut part = self.clone();
                // `from < len`, so the new start is an index of the axis, as `start` was.
                let start = i128::from(axis.start) + i128::from(axis.step) * i128::from(from);
                part.axes[k] = AxisSel {
                    start: u64::try_from(start).expect("index inside the axis"),
                    len: to - from,
                    ..axis
                };
                (part, from * per_index)
            })
            .collect()
    }
}

impl AxisSel {
    /// The whole axis of length `axis_len`, as `:` selects it.
    fn full(axis_len: u64) -> AxisSel {
        AxisSel {
            start: 0,
            step: 1,
            len: axis_len,
            keep: true,
        }
    }
}

/// Checks one non-empty item's syntax (`int`, a slice, or `...`).
fn parse_item(item: &str) -> Result<Item<'_>, SelectionError> {
    if item == "..." {
        return Ok(Item::Ellipsis);
    }
    let mut parts = item.split(':');
    // `split` always yields at least one part.
    let first = parts.next().unwrap_or_default();
    let Some(second) = parts.next() else {
        return Ok(Item::Index {
            text: item,
            index: parse_int(item, first)?,
        });
    };
    let third = parts.next();
    if parts.next().is_some() {
        return Err(SelectionError::TooManyColons { item: clip(item) });
    }
    let opt = |part: &str| match part {
        "" => Ok(None),
        _ => parse_int(item, part).map(Some),
    };
    let step = match third {
        Some(third) => opt(third)?,
        None => None,
    };
    Ok(Item::Slice {
        text: item,
        start: opt(first)?,
        stop: opt(second)?,
        step,
    })
}

/// Parses `int := ["-"] digits` into an `i64`.
fn parse_int(item: &str, number: &str) -> Result<i64, SelectionError> {
    let digits = number.strip_prefix('-').unwrap_or(number);
    // `i64::from_str` would also take a leading `+`, which the grammar does not.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SelectionError::NotAnInteger {
            item: clip(item),
            number: clip(number),
        });
    }
    // The only failure left is magnitude; `-9223372036854775808` parses.
    number.parse().map_err(|_| SelectionError::NumberOverflow {
        item: clip(item),
        number: clip(number),
    })
}

/// Resolves an integer index on an axis of length `axis_len` (NumPy: `[-n, n)`).
fn resolve_index(
    text: &str,
    index: i64,
    axis: usize,
    axis_len: u64,
) -> Result<AxisSel, SelectionError> {
    let n = i128::from(axis_len);
    let resolved = if index < 0 {
        i128::from(index) + n
    } else {
        i128::from(index)
    };
    match u64::try_from(resolved) {
        Ok(start) if start < axis_len => Ok(AxisSel {
            start,
            step: 1,
            len: 1,
            keep: false,
        }),
        _ => Err(SelectionError::IndexOutOfRange {
            item: clip(text),
            index,
            axis,
            axis_len,
        }),
    }
}

/// Resolves `start:stop:step` on an axis of length `axis_len` exactly as CPython's
/// `PySlice_AdjustIndices` (behind `slice.indices`, which NumPy uses): omitted bounds default to
/// the ends the step walks from and to, negative bounds count from the end, and everything
/// clamps to `[-1, n - 1]` for a negative step and `[0, n]` for a positive one. `i128` holds
/// every intermediate value, so `i64::MIN` bounds and steps need no special case.
fn resolve_slice(start: Option<i64>, stop: Option<i64>, step: i64, axis_len: u64) -> AxisSel {
    let n = i128::from(axis_len);
    let step_wide = i128::from(step);
    let (lower, upper) = if step < 0 { (-1, n - 1) } else { (0, n) };
    let clamp = |bound: i128| {
        if bound < 0 {
            (bound + n).max(lower)
        } else {
            bound.min(upper)
        }
    };
    let (start_default, stop_default) = if step < 0 {
        (upper, lower)
    } else {
        (lower, upper)
    };
    let first = start.map_or(start_default, |s| clamp(i128::from(s)));
    let end_exc = stop.map_or(stop_default, |s| clamp(i128::from(s)));

    let len = if step < 0 {
        if end_exc < first {
            (first - end_exc - 1) / -step_wide + 1
        } else {
            0
        }
    } else if first < end_exc {
        (end_exc - first - 1) / step_wide + 1
    } else {
        0
    };
    if len == 0 {
        return AxisSel {
            start: 0,
            step: 1,
            len: 0,
            keep: true,
        };
    }
    // With len > 0 the clamps above put `first` in [0, n) and `len` in [1, n].
    let start = u64::try_from(first).expect("non-empty slice starts inside its axis");
    let len = u64::try_from(len).expect("slice length is at most the axis length");
    AxisSel {
        start,
        step,
        len,
        keep: true,
    }
}

/// Copies request text into an error, cut to [`MAX_ERROR_TEXT_CHARS`] chars.
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_TEXT_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => {
            let mut out = text[..cut].to_owned();
            out.push('…');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Flat C-order indices of the selected elements, gathered one by one from the axes.
    fn gather_flat(sel: &Selection, shape: &[u64]) -> Vec<u64> {
        let mut flat = vec![0u64];
        for (a, &n) in sel.axes().iter().zip(shape) {
            let mut next = Vec::new();
            for base in &flat {
                for i in 0..a.len {
                    let index = i128::from(a.start) + i128::from(i) * i128::from(a.step);
                    assert!(
                        (0..i128::from(n)).contains(&index),
                        "{a:?} leaves axis of {n}"
                    );
                    next.push(base * n + u64::try_from(index).unwrap());
                }
            }
            flat = next;
        }
        flat
    }

    fn ax(start: u64, step: i64, len: u64) -> AxisSel {
        AxisSel {
            start,
            step,
            len,
            keep: true,
        }
    }

    fn idx(start: u64) -> AxisSel {
        AxisSel {
            start,
            step: 1,
            len: 1,
            keep: false,
        }
    }

    /// `Ok((out_shape, flat C-order indices of the selected elements))` or `Err(error code)`.
    type NumpyAnswer = Result<(&'static [u64], &'static [u64]), &'static str>;

    /// What NumPy 2.4.6 answers, generated by evaluating `np.arange(n).reshape(shape)[text]`
    /// (curated cases, then random ones): `(shape, text, Ok((out_shape, flat indices)))`, or
    /// `Err(code)` where NumPy raises (`IndexError` "out of bounds" is `index_out_of_range`).
    #[rustfmt::skip]
    const NUMPY_CASES: &[(&[u64], &str, NumpyAnswer)] = &[
    (&[4, 3], "", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], "[]", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], "...", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], "[...]", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], ":", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], "::", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], ":,:", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], "1", Ok((&[3], &[3, 4, 5]))),
    (&[4, 3], "-1", Ok((&[3], &[9, 10, 11]))),
    (&[4, 3], "-4", Ok((&[3], &[0, 1, 2]))),
    (&[4, 3], "3,2", Ok((&[], &[11]))),
    (&[4, 3], "1:3", Ok((&[2, 3], &[3, 4, 5, 6, 7, 8]))),
    (&[4, 3], "1:3,1:3", Ok((&[2, 2], &[4, 5, 7, 8]))),
    (&[4, 3], "::-1", Ok((&[4, 3], &[9, 10, 11, 6, 7, 8, 3, 4, 5, 0, 1, 2]))),
    (&[4, 3], "::-1,::-1", Ok((&[4, 3], &[11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]))),
    (&[4, 3], ":0:-1,1", Ok((&[3], &[10, 7, 4]))),
    (&[4, 3], "-1:-5:-1", Ok((&[4, 3], &[9, 10, 11, 6, 7, 8, 3, 4, 5, 0, 1, 2]))),
    (&[4, 3], "5:", Ok((&[0, 3], &[]))),
    (&[4, 3], "-100:100", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], "100:-100:-1", Ok((&[4, 3], &[9, 10, 11, 6, 7, 8, 3, 4, 5, 0, 1, 2]))),
    (&[4, 3], "::2", Ok((&[2, 3], &[0, 1, 2, 6, 7, 8]))),
    (&[4, 3], "::-2", Ok((&[2, 3], &[9, 10, 11, 3, 4, 5]))),
    (&[4, 3], "1::2,::-3", Ok((&[2, 1], &[5, 11]))),
    (&[4, 3], "...,1", Ok((&[4], &[1, 4, 7, 10]))),
    (&[4, 3], "1,...", Ok((&[3], &[3, 4, 5]))),
    (&[4, 3], "1,...,2", Ok((&[], &[5]))),
    (&[4, 3], "...,-1", Ok((&[4], &[2, 5, 8, 11]))),
    (&[4, 3], "2,:", Ok((&[3], &[6, 7, 8]))),
    (&[4, 3], ":,2", Ok((&[4], &[2, 5, 8, 11]))),
    (&[4, 3], ":,:,...", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], "3:1", Ok((&[0, 3], &[]))),
    (&[4, 3], "3:1:-1", Ok((&[2, 3], &[9, 10, 11, 6, 7, 8]))),
    (&[4, 3], "0:0", Ok((&[0, 3], &[]))),
    (&[4, 3], "-1:", Ok((&[1, 3], &[9, 10, 11]))),
    (&[4, 3], ":-1", Ok((&[3, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8]))),
    (&[4, 3], "1:2:", Ok((&[1, 3], &[3, 4, 5]))),
    (&[4, 3], "::1", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], "-9223372036854775808:9223372036854775807", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], "9223372036854775807:-9223372036854775808:-1", Ok((&[4, 3], &[9, 10, 11, 6, 7, 8, 3, 4, 5, 0, 1, 2]))),
    (&[4, 3], "::9223372036854775807", Ok((&[1, 3], &[0, 1, 2]))),
    (&[4, 3], "::-9223372036854775808", Ok((&[1, 3], &[9, 10, 11]))),
    (&[4, 3], "::-9223372036854775807", Ok((&[1, 3], &[9, 10, 11]))),
    (&[4, 3], "-9223372036854775808::-9223372036854775808", Ok((&[0, 3], &[]))),
    (&[4, 3], "9223372036854775807::9223372036854775807", Ok((&[0, 3], &[]))),
    (&[4, 3], "-1::-9223372036854775808", Ok((&[1, 3], &[9, 10, 11]))),
    (&[4, 3], "4", Err("index_out_of_range")),
    (&[4, 3], "-5", Err("index_out_of_range")),
    (&[4, 3], "0,3", Err("index_out_of_range")),
    (&[4, 3], "0,-4", Err("index_out_of_range")),
    (&[4, 3], "1,2,3", Err("bad_slice")),
    (&[4, 3], "...,1,2,3", Err("bad_slice")),
    (&[4, 3], "9223372036854775807", Err("index_out_of_range")),
    (&[4, 3], "-9223372036854775808", Err("index_out_of_range")),
    (&[4, 3], "-0", Ok((&[3], &[0, 1, 2]))),
    (&[4, 3], "0:-0", Ok((&[0, 3], &[]))),
    (&[5], "", Ok((&[5], &[0, 1, 2, 3, 4]))),
    (&[5], "2", Ok((&[], &[2]))),
    (&[5], "-5", Ok((&[], &[0]))),
    (&[5], "5", Err("index_out_of_range")),
    (&[5], "-6", Err("index_out_of_range")),
    (&[5], "1:4:2", Ok((&[2], &[1, 3]))),
    (&[5], "4:0:-2", Ok((&[2], &[4, 2]))),
    (&[5], "::-1", Ok((&[5], &[4, 3, 2, 1, 0]))),
    (&[5], "-2:", Ok((&[2], &[3, 4]))),
    (&[5], "-100:", Ok((&[5], &[0, 1, 2, 3, 4]))),
    (&[5], ":-100", Ok((&[0], &[]))),
    (&[5], ":-100:-1", Ok((&[5], &[4, 3, 2, 1, 0]))),
    (&[5], "-100::-1", Ok((&[0], &[]))),
    (&[5], "...", Ok((&[5], &[0, 1, 2, 3, 4]))),
    (&[5], "...,2", Ok((&[], &[2]))),
    (&[5], "2,...", Ok((&[], &[2]))),
    (&[5], "0:5:0", Err("bad_slice")),
    (&[0], "", Ok((&[0], &[]))),
    (&[0], ":", Ok((&[0], &[]))),
    (&[0], "::-1", Ok((&[0], &[]))),
    (&[0], "0", Err("index_out_of_range")),
    (&[0], "-1", Err("index_out_of_range")),
    (&[0], "1:3", Ok((&[0], &[]))),
    (&[0], "...", Ok((&[0], &[]))),
    (&[0], "5:-5:-1", Ok((&[0], &[]))),
    (&[3, 0, 2], "", Ok((&[3, 0, 2], &[]))),
    (&[3, 0, 2], "1", Ok((&[0, 2], &[]))),
    (&[3, 0, 2], "1,:,1", Ok((&[0], &[]))),
    (&[3, 0, 2], "1,...,1", Ok((&[0], &[]))),
    (&[3, 0, 2], ":,0", Err("index_out_of_range")),
    (&[3, 0, 2], "...,-1", Ok((&[3, 0], &[]))),
    (&[3, 0, 2], "::-1,:,::-1", Ok((&[3, 0, 2], &[]))),
    (&[3, 0, 2], "0,1:,1", Ok((&[0], &[]))),
    (&[], "", Ok((&[], &[0]))),
    (&[], "[]", Ok((&[], &[0]))),
    (&[], "...", Ok((&[], &[0]))),
    (&[], "[...]", Ok((&[], &[0]))),
    (&[], ":", Err("bad_slice")),
    (&[], "0", Err("bad_slice")),
    (&[], "...,...", Err("bad_slice")),
    (&[2, 3, 4], "1", Ok((&[3, 4], &[12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]))),
    (&[2, 3, 4], "...,1", Ok((&[2, 3], &[1, 5, 9, 13, 17, 21]))),
    (&[2, 3, 4], "1,...", Ok((&[3, 4], &[12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]))),
    (&[2, 3, 4], "-1,::-1,1:3", Ok((&[3, 2], &[21, 22, 17, 18, 13, 14]))),
    (&[2, 3, 4], "...,::2", Ok((&[2, 3, 2], &[0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]))),
    (&[2, 3, 4], ":,1,...", Ok((&[2, 4], &[4, 5, 6, 7, 16, 17, 18, 19]))),
    (&[2, 3, 4], "::-1,...,::-3", Ok((&[2, 3, 2], &[15, 12, 19, 16, 23, 20, 3, 0, 7, 4, 11, 8]))),
    (&[2, 3, 4], "1,2,3", Ok((&[], &[23]))),
    (&[2, 3, 4], "1,-3,-4", Ok((&[], &[12]))),
    (&[2, 3, 4], ":,:,:", Ok((&[2, 3, 4], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]))),
    (&[2, 3, 4], ":,:,:,:", Err("bad_slice")),
    (&[2, 3, 4], "...,...", Err("bad_slice")),
    (&[2, 3, 4], "0,...,...", Err("bad_slice")),
    (&[1, 1], "0,0", Ok((&[], &[0]))),
    (&[1, 1], "-1,-1", Ok((&[], &[0]))),
    (&[1, 1], "::-1,::-1", Ok((&[1, 1], &[0]))),
    (&[1, 1], "1:", Ok((&[0, 1], &[]))),
    (&[1, 1], "...,0", Ok((&[1], &[0]))),
    (&[4, 3], ":-9223372036854775808:,-6:", Ok((&[0, 3], &[]))),
    (&[4, 3], "::-6,::3,2:", Err("bad_slice")),
    (&[4, 3], "0", Ok((&[3], &[0, 1, 2]))),
    (&[4, 3], "0::-2,-9223372036854775808:-2:6,-7:3:", Err("bad_slice")),
    (&[4, 3], "...,-4:-4:-9223372036854775808", Ok((&[4, 0], &[]))),
    (&[4, 3], "9223372036854775806:-9223372036854775807,-2", Ok((&[0], &[]))),
    (&[4, 3], "-1", Ok((&[3], &[9, 10, 11]))),
    (&[4, 3], "-3:-1", Ok((&[2, 3], &[3, 4, 5, 6, 7, 8]))),
    (&[4, 3], ":6:0,-3", Err("bad_slice")),
    (&[4, 3], "::", Ok((&[4, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[4, 3], "...,-9223372036854775807:6,:-2:", Ok((&[4, 1], &[0, 3, 6, 9]))),
    (&[4, 3], "...,:-3,...", Err("bad_slice")),
    (&[5], ":", Ok((&[5], &[0, 1, 2, 3, 4]))),
    (&[5], "1:,2:7", Err("bad_slice")),
    (&[5], "-3,-1", Err("bad_slice")),
    (&[5], "-4,:-9223372036854775808", Err("bad_slice")),
    (&[5], "5:4:", Ok((&[0], &[]))),
    (&[5], "2:9223372036854775807", Ok((&[3], &[2, 3, 4]))),
    (&[5], "4,-4", Err("bad_slice")),
    (&[5], "::-4", Ok((&[2], &[4, 0]))),
    (&[5], "-9223372036854775808::,::2", Err("bad_slice")),
    (&[5], ":,:", Err("bad_slice")),
    (&[5], "9223372036854775807:9223372036854775807:,-4:9223372036854775807:-2", Err("bad_slice")),
    (&[5], "...", Ok((&[5], &[0, 1, 2, 3, 4]))),
    (&[0], "-1,2", Err("bad_slice")),
    (&[0], "...,1", Err("index_out_of_range")),
    (&[0], "1:-7:", Ok((&[0], &[]))),
    (&[0], "-3::-1", Ok((&[0], &[]))),
    (&[0], "4,-9223372036854775808::", Err("bad_slice")),
    (&[0], "-1,-3", Err("bad_slice")),
    (&[0], "4,:", Err("bad_slice")),
    (&[0], "-1,::", Err("bad_slice")),
    (&[0], "-4:", Ok((&[0], &[]))),
    (&[0], "7:,...", Ok((&[0], &[]))),
    (&[0], ":3:1", Ok((&[0], &[]))),
    (&[0], "-7:-3:-2,0", Err("bad_slice")),
    (&[3, 0, 2], "...,2", Err("index_out_of_range")),
    (&[3, 0, 2], "::", Ok((&[3, 0, 2], &[]))),
    (&[3, 0, 2], "0,:4,:6,::-2", Err("bad_slice")),
    (&[3, 0, 2], ":-7,:-6:-2,3::-3,:3", Err("bad_slice")),
    (&[3, 0, 2], "-4,:-3:", Err("index_out_of_range")),
    (&[3, 0, 2], "-9223372036854775808:6,...,:1", Ok((&[3, 0, 1], &[]))),
    (&[3, 0, 2], ":9223372036854775807,-7:-1", Ok((&[3, 0, 2], &[]))),
    (&[3, 0, 2], "...,...,5:,::-3", Err("bad_slice")),
    (&[3, 0, 2], "0", Ok((&[0, 2], &[]))),
    (&[3, 0, 2], "0,5:", Ok((&[0, 2], &[]))),
    (&[3, 0, 2], ":4:,-5:-3:1,3,:1:-2", Err("bad_slice")),
    (&[3, 0, 2], "-5::-3,::-2", Ok((&[0, 0, 2], &[]))),
    (&[2, 3, 4], "-1,...", Ok((&[3, 4], &[12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]))),
    (&[2, 3, 4], ":-1,7::-3,:,-4", Err("bad_slice")),
    (&[2, 3, 4], "1::2,-4,0", Err("index_out_of_range")),
    (&[2, 3, 4], "1,:-7,...,3", Ok((&[0], &[]))),
    (&[2, 3, 4], "-1,9223372036854775807:-2:-1,::,:", Err("bad_slice")),
    (&[2, 3, 4], "::-1,-3", Ok((&[2, 4], &[12, 13, 14, 15, 0, 1, 2, 3]))),
    (&[2, 3, 4], "...,4", Err("index_out_of_range")),
    (&[2, 3, 4], "2,:-6:-3,-2::-2,1", Err("bad_slice")),
    (&[2, 3, 4], "2,2,-4,-9223372036854775808:-6:2", Err("bad_slice")),
    (&[2, 3, 4], "::9223372036854775806,:7,-2::-5", Ok((&[1, 3, 1], &[2, 6, 10]))),
    (&[2, 3, 4], "1:", Ok((&[1, 3, 4], &[12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]))),
    (&[2, 3, 4], "-1::,-9223372036854775808:2:,-1", Ok((&[1, 2], &[15, 19]))),
    (&[1, 1], "-1", Ok((&[1], &[0]))),
    (&[1, 1], "0,::9223372036854775807", Ok((&[1], &[0]))),
    (&[1, 1], ":", Ok((&[1, 1], &[0]))),
    (&[1, 1], "2:,-7:", Ok((&[0, 1], &[]))),
    (&[1, 1], ":9223372036854775806:-4", Ok((&[0, 1], &[]))),
    (&[1, 1], "5:,...,0", Ok((&[0], &[]))),
    (&[1, 1], "...,2:-7,...", Err("bad_slice")),
    (&[1, 1], "-4,:7:-3", Err("index_out_of_range")),
    (&[1, 1], "-9223372036854775808::", Ok((&[1, 1], &[0]))),
    (&[1, 1], "9223372036854775807:-7:,:", Ok((&[0, 1], &[]))),
    (&[1, 1], "::,4,3:2:-3", Err("bad_slice")),
    (&[1, 1], "3::,6:9223372036854775806:", Ok((&[0, 0], &[]))),
    (&[3, 1, 2, 2], ":4,1::3,7:,6::", Ok((&[3, 0, 0, 0], &[]))),
    (&[3, 1, 2, 2], "9223372036854775807:-4:-2,7:5:3,:1", Ok((&[2, 0, 1, 2], &[]))),
    (&[3, 1, 2, 2], "1,::3,:-3:-7", Ok((&[1, 1, 2], &[6, 7]))),
    (&[3, 1, 2, 2], "::-1,2:", Ok((&[3, 0, 2, 2], &[]))),
    (&[3, 1, 2, 2], "-2,9223372036854775806:-9223372036854775808:2,:-7:,:1", Ok((&[0, 0, 1], &[]))),
    (&[3, 1, 2, 2], "::,::", Ok((&[3, 1, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    (&[3, 1, 2, 2], "3::,-5:-1,...", Ok((&[0, 0, 2, 2], &[]))),
    (&[3, 1, 2, 2], "::1,:,-2,::-2,6::", Err("bad_slice")),
    (&[3, 1, 2, 2], ":-2:,-2:-9223372036854775808:-6,::", Ok((&[1, 0, 2, 2], &[]))),
    (&[3, 1, 2, 2], ":-9223372036854775807:-2,-2,-3", Err("index_out_of_range")),
    (&[3, 1, 2, 2], "::,::,-9223372036854775808:,:4:3", Ok((&[3, 1, 2, 1], &[0, 2, 4, 6, 8, 10]))),
    (&[3, 1, 2, 2], ":9223372036854775807,...", Ok((&[3, 1, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))),
    ];

    #[test]
    fn matches_numpy_table() {
        for &(shape, text, expected) in NUMPY_CASES {
            let got = Selection::parse(text, shape);
            match (got, expected) {
                (Ok(sel), Ok((out_shape, flat))) => {
                    assert_eq!(sel.out_shape(), out_shape, "{text:?} on {shape:?}");
                    assert_eq!(gather_flat(&sel, shape), flat, "{text:?} on {shape:?}");
                    assert_eq!(sel.n_elems(), flat.len() as u64, "{text:?} on {shape:?}");
                }
                (Err(err), Err(code)) => assert_eq!(err.code(), code, "{text:?} on {shape:?}"),
                (got, expected) => panic!("{text:?} on {shape:?}: {got:?}, NumPy {expected:?}"),
            }
        }
    }

    #[test]
    fn resolves_axes() {
        const MAX: i64 = i64::MAX;
        const MIN: i64 = i64::MIN;
        let cases: &[(&[u64], String, &[AxisSel])] = &[
            (&[4, 3], "1:3,::-1".into(), &[ax(1, 1, 2), ax(2, -1, 3)]),
            (&[4, 3], "-1,...".into(), &[idx(3), ax(0, 1, 3)]),
            (&[4, 3], "...,-3".into(), &[ax(0, 1, 4), idx(0)]),
            (&[4, 3], "[2]".into(), &[idx(2), ax(0, 1, 3)]),
            (&[10], "-3::-3".into(), &[ax(7, -3, 3)]),
            (&[10], "8:1:-3".into(), &[ax(8, -3, 3)]),
            (&[10], "::3".into(), &[ax(0, 3, 4)]),
            (&[10], ":-100:-1".into(), &[ax(9, -1, 10)]),
            (&[10], "-100::-1".into(), &[ax(0, 1, 0)]),
            (&[10], "5:5".into(), &[ax(0, 1, 0)]),
            (&[10], "7:2".into(), &[ax(0, 1, 0)]),
            (&[0], "::-1".into(), &[ax(0, 1, 0)]),
            (&[10], format!("{MIN}:{MAX}"), &[ax(0, 1, 10)]),
            (&[10], format!("{MAX}:{MIN}:-1"), &[ax(9, -1, 10)]),
            (&[10], format!("::{MAX}"), &[ax(0, MAX, 1)]),
            (&[10], format!("::{MIN}"), &[ax(9, MIN, 1)]),
            (&[10], format!("{MIN}::{MIN}"), &[ax(0, 1, 0)]),
            (&[10], format!("{MIN}"), &[]),
            (&[u64::MAX], format!("{MIN}"), &[idx(u64::MAX - (1 << 63))]),
            (
                &[u64::MAX],
                format!("{MAX}:"),
                &[ax(MAX as u64, 1, u64::MAX - MAX as u64)],
            ),
            (
                &[u64::MAX],
                "::-1".into(),
                &[ax(u64::MAX - 1, -1, u64::MAX)],
            ),
            (&[], "".into(), &[]),
            (&[], "[...]".into(), &[]),
        ];
        for (shape, text, axes) in cases {
            match Selection::parse(text, shape) {
                Ok(sel) => assert_eq!(sel.axes(), *axes, "{text:?} on {shape:?}"),
                Err(err) => assert!(axes.is_empty(), "{text:?} on {shape:?}: {err}"),
            }
        }
    }

    #[test]
    fn all_is_the_empty_text() {
        for shape in [&[][..], &[4, 3], &[0, 5], &[2, 1, 7]] {
            assert_eq!(Selection::all(shape), Selection::parse("", shape).unwrap());
            assert_eq!(Selection::all(shape).out_shape(), shape);
        }
        assert_eq!(Selection::all(&[]).n_elems(), 1);
        assert_eq!(Selection::all(&[3, 0, 2]).n_elems(), 0);
    }

    #[test]
    fn errors_name_the_item() {
        use SelectionError as E;
        let item = |s: &str| s.to_owned();
        let cases: Vec<(&str, &[u64], SelectionError, &str)> = vec![
            (
                "1:2:3:4",
                &[9],
                E::TooManyColons {
                    item: item("1:2:3:4"),
                },
                r#"bad slice item "1:2:3:4": too many colons"#,
            ),
            (
                "1,,2",
                &[9, 9, 9],
                E::EmptyItem {
                    text: item("1,,2"),
                    position: 2,
                },
                r#"bad slice "1,,2": item 2 is empty"#,
            ),
            (
                "1,",
                &[9, 9],
                E::EmptyItem {
                    text: item("1,"),
                    position: 2,
                },
                "item 2 is empty",
            ),
            (
                ",",
                &[9, 9],
                E::EmptyItem {
                    text: item(","),
                    position: 1,
                },
                "item 1 is empty",
            ),
            (
                "[,]",
                &[9],
                E::EmptyItem {
                    text: item("[,]"),
                    position: 1,
                },
                "item 1 is empty",
            ),
            (
                "+1",
                &[9],
                E::NotAnInteger {
                    item: item("+1"),
                    number: item("+1"),
                },
                r#"bad slice item "+1": "+1" is not an integer"#,
            ),
            (
                "1: 2",
                &[9],
                E::NotAnInteger {
                    item: item("1: 2"),
                    number: item(" 2"),
                },
                "not an integer",
            ),
            (
                "-",
                &[9],
                E::NotAnInteger {
                    item: item("-"),
                    number: item("-"),
                },
                "not an integer",
            ),
            (
                "--1:",
                &[9],
                E::NotAnInteger {
                    item: item("--1:"),
                    number: item("--1"),
                },
                "not an integer",
            ),
            (
                "[[1]]",
                &[9],
                E::NotAnInteger {
                    item: item("[1]"),
                    number: item("[1]"),
                },
                "not an integer",
            ),
            (
                "....",
                &[9],
                E::NotAnInteger {
                    item: item("...."),
                    number: item("...."),
                },
                "not an integer",
            ),
            (
                "9223372036854775808",
                &[9],
                E::NumberOverflow {
                    item: item("9223372036854775808"),
                    number: item("9223372036854775808"),
                },
                "9223372036854775808 does not fit in a signed 64-bit integer",
            ),
            (
                ":-9223372036854775809",
                &[9],
                E::NumberOverflow {
                    item: item(":-9223372036854775809"),
                    number: item("-9223372036854775809"),
                },
                "does not fit",
            ),
            (
                "[1",
                &[9],
                E::UnbalancedBrackets { text: item("[1") },
                r#""[1": unbalanced"#,
            ),
            (
                "1]",
                &[9],
                E::UnbalancedBrackets { text: item("1]") },
                "unbalanced brackets",
            ),
            (
                "[",
                &[9],
                E::UnbalancedBrackets { text: item("[") },
                "unbalanced brackets",
            ),
            (
                "1::0",
                &[9],
                E::ZeroStep { item: item("1::0") },
                r#"bad slice item "1::0": slice step cannot be zero"#,
            ),
            (
                "::-0",
                &[9],
                E::ZeroStep { item: item("::-0") },
                "step cannot be zero",
            ),
            // NumPy checks items in order: the first bad one is reported.
            (
                "::0,10",
                &[3, 3],
                E::ZeroStep { item: item("::0") },
                "step cannot be zero",
            ),
            (
                "10,::0",
                &[3, 3],
                E::IndexOutOfRange {
                    item: item("10"),
                    index: 10,
                    axis: 0,
                    axis_len: 3,
                },
                "index 10 is out of bounds for axis 0 with size 3",
            ),
            (
                "10,::0,...,...",
                &[3, 3],
                E::MultipleEllipsis { item: item("...") },
                "single ellipsis",
            ),
            (
                "...,...",
                &[9, 9],
                E::MultipleEllipsis { item: item("...") },
                "an index can only have a single ellipsis",
            ),
            (
                "1,2,3",
                &[4, 3],
                E::TooManyIndices {
                    text: item("1,2,3"),
                    n_indices: 3,
                    ndim: 2,
                },
                r#"bad slice "1,2,3": too many indices: 3 indexed, but the dataset is 2-dimensional"#,
            ),
            (
                ":",
                &[],
                E::TooManyIndices {
                    text: item(":"),
                    n_indices: 1,
                    ndim: 0,
                },
                "0-dim",
            ),
            (
                "0",
                &[],
                E::TooManyIndices {
                    text: item("0"),
                    n_indices: 1,
                    ndim: 0,
                },
                "0-dim",
            ),
            (
                "...,4",
                &[5, 4],
                E::IndexOutOfRange {
                    item: item("4"),
                    index: 4,
                    axis: 1,
                    axis_len: 4,
                },
                r#"slice item "4": index 4 is out of bounds for axis 1 with size 4"#,
            ),
            (
                "-6",
                &[5],
                E::IndexOutOfRange {
                    item: item("-6"),
                    index: -6,
                    axis: 0,
                    axis_len: 5,
                },
                "index -6 is out of bounds",
            ),
            (
                "0",
                &[0],
                E::IndexOutOfRange {
                    item: item("0"),
                    index: 0,
                    axis: 0,
                    axis_len: 0,
                },
                "size 0",
            ),
        ];
        for (text, shape, expected, message) in cases {
            let err = Selection::parse(text, shape).unwrap_err();
            assert_eq!(err, expected, "{text:?}");
            assert!(err.to_string().contains(message), "{text:?}: {err}");
            let code = if let E::IndexOutOfRange { .. } = err {
                "index_out_of_range"
            } else {
                "bad_slice"
            };
            assert_eq!(err.code(), code);
        }
    }

    #[test]
    fn errors_clip_long_text() {
        let long = format!("1:{}", "9".repeat(100));
        let err = Selection::parse(&long, &[5]).unwrap_err();
        let SelectionError::NumberOverflow { item, number } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(item.chars().count(), 41);
        assert!(item.starts_with("1:999") && item.ends_with('…'));
        assert_eq!(number, &format!("{}…", "9".repeat(40)));
        // Cut on a char boundary, never inside a multi-byte char.
        let err = Selection::parse(&"é".repeat(50), &[5]).unwrap_err();
        assert_eq!(
            err,
            SelectionError::NotAnInteger {
                item: format!("{}…", "é".repeat(40)),
                number: format!("{}…", "é".repeat(40)),
            }
        );
    }

    /// Numbers at and past the ends of the i64 range, as text.
    const BOUNDARY_NUMBERS: &[&str] = &[
        "9223372036854775807",
        "-9223372036854775808",
        "-9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "99999999999999999999999",
        "-0",
        "0",
        "",
    ];

    /// Checks what every successful parse promises: in bounds, normalised, one axis per dim.
    fn check_invariants(sel: &Selection, shape: &[u64]) {
        assert_eq!(sel.axes().len(), shape.len());
        for (a, &n) in sel.axes().iter().zip(shape) {
            assert_ne!(a.step, 0);
            if a.len == 0 {
                assert_eq!((a.start, a.step, a.keep), (0, 1, true));
                continue;
            }
            if !a.keep {
                assert_eq!((a.step, a.len), (1, 1));
            }
            let last = i128::from(a.start) + i128::from(a.step) * (i128::from(a.len) - 1);
            assert!(
                a.start < n && (0..i128::from(n)).contains(&last),
                "{a:?} on {n}"
            );
        }
    }

    fn small_shape() -> impl Strategy<Value = Vec<u64>> {
        prop::collection::vec(0u64..6, 0..4)
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_any_text(text in ".*", shape in small_shape()) {
            if let Ok(sel) = Selection::parse(&text, &shape) {
                check_invariants(&sel, &shape);
            }
        }

        #[test]
        fn parse_never_panics_on_selection_alphabet(
            text in "[0-9\\-:,.\\[\\]]{0,24}",
            shape in small_shape(),
        ) {
            if let Ok(sel) = Selection::parse(&text, &shape) {
                check_invariants(&sel, &shape);
            }
        }

        #[test]
        fn parse_never_panics_on_boundary_numbers(
            items in prop::collection::vec(
                (
                    prop::sample::select(BOUNDARY_NUMBERS),
                    prop::sample::select(BOUNDARY_NUMBERS),
                    prop::sample::select(BOUNDARY_NUMBERS),
                    0usize..4,
                ),
                1..4,
            ),
            shape in small_shape(),
            huge in any::<bool>(),
        ) {
            let text = items
                .iter()
                .map(|(a, b, c, colons)| match colons {
                    0 if a.is_empty() => "...".to_owned(),
                    0 => (*a).to_owned(),
                    1 => format!("{a}:{b}"),
                    2 => format!("{a}:{b}:{c}"),
                    _ => format!("{a}:{b}:{c}:{a}"),
                })
                .collect::<Vec<_>>()
                .join(",");
            // Axis lengths near u64::MAX put every clamp at its edge.
            let shape: Vec<u64> =
                if huge { shape.iter().map(|n| u64::MAX - n).collect() } else { shape };
            if let Ok(sel) = Selection::parse(&text, &shape) {
                check_invariants(&sel, &shape);
            }
        }
    }
}
