//! One block of lines → the bytes of its rows, on a worker thread.
//!
//! A block knows nothing of the lines before it, so everything it reports is local: line
//! numbers count from the block's first line (1-based), and the column count of its first
//! row is returned for the writer to compare with the rows of earlier blocks. Parsing stops at
//! the block's first bad line; the rows before it are kept, so that the writer, which sees
//! blocks in order, reports the first bad line of the whole input.

use super::field::{FieldError, Kind};
use super::line::Syntax;

/// The most fields a line may have. Far above any table a person writes, it keeps a
/// malformed line from turning into one row of a million columns.
pub(super) const MAX_COLUMNS: usize = 1 << 16;

/// What [`parse_block`] needs besides the block.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    /// How lines split into fields.
    pub(super) syntax: Syntax,
    /// What each field becomes.
    pub(super) kind: Kind,
    /// Fields kept, in order (negative counts from the end of each line); `None`: all, and
    /// every row must have as many as the first.
    pub(super) usecols: Option<Vec<i64>>,
}

/// What went wrong on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Problem {
    /// A field that is not a value of the kind.
    Field {
        /// 1-based field number in the line.
        column: usize,
        /// The field as written (lossily decoded, at most [`MAX_QUOTE`] bytes).
        text: String,
        /// Why.
        error: FieldError,
    },
    /// A row with another column count than the block's first row.
    Columns {
        /// Fields on this line.
        found: usize,
        /// Fields on the first row.
        expected: usize,
    },
    /// More than [`MAX_COLUMNS`] fields.
    TooManyColumns,
    /// A `--usecols` index past the end of this line.
    NoSuchColumn {
        /// The index as given.
        index: i64,
        /// Fields on this line.
        found: usize,
    },
    /// A NUL byte: the input is not text.
    Binary,
    /// A line longer than the longest read.
    Overlong,
}

/// The longest field text quoted in an error.
pub(super) const MAX_QUOTE: usize = 80;

/// What a block held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Parsed {
    /// Physical lines of the block.
    pub(super) lines: u64,
    /// Rows written to the output buffer.
    pub(super) rows: u64,
    /// The first row's local line and column count (before `usecols`).
    pub(super) first_row: Option<(u64, usize)>,
    /// The first bad line, local, and what was wrong; nothing after it was parsed.
    pub(super) problem: Option<(u64, Problem)>,
}

/// Parses `block` (whole lines) into `out`, which is cleared first. `overlong` says that the
/// block's last line has no end within the line bound.
pub(super) fn parse_block(
    block: &[u8],
    overlong: bool,
    rules: &Rules,
    out: &mut Vec<u8>,
) -> Parsed {
    out.clear();
    let mut parsed = Parsed::default();
    let nul = memchr::memchr(0, block);
    let mut fields = Vec::new();
    let mut start = 0;
    while start < block.len() {
        let (end, next) = match memchr::memchr(b'\n', &block[start..]) {
            Some(i) => (start + i, start + i + 1),
            None => (block.len(), block.len()),
        };
        parsed.lines += 1;
        let line_no = parsed.lines;
        if nul.is_some_and(|at| at < next) {
            parsed.problem = Some((line_no, Problem::Binary));
            return parsed;
        }
        if overlong && next == block.len() {
            parsed.problem = Some((line_no, Problem::Overlong));
            return parsed;
        }
        let line = block[start..end]
            .strip_suffix(b"\r")
            .unwrap_or(&block[start..end]);
        start = next;
        let Some(split) = rules.syntax.fields(line) else {
            continue;
        };
        fields.clear();
        for field in split {
            if fields.len() == MAX_COLUMNS {
                parsed.problem = Some((line_no, Problem::TooManyColumns));
                return parsed;
            }
            fields.push(field);
        }
        let expected = parsed.first_row.map(|(_, n)| n);
        if let Err(problem) = put_row(&fields, expected, rules, out) {
            parsed.problem = Some((line_no, problem));
            return parsed;
        }
        parsed.first_row.get_or_insert((line_no, fields.len()));
        parsed.rows += 1;
    }
    parsed
}

/// Appends one row's elements; `expected` is the column count rows must have, when known.
fn put_row(
    fields: &[&[u8]],
    expected: Option<usize>,
    rules: &Rules,
    out: &mut Vec<u8>,
) -> Result<(), Problem> {
    let put = |column: usize, out: &mut Vec<u8>| {
        let text = fields[column];
        rules.kind.put(text, out).map_err(|error| Problem::Field {
            column: column + 1,
            text: quote(text),
            error,
        })
    };
    match &rules.usecols {
        None => {
            if let Some(expected) = expected.filter(|&n| n != fields.len()) {
                return Err(Problem::Columns {
                    found: fields.len(),
                    expected,
                });
            }
            (0..fields.len()).try_for_each(|column| put(column, out))
        }
        Some(usecols) => usecols.iter().try_for_each(|&index| {
            let found = fields.len();
            let column = resolve(index, found).ok_or(Problem::NoSuchColumn { index, found })?;
            put(column, out)
        }),
    }
}

/// `index` into `len` fields, negative from the end, as Python indexes.
fn resolve(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let at = if index < 0 { index + len } else { index };
    (0..len).contains(&at).then(|| usize::try_from(at).ok())?
}

fn quote(text: &[u8]) -> String {
    let cut = &text[..text.len().min(MAX_QUOTE)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < text.len() {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;

    fn rules(delimiter: Option<u8>, dtype: &str, usecols: Option<Vec<i64>>) -> Rules {
        Rules {
            syntax: Syntax {
                delimiter,
                comments: b"#".to_vec(),
            },
            kind: Kind::of(DType::parse(dtype).unwrap()).unwrap(),
            usecols,
        }
    }

    fn run(text: &str, rules: &Rules) -> (Parsed, Vec<u8>) {
        let mut out = vec![9; 3];
        let parsed = parse_block(text.as_bytes(), false, rules, &mut out);
        (parsed, out)
    }

    #[test]
    fn rows_comments_blank_lines_and_crlf() {
        let (p, out) = run(
            "# head\n1,2\r\n\r\n3,4 # x\n5,6",
            &rules(Some(b','), "|u1", None),
        );
        assert_eq!(out, [1, 2, 3, 4, 5, 6]);
        assert_eq!(
            (p.lines, p.rows, p.first_row, p.problem),
            (5, 3, Some((2, 2)), None)
        );
    }

    #[test]
    fn ragged_rows_name_the_line() {
        let (p, out) = run("1 2 3\n4 5 6\n7 8\n", &rules(None, "|u1", None));
        assert_eq!(out, [1, 2, 3, 4, 5, 6]);
        assert_eq!(
            p.problem,
            Some((
                3,
                Problem::Columns {
                    found: 2,
                    expected: 3
                }
            ))
        );
    }

    #[test]
    fn usecols_pick_and_allow_ragged_rows() {
        let r = rules(Some(b','), "|u1", Some(vec![0, -1]));
        let (p, out) = run("1,2,5\n3,4,5,6\n", &r);
        assert_eq!(out, [1, 5, 3, 6]);
        assert_eq!(p.problem, None);
        let (p, _) = run("1,2\n3\n", &rules(Some(b','), "|u1", Some(vec![1])));
        assert_eq!(
            p.problem,
            Some((2, Problem::NoSuchColumn { index: 1, found: 1 }))
        );
    }

    #[test]
    fn bad_fields_carry_column_and_text() {
        let (p, _) = run("1,2\n3,300\n", &rules(Some(b','), "|u1", None));
        assert_eq!(
            p.problem,
            Some((
                2,
                Problem::Field {
                    column: 2,
                    text: "300".into(),
                    error: FieldError::OutOfRange
                }
            ))
        );
    }

    #[test]
    fn binary_and_wide_lines_are_refused() {
        let (p, _) = run("1\n2\0\n", &rules(None, "<f8", None));
        assert_eq!(p.problem, Some((2, Problem::Binary)));
        let wide = "0,".repeat(MAX_COLUMNS) + "0\n";
        let (p, _) = run(&wide, &rules(Some(b','), "<f8", None));
        assert_eq!(p.problem, Some((1, Problem::TooManyColumns)));
        let mut out = Vec::new();
        let p = parse_block(b"1\n2222", true, &rules(None, "<f8", None), &mut out);
        assert_eq!((p.rows, p.problem), (1, Some((2, Problem::Overlong))));
    }

    #[test]
    fn negative_indexes() {
        assert_eq!(resolve(-1, 3), Some(2));
        assert_eq!(resolve(-3, 3), Some(0));
        assert_eq!(resolve(-4, 3), None);
        assert_eq!(resolve(3, 3), None);
    }
}
