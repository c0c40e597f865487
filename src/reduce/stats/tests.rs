//! Unit tests of `stats`: exactness at integer extremes, NaN policies, empty selections, ddof,
//! axes, against naive references.

use std::sync::atomic::AtomicBool;

use super::*;
use crate::reduce::tests::dataset;
use crate::selection::Selection;

fn run(dtype: &str, shape: &[u64], data: &[u8], slice: &str, query: [Option<&str>; 4]) -> String {
    run_threads(dtype, shape, data, slice, query, 1)
}

fn run_threads(
    dtype: &str,
    shape: &[u64],
    data: &[u8],
    slice: &str,
    query: [Option<&str>; 4],
    threads: usize,
) -> String {
    run_styled(dtype, shape, data, slice, query, threads, Style::JsonNull)
}

fn run_styled(
    dtype: &str,
    shape: &[u64],
    data: &[u8],
    slice: &str,
    [ops, axis, ddof, nan]: [Option<&str>; 4],
    threads: usize,
    style: Style,
) -> String {
    let (_dir, registry) = dataset(dtype, shape, data);
    let ds = registry.get("a").unwrap();
    let sel = Selection::parse(slice, &ds.shape).unwrap();
    let params = StatsParams::parse(ops, axis, ddof, nan, sel.out_shape().len()).unwrap();
    let cancel = AtomicBool::new(false);
    let src = Source {
        dataset: &ds,
        selection: &sel,
        cancel: &cancel,
    };
    let r = stats(&src, &params, threads).unwrap();
    String::from_utf8(r.to_json(style)).unwrap()
}

fn f64s(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn integer_sums_are_exact_at_the_extremes() {
    let n = 3000u64; // several blocks
    let data: Vec<u8> = (0..n).flat_map(|_| u64::MAX.to_le_bytes()).collect();
    let out = run(
        "<u8",
        &[n],
        &data,
        "",
        [Some("sum,min,max"), None, None, None],
    );
    let sum = i128::from(u64::MAX) * i128::from(n);
    assert_eq!(
        out,
        format!("{{\"sum\":{sum},\"min\":{m},\"max\":{m}}}", m = u64::MAX)
    );

    let data: Vec<u8> = (0..n).flat_map(|_| i64::MIN.to_le_bytes()).collect();
    let out = run("<i8", &[n], &data, "", [Some("sum"), None, None, None]);
    assert_eq!(
        out,
        format!("{{\"sum\":{}}}", i128::from(i64::MIN) * i128::from(n))
    );

    // Big-endian, mixed signs: exact cancellation.
    let data: Vec<u8> = (0..n)
        .flat_map(|i| if i % 2 == 0 { i64::MAX } else { -i64::MAX }.to_be_bytes())
        .collect();
    let out = run(
        ">i8",
        &[n],
        &data,
        "",
        [Some("sum,count"), None, None, None],
    );
    assert_eq!(out, "{\"sum\":0,\"count\":3000}");
}

#[test]
fn bools_sum_as_integers_and_min_max_as_bools() {
    let out = run(
        "|b1",
        &[4],
        &[0, 1, 2, 0],
        "",
        [Some("sum,min,max,mean"), None, None, None],
    );
    assert_eq!(out, "{\"sum\":2,\"min\":false,\"max\":true,\"mean\":0.5}");
}

#[test]
fn nan_policies() {
    let data = f64s(&[1.0, f64::NAN, 3.0]);
    let all = Some("count,sum,mean,min,max,var");
    let out = run("<f8", &[3], &data, "", [all, None, None, None]);
    assert_eq!(
        out,
        "{\"count\":3,\"sum\":null,\"mean\":null,\"min\":null,\"max\":null,\"var\":null}"
    );
    let out = run("<f8", &[3], &data, "", [all, None, None, Some("ignore")]);
    assert_eq!(
        out,
        "{\"count\":2,\"sum\":4.0,\"mean\":2.0,\"min\":1.0,\"max\":3.0,\"var\":1.0}"
    );
    // A NaN alone (0-d float16), propagated: NaN for every float result, as in NumPy.
    let h = half::f16::NAN.to_le_bytes();
    let q = [Some("mean,min,max,std"), None, None, None];
    assert_eq!(
        run_styled("<f2", &[], &h, "", q, 1, Style::JsonString),
        "{\"mean\":\"NaN\",\"min\":\"NaN\",\"max\":\"NaN\",\"std\":\"NaN\"}"
    );
    // All NaN, ignored: NumPy warns and returns nan, so null; the sum of nothing is 0.
    let data = f64s(&[f64::NAN; 2]);
    let out = run("<f8", &[2], &data, "", [all, None, None, Some("ignore")]);
    assert_eq!(
        out,
        "{\"count\":0,\"sum\":0.0,\"mean\":null,\"min\":null,\"max\":null,\"var\":null}"
    );
}

#[test]
fn empty_selections_and_ddof() {
    let data = f64s(&[1.0, 2.0, 4.0]);
    let out = run("<f8", &[3], &data, "1:1", [None, None, None, None]);
    assert_eq!(
        out,
        "{\"count\":0,\"sum\":0.0,\"mean\":null,\"min\":null,\"max\":null,\"std\":null,\"var\":null}"
    );
    let out = run("<i4", &[0], &[], "", [Some("count,sum"), None, None, None]);
    assert_eq!(out, "{\"count\":0,\"sum\":0}");
    let out = run("<f8", &[3], &data, "", [Some("var"), None, Some("1"), None]);
    assert_eq!(out, "{\"var\":2.3333333333333335}");
    // ddof >= n: NumPy divides by zero (inf or nan with a warning).
    let out = run(
        "<f8",
        &[3],
        &data,
        "",
        [Some("var,std"), None, Some("3"), None],
    );
    assert_eq!(out, "{\"var\":null,\"std\":null}");
}

#[test]
fn variance_of_large_mean_small_spread() {
    // 1e9 + {0, 1, 2, 3} repeated: var = 1.25 exactly; a naive sum-of-squares loses it all.
    let v: Vec<f64> = (0..100_000).map(|i| 1e9 + f64::from(i % 4)).collect();
    let out = run(
        "<f8",
        &[100_000],
        &f64s(&v),
        "",
        [Some("var,mean"), None, None, None],
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let var = json["var"].as_f64().unwrap();
    assert!((var - 1.25).abs() < 1.25e-9, "{var}");
    assert_eq!(json["mean"].as_f64().unwrap(), 1e9 + 1.5);
}

#[test]
fn float32_sum_beats_float32_accumulation() {
    // 2^24 + many ones: a float32 running sum stagnates; f64 lanes do not.
    let n = 1_200_000u64;
    let data: Vec<u8> = (0..n).flat_map(|_| 1.0f32.to_le_bytes()).collect();
    let out = run("<f4", &[n], &data, "", [Some("sum"), None, None, None]);
    assert_eq!(out, format!("{{\"sum\":{n}.0}}"));
}

#[test]
fn threads_give_the_same_answer() {
    let n = 3u64 << 20;
    let data: Vec<u8> = (0..n)
        .flat_map(|i| ((i % 1000) as i32 - 500).to_le_bytes())
        .collect();
    let q = [None, None, None, None];
    let one = run_threads("<i4", &[n], &data, "", q, 1);
    let two = run_threads("<i4", &[n], &data, "", q, 2);
    let a: serde_json::Value = serde_json::from_str(&one).unwrap();
    let b: serde_json::Value = serde_json::from_str(&two).unwrap();
    assert_eq!(a["sum"], b["sum"]);
    assert_eq!(a["min"], b["min"]);
    let (va, vb) = (a["var"].as_f64().unwrap(), b["var"].as_f64().unwrap());
    assert!((va - vb).abs() <= 1e-12 * va);
}

#[test]
fn axes_match_a_naive_reduction() {
    // 3x4x5 of 0..60 as i2; reduce each axis and compare with a direct computation.
    let shape = [3u64, 4, 5];
    let data: Vec<u8> = (0i16..60).flat_map(|v| v.to_le_bytes()).collect();
    let value = |i: u64, j: u64, k: u64| (i * 20 + j * 5 + k) as i64;
    for axis in 0..3usize {
        let out = run(
            "<i2",
            &shape,
            &data,
            "",
            [Some("sum,max"), Some(&axis.to_string()), None, None],
        );
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mut reduced = shape.to_vec();
        reduced.remove(axis);
        for a in 0..reduced[0] {
            for b in 0..reduced[1] {
                let (mut sum, mut max) = (0, i64::MIN);
                for t in 0..shape[axis] {
                    let v = match axis {
                        0 => value(t, a, b),
                        1 => value(a, t, b),
                        _ => value(a, b, t),
                    };
                    sum += v;
                    max = max.max(v);
                }
                assert_eq!(json["sum"][a as usize][b as usize], sum, "axis {axis}");
                assert_eq!(json["max"][a as usize][b as usize], max, "axis {axis}");
            }
        }
    }
    // Negative axis, and a strided selection along it.
    let out = run(
        "<i2",
        &shape,
        &data,
        "::2,1,::-2",
        [Some("count,sum"), Some("-1"), None, None],
    );
    assert_eq!(out, "{\"count\":[3,3],\"sum\":[21,141]}");
}

#[test]
fn axis_variance_matches_whole() {
    let v: Vec<f64> = (0..600)
        .map(|i| (f64::from(i) * 0.37).sin() * 1e3 + 1e6)
        .collect();
    let data = f64s(&v);
    let col0 = run(
        "<f8",
        &[200, 3],
        &data,
        ":,0",
        [Some("var,std,min"), None, Some("1"), None],
    );
    let axis0 = run(
        "<f8",
        &[200, 3],
        &data,
        "",
        [Some("var,std,min"), Some("0"), Some("1"), None],
    );
    let a: serde_json::Value = serde_json::from_str(&col0).unwrap();
    let b: serde_json::Value = serde_json::from_str(&axis0).unwrap();
    for op in ["var", "std"] {
        let (x, y) = (a[op].as_f64().unwrap(), b[op][0].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-10 * x, "{op}: {x} vs {y}");
    }
    assert_eq!(a["min"], b["min"][0]);
}

#[test]
fn infinities_make_the_variance_nan_as_numpy_does() {
    // NumPy: the mean is inf (or nan for +inf and -inf), a deviation inf - inf is nan.
    let q = |nan| [Some("sum,mean,min,max,std,var"), None, None, nan];
    let strings = |dtype, shape: &[u64], data: &[u8], query| {
        run_styled(dtype, shape, data, "", query, 1, Style::JsonString)
    };
    let data = f64s(&[1.0, f64::INFINITY, 3.0]);
    assert_eq!(
        strings("<f8", &[3], &data, q(None)),
        "{\"sum\":\"Infinity\",\"mean\":\"Infinity\",\"min\":1.0,\"max\":\"Infinity\",\
         \"std\":\"NaN\",\"var\":\"NaN\"}"
    );
    // float16 +inf, -inf, finite values and a NaN, NaN ignored: whole and along axis 0.
    let h: Vec<u8> = [f32::INFINITY, 2.0, f32::NEG_INFINITY, f32::NAN, 0.5, 1.0]
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    assert_eq!(
        strings("<f2", &[6], &h, q(Some("ignore"))),
        "{\"sum\":\"NaN\",\"mean\":\"NaN\",\"min\":\"-Infinity\",\"max\":\"Infinity\",\
         \"std\":\"NaN\",\"var\":\"NaN\"}"
    );
    let axis0 = |dtype, data: &[u8]| {
        let query = [Some("std,var"), Some("0"), None, Some("ignore")];
        strings(dtype, &[3, 2], data, query)
    };
    // Columns: [inf, -inf, 0.5] and [2, nan, 1].
    let want = "{\"std\":[\"NaN\",0.5],\"var\":[\"NaN\",0.25]}";
    assert_eq!(axis0("<f2", &h), want);
    let be: Vec<u8> = [f32::INFINITY, 2.0, f32::NEG_INFINITY, f32::NAN, 0.5, 1.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    assert_eq!(axis0(">f4", &be), want);
    assert_eq!(
        strings(">f4", &[6], &be, q(Some("ignore"))),
        "{\"sum\":\"NaN\",\"mean\":\"NaN\",\"min\":\"-Infinity\",\"max\":\"Infinity\",\
         \"std\":\"NaN\",\"var\":\"NaN\"}"
    );
}

#[test]
fn axes_split_across_threads_give_the_same_answer() {
    // Over the split threshold; shapes whose split axis (the first longer than one) is the
    // reduced one or another one.
    let n = 1_200_000u64;
    let v: Vec<f64> = (0..n)
        .map(|i| (i as f64 * 0.37).sin() * 10.0 + if i % 1001 == 0 { f64::NAN } else { 1e3 })
        .collect();
    let data = f64s(&v);
    let shapes: [&[u64]; 3] = [&[1200, 1000], &[1, 2, 600_000], &[2, 600, 1000]];
    for shape in shapes {
        let (_dir, registry) = dataset("<f8", shape, &data);
        let ds = registry.get("a").unwrap();
        let sel = Selection::parse("", &ds.shape).unwrap();
        let cancel = AtomicBool::new(false);
        let src = Source {
            dataset: &ds,
            selection: &sel,
            cancel: &cancel,
        };
        // Reducing an axis of one leaves more cells than an answer may hold.
        for axis in (0..shape.len()).filter(|&k| shape[k] > 1) {
            for (ops, nan) in [("sum", "propagate"), ("count,sum,min,var", "ignore")] {
                let axis = axis.to_string();
                let p = StatsParams::parse(Some(ops), Some(&axis), None, Some(nan), shape.len());
                let p = p.unwrap();
                let one = stats(&src, &p, 1).unwrap();
                let two = stats(&src, &p, 2).unwrap();
                assert_eq!(one.shape, two.shape);
                for ((op, a), b) in one.ops.iter().zip(&one.values).zip(&two.values) {
                    let label = format!("{shape:?} axis {axis} {nan} {op:?}");
                    assert_eq!(a.len(), b.len(), "{label}");
                    for (x, y) in a.iter().zip(b) {
                        match (x, y) {
                            // Cells of two close values have a tiny variance with the rounding
                            // error of their 1e3 mean.
                            (Num::F64(x), Num::F64(y)) if x.is_finite() => {
                                assert!((x - y).abs() <= 1e-9 * (x.abs() + 1.0), "{label}")
                            }
                            (Num::F64(x), Num::F64(y)) => assert!(x.is_nan() && y.is_nan()),
                            (x, y) => assert_eq!(x, y, "{label}"),
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn sums_along_contiguous_rows_match_a_naive_sum() {
    // Row groups of four and a remainder, tiles of the row and a partial one, a NaN, every
    // float width and byte order; shapes (7, 5000) along 0 and (3, 5, 2100) along 1.
    let value = |i: usize| {
        if i == 4321 {
            f64::NAN
        } else {
            ((i as f64) * 0.61).sin() * 1e3
        }
    };
    for (shape, axis) in [(vec![7u64, 5000], 0usize), (vec![3, 5, 2100], 1)] {
        let n: u64 = shape.iter().product();
        let (len_k, inner) = (
            shape[axis] as usize,
            shape[axis + 1..].iter().product::<u64>(),
        );
        let inner = inner as usize;
        for dtype in ["<f2", "<f4", ">f4", "<f8"] {
            let (data, stored): (Vec<u8>, Vec<f64>) = match dtype {
                "<f2" => {
                    let h: Vec<half::f16> = (0..n as usize)
                        .map(|i| half::f16::from_f64(value(i)))
                        .collect();
                    let bytes = h.iter().flat_map(|v| v.to_le_bytes()).collect();
                    (bytes, h.iter().map(|v| v.to_f64()).collect())
                }
                "<f4" | ">f4" => {
                    let f: Vec<f32> = (0..n as usize).map(|i| value(i) as f32).collect();
                    let bytes = f
                        .iter()
                        .flat_map(|v| {
                            if dtype == ">f4" {
                                v.to_be_bytes()
                            } else {
                                v.to_le_bytes()
                            }
                        })
                        .collect();
                    (bytes, f.iter().map(|&v| f64::from(v)).collect())
                }
                _ => {
                    let f: Vec<f64> = (0..n as usize).map(value).collect();
                    (f64s(&f), f)
                }
            };
            let axis_s = axis.to_string();
            let q = [Some("sum"), Some(axis_s.as_str()), None, None];
            let out = run(dtype, &shape, &data, "", q);
            let json: serde_json::Value = serde_json::from_str(&out).unwrap();
            let got: Vec<Option<f64>> = json["sum"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|v| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]))
                .map(|v| v.as_f64())
                .collect();
            // The last axis and the whole array, whose rows are read straight from the map too.
            let last = shape.len() - 1;
            let width = shape[last] as usize;
            let q = [Some("sum"), Some("-1"), None, None];
            let rows: serde_json::Value =
                serde_json::from_str(&run(dtype, &shape, &data, "", q)).unwrap();
            let rows: Vec<Option<f64>> = rows["sum"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|v| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]))
                .map(|v| v.as_f64())
                .collect();
            for (r, got) in rows.iter().enumerate() {
                let want: f64 = stored[r * width..(r + 1) * width].iter().sum();
                match got {
                    Some(g) => assert!((g - want).abs() <= 1e-9, "{dtype} row {r}: {g} {want}"),
                    None => assert!(want.is_nan(), "{dtype} row {r}"),
                }
            }
            let q = [Some("sum"), None, None, Some("propagate")];
            let all: serde_json::Value =
                serde_json::from_str(&run(dtype, &shape, &data, "", q)).unwrap();
            assert!(all["sum"].is_null(), "{dtype}: the NaN propagates");
            let q = [Some("sum"), None, None, None];
            let part: serde_json::Value =
                serde_json::from_str(&run(dtype, &shape, &data, "1:", q)).unwrap();
            let want: f64 = stored[n as usize / shape[0] as usize..].iter().sum();
            let g = part["sum"].as_f64().unwrap();
            assert!(
                (g - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{dtype}: {g} {want}"
            );
            let cells = n as usize / len_k;
            assert_eq!(got.len(), cells, "{dtype} {shape:?}");
            for (c, got) in got.iter().enumerate() {
                let (o, j) = (c / inner, c % inner);
                let want: f64 = (0..len_k)
                    .map(|t| stored[(o * len_k + t) * inner + j])
                    .sum();
                match got {
                    Some(g) => assert!((g - want).abs() <= 1e-12 * 1e3, "{dtype} cell {c}"),
                    None => assert!(want.is_nan(), "{dtype} cell {c}: null, want {want}"),
                }
            }
        }
    }
}

#[test]
fn bad_params_are_refused() {
    let p = |ops, axis, ddof, nan| {
        StatsParams::parse(ops, axis, ddof, nan, 2)
            .unwrap_err()
            .code()
    };
    assert_eq!(p(Some("sum,median"), None, None, None), "bad_op");
    assert_eq!(p(Some(""), None, None, None), "bad_op");
    assert_eq!(p(None, Some("2"), None, None), "bad_axis");
    assert_eq!(p(None, Some("-3"), None, None), "bad_axis");
    assert_eq!(p(None, Some("x"), None, None), "bad_axis");
    assert_eq!(p(None, None, Some("-1"), None), "bad_ddof");
    assert_eq!(p(None, None, Some("1.5"), None), "bad_ddof");
    assert_eq!(p(None, None, None, Some("omit")), "bad_nan");
    let ok = StatsParams::parse(
        Some("sum,sum,min"),
        Some("-2"),
        Some("1"),
        Some("ignore"),
        2,
    );
    let ok = ok.unwrap();
    assert_eq!(
        (ok.ops, ok.axis, ok.ddof),
        (vec![Op::Sum, Op::Min], Some(0), 1)
    );
}
