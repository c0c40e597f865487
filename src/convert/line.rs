//! One physical line → its fields, as `numpy.loadtxt` splits it.
//!
//! The line end (`\n`, or `\r\n`) is gone before a line gets here. Everything from the first
//! comment marker on is dropped. A line that is then empty is skipped, and so is one with no
//! fields when fields are separated by whitespace; with a delimiter, a line of spaces is one
//! (empty) field, as in NumPy. Without a delimiter, fields are separated by runs of spaces,
//! tabs, vertical tabs and form feeds, and leading or trailing whitespace makes no field.
//! With one, every delimiter separates two fields, so `1,,3` has an empty middle field and
//! `1,2,` an empty last one.

/// How lines are split: the command's `--delimiter` and `--comments`.
#[derive(Debug, Clone)]
pub struct Syntax {
    /// `None`: runs of whitespace.
    pub delimiter: Option<u8>,
    /// Empty: no comments.
    pub comments: Vec<u8>,
}

impl Syntax {
    /// The fields of `line`, or `None` when the line holds no data.
    pub(super) fn fields<'a>(&self, line: &'a [u8]) -> Option<Fields<'a>> {
        let line = self.strip_comment(line);
        if line.is_empty() {
            return None;
        }
        match self.delimiter {
            Some(delimiter) => Some(Fields {
                rest: Some(line),
                delimiter: Some(delimiter),
            }),
            None => {
                let start = line.iter().position(|b| !is_blank(*b))?;
                Some(Fields {
                    rest: Some(&line[start..]),
                    delimiter: None,
                })
            }
        }
    }

    fn strip_comment<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        let at = match self.comments.as_slice() {
            [] => None,
            [marker] => memchr::memchr(*marker, line),
            marker => memchr::memmem::find(line, marker),
        };
        at.map_or(line, |at| &line[..at])
    }
}

/// Whitespace that separates fields when there is no delimiter.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0b | 0x0c)
}

/// The fields of one line, left to right.
#[derive(Debug)]
pub(super) struct Fields<'a> {
    /// What is left; `None` once the last field was returned.
    rest: Option<&'a [u8]>,
    delimiter: Option<u8>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match self.delimiter {
            Some(d) => match memchr::memchr(d, rest) {
                Some(at) => {
                    self.rest = Some(&rest[at + 1..]);
                    Some(&rest[..at])
                }
                None => {
                    self.rest = None;
                    Some(rest)
                }
            },
            None => {
                // `rest` starts at a field: `fields` and this arm skip the blanks before it.
                let end = rest.iter().position(|b| is_blank(*b)).unwrap_or(rest.len());
                let field = &rest[..end];
                let next = rest[end..].iter().position(|b| !is_blank(*b));
                self.rest = next.map(|at| &rest[end + at..]);
                Some(field)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(delimiter: Option<u8>, comments: &str, line: &str) -> Option<Vec<String>> {
        let syntax = Syntax {
            delimiter,
            comments: comments.as_bytes().to_vec(),
        };
        syntax.fields(line.as_bytes()).map(|f| {
            f.map(|s| String::from_utf8(s.to_vec()).unwrap())
                .collect::<Vec<_>>()
        })
    }

    #[test]
    fn whitespace_runs() {
        assert_eq!(
            split(None, "#", "  1 \t 2\x0b3\x0c 4  ").unwrap(),
            ["1", "2", "3", "4"]
        );
        assert_eq!(split(None, "#", "   "), None);
        assert_eq!(split(None, "#", "  # only a comment"), None);
        assert_eq!(split(None, "#", ""), None);
        assert_eq!(split(None, "#", "5 6 # tail").unwrap(), ["5", "6"]);
    }

    #[test]
    fn delimiters_keep_empty_fields() {
        assert_eq!(split(Some(b','), "#", "1,,3").unwrap(), ["1", "", "3"]);
        assert_eq!(split(Some(b','), "#", "1,2,").unwrap(), ["1", "2", ""]);
        assert_eq!(split(Some(b','), "#", " 1 , 2 ").unwrap(), [" 1 ", " 2 "]);
        // NumPy: a line of spaces is one field, which then fails the column count.
        assert_eq!(split(Some(b','), "#", "  ").unwrap(), ["  "]);
        assert_eq!(split(Some(b','), "#", "  #c").unwrap(), ["  "]);
        assert_eq!(split(Some(b','), "#", "#c"), None);
        assert_eq!(split(Some(b' '), "#", "1  2").unwrap(), ["1", "", "2"]);
    }

    #[test]
    fn comment_markers() {
        assert_eq!(split(Some(b';'), "//", "1;2//x").unwrap(), ["1", "2"]);
        assert_eq!(split(Some(b','), "", "1,#2").unwrap(), ["1", "#2"]);
    }
}
