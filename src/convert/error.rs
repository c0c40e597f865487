//! Why a conversion stopped. Every variant names what the user must look at: the file, or
//! the 1-based physical line and column and the text found there.

use std::path::PathBuf;

use super::block::MAX_LINE_BYTES;
use super::field::FieldError;
use super::parse::{Problem, MAX_COLUMNS};
use crate::dtype::DType;

/// A failed conversion; nothing was written to the output path.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Input {
        /// The input path (`-` for standard input).
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output cannot be created or written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file written (the temporary file beside the target, or the target).
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output's directory is not there.
    #[error("the output directory {0} does not exist")]
    NoOutputDir(PathBuf),
    /// The output path names the input file.
    #[error("the output {0} is the input file; choose another output path")]
    OutputIsInput(PathBuf),
    /// The output path is a directory.
    #[error("the output {0} is a directory; name a file")]
    OutputIsDir(PathBuf),
    /// A dtype that has no text converter.
    #[error("dtype {0} is not converted from text: every integer, float and bool type is, complex ones are not")]
    Complex(DType),
    /// A bad option value.
    #[error("{0}")]
    Usage(String),
    /// A bad line.
    #[error("line {line}{}: {message}", column.map(|c| format!(", column {c}")).unwrap_or_default())]
    Line {
        /// 1-based physical line number, skipped lines included.
        line: u64,
        /// 1-based field number, when one field is at fault.
        column: Option<usize>,
        /// What was wrong.
        message: String,
    },
}

impl ConvertError {
    /// A [`Problem`] found on `line`; `reference` is the line whose column count rows must
    /// match.
    pub(super) fn line(line: u64, problem: &Problem, dtype: DType, reference: u64) -> Self {
        let column = match problem {
            Problem::Field { column, .. } => Some(*column),
            _ => None,
        };
        let message = match problem {
            Problem::Field { text, error, .. } => {
                let what = match error {
                    FieldError::Invalid => "is not",
                    FieldError::OutOfRange => "is out of the range of",
                    FieldError::Empty => "(an empty field) is not",
                };
                format!("{text:?} {what} {}", dtype.scalar.numpy_name())
            }
            Problem::Columns { found, expected } => format!(
                "{found} columns, but line {reference} has {expected} (every row needs as many; \
                 --usecols picks some)"
            ),
            Problem::TooManyColumns => format!("more than {MAX_COLUMNS} columns"),
            Problem::NoSuchColumn { index, found } => {
                format!("--usecols {index}: the line has only {found} columns")
            }
            Problem::Binary => "a NUL byte: the input is binary, not text".to_owned(),
            Problem::Overlong => format!(
                "longer than {} MiB, the longest line read (is this a text table?)",
                MAX_LINE_BYTES >> 20
            ),
        };
        ConvertError::Line {
            line,
            column,
            message,
        }
    }
}
