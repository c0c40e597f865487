//! Content negotiation for `/data`: `format=` beats `Accept`; without both, JSON
//! (README "API").
//!
//! `Accept` follows RFC 9110 §12.5.1: media ranges are matched case-insensitively, the most
//! specific range that matches a type gives its q-value, and q=0 means "not acceptable". Ties
//! go to the order JSON, CSV, bin, npy, so `*/*` and a browser's usual header get JSON.

use super::Format;

/// A format request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// `format=` names no format arrayd has.
    #[error("unknown format {0:?}; expected json, csv, bin or npy")]
    Unknown(String),
    /// `Accept` names only types arrayd does not serve.
    #[error("none of the types in Accept {0:?} is served; try application/json, text/csv, application/octet-stream or application/x-npy")]
    NotAcceptable(String),
}

/// Media types in tie-break order.
const TYPES: [(Format, &str, &str); 4] = [
    (Format::Json, "application", "json"),
    (Format::Csv, "text", "csv"),
    (Format::Bin, "application", "octet-stream"),
    (Format::Npy, "application", "x-npy"),
];

/// Picks the response format.
///
/// # Errors
/// [`FormatError::Unknown`] for a `format=` value that is not `json|csv|bin|npy`;
/// [`FormatError::NotAcceptable`] when `Accept` rules out all four types.
///
/// ```
/// use arrayd::encode::{negotiate, Format};
/// assert_eq!(negotiate(None, Some("text/csv;q=0.5, application/octet-stream")), Ok(Format::Bin));
/// assert_eq!(negotiate(Some("npy"), Some("text/csv")), Ok(Format::Npy));
/// assert_eq!(negotiate(None, None), Ok(Format::Json));
/// ```
pub fn negotiate(format: Option<&str>, accept: Option<&str>) -> Result<Format, FormatError> {
    if let Some(name) = format {
        return match name.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "bin" => Ok(Format::Bin),
            "npy" => Ok(Format::Npy),
            _ => Err(FormatError::Unknown(name.chars().take(40).collect())),
        };
    }
    let accept = match accept.map(str::trim) {
        None | Some("") => return Ok(Format::Json),
        Some(a) => a,
    };
    let ranges: Vec<MediaRange<'_>> = accept.split(',').filter_map(MediaRange::parse).collect();
    let mut best: Option<(Format, f32)> = None;
    for (format, ty, sub) in TYPES {
        let q = ranges
            .iter()
            .filter_map(|r| r.specificity(ty, sub).map(|s| (s, r.q)))
            .max_by_key(|(s, _)| *s)
            .map_or(0.0, |(_, q)| q);
        if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((format, q));
        }
    }
    best.map(|(f, _)| f)
        .ok_or_else(|| FormatError::NotAcceptable(accept.chars().take(100).collect()))
}

/// One media range of an `Accept` header.
struct MediaRange<'a> {
    ty: &'a str,
    sub: &'a str,
    q: f32,
}

impl<'a> MediaRange<'a> {
    /// Parses `type/subtype;param=value;q=0.5`; ranges that do not parse are ignored, as
    /// RFC 9110 leaves their meaning undefined.
    fn parse(text: &'a str) -> Option<MediaRange<'a>> {
        let mut parts = text.split(';');
        let (ty, sub) = parts.next()?.trim().split_once('/')?;
        let mut q = 1.0;
        for param in parts {
            if let Some((k, v)) = param.trim().split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))?;
                }
            }
        }
        Some(MediaRange {
            ty: ty.trim(),
            sub: sub.trim(),
            q,
        })
    }

    /// How specifically this range names `ty/sub`: 2 exact, 1 `ty/*`, 0 `*/*`; `None` when it
    /// does not match.
    fn specificity(&self, ty: &str, sub: &str) -> Option<u8> {
        let ty_ok = self.ty.eq_ignore_ascii_case(ty);
        match (self.ty, self.sub) {
            ("*", "*") => Some(0),
            (_, "*") if ty_ok => Some(1),
            _ if ty_ok && self.sub.eq_ignore_ascii_case(sub) => Some(2),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(a: &str) -> Result<Format, FormatError> {
        negotiate(None, Some(a))
    }

    #[test]
    fn accept_header_cases() {
        assert_eq!(accept("*/*"), Ok(Format::Json));
        assert_eq!(
            accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            Ok(Format::Json)
        );
        assert_eq!(accept("TEXT/CSV"), Ok(Format::Csv));
        assert_eq!(accept("application/x-npy"), Ok(Format::Npy));
        assert_eq!(
            accept("application/*;q=0.2, text/csv;q=0.1"),
            Ok(Format::Json)
        );
        assert_eq!(accept("*/*;q=0.1, application/json;q=0"), Ok(Format::Csv));
        assert!(matches!(
            accept("image/png"),
            Err(FormatError::NotAcceptable(_))
        ));
        assert!(matches!(
            accept("text/csv;q=0"),
            Err(FormatError::NotAcceptable(_))
        ));
        assert_eq!(accept("garbage, text/csv"), Ok(Format::Csv));
    }

    #[test]
    fn format_parameter_wins() {
        assert_eq!(negotiate(Some("CSV"), Some("image/png")), Ok(Format::Csv));
        assert!(matches!(
            negotiate(Some("xml"), None),
            Err(FormatError::Unknown(_))
        ));
    }
}
