//! Zarr metadata documents, format 3 and format 2, of one array and of the root group that
//! holds them all. Pure: built from an [`ArraySpec`] on each request, so they follow
//! registrations and rescans at once.
//!
//! The choices readers depend on:
//! - Bytes as stored: format 3 names the byte order in the `bytes` codec (`endian`, left out
//!   for one-byte types as zarr-python writes it), format 2 in the dtype (`>f4`). No
//!   compressor, no filters.
//! - Fortran order as stored: format 2 `"order": "F"`; format 3 a `transpose` codec with the
//!   reversed axis order before `bytes`, which lays a chunk out exactly as F order does.
//! - Fill value 0 (`false` for bool, `[0.0, 0.0]` for complex) in format 3. Format 2 says
//!   `null`: xarray masks every value equal to a format 2 fill value as missing, which would
//!   turn real zeros into NaN.
//! - Dimension names: a dataset's `dims`, else `NAME_dim_k` with every `.` of `NAME` made
//!   `_` (unique across datasets, so one xarray Dataset holds all of them); format 3
//!   `dimension_names`, format 2 the `_ARRAY_DIMENSIONS` attribute xarray reads.

use serde_json::{json, Map, Value};

use super::grid::Grid;
use crate::dataset::Order;
use crate::dtype::{ByteOrder, DType, Scalar};

/// What the metadata of one array is made of.
#[derive(Debug, Clone)]
pub struct ArraySpec<'a> {
    /// The dataset name, which is the array's name in the root group.
    pub name: &'a str,
    /// Stored element type.
    pub dtype: DType,
    /// Stored memory order.
    pub order: Order,
    /// The chunk grid (it holds the shape).
    pub grid: Grid,
    /// Axis names, when the dataset has them.
    pub dims: Option<&'a [String]>,
    /// User attributes, when the dataset has them.
    pub attrs: Option<&'a Map<String, Value>>,
}

impl ArraySpec<'_> {
    /// One name per axis: `dims`, or the defaults described in the module docs.
    pub fn dimension_names(&self) -> Vec<String> {
        match self.dims {
            Some(dims) => dims.to_vec(),
            None => {
                let stem = self.name.replace('.', "_");
                (0..self.grid.shape.len())
                    .map(|k| format!("{stem}_dim_{k}"))
                    .collect()
            }
        }
    }

    /// The format 3 `zarr.json` of the array.
    pub fn v3(&self) -> Value {
        let mut codecs = Vec::new();
        if self.order == Order::F && self.grid.shape.len() > 1 {
            let reversed: Vec<usize> = (0..self.grid.shape.len()).rev().collect();
            codecs.push(json!({"name": "transpose", "configuration": {"order": reversed}}));
        }
        codecs.push(if self.dtype.itemsize() == 1 {
            json!({"name": "bytes"})
        } else {
            let endian = match self.dtype.order {
                ByteOrder::Little => "little",
                ByteOrder::Big => "big",
            };
            json!({"name": "bytes", "configuration": {"endian": endian}})
        });
        json!({
            "zarr_format": 3,
            "node_type": "array",
            "shape": self.grid.shape,
            "data_type": self.dtype.scalar.numpy_name(),
            "chunk_grid": {
                "name": "regular",
                "configuration": {"chunk_shape": self.grid.chunk_shape},
            },
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": fill_value(self.dtype.scalar),
            "codecs": codecs,
            "attributes": self.attrs.cloned().unwrap_or_default(),
            "dimension_names": self.dimension_names(),
            "storage_transformers": [],
        })
    }

    /// The format 2 `.zarray` of the array.
    pub fn zarray(&self) -> Value {
        json!({
            "zarr_format": 2,
            "shape": self.grid.shape,
            "chunks": self.grid.chunk_shape,
            "dtype": self.dtype.descr(),
            "compressor": null,
            "fill_value": null,
            "order": match self.order { Order::C => "C", Order::F => "F" },
            "filters": null,
            "dimension_separator": ".",
        })
    }

    /// The format 2 `.zattrs` of the array: its attributes and `_ARRAY_DIMENSIONS`.
    pub fn zattrs(&self) -> Value {
        let mut attrs = self.attrs.cloned().unwrap_or_default();
        attrs.insert("_ARRAY_DIMENSIONS".into(), json!(self.dimension_names()));
        Value::Object(attrs)
    }
}

/// The format 3 `zarr.json` of the root group, with every array's metadata inline as
/// zarr-python's consolidated metadata.
pub fn root_v3<'a>(arrays: impl IntoIterator<Item = &'a ArraySpec<'a>>) -> Value {
    let metadata: Map<String, Value> = arrays
        .into_iter()
        .map(|a| (a.name.to_owned(), a.v3()))
        .collect();
    json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {},
        "consolidated_metadata": {
            "kind": "inline",
            "must_understand": false,
            "metadata": metadata,
        },
    })
}

/// The format 2 `.zgroup` of the root group.
pub fn zgroup() -> Value {
    json!({"zarr_format": 2})
}

/// The format 2 `.zmetadata` of the root group: every array's `.zarray` and `.zattrs`.
pub fn zmetadata<'a>(arrays: impl IntoIterator<Item = &'a ArraySpec<'a>>) -> Value {
    let mut metadata = Map::new();
    metadata.insert(".zgroup".into(), zgroup());
    metadata.insert(".zattrs".into(), json!({}));
    for a in arrays {
        metadata.insert(format!("{}/.zarray", a.name), a.zarray());
        metadata.insert(format!("{}/.zattrs", a.name), a.zattrs());
    }
    json!({"zarr_consolidated_format": 1, "metadata": metadata})
}

/// The format 3 fill value: the zero of the type.
fn fill_value(scalar: Scalar) -> Value {
    match scalar {
        Scalar::Bool => json!(false),
        Scalar::F16 | Scalar::F32 | Scalar::F64 => json!(0.0),
        Scalar::C64 | Scalar::C128 => json!([0.0, 0.0]),
        _ => json!(0),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::{root_v3, zmetadata, ArraySpec};
    use crate::dataset::Order;
    use crate::dtype::DType;
    use crate::zarr::grid::Grid;

    fn spec<'a>(name: &'a str, dtype: &str, shape: &[u64], order: Order) -> ArraySpec<'a> {
        let dtype = DType::parse(dtype).unwrap();
        ArraySpec {
            name,
            dtype,
            order,
            grid: Grid::new(shape, dtype.itemsize() as u64, order, 4 << 20),
            dims: None,
            attrs: None,
        }
    }

    #[test]
    fn v3_of_a_big_endian_fortran_array() {
        let a = spec("sub.t", ">f4", &[3, 4, 5], Order::F);
        assert_eq!(
            a.v3(),
            json!({
                "zarr_format": 3,
                "node_type": "array",
                "shape": [3, 4, 5],
                "data_type": "float32",
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [3, 4, 5]}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": 0.0,
                "codecs": [
                    {"name": "transpose", "configuration": {"order": [2, 1, 0]}},
                    {"name": "bytes", "configuration": {"endian": "big"}},
                ],
                "attributes": {},
                "dimension_names": ["sub_t_dim_0", "sub_t_dim_1", "sub_t_dim_2"],
                "storage_transformers": [],
            })
        );
    }

    #[test]
    fn v2_of_a_c_array_with_dims_and_attrs() {
        let dims = vec!["time".to_owned(), "x".to_owned()];
        let mut attrs = Map::new();
        attrs.insert("units".into(), json!("K"));
        let mut a = spec("t", "<i2", &[10, 3], Order::C);
        a.dims = Some(&dims);
        a.attrs = Some(&attrs);
        assert_eq!(
            a.zarray(),
            json!({
                "zarr_format": 2, "shape": [10, 3], "chunks": [10, 3], "dtype": "<i2",
                "compressor": null, "fill_value": null, "order": "C", "filters": null,
                "dimension_separator": ".",
            })
        );
        assert_eq!(
            a.zattrs(),
            json!({"units": "K", "_ARRAY_DIMENSIONS": ["time", "x"]})
        );
        assert_eq!(a.v3()["attributes"], json!({"units": "K"}));
        assert_eq!(a.v3()["dimension_names"], json!(["time", "x"]));
    }

    #[test]
    fn every_kind_has_its_type_and_zero() {
        for (descr, data_type, fill) in [
            ("|b1", "bool", json!(false)),
            ("|u1", "uint8", json!(0)),
            ("<i8", "int64", json!(0)),
            ("<f2", "float16", json!(0.0)),
            (">c16", "complex128", json!([0.0, 0.0])),
        ] {
            let v3 = spec("a", descr, &[2], Order::C).v3();
            assert_eq!(v3["data_type"], data_type);
            assert_eq!(v3["fill_value"], fill);
        }
        // One-byte types carry no byte order, as zarr-python writes them.
        let v3 = spec("a", "|u1", &[2], Order::C).v3();
        assert_eq!(v3["codecs"], json!([{"name": "bytes"}]));
        // 0-d arrays: empty shape and chunk shape, no transpose.
        let v3 = spec("a", "<f8", &[], Order::C).v3();
        assert_eq!(v3["shape"], json!([]));
        assert_eq!(v3["chunk_grid"]["configuration"]["chunk_shape"], json!([]));
    }

    #[test]
    fn root_documents_hold_every_array() {
        let arrays = [
            spec("a", "<f4", &[2], Order::C),
            spec("b.c", "<u2", &[2, 2], Order::F),
        ];
        let v3 = root_v3(&arrays);
        assert_eq!(v3["node_type"], "group");
        assert_eq!(v3["consolidated_metadata"]["kind"], "inline");
        assert_eq!(
            v3["consolidated_metadata"]["metadata"]["b.c"],
            arrays[1].v3()
        );
        let v2 = zmetadata(&arrays);
        assert_eq!(v2["zarr_consolidated_format"], 1);
        assert_eq!(v2["metadata"]["a/.zarray"], arrays[0].zarray());
        assert_eq!(v2["metadata"]["b.c/.zattrs"], arrays[1].zattrs());
        assert_eq!(v2["metadata"][".zgroup"], json!({"zarr_format": 2}));
    }
}
