//! HTTP caching for `/data`, `/raw` and Zarr chunks: the validators (`ETag`, `Last-Modified`), the
//! `Cache-Control` policy, and the conditional requests they answer (`If-None-Match`,
//! `If-Modified-Since`, `If-Range`; RFC 9110 §13).
//!
//! # The ETag scheme
//!
//! Every tag starts with the identity of the open data file (one `fstat` per request, so a
//! file rewritten in place gets new tags at once), written in hex:
//! `"DEV-INO-LEN-MTIME_NS-HASH"`. `HASH` is a 64-bit FNV-1a over everything else the bytes
//! depend on: for `/raw` the dataset's region (offset and length, so two descriptors over one
//! file, or one name re-registered with a new descriptor, never share a tag); for `/data` also
//! the dtype, shape and order, the `slice=` text as sent, the format, `nonfinite=` and the
//! server version (so an encoder change cannot keep a stale tag). A replaced, rewritten or
//! touched file changes the identity, so the tag changes.
//!
//! Both tags are strong: an answer's bytes are a pure function of what is hashed. `/raw` needs
//! strong tags to serve `If-Range`.
//!
//! # Cache-Control
//!
//! `no-cache`: caches may store an answer but must revalidate it before each use, because a
//! data file can be replaced at any time and the server cannot tell caches when. Revalidation
//! is cheap here: a `304` is decided from the validators alone, without touching the map.
//! `public` is left out on purpose: with `--read-token` the answers are behind authorization,
//! and shared caches must not serve them to others.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, HeaderValue};

use crate::dataset::{Dataset, FileIdentity};

/// The `Cache-Control` of every `/data` and `/raw` answer; see the module docs.
pub(crate) const CACHE_CONTROL: &str = "no-cache";

/// The validators of one answer.
#[derive(Debug, Clone)]
pub(crate) struct Validators {
    /// The strong entity tag, quotes included.
    pub(crate) etag: String,
    /// The data file's modification time.
    pub(crate) modified: SystemTime,
    /// `modified` as an HTTP-date header value.
    last_modified: HeaderValue,
}

/// What the file identity alone determines: the tag up to its hash, and `Last-Modified`.
#[derive(Clone)]
struct IdentityPart {
    /// `"DEV-INO-LEN-MTIME_NS-` (opening quote and trailing dash included).
    tag_prefix: String,
    last_modified: HeaderValue,
}

impl IdentityPart {
    fn of(id: &FileIdentity) -> IdentityPart {
        let mtime_ns = id
            .mtime
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let date = httpdate::fmt_http_date(id.mtime);
        IdentityPart {
            tag_prefix: format!("\"{:x}-{:x}-{:x}-{mtime_ns:x}-", id.dev, id.ino, id.len),
            // An HTTP-date is visible ASCII.
            last_modified: HeaderValue::from_str(&date)
                .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT")),
        }
    }

    /// Runs `use_part` on the part for `id`, formatted once per identity and thread: every
    /// `/data` and `/raw` request needs it, and a file's identity changes rarely (README
    /// "Performance"). Lent rather than cloned: a clone would allocate.
    fn with_cached<T>(id: &FileIdentity, use_part: impl FnOnce(&IdentityPart) -> T) -> T {
        use std::cell::RefCell;
        /// Distinct identities kept per thread; past it the cache starts over.
        const KEEP: usize = 256;
        thread_local! {
            // Most recently used first: a server usually answers from a few files, so the
            // search ends at the first entry or so (cheaper than hashing the identity).
            static PARTS: RefCell<Vec<(FileIdentity, IdentityPart)>> = const { RefCell::new(Vec::new()) };
        }
        PARTS.with(|parts| {
            let mut parts = parts.borrow_mut();
            match parts.iter().position(|(seen, _)| seen == id) {
                Some(0) => {}
                Some(i) => parts[..=i].rotate_right(1),
                None => {
                    if parts.len() >= KEEP {
                        parts.clear();
                    }
                    parts.insert(0, (*id, IdentityPart::of(id)));
                }
            }
            use_part(&parts[0].1)
        })
    }
}

/// What the conditional headers of a request ask for, in RFC 9110 §13.2.2 order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The client's copy is current: `304` with the validators and no body.
    NotModified,
    /// Serve the answer; honour a `Range` header only when `use_range` (`If-Range` absent or
    /// matching).
    Serve {
        /// Whether a `Range` header applies.
        use_range: bool,
    },
}

impl Validators {
    /// The validators of `/raw` on `dataset`.
    pub(crate) fn raw(dataset: &Dataset) -> Validators {
        let mut hash = Fnv::new();
        hash.u64(dataset.offset).u64(dataset.nbytes);
        Validators::new(&dataset.identity(), hash)
    }

    /// The validators of one Zarr chunk of `dataset`: the chunk's run (`offset` from the
    /// array's start, `len` bytes of data) and its padded length.
    pub(crate) fn zarr_chunk(dataset: &Dataset, offset: u64, len: u64, padded: u64) -> Validators {
        let mut hash = Fnv::new();
        hash.bytes(b"zarr")
            .u64(dataset.offset)
            .u64(offset)
            .u64(len)
            .u64(padded);
        Validators::new(&dataset.identity(), hash)
    }

    /// The validators of a `/data` answer: `slice` as sent, the format's name and the
    /// `nonfinite=` spelling.
    pub(crate) fn data(
        dataset: &Dataset,
        slice: &str,
        format: &str,
        nonfinite: &str,
    ) -> Validators {
        let mut hash = Fnv::new();
        hash.bytes(b"data")
            .bytes(env!("CARGO_PKG_VERSION").as_bytes())
            .u64(dataset.offset)
            .u64(dataset.nbytes)
            .bytes(dataset.dtype.descr().as_bytes())
            .bytes(&[dataset.order as u8]);
        for &d in &dataset.shape {
            hash.u64(d);
        }
        hash.bytes(slice.as_bytes())
            .bytes(format.as_bytes())
            .bytes(nonfinite.as_bytes());
        Validators::new(&dataset.identity(), hash)
    }

    fn new(id: &FileIdentity, hash: Fnv) -> Validators {
        IdentityPart::with_cached(id, |part| {
            let mut etag = String::with_capacity(part.tag_prefix.len() + 17);
            etag.push_str(&part.tag_prefix);
            for shift in (0..16).rev() {
                let nibble = (hash.0 >> (4 * shift)) & 0xf;
                etag.push(char::from(b"0123456789abcdef"[nibble as usize]));
            }
            etag.push('"');
            Validators {
                etag,
                modified: id.mtime,
                last_modified: part.last_modified.clone(),
            }
        })
    }

    /// `ETag`, `Last-Modified` and `Cache-Control`: the headers of every answer, `304`
    /// included (RFC 9110 §15.4.5).
    pub(crate) fn headers(&self, head: &mut HeaderMap) {
        if let Ok(etag) = HeaderValue::from_str(&self.etag) {
            head.insert(header::ETAG, etag);
        }
        head.insert(header::LAST_MODIFIED, self.last_modified.clone());
        head.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        );
    }

    /// Evaluates the preconditions of a `GET`/`HEAD` with `request` headers, at time `now`.
    ///
    /// `If-None-Match` (weak comparison, `*` matches) decides when present; otherwise
    /// `If-Modified-Since` (a `Last-Modified` at or before it, to the second). `If-Range`
    /// matches a strong, equal tag, or a date equal to `Last-Modified` when that date is
    /// strong (at least a second before `now`, §8.8.2.2); a mismatch, a weak tag or an
    /// unparsable value means the full answer.
    pub(crate) fn evaluate(&self, request: &HeaderMap, now: SystemTime) -> Outcome {
        let inm: Vec<&str> = values(request, &header::IF_NONE_MATCH);
        if !inm.is_empty() {
            if inm.iter().any(|v| tag_list_matches(v, &self.etag, false)) {
                return Outcome::NotModified;
            }
        } else if let Some(since) = one_date(request, &header::IF_MODIFIED_SINCE) {
            if whole_seconds(self.modified) <= whole_seconds(since) {
                return Outcome::NotModified;
            }
        }
        let use_range = match request.get(header::IF_RANGE) {
            None => true,
            Some(v) => v.to_str().is_ok_and(|v| self.if_range_matches(v, now)),
        };
        Outcome::Serve { use_range }
    }

    fn if_range_matches(&self, value: &str, now: SystemTime) -> bool {
        let value = value.trim();
        // An entity tag starts with a DQUOTE or `W/` (§13.1.5).
        if value.starts_with('"') || value.starts_with("W/") {
            return value == self.etag;
        }
        let Ok(date) = httpdate::parse_http_date(value) else {
            return false;
        };
        let strong = now
            .duration_since(self.modified)
            .is_ok_and(|age| age >= Duration::from_secs(1));
        strong && whole_seconds(date) == whole_seconds(self.modified)
    }
}

/// Every value of `name` that is valid visible ASCII.
fn values<'a>(request: &'a HeaderMap, name: &header::HeaderName) -> Vec<&'a str> {
    request
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The date of a single-valued date header, `None` when absent or invalid (which RFC 9110
/// §13.1.3 says to ignore).
fn one_date(request: &HeaderMap, name: &header::HeaderName) -> Option<SystemTime> {
    let value = request.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(value.trim()).ok()
}

/// Seconds since the epoch, the resolution of an HTTP-date; negative times count as 0.
fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether the `If-None-Match`/`If-Match` list `list` names `etag` (`strong`: also reject
/// weak tags on either side). A malformed list matches nothing, so the full answer is sent.
pub(super) fn tag_list_matches(list: &str, etag: &str, strong: bool) -> bool {
    let (etag_weak, etag_opaque) = split_tag(etag);
    if list.trim() == "*" {
        return true;
    }
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let (weak, after) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let Some(after) = after.strip_prefix('"') else {
            return false;
        };
        let Some(close) = after.find('"') else {
            return false;
        };
        let opaque = &after[..close];
        if opaque == etag_opaque && !(strong && (weak || etag_weak)) {
            return true;
        }
        rest = &after[close + 1..];
    }
}

/// `(is_weak, opaque text without quotes)` of one of our own tags.
fn split_tag(etag: &str) -> (bool, &str) {
    let (weak, quoted) = match etag.strip_prefix("W/") {
        Some(q) => (true, q),
        None => (false, etag),
    };
    (weak, quoted.trim_matches('"'))
}

/// 64-bit FNV-1a: tiny, stable across builds and platforms (unlike `DefaultHasher`), and
/// enough to tell apart the selections of one dataset file; tags are not a security boundary.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) -> &mut Fnv {
        // Length first, so that ("ab", "c") and ("a", "bc") hash apart. Two plain loops: the
        // chained iterator they replace stood out in profiles of small requests.
        let len = (bytes.len() as u64).to_le_bytes();
        for &b in len.iter() {
            self.byte(b);
        }
        for &b in bytes {
            self.byte(b);
        }
        self
    }

    fn byte(&mut self, b: u8) {
        self.0 ^= u64::from(b);
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }

    fn u64(&mut self, n: u64) -> &mut Fnv {
        self.bytes(&n.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use axum::http::{header, HeaderMap, HeaderValue};

    use super::{tag_list_matches, Fnv, Outcome, Validators};
    use crate::dataset::FileIdentity;

    fn validators() -> Validators {
        let modified = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        Validators {
            etag: "\"1-2-3-4-00000000000000ff\"".to_owned(),
            modified,
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(modified)).unwrap(),
        }
    }

    /// The tag from the per-identity cache is the tag the scheme describes, for a first and
    /// a repeated identity and after the identity changes.
    #[test]
    fn cached_identity_parts_give_the_documented_tag() {
        let mut id = FileIdentity {
            dev: 0xfe00,
            ino: 0x51002a,
            len: 0x75300,
            mtime: UNIX_EPOCH + Duration::from_nanos(0x18ed_5730_e190_a0ca),
        };
        for round in 0..3 {
            if round == 2 {
                id.mtime += Duration::from_secs(1);
            }
            let mut hash = Fnv::new();
            hash.u64(round);
            let expected_hash = hash.0;
            let v = Validators::new(&id, hash);
            let ns = id.mtime.duration_since(UNIX_EPOCH).unwrap().as_nanos();
            assert_eq!(
                v.etag,
                format!("\"fe00-51002a-75300-{ns:x}-{expected_hash:016x}\"")
            );
            assert_eq!(v.last_modified, httpdate::fmt_http_date(id.mtime).as_str());
        }
    }

    fn request(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn tag_lists_compare_weakly_or_strongly() {
        let tag = "\"abc\"";
        assert!(tag_list_matches("\"abc\"", tag, true));
        assert!(tag_list_matches("W/\"abc\"", tag, false));
        assert!(!tag_list_matches("W/\"abc\"", tag, true));
        assert!(tag_list_matches("\"x\", \"abc\"", tag, false));
        assert!(tag_list_matches("\"x,y\",W/\"abc\"", tag, false));
        assert!(!tag_list_matches("\"x,abc\"", tag, false));
        assert!(tag_list_matches("*", tag, false));
        assert!(!tag_list_matches("abc", tag, false));
        assert!(!tag_list_matches("\"abc", tag, false));
        assert!(!tag_list_matches("", tag, false));
    }

    #[test]
    fn if_none_match_beats_if_modified_since() {
        let v = validators();
        let lm = httpdate::fmt_http_date(v.modified);
        let cases: &[(&[(header::HeaderName, &str)], Outcome)] = &[
            (&[], Outcome::Serve { use_range: true }),
            (&[(header::IF_NONE_MATCH, &v.etag)], Outcome::NotModified),
            (
                &[(header::IF_NONE_MATCH, "\"other\"")],
                Outcome::Serve { use_range: true },
            ),
            (
                &[
                    (header::IF_NONE_MATCH, "\"other\""),
                    (header::IF_NONE_MATCH, "*"),
                ],
                Outcome::NotModified,
            ),
            (&[(header::IF_MODIFIED_SINCE, &lm)], Outcome::NotModified),
            (
                &[(header::IF_MODIFIED_SINCE, "Thu, 01 Jan 2099 00:00:00 GMT")],
                Outcome::NotModified,
            ),
            (
                &[(header::IF_MODIFIED_SINCE, "Thu, 01 Jan 2015 00:00:00 GMT")],
                Outcome::Serve { use_range: true },
            ),
            (
                &[(header::IF_MODIFIED_SINCE, "yesterday")],
                Outcome::Serve { use_range: true },
            ),
            // A non-matching If-None-Match wins over a matching If-Modified-Since.
            (
                &[
                    (header::IF_NONE_MATCH, "\"other\""),
                    (header::IF_MODIFIED_SINCE, &lm),
                ],
                Outcome::Serve { use_range: true },
            ),
        ];
        for (headers, want) in cases {
            assert_eq!(v.evaluate(&request(headers), now()), *want, "{headers:?}");
        }
    }

    #[test]
    fn if_range_needs_a_strong_equal_tag_or_the_exact_date() {
        let v = validators();
        let lm = httpdate::fmt_http_date(v.modified);
        let weak = format!("W/{}", v.etag);
        let cases: &[(&str, bool)] = &[
            (&v.etag, true),
            (&weak, false),
            ("\"other\"", false),
            (&lm, true),
            ("Thu, 01 Jan 2099 00:00:00 GMT", false),
            ("garbage", false),
        ];
        for (value, want) in cases {
            let got = v.evaluate(&request(&[(header::IF_RANGE, value)]), now());
            assert_eq!(got, Outcome::Serve { use_range: *want }, "{value}");
        }
        // A Last-Modified within the last second is weak and never matches a date.
        let fresh = v.modified + Duration::from_millis(300);
        let got = v.evaluate(&request(&[(header::IF_RANGE, &lm)]), fresh);
        assert_eq!(got, Outcome::Serve { use_range: false });
    }

    #[test]
    fn headers_carry_all_three_validators() {
        let mut head = HeaderMap::new();
        validators().headers(&mut head);
        assert_eq!(head[header::ETAG], "\"1-2-3-4-00000000000000ff\"");
        assert_eq!(head[header::LAST_MODIFIED], "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(head[header::CACHE_CONTROL], "no-cache");
    }
}
