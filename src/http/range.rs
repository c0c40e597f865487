//! The `Range` request header (RFC 9110 §14.1-§14.2) resolved against a representation
//! length: which bytes of a `/raw` answer to send. Pure: no I/O, no axum.
//!
//! What the parser decides, and why:
//! - A header that is not a valid `bytes` range set is ignored (the full `200`), as RFC 9110
//!   §14.2 allows ("a server MAY ignore the Range header field"): an unknown unit, a syntax
//!   error anywhere in the set, `a-b` with `b < a`, or more than [`MAX_RANGES`] range specs.
//! - A valid set with no satisfiable range is [`RangeSpec::Unsatisfiable`] (`416`). A set
//!   over a zero-length representation is always unsatisfiable: `Content-Range` cannot
//!   express an empty range.
//! - Satisfiable ranges are sorted by start, and overlapping or adjacent ones are coalesced
//!   (§14.2 lets a server coalesce "regardless of the order in which the corresponding
//!   range-spec appeared"). This bounds an answer by the representation length however many
//!   times a client repeats `0-`.
//! - Numbers past `u64` saturate: a huge `first-pos` is simply past the end (unsatisfiable),
//!   a huge `last-pos` or suffix length clamps to the end. No input panics.

/// Most range specs accepted in one header; a longer set is ignored (full `200`). Far more
/// than any real client sends (curl, browsers and video players send one or a few), few
/// enough that a multipart answer's part headers stay small.
pub(crate) const MAX_RANGES: usize = 100;

/// One satisfiable byte range of the representation, `[start, end_exc)`, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    /// First byte.
    pub(crate) start: u64,
    /// One past the last byte; `> start`.
    pub(crate) end_exc: u64,
}

impl ByteRange {
    /// Bytes in the range.
    pub(crate) fn len(self) -> u64 {
        self.end_exc - self.start
    }

    /// The `Content-Range` value for this range of a `total`-byte representation.
    pub(crate) fn content_range(self, total: u64) -> String {
        // itoa rather than `format!`: every `/raw` range answer needs one (README
        // "Performance").
        let mut n = itoa::Buffer::new();
        let mut out = String::with_capacity(64);
        out.push_str("bytes ");
        out.push_str(n.format(self.start));
        out.push('-');
        out.push_str(n.format(self.end_exc - 1));
        out.push('/');
        out.push_str(n.format(total));
        out
    }
}

/// What a `Range` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// No header, or one to ignore: send the whole representation.
    Full,
    /// One or more satisfiable ranges, sorted, disjoint and not adjacent.
    Satisfiable(Vec<ByteRange>),
    /// A valid range set of which nothing can be served: `416`.
    Unsatisfiable,
}

/// Resolves the `Range` header value `header` (or its absence) against a representation of
/// `len` bytes.
pub(crate) fn parse(header: Option<&str>, len: u64) -> RangeSpec {
    let Some(header) = header else {
        return RangeSpec::Full;
    };
    let Some(specs) = parse_set(header) else {
        return RangeSpec::Full;
    };
    if len == 0 {
        return RangeSpec::Unsatisfiable;
    }
    let mut ranges: Vec<ByteRange> = specs
        .into_iter()
        .filter_map(|spec| spec.resolve(len))
        .collect();
    if ranges.is_empty() {
        return RangeSpec::Unsatisfiable;
    }
    ranges.sort_unstable_by_key(|r| r.start);
    let mut merged: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end_exc => last.end_exc = last.end_exc.max(r.end_exc),
            _ => merged.push(r),
        }
    }
    RangeSpec::Satisfiable(merged)
}

/// One `range-spec` as written, before it meets the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-` or `first-last` (`last` inclusive, `None` for open-ended).
    Int { first: u64, last: Option<u64> },
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl Spec {
    /// The satisfiable part of this spec in a `len`-byte representation (`len > 0`), per
    /// RFC 9110 §14.1.1: an int-range needs `first < len`, a suffix a non-zero length.
    fn resolve(self, len: u64) -> Option<ByteRange> {
        match self {
            Spec::Int { first, last } if first < len => Some(ByteRange {
                start: first,
                end_exc: last.map_or(len, |last| last.min(len - 1) + 1),
            }),
            Spec::Int { .. } | Spec::Suffix(0) => None,
            Spec::Suffix(n) => Some(ByteRange {
                start: len - n.min(len),
                end_exc: len,
            }),
        }
    }
}

/// `bytes=` followed by a `1#range-spec` list, or `None` when the header is to be ignored.
fn parse_set(header: &str) -> Option<Vec<Spec>> {
    let (unit, set) = header.trim().split_once('=')?;
    // Range units are case-insensitive (RFC 9110 §14.1).
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    // A `#` list tolerates empty elements and whitespace around commas (RFC 9110 §5.6.1).
    for item in set.split(',').map(|s| s.trim_matches([' ', '\t'])) {
        if item.is_empty() {
            continue;
        }
        if specs.len() == MAX_RANGES {
            return None;
        }
        specs.push(parse_spec(item)?);
    }
    if specs.is_empty() {
        return None;
    }
    Some(specs)
}

fn parse_spec(item: &str) -> Option<Spec> {
    let (first, last) = item.split_once('-')?;
    if first.is_empty() {
        return Some(Spec::Suffix(number(last)?));
    }
    let first = number(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(number(last)?)
    };
    // `last < first` makes the whole set invalid (RFC 9110 §14.1.1).
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(Spec::Int { first, last })
}

/// `1*DIGIT`, saturating at `u64::MAX`.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{parse, ByteRange, RangeSpec, MAX_RANGES};

    fn ranges(pairs: &[(u64, u64)]) -> RangeSpec {
        RangeSpec::Satisfiable(
            pairs
                .iter()
                .map(|&(start, end_exc)| ByteRange { start, end_exc })
                .collect(),
        )
    }

    #[test]
    fn every_form_against_100_bytes() {
        let table: &[(&str, RangeSpec)] = &[
            ("bytes=0-9", ranges(&[(0, 10)])),
            ("bytes=90-", ranges(&[(90, 100)])),
            ("bytes=-10", ranges(&[(90, 100)])),
            ("bytes=-1000", ranges(&[(0, 100)])),
            ("bytes=95-1000", ranges(&[(95, 100)])),
            ("bytes=99-99", ranges(&[(99, 100)])),
            ("bytes=0-", ranges(&[(0, 100)])),
            ("BYTES=0-0", ranges(&[(0, 1)])),
            ("bytes=0-1,4-5", ranges(&[(0, 2), (4, 6)])),
            ("bytes=0-1, 4-5 ,\t8-", ranges(&[(0, 2), (4, 6), (8, 100)])),
            ("bytes=0-1,,4-5,", ranges(&[(0, 2), (4, 6)])),
            // Reordered, overlapping and adjacent ranges are sorted and coalesced.
            ("bytes=50-59,0-9", ranges(&[(0, 10), (50, 60)])),
            ("bytes=0-9,5-19,20-29", ranges(&[(0, 30)])),
            ("bytes=0-,0-,0-", ranges(&[(0, 100)])),
            ("bytes=-10,95-", ranges(&[(90, 100)])),
            // Unsatisfiable members are dropped when another one is satisfiable.
            ("bytes=0-4,100-200", ranges(&[(0, 5)])),
            ("bytes=-0,3-3", ranges(&[(3, 4)])),
            (
                "bytes=18446744073709551615-,99999999999999999999999-,-99999999999999999999",
                ranges(&[(0, 100)]),
            ),
            ("bytes=1-99999999999999999999999", ranges(&[(1, 100)])),
            // Valid sets with nothing satisfiable.
            ("bytes=100-", RangeSpec::Unsatisfiable),
            ("bytes=100-200,300-", RangeSpec::Unsatisfiable),
            ("bytes=-0", RangeSpec::Unsatisfiable),
            ("bytes=99999999999999999999999-", RangeSpec::Unsatisfiable),
        ];
        for (header, want) in table {
            assert_eq!(parse(Some(header), 100), *want, "{header}");
        }
    }

    #[test]
    fn invalid_sets_and_other_units_are_ignored() {
        for header in [
            "",
            "bytes",
            "bytes=",
            "bytes=,",
            "bytes=5",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=--1",
            "bytes=5-4",
            "bytes=0-1,5-4",
            "bytes=+1-2",
            "bytes=0x1-2",
            "bytes=1 -2",
            "bytes =1-2",
            "bytes=-",
            "bytes=0-1;x",
            "items=0-1",
            "bytes=٣-4",
        ] {
            assert_eq!(parse(Some(header), 100), RangeSpec::Full, "{header:?}");
        }
        assert_eq!(parse(None, 100), RangeSpec::Full);
    }

    #[test]
    fn the_range_count_is_capped() {
        let at_cap = format!("bytes={}", vec!["0-0"; MAX_RANGES].join(","));
        assert_eq!(parse(Some(&at_cap), 10), ranges(&[(0, 1)]));
        let over = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(parse(Some(&over), 10), RangeSpec::Full);
    }

    #[test]
    fn a_zero_length_representation_satisfies_nothing() {
        for header in ["bytes=0-", "bytes=-1", "bytes=0-0,5-"] {
            assert_eq!(parse(Some(header), 0), RangeSpec::Unsatisfiable, "{header}");
        }
        assert_eq!(parse(Some("bytes=x"), 0), RangeSpec::Full);
    }

    #[test]
    fn content_range_is_inclusive() {
        let r = ByteRange {
            start: 10,
            end_exc: 20,
        };
        assert_eq!(r.content_range(100), "bytes 10-19/100");
        assert_eq!(r.len(), 10);
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..300).prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            Just(u64::MAX.to_string()),
            Just("184467440737095516160".to_owned()),
            Just("9".repeat(60)),
            Just(String::new()),
        ]
    }

    fn header() -> impl Strategy<Value = String> {
        let spec = prop_oneof![
            (number(), number()).prop_map(|(a, b)| format!("{a}-{b}")),
            number().prop_map(|b| format!("-{b}")),
            number().prop_map(|a| format!("{a}-")),
            "[ -~]{0,6}",
        ];
        (
            prop_oneof![Just("bytes="), Just("Bytes="), Just("x="), Just("")],
            prop::collection::vec(spec, 0..8),
            prop_oneof![Just(","), Just(", "), Just(" ,")],
        )
            .prop_map(|(unit, specs, sep)| format!("{unit}{}", specs.join(sep)))
    }

    proptest! {
        /// Whatever the header, the parser neither panics nor hands out a range that is
        /// empty, out of bounds, unsorted or overlapping.
        #[test]
        fn never_panics_and_stays_in_bounds(
            h in header(),
            len in prop_oneof![Just(0u64), 1u64..1000, Just(u64::MAX)],
        ) {
            if let RangeSpec::Satisfiable(rs) = parse(Some(&h), len) {
                prop_assert!(!rs.is_empty());
                for r in &rs {
                    prop_assert!(r.start < r.end_exc && r.end_exc <= len);
                }
                for pair in rs.windows(2) {
                    prop_assert!(pair[0].end_exc < pair[1].start);
                }
            }
        }

        #[test]
        fn arbitrary_text_never_panics(h in "\\PC{0,40}", len in any::<u64>()) {
            let _ = parse(Some(&h), len);
        }
    }
}
