//! The descriptor of a registration made over HTTP (`POST /v1/datasets`), which is also what
//! the state directory keeps: its shape is checked here, its data file by the registry, on
//! the same path as a scanned file.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dataset::Region;

/// Largest `attrs` object, serialized.
pub const MAX_ATTRS_BYTES: usize = 16 * 1024;

/// Longest axis name in `dims`.
const MAX_DIM_LEN: usize = 64;

/// A registration: a raw file (`dtype`, `shape`, optional `order` and `offset`) or a `.npy`
/// file (none of those: its header says), with optional axis names and attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Dataset name, as the scan's rule.
    pub name: String,
    /// Data file, relative to the data directory.
    pub file: String,
    /// Raw files: element type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// Raw files: shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<u64>>,
    /// Raw files: `"C"` (default) or `"F"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Raw files: byte offset of the first element (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// One name per axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dims: Option<Vec<String>>,
    /// Free-form attributes, shown in META.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<Map<String, Value>>,
}

impl Registration {
    /// Parses and checks a request body or a saved file.
    ///
    /// # Errors
    /// What is wrong, for a `400 bad_registration`.
    pub fn parse(body: &[u8]) -> Result<Registration, String> {
        let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        // serde would also accept a struct spelled as a JSON array of its fields.
        if !value.is_object() {
            return Err("the body must be a JSON object".into());
        }
        let reg: Registration = serde_json::from_value(value).map_err(|e| e.to_string())?;
        reg.check()?;
        Ok(reg)
    }

    /// Whether the data file is a `.npy` file, whose header gives the region.
    pub fn is_npy(&self) -> bool {
        self.file.ends_with(".npy")
    }

    fn check(&self) -> Result<(), String> {
        if !crate::registry::is_valid_name(&self.name) {
            return Err(format!(
                "name {:?} is not [A-Za-z0-9_][A-Za-z0-9_.-]{{0,199}}",
                self.name.chars().take(200).collect::<String>()
            ));
        }
        if self.file.is_empty() || self.file.starts_with('/') || self.file.contains('\0') {
            return Err("file must be a path relative to the data directory".into());
        }
        let raw_fields = [
            self.dtype.is_some(),
            self.shape.is_some(),
            self.order.is_some(),
            self.offset.is_some(),
        ];
        if self.is_npy() {
            if raw_fields.iter().any(|&given| given) {
                return Err(
                    "a .npy file takes no dtype, shape, order or offset: its header \
                            gives them"
                        .into(),
                );
            }
        } else if self.dtype.is_none() || self.shape.is_none() {
            return Err("a raw file needs dtype and shape".into());
        }
        check_dims_attrs(self.dims.as_deref(), self.attrs.as_ref())
    }

    /// The region of a raw file; `None` for a `.npy` file.
    ///
    /// # Errors
    /// A bad dtype or order.
    pub fn region(&self) -> Result<Option<Region>, String> {
        match (&self.dtype, &self.shape) {
            (Some(dtype), Some(shape)) => crate::registry::raw_region(
                dtype,
                shape.clone(),
                self.order.as_deref().unwrap_or("C"),
                self.offset.unwrap_or(0),
            )
            .map(Some),
            _ => Ok(None),
        }
    }
}

/// The rules `dims` and `attrs` follow wherever they are given (registrations and
/// descriptors); the axis count is checked once the array's shape is known.
///
/// # Errors
/// A bad axis name or an `attrs` object over [`MAX_ATTRS_BYTES`].
pub fn check_dims_attrs(
    dims: Option<&[String]>,
    attrs: Option<&Map<String, Value>>,
) -> Result<(), String> {
    if let Some(dims) = dims {
        if let Some(bad) = dims.iter().find(|d| !is_valid_dim(d)) {
            return Err(format!(
                "dims name {:?} is not [A-Za-z_][A-Za-z0-9_]{{0,63}}",
                bad.chars().take(80).collect::<String>()
            ));
        }
    }
    if let Some(attrs) = attrs {
        let len = serde_json::to_vec(attrs).map_or(usize::MAX, |v| v.len());
        if len > MAX_ATTRS_BYTES {
            return Err(format!("attrs is {len} bytes, over {MAX_ATTRS_BYTES}"));
        }
    }
    Ok(())
}

fn is_valid_dim(dim: &str) -> bool {
    let bytes = dim.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_DIM_LEN
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_raw_and_npy_and_refuses_the_rest() {
        let raw = Registration::parse(br#"{"name":"a","file":"x.bin","dtype":"<f4","shape":[2]}"#)
            .unwrap();
        assert!(!raw.is_npy());
        assert_eq!(raw.region().unwrap().unwrap().shape, [2]);
        let npy = Registration::parse(br#"{"name":"b","file":"d/x.npy","dims":["t"]}"#).unwrap();
        assert!(npy.region().unwrap().is_none());
        for bad in [
            &br#"["a","x.bin","<f4",[2]]"#[..],
            br#"{"name":"a","file":"x.bin","dtype":"<f4","shape":[2],"extra":1}"#,
            br#"{"name":"a","file":"x.bin","dtype":"<f4","shape":[-1]}"#,
            br#"{"name":"a","file":"x.bin","dtype":"<f4","shape":"2"}"#,
            br#"{"name":"a","file":"x.bin","dtype":"<f4"}"#,
            br#"{"name":"a","file":"x.npy","dtype":"<f4"}"#,
            br#"{"name":"a/b","file":"x.npy"}"#,
            br#"{"name":"a","file":"/etc/passwd"}"#,
            br#"{"name":"a","file":"x.npy","dims":["1t"]}"#,
            br#"{"name":"a","file":"x.npy","attrs":[1]}"#,
            b"{",
        ] {
            assert!(
                Registration::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let big = format!(
            r#"{{"name":"a","file":"x.npy","attrs":{{"s":"{}"}}}}"#,
            "x".repeat(MAX_ATTRS_BYTES)
        );
        assert!(Registration::parse(big.as_bytes()).is_err());
        let r = Registration::parse(
            br#"{"name":"a","file":"x.bin","dtype":"<f4","shape":[1],"order":"Z"}"#,
        )
        .unwrap();
        assert!(r.region().is_err());
    }

    #[test]
    fn saved_form_reads_back() {
        let reg = Registration::parse(br#"{"name":"a","file":"x.npy","attrs":{"u":"K"}}"#).unwrap();
        let saved = serde_json::to_vec(&reg).unwrap();
        assert_eq!(Registration::parse(&saved).unwrap(), reg);
    }
}
