//! The explorer (README "Explorer"): a single page at `/` with its scripts, style sheet and
//! icon under `/explorer/`, all compiled into the binary from `assets/explorer/`.
//!
//! The page is plain HTML, CSS and JavaScript modules with no build step and nothing fetched
//! from elsewhere: it talks only to this server's `/v1` API, so the Content-Security-Policy
//! allows `'self'` and nothing else (no inline script or style, no frames, no forms posting
//! away). The page itself is open like `/openapi.yaml`; the read token, when one is
//! configured, guards the API calls the page makes, and the page asks for it.
//!
//! Assets change only with the binary, so each has a strong ETag hashed from its bytes and
//! `Cache-Control: no-cache`: a browser revalidates and gets a `304` until the server is
//! upgraded, and never runs a stale script against a newer API.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::Error;
use super::extract::Path;

/// One file of the page.
struct Asset {
    /// The name under `/explorer/` (`index.html` is served at `/`).
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The file `assets/explorer/NAME`, compiled in.
macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/explorer/", $name)),
        }
    };
}

/// Every file of the page; `index.html` first.
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("selection.js", JS),
    asset!("decode.js", JS),
    asset!("linechart.js", JS),
    asset!("heatmap.js", JS),
    asset!("histogram.js", JS),
    asset!("axes.js", JS),
    asset!("style.css", CSS),
    asset!("icon.svg", SVG),
];

/// `'self'` only; `style-src` has no `'unsafe-inline'`, which is why the HTML carries no
/// `style` attributes (scripts set styles through the CSSOM, which CSP does not govern).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The strong ETag of each asset, in [`ASSETS`] order: FNV-1a of the bytes, which is stable
/// across builds, so two servers of one version agree on it.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let hash = a.body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            HeaderValue::try_from(format!("\"{hash:016x}\"")).expect("hex is a valid header")
        })
        .collect()
});

/// `GET /`: the page.
pub(super) async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

/// `GET /explorer/{file}`: a script, the style sheet or the icon.
///
/// # Errors
/// [`Error::NoRoute`] (404) for a name that is not one of the page's files.
pub(super) async fn file(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, Error> {
    let index = ASSETS.iter().position(|a| a.name == name).ok_or_else(|| {
        Error::NoRoute(format!(
            "/explorer/{}",
            name.chars().take(100).collect::<String>()
        ))
    })?;
    Ok(serve(index, &headers))
}

fn serve(index: usize, request: &HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let mut head = HeaderMap::new();
    head.insert(header::ETAG, etag.clone());
    head.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    head.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    head.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    head.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // RFC 9110 §13.1.2: If-None-Match compares weakly; a match is 304 with the validators.
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|list| super::cache::tag_list_matches(list, etag.to_str().unwrap_or(""), false));
    if fresh {
        return (StatusCode::NOT_MODIFIED, head).into_response();
    }
    head.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    (head, asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_imports_is_served() {
        // The modules import each other by relative path ("./api.js"); a file named in an
        // import or in index.html but missing from ASSETS would be a 404 in the browser.
        for a in ASSETS
            .iter()
            .filter(|a| a.content_type == JS || a.content_type == HTML)
        {
            let text = std::str::from_utf8(a.body).unwrap();
            for (i, _) in text.match_indices(".js\"") {
                let start = text[..i].rfind(['/', '"']).unwrap() + 1;
                let name = format!("{}.js", &text[start..i]);
                assert!(
                    ASSETS.iter().any(|b| b.name == name),
                    "{} names {name}, which is not served",
                    a.name
                );
            }
        }
    }

    #[test]
    fn etags_are_strong_quoted_and_distinct() {
        for (i, tag) in ETAGS.iter().enumerate() {
            let tag = tag.to_str().unwrap();
            assert!(
                tag.starts_with('"') && tag.ends_with('"') && tag.len() == 18,
                "{tag}"
            );
            assert!(ETAGS[..i].iter().all(|t| t != tag), "{tag} twice");
        }
    }

    #[test]
    fn if_none_match_gives_304_without_a_body_type() {
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, ETAGS[0].clone());
        let response = serve(0, &request);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[header::ETAG], ETAGS[0]);
        let stale = HeaderMap::from_iter([(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"0000000000000000\""),
        )]);
        assert_eq!(serve(0, &stale).status(), StatusCode::OK);
    }
}
