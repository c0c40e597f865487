//! Bearer tokens (README "Deploying"): a read token for every `/v1` and `/zarr` read and an
//! admin token for every write (`POST`, `DELETE`) and `/v1/admin/*`.
//!
//! Tokens come from flags, environment variables or files (Docker and Kubernetes secrets).
//! They are compared in constant time (`subtle`), so the time of a refusal says nothing about
//! how much of a guess was right, and they never appear in a log line or an error body.
//!
//! Statuses follow RFC 6750 §3.1: no token is `401` with `WWW-Authenticate: Bearer`; a wrong
//! token is `401` with `error="invalid_token"`; a right read token on a write is `403`
//! (`insufficient_scope`); a write while no admin token is configured is `403`: registration
//! over HTTP is off.

use std::path::Path;

use axum::http::{header, HeaderMap, Method};
use subtle::ConstantTimeEq;

use super::error::Error;
use crate::config::Config;

/// The configured tokens.
#[derive(Clone, Default)]
pub struct Tokens {
    read: Option<Box<[u8]>>,
    admin: Option<Box<[u8]>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values: a `{:?}` of the state must not leak them into a log.
        f.debug_struct("Tokens")
            .field("read", &self.read.is_some())
            .field("admin", &self.admin.is_some())
            .finish()
    }
}

/// Why the configured tokens cannot be used; the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A token file could not be read.
    #[error("{which} token file {path}: {source}")]
    File {
        /// `read` or `admin`.
        which: &'static str,
        /// The file as configured.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A token is empty, spans lines or holds characters a header cannot carry.
    #[error("{which} token {reason}")]
    Bad {
        /// `read` or `admin`.
        which: &'static str,
        /// What is wrong with it (never the token).
        reason: &'static str,
    },
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Nothing: probes, `/metrics`, `/openapi.yaml`, the explorer page, preflights.
    Open,
    /// The read token, when one is configured (the admin token also serves).
    Read,
    /// The admin token.
    Admin,
}

impl Access {
    /// What a request for `path` with `method` needs. Only the admin routes need the admin
    /// token; any other method on a read route needs the read token and then gets its 405, so
    /// a wrong method is told as such, not as a missing permission.
    pub(super) fn of(method: &Method, path: &str) -> Access {
        let guarded = path == "/v1" || path.starts_with("/v1/") || path.starts_with("/zarr");
        if !guarded || method == Method::OPTIONS {
            return Access::Open;
        }
        let one_dataset = path
            .strip_prefix("/v1/datasets/")
            .is_some_and(|name| !name.is_empty() && !name.contains('/'));
        let admin = path.starts_with("/v1/admin")
            || (method == Method::POST && path == "/v1/datasets")
            || (method == Method::DELETE && one_dataset);
        if admin {
            Access::Admin
        } else {
            Access::Read
        }
    }
}

impl Tokens {
    /// The tokens `config` names, read from their files where given.
    ///
    /// # Errors
    /// [`TokenError`] for an unreadable file or a token that is empty, spans several lines or
    /// holds spaces or control characters.
    pub fn from_config(config: &Config) -> Result<Tokens, TokenError> {
        let read = resolve(
            "read",
            config.read_token.as_deref(),
            config.read_token_file.as_deref(),
        )?;
        let admin = resolve(
            "admin",
            config.admin_token.as_deref(),
            config.admin_token_file.as_deref(),
        )?;
        Ok(Tokens { read, admin })
    }

    /// Whether `headers` grant `access`.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] (401) for a missing or wrong token, [`Error::Forbidden`] (403)
    /// for a read token on a write or a write while no admin token is configured.
    pub(super) fn check(&self, access: Access, headers: &HeaderMap) -> Result<(), Error> {
        let needed =
            match access {
                Access::Open => return Ok(()),
                Access::Read => match &self.read {
                    None => return Ok(()),
                    Some(read) => read,
                },
                Access::Admin => match &self.admin {
                    None => return Err(Error::Forbidden(
                        "registration and admin calls are disabled: no admin token is configured",
                    )),
                    Some(admin) => admin,
                },
            };
        let Some(given) = bearer(headers) else {
            return Err(Error::Unauthorized { invalid: false });
        };
        if bool::from(given.ct_eq(needed)) {
            return Ok(());
        }
        let is_admin = self
            .admin
            .as_deref()
            .is_some_and(|admin| bool::from(given.ct_eq(admin)));
        let is_read = self
            .read
            .as_deref()
            .is_some_and(|read| bool::from(given.ct_eq(read)));
        match access {
            // The admin token can do everything the read token can.
            Access::Read if is_admin => Ok(()),
            Access::Admin if is_read => Err(Error::Forbidden("this call needs the admin token")),
            _ => Err(Error::Unauthorized { invalid: true }),
        }
    }
}

/// The credentials of `Authorization: Bearer ...` (the scheme is case-insensitive, RFC 9110
/// §11.1), if present.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(rest.trim_ascii())
}

fn resolve(
    which: &'static str,
    value: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<Box<[u8]>>, TokenError> {
    let text = match (value, file) {
        (Some(value), _) => value.to_owned(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::File {
                which,
                path: path.display().to_string(),
                source,
            })?;
            // One line; the newline editors and `echo` add is not part of the token.
            let text = text.strip_suffix('\n').unwrap_or(&text);
            text.strip_suffix('\r').unwrap_or(text).to_owned()
        }
        (None, None) => return Ok(None),
    };
    validate(which, &text)?;
    Ok(Some(text.into_bytes().into_boxed_slice()))
}

/// A token travels in a header, as `token68` (RFC 6750 §2.1) or at least as visible ASCII.
fn validate(which: &'static str, token: &str) -> Result<(), TokenError> {
    let bad = |reason| Err(TokenError::Bad { which, reason });
    if token.is_empty() {
        return bad("is empty");
    }
    if token.contains(['\n', '\r']) {
        return bad("spans several lines");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("holds spaces, control or non-ASCII characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    fn tokens(read: Option<&str>, admin: Option<&str>) -> Tokens {
        let mut config = Config::for_data_dir(".");
        config.read_token = read.map(str::to_owned);
        config.admin_token = admin.map(str::to_owned);
        Tokens::from_config(&config).unwrap()
    }

    #[test]
    fn routes_need_what_the_readme_says() {
        let get = Method::GET;
        assert_eq!(Access::of(&get, "/healthz"), Access::Open);
        assert_eq!(Access::of(&get, "/metrics"), Access::Open);
        assert_eq!(Access::of(&get, "/"), Access::Open);
        assert_eq!(Access::of(&get, "/v1x"), Access::Open);
        assert_eq!(Access::of(&get, "/v1/datasets"), Access::Read);
        assert_eq!(Access::of(&Method::HEAD, "/zarr/a/.zarray"), Access::Read);
        assert_eq!(Access::of(&Method::POST, "/v1/datasets"), Access::Admin);
        assert_eq!(Access::of(&Method::DELETE, "/v1/datasets/a"), Access::Admin);
        assert_eq!(Access::of(&get, "/v1/admin/rescan"), Access::Admin);
        assert_eq!(Access::of(&Method::OPTIONS, "/v1/datasets"), Access::Open);
    }

    #[test]
    fn checks_tokens_by_scope() {
        let t = tokens(Some("r3ad"), Some("adm1n"));
        let none = HeaderMap::new();
        assert!(matches!(
            t.check(Access::Read, &none),
            Err(Error::Unauthorized { invalid: false })
        ));
        assert!(t.check(Access::Read, &headers("Bearer r3ad")).is_ok());
        assert!(t.check(Access::Read, &headers("bearer  r3ad ")).is_ok());
        assert!(t.check(Access::Read, &headers("Bearer adm1n")).is_ok());
        assert!(matches!(
            t.check(Access::Read, &headers("Bearer r3a")),
            Err(Error::Unauthorized { invalid: true })
        ));
        assert!(matches!(
            t.check(Access::Read, &headers("Basic r3ad")),
            Err(Error::Unauthorized { invalid: false })
        ));
        assert!(matches!(
            t.check(Access::Admin, &headers("Bearer r3ad")),
            Err(Error::Forbidden(_))
        ));
        assert!(t.check(Access::Admin, &headers("Bearer adm1n")).is_ok());

        let open = tokens(None, None);
        assert!(open.check(Access::Read, &none).is_ok());
        assert!(matches!(
            open.check(Access::Admin, &headers("Bearer x")),
            Err(Error::Forbidden(_))
        ));
    }

    #[test]
    fn refuses_unusable_tokens() {
        for bad in ["", "a\nb", "a b", "tok\u{e9}n", "a\u{7}"] {
            assert!(validate("read", bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t");
        std::fs::write(&file, "s3cret\n").unwrap();
        let got = resolve("read", None, Some(&file)).unwrap().unwrap();
        assert_eq!(&*got, b"s3cret");
        std::fs::write(&file, "\n").unwrap();
        assert!(resolve("read", None, Some(&file)).is_err());
        std::fs::write(&file, "one\ntwo\n").unwrap();
        assert!(resolve("read", None, Some(&file)).is_err());
        assert!(resolve("read", None, Some(&dir.path().join("missing"))).is_err());
    }
}
