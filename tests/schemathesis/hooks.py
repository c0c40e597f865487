"""Schemathesis hooks for tests/schemathesis/run: what depends on the data rather than on the
document.

A schema says which requests are well formed, not which files exist or how many dimensions a
dataset has. So:

- a registration body that the schema allows is pointed at one of the files the runner put in
  the data directory, with a dtype and shape that fit it, so registrations succeed and the
  stateful phase can follow the links to the new dataset;
- `positive_data_acceptance` lets the aggregates and `/data` answer 400 to schema-valid
  requests (schemathesis.toml), and the check `data_dependent_rejection` below holds those
  400s to the errors that depend on the dataset: an index out of range, more indices than
  dimensions, an integer over 64 bits, an axis the selection lacks, a 2-d selection given to
  `/downsample`, `lo > hi` in a range, edges that do not increase. Any other 400 to a
  schema-valid request is a failure.
"""

import hashlib
import json

import schemathesis

# Registration targets the runner writes under the data directory: (body fields, ndim).
TARGETS = [
    ({"file": "files/counts.u2", "dtype": "<u2", "shape": [8, 8]}, 2),
    ({"file": "files/counts.u2", "dtype": "<u2", "shape": [4, 16], "order": "F"}, 2),
    ({"file": "files/counts.u2", "dtype": "|u1", "shape": [128]}, 1),
    ({"file": "files/counts.u2", "dtype": ">u2", "shape": [30], "offset": 8}, 1),
    ({"file": "files/counts.u2", "dtype": "<f4", "shape": [2, 2, 8]}, 3),
    ({"file": "files/ramp.npy"}, 2),
]


def _is_negative(case):
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_negative


@schemathesis.hook.apply_to(method="POST", path="/v1/datasets")
def map_case(ctx, case):
    """A schema-valid registration names a file that is there, with a dtype and shape that
    fit it; the name, `dims` (one per axis) and `attrs` stay as generated."""
    body = case.body
    if _is_negative(case) or not isinstance(body, dict) or not isinstance(body.get("name"), str):
        return case
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest()
    fields, ndim = TARGETS[digest[0] % len(TARGETS)]
    new = {"name": body["name"], **fields}
    dims = body.get("dims")
    if isinstance(dims, list) and dims:
        new["dims"] = [f"{dims[k % len(dims)]}_{k}"[:64] for k in range(ndim)]
    attrs = body.get("attrs")
    if isinstance(attrs, dict) and len(json.dumps(attrs)) < 8192:
        new["attrs"] = attrs
    case.body = new
    return case


# The 400 codes a schema-valid request may still get, because the dataset decides.
DATA_DEPENDENT = {
    "index_out_of_range",
    "bad_axis",
    "not_1d",
    "too_large",
    "unsupported_dtype",
    "bad_range",
    "bad_bins",
}
# bad_slice covers syntax too; these messages are the shape- and width-dependent ones.
DATA_DEPENDENT_SLICE = ("too many indices", "does not fit in a signed 64-bit integer")


@schemathesis.check
def data_dependent_rejection(ctx, response, case):
    """A schema-valid request refused with 400 must be refused for a reason the schema cannot
    express (see the module's docstring)."""
    # A HEAD answer has no body to read the code from.
    if response.status_code != 400 or case.method.upper() == "HEAD":
        return None
    if _is_negative(case) or case.meta is None:
        return None
    if not case.meta.generation.mode.is_positive:
        return None
    try:
        error = response.json()["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError) as e:
        raise AssertionError(f"400 without the JSON error body: {response.text[:200]!r}") from e
    if code in DATA_DEPENDENT:
        return None
    if code == "bad_slice" and any(m in message for m in DATA_DEPENDENT_SLICE):
        return None
    raise AssertionError(f"schema-valid request refused with {code}: {message}")
