//! Store keys under `/zarr`: which node a request path names and what of it.
//!
//! Pure and strict: a key names exactly one thing or nothing. Chunk indices are decimal
//! without sign or leading zeros (so each chunk has one key and one cache entry), fit in
//! `u64`, and come one per axis; anything else is [`ArrayKey::Missing`], which the handler
//! answers with a 404, the answer Zarr readers take for "fill value".

/// Metadata documents of the root group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootDoc {
    /// `zarr.json`: format 3 group with inline consolidated metadata.
    ZarrJson,
    /// `.zgroup`: format 2 group.
    ZGroup,
    /// `.zattrs`: format 2 group attributes.
    ZAttrs,
    /// `.zmetadata`: format 2 consolidated metadata.
    ZMetadata,
}

/// What a path under `/zarr` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// `/zarr`, `/zarr/` or `/zarr//`: the HTML listing of the root group.
    RootIndex,
    /// A metadata document of the root group.
    Root(RootDoc),
    /// A key under the array `name`; `rest` is what follows `NAME/`, to be read with
    /// [`ArrayKey::parse`] once the array's dimensionality is known.
    Array {
        /// The dataset name (syntactically valid).
        name: &'a str,
        /// The key inside the array.
        rest: &'a str,
    },
    /// Nothing.
    Missing,
}

impl Key<'_> {
    /// The key named by `path`, the request path with its leading `/zarr` removed.
    pub fn parse(path: &str) -> Key<'_> {
        let tail = match path.strip_prefix('/') {
            Some(tail) => tail,
            None if path.is_empty() => return Key::RootIndex,
            None => return Key::Missing,
        };
        match tail {
            "" | "/" => return Key::RootIndex,
            "zarr.json" => return Key::Root(RootDoc::ZarrJson),
            ".zgroup" => return Key::Root(RootDoc::ZGroup),
            ".zattrs" => return Key::Root(RootDoc::ZAttrs),
            ".zmetadata" => return Key::Root(RootDoc::ZMetadata),
            _ => {}
        }
        match tail.split_once('/') {
            Some((name, rest)) if crate::registry::is_valid_name(name) => Key::Array { name, rest },
            _ => Key::Missing,
        }
    }
}

/// A key inside one array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArrayKey {
    /// `NAME/` or `NAME//`: the HTML listing of the array's metadata keys.
    Index,
    /// `zarr.json`: format 3 array metadata.
    ZarrJson,
    /// `.zarray`: format 2 array metadata.
    ZArray,
    /// `.zattrs`: format 2 attributes.
    ZAttrs,
    /// A chunk by its grid position: `c/i/j` (format 3) or `i.j` (format 2).
    Chunk(Vec<u64>),
    /// Nothing (the handler still checks the position against the grid).
    Missing,
}

impl ArrayKey {
    /// The key `rest` of an `ndim`-dimensional array.
    pub fn parse(rest: &str, ndim: usize) -> ArrayKey {
        match rest {
            "" | "/" => return ArrayKey::Index,
            "zarr.json" => return ArrayKey::ZarrJson,
            ".zarray" => return ArrayKey::ZArray,
            ".zattrs" => return ArrayKey::ZAttrs,
            _ => {}
        }
        let v3 = match rest.strip_prefix('c') {
            Some("") if ndim == 0 => return ArrayKey::Chunk(Vec::new()),
            Some(after) => after.strip_prefix('/').map(|i| indices(i, '/', ndim)),
            None => None,
        };
        let position = match v3 {
            Some(position) => position,
            // Format 2 names the only chunk of a 0-d array `0`.
            None if ndim == 0 => (rest == "0").then(Vec::new),
            None => indices(rest, '.', ndim),
        };
        position.map_or(ArrayKey::Missing, ArrayKey::Chunk)
    }
}

/// Exactly `ndim` indices separated by `sep`.
fn indices(text: &str, sep: char, ndim: usize) -> Option<Vec<u64>> {
    if ndim == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(ndim);
    for part in text.splitn(ndim + 1, sep) {
        if out.len() == ndim {
            return None;
        }
        out.push(index(part)?);
    }
    (out.len() == ndim).then_some(out)
}

/// `0` or a decimal without a leading zero that fits `u64`.
fn index(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{ArrayKey, Key, RootDoc};

    #[test]
    fn root_keys() {
        for path in ["", "/", "//"] {
            assert_eq!(Key::parse(path), Key::RootIndex, "{path:?}");
        }
        assert_eq!(Key::parse("/zarr.json"), Key::Root(RootDoc::ZarrJson));
        assert_eq!(Key::parse("/.zmetadata"), Key::Root(RootDoc::ZMetadata));
        assert_eq!(Key::parse("/.zgroup"), Key::Root(RootDoc::ZGroup));
        assert_eq!(Key::parse("/.zattrs"), Key::Root(RootDoc::ZAttrs));
        assert_eq!(
            Key::parse("/sub.raw/c/0"),
            Key::Array {
                name: "sub.raw",
                rest: "c/0"
            }
        );
        assert_eq!(
            Key::parse("/m/"),
            Key::Array {
                name: "m",
                rest: ""
            }
        );
        for path in [
            "x",
            "/m",
            "/%2e%2e/",
            "/../m/.zarray",
            "/.hidden/zarr.json",
            "///",
            "/a b/zarr.json",
            "/.zarray",
        ] {
            assert_eq!(Key::parse(path), Key::Missing, "{path:?}");
        }
        // `c` is a valid dataset name; its key `0` is looked up like any other.
        assert_eq!(
            Key::parse("/c/0"),
            Key::Array {
                name: "c",
                rest: "0"
            }
        );
    }

    #[test]
    fn array_keys() {
        let table: &[(&str, usize, ArrayKey)] = &[
            ("", 2, ArrayKey::Index),
            ("/", 2, ArrayKey::Index),
            ("zarr.json", 2, ArrayKey::ZarrJson),
            (".zarray", 2, ArrayKey::ZArray),
            (".zattrs", 0, ArrayKey::ZAttrs),
            ("c/1/2", 2, ArrayKey::Chunk(vec![1, 2])),
            ("1.2", 2, ArrayKey::Chunk(vec![1, 2])),
            ("7", 1, ArrayKey::Chunk(vec![7])),
            ("c/7", 1, ArrayKey::Chunk(vec![7])),
            ("c", 0, ArrayKey::Chunk(vec![])),
            ("0", 0, ArrayKey::Chunk(vec![])),
            ("c/18446744073709551615", 1, ArrayKey::Chunk(vec![u64::MAX])),
            ("c/1/2/3", 2, ArrayKey::Missing),
            ("c/-1/0", 2, ArrayKey::Missing),
            ("c/99999999999999999999/0", 2, ArrayKey::Missing),
            ("c/0/0/", 2, ArrayKey::Missing),
            ("c//0", 2, ArrayKey::Missing),
            ("c/0", 2, ArrayKey::Missing),
            ("c/", 1, ArrayKey::Missing),
            ("c", 1, ArrayKey::Missing),
            ("c/0", 0, ArrayKey::Missing),
            ("0.0.0", 2, ArrayKey::Missing),
            ("0.0", 1, ArrayKey::Missing),
            ("0", 2, ArrayKey::Missing),
            ("1", 0, ArrayKey::Missing),
            ("00", 1, ArrayKey::Missing),
            ("c/01", 1, ArrayKey::Missing),
            ("+1", 1, ArrayKey::Missing),
            ("c/ 1", 1, ArrayKey::Missing),
            ("0/0", 2, ArrayKey::Missing),
            ("c.0.0", 2, ArrayKey::Missing),
            (".zgroup", 2, ArrayKey::Missing),
            (".zmetadata", 2, ArrayKey::Missing),
            ("zarr.json/", 2, ArrayKey::Missing),
            ("//", 2, ArrayKey::Missing),
        ];
        for (rest, ndim, want) in table {
            assert_eq!(ArrayKey::parse(rest, *ndim), *want, "{rest:?} ndim {ndim}");
        }
        let long = format!("c/{}", "1/".repeat(5000));
        assert_eq!(ArrayKey::parse(&long, 2), ArrayKey::Missing);
    }

    proptest! {
        /// Whatever the text, parsing neither panics nor yields a position of the wrong
        /// length.
        #[test]
        fn any_key_parses_to_the_right_arity(rest in "[c0-9./ a-z-]{0,40}", ndim in 0usize..5) {
            if let ArrayKey::Chunk(position) = ArrayKey::parse(&rest, ndim) {
                prop_assert_eq!(position.len(), ndim);
            }
            let _ = Key::parse(&rest);
        }

        /// Every grid position has exactly one key per format, and it parses back to itself.
        #[test]
        fn keys_round_trip(position in prop::collection::vec(any::<u64>(), 0..6)) {
            let ndim = position.len();
            let text: Vec<String> = position.iter().map(u64::to_string).collect();
            let v3 = if ndim == 0 { "c".to_owned() } else { format!("c/{}", text.join("/")) };
            let v2 = if ndim == 0 { "0".to_owned() } else { text.join(".") };
            prop_assert_eq!(ArrayKey::parse(&v3, ndim), ArrayKey::Chunk(position.clone()));
            prop_assert_eq!(ArrayKey::parse(&v2, ndim), ArrayKey::Chunk(position));
        }

        #[test]
        fn arbitrary_text_never_panics(path in "\\PC{0,60}", ndim in 0usize..8) {
            let _ = Key::parse(&path);
            let _ = ArrayKey::parse(&path, ndim);
        }
    }
}
