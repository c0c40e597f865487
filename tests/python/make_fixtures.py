#!/usr/bin/env python3
"""Write NumPy-made fixtures for arrayd's ground-truth cross-check.

    make_fixtures.py DIR [--seed N]

DIR is created (it should be empty or absent). Everything in it is written
by NumPy itself (np.save / np.lib.format.write_array / ndarray.tobytes), so
the server is checked against NumPy's own idea of the .npy format.

Written:
  * good .npy datasets: every supported dtype (|b1 |i1 |u1 and the < and >
    forms of i2 i4 i8 u2 u4 u8 f2 f4 f8 c8 c16), C and Fortran order, a 3-d
    and a 2-d shape each, plus 1-d, 0-d, zero-length and length-1 shapes;
    format versions 1.0, 2.0 and 3.0; some nested in subdirectories;
  * good raw datasets: NAME.bin (junk prefix, nonzero, sometimes unaligned
    offset) + NAME.array.json descriptor;
  * BAD files that the server must skip while still starting;
  * two name clashes (the server may keep either candidate or neither);
  * DIR/fixtures-manifest.json describing all of the above:
      {"good": {name: {"path", "dtype", "shape", "order", "offset", "kind",
                       ["descriptor"]}},
       "ambiguous": {name: [candidate paths]},
       "bad": [relative paths]}
"""
import argparse
import ast
import json
import os
import struct
import sys

import numpy as np

MULTI = ["i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"]
DTYPES = ["|b1", "|i1", "|u1"] + [bo + t for t in MULTI for bo in "<>"]

# extra shapes handed out round-robin over the dtypes (besides 3-d and 2-d)
EXTRA_SHAPES = [(13,), (), (3, 0, 2), (1, 7), (5, 1, 3), (0,), (2, 3, 4, 5), (1,), (6, 1)]

NAME_RE_DOC = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}"


def dtype_tag(descr):
    """'<f4' -> 'f4_le', '>f4' -> 'f4_be', '|u1' -> 'u1'."""
    bo, t = descr[0], descr[1:]
    return t if bo == "|" else t + ("_le" if bo == "<" else "_be")


def shape_tag(shape):
    return "0d" if shape == () else "x".join(map(str, shape))


# ----------------------------------------------------------------- values

def float_specials(t):
    nan, inf = np.nan, np.inf
    common = [nan, inf, -inf, -0.0, 0.0, 0.1, 1.0, -2.5, 0.3]
    if t == "f2":
        return common + [65504.0, -65504.0, 6e-8, 6.1035156e-05, 1e-5, 2048.0, 0.333, 1e-7]
    if t == "f4":
        return common + [1e-7, 3.4028235e38, -3.4028235e38, 1e-45, 1.1754944e-38,
                         1e-40, 16777217.0, 1e10, 123456.79, 1e-30, 7e22]
    return common + [np.copysign(np.nan, -1.0), 1e-7, 1e300, -1e300, 5e-324,
                     2.2250738585072014e-308, 1e-310, 1.7976931348623157e308,
                     1e16, 1e22, 1e21, 9007199254740993.0, 0.30000000000000004,
                     123456789.123, 1e-6, 2.0 ** -1074 * 3]


def random_floats(t, n, rng):
    if t == "f2":
        v = rng.standard_normal(n) * 10.0 ** rng.uniform(-4, 4, n)
        v = np.clip(v, -60000, 60000)
    elif t == "f4":
        v = rng.standard_normal(n) * 10.0 ** rng.uniform(-20, 20, n)
    else:
        v = rng.standard_normal(n) * 10.0 ** rng.uniform(-200, 200, n)
    # a share of "nice" short decimals too
    nice = rng.random(n) < 0.2
    v[nice] = np.round(rng.uniform(-100, 100, n)[nice], 2)
    return v


def put_specials(flat, specials, rng):
    """Scatter specials (as many as fit in half the array) at random places."""
    n = flat.size
    k = min(len(specials), n // 2 if n > 2 else n)
    if k == 0:
        return
    order = rng.permutation(len(specials))[:k]
    pos = rng.choice(n, size=k, replace=False)
    for p, s in zip(pos, order):
        flat[p] = specials[s]


def make_values(descr, shape, rng):
    dt = np.dtype(descr)
    native = dt.newbyteorder("=")
    n = int(np.prod(shape, dtype=np.int64))
    kind, t = dt.kind, descr[1:]
    if kind == "b":
        flat = rng.random(n) < 0.5
    elif kind in "iu":
        info = np.iinfo(native)
        flat = rng.integers(info.min, info.max, size=n, endpoint=True, dtype=native)
        sp = [info.min, info.max, 0, 1] + ([-1, info.min + 1] if kind == "i" else [info.max - 1])
        put_specials(flat, np.array(sp, dtype=native), rng)
    elif kind == "f":
        with np.errstate(over="ignore"):
            flat = random_floats(t, n, rng).astype(native)
            put_specials(flat, np.array(float_specials(t), dtype=native), rng)
    elif kind == "c":
        ct = "f4" if t == "c8" else "f8"
        comp = np.dtype(ct)
        with np.errstate(over="ignore"):
            re_ = random_floats(ct, n, rng).astype(comp)
            im_ = random_floats(ct, n, rng).astype(comp)
            flat = np.empty(n, dtype=native)
            flat.real, flat.imag = re_, im_
            nan, inf = np.nan, np.inf
            sp = np.array([complex(nan, 1.0), complex(1.0, inf), complex(-inf, -0.0),
                           complex(0.0, -1.0), complex(nan, nan), complex(-0.0, 0.0),
                           complex(0.0, 1.5), complex(1.5, -2.0), complex(inf, -inf),
                           complex(0.1, 1e-7), complex(2.5, nan)], dtype=native)
            put_specials(flat, sp, rng)
    else:
        raise ValueError(descr)
    return flat.reshape(shape).astype(dt)


# ----------------------------------------------------------------- writers

def read_npy_header(path):
    """Independent minimal .npy header reader: (version, header dict, data offset)."""
    with open(path, "rb") as f:
        head = f.read(12)
    assert head[:6] == b"\x93NUMPY", path
    ver = (head[6], head[7])
    if ver[0] == 1:
        hlen, start = struct.unpack("<H", head[8:10])[0], 10
    else:
        hlen, start = struct.unpack("<I", head[8:12])[0], 12
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read(hlen).decode("utf8" if ver[0] >= 3 else "latin1")
    return ver, ast.literal_eval(text), start + hlen


class Writer:
    def __init__(self, root, seed):
        self.root = os.path.abspath(root)
        self.rng = np.random.default_rng(seed)
        self.good, self.bad, self.ambiguous = {}, [], {}

    def p(self, rel):
        full = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        return full

    @staticmethod
    def name_of(rel):
        for suf in (".npy", ".array.json"):
            if rel.endswith(suf):
                rel = rel[: -len(suf)]
        return rel.replace(os.sep, ".").replace("/", ".")

    def npy(self, rel, arr, version=None, register=True):
        full = self.p(rel)
        if version is None:
            np.save(full, arr)
        else:
            with open(full, "wb") as f:
                np.lib.format.write_array(f, arr, version=version)
        ver, hdr, off = read_npy_header(full)
        meta = {"path": rel, "dtype": hdr["descr"], "shape": list(hdr["shape"]),
                "order": "F" if hdr["fortran_order"] else "C", "offset": off,
                "kind": "npy", "version": "%d.%d" % ver}
        if register:
            name = self.name_of(rel)
            assert name not in self.good, name
            self.good[name] = meta
        return meta

    def raw(self, rel_desc, rel_bin, arr, order="C", offset=0, junk_tail=0,
            write_order=True, write_offset=True, register=True):
        """Write arr.tobytes(order) at `offset` into rel_bin (junk before and
        after) and the descriptor rel_desc (file relative to the descriptor)."""
        full_bin = self.p(rel_bin)
        junk = self.rng.integers(0, 256, offset + junk_tail, dtype=np.uint8).tobytes()
        with open(full_bin, "wb") as f:
            f.write(junk[:offset])
            f.write(arr.tobytes(order=order))
            f.write(junk[offset:])
        full_desc = self.p(rel_desc)
        desc = {"file": os.path.relpath(full_bin, os.path.dirname(full_desc)),
                "dtype": arr.dtype.str, "shape": list(arr.shape)}
        if write_order or order != "C":
            desc["order"] = order
        if write_offset or offset != 0:
            desc["offset"] = offset
        with open(full_desc, "w") as f:
            json.dump(desc, f)
        meta = {"path": rel_bin, "descriptor": rel_desc, "dtype": arr.dtype.str,
                "shape": list(arr.shape), "order": order, "offset": offset, "kind": "raw"}
        if register:
            self.good[self.name_of(rel_desc)] = meta
        return meta

    def badfile(self, rel, data):
        full = self.p(rel)
        with open(full, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        self.bad.append(rel)

    def bad_desc(self, rel, desc):
        self.badfile(rel, json.dumps(desc) if not isinstance(desc, str) else desc)

    # ------------------------------------------------------------------
    def write_all(self):
        rng = self.rng
        versions = {"<c16": (2, 0), ">c16": (2, 0), "<f2": (3, 0), ">i8": (3, 0), "|b1": (2, 0)}
        extra_i = 0
        for di, descr in enumerate(DTYPES):
            tag = dtype_tag(descr)
            for order in "CF":
                for shape in [(4, 5, 6), (7, 9)]:
                    a = make_values(descr, shape, rng)
                    if order == "F":
                        a = np.asfortranarray(a)
                    rel = "%s_%s_%s.npy" % (tag, order, "3d" if len(shape) == 3 else "2d")
                    # the version-2/3 writes are the F 3-d ones; big-endian 2-d go in sub/
                    ver = versions.get(descr) if (order == "F" and len(shape) == 3) else None
                    if descr[0] == ">" and len(shape) == 2:
                        rel = os.path.join("sub", rel)
                    self.npy(rel, a, version=ver)
            # two extra shapes per dtype, alternating order
            for k in range(2):
                shape = EXTRA_SHAPES[extra_i % len(EXTRA_SHAPES)]
                extra_i += 1
                order = "F" if (di + k) % 2 else "C"
                a = make_values(descr, shape, rng)
                if order == "F":
                    a = np.asfortranarray(a)
                    if a.flags.c_contiguous:   # 0-d, 1-d, empty: NumPy stores these as C
                        order = "C"
                rel = os.path.join("shapes", "deeper" if k else "",
                                   "%s_%s_%s.npy" % (tag, order, shape_tag(shape)))
                self.npy(rel, a)

        # names with '-' and '.'; a bigger array spanning many chunks/pages
        self.npy("my-data.v2.npy", make_values("<f8", (3, 4), rng))
        self.npy("big_f4_C.npy", make_values("<f4", (129, 517), rng))
        self.npy("big_i2_be_F.npy", np.asfortranarray(make_values(">i2", (257, 300), rng)))
        self.npy("big_u1_1d.npy", make_values("|u1", (100003,), rng))

        # raw datasets
        self.raw("raw_f8_C.array.json", "raw_f8_C.bin", make_values("<f8", (6, 7), rng),
                 order="C", offset=13, junk_tail=5)
        self.raw("raw_i2_be_F.array.json", "raw_i2_be_F.bin",
                 make_values(">i2", (5, 4, 3), rng), order="F", offset=100)
        self.raw("raw_f4_be_F.array.json", "raw_f4_be_F.bin",
                 make_values(">f4", (8, 3), rng), order="F", offset=7)
        self.raw("raw_c16_F.array.json", "raw_c16_F.bin",
                 make_values("<c16", (3, 4, 2), rng), order="F", offset=16)
        self.raw("raw_u1_defaults.array.json", "raw_u1_defaults.bin",
                 make_values("|u1", (50,), rng), write_order=False, write_offset=False)
        self.raw("raw_b1_2d.array.json", "raw_b1_2d.bin", make_values("|b1", (5, 6), rng),
                 order="C", offset=1)
        self.raw("raw_empty.array.json", "raw_empty.bin", make_values("<f4", (4, 0), rng),
                 order="C", offset=3)
        self.raw("raw_0d.array.json", "raw_0d.bin", make_values(">f8", (), rng), offset=5)
        # `../` that stays inside the data directory is fine
        self.raw(os.path.join("rawdesc", "c8.array.json"), os.path.join("rawdata", "c8.bin"),
                 make_values("<c8", (3, 4), rng), order="C", offset=8)
        self.raw(os.path.join("rawdesc", "nested", "u8_be.array.json"),
                 os.path.join("rawdata", "u8_be.bin"),
                 make_values(">u8", (2, 3, 4), rng), order="F", offset=24)

        # ambiguous: name clashes (server may keep either candidate, or neither)
        m1 = self.npy(os.path.join("clash", "a.npy"), make_values("<i4", (3, 3), rng), register=False)
        m2 = self.npy("clash.a.npy", make_values("<i4", (2, 2), rng), register=False)
        m3 = self.npy("dup.npy", make_values("<u2", (4,), rng), register=False)
        m4 = self.raw("dup.array.json", "dup.bin", make_values("<u2", (5,), rng), register=False)
        self.ambiguous = {"clash.a": [m1, m2], "dup": [m3, m4]}

        self.write_bad()

        manifest = {"good": self.good, "ambiguous": self.ambiguous, "bad": sorted(self.bad)}
        with open(os.path.join(self.root, "fixtures-manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        return manifest

    def write_bad(self):
        rng = self.rng
        tmp = os.path.join(self.root, ".tmp-fixture.npy")
        np.save(tmp, make_values("<f8", (10, 10), rng))
        with open(tmp, "rb") as f:
            full = f.read()
        os.unlink(tmp)
        self.badfile("bad/truncated.npy", full[:-3])            # data 3 bytes short
        self.badfile("bad/header_only.npy", full[:40])           # cut inside the header
        self.badfile("bad/not_npy.npy", b"this is not an npy file at all\n" * 4)
        self.badfile("bad/empty.npy", b"")

        def save_bad(rel, arr, **kw):
            path = self.p(rel)
            np.save(path, arr, **kw)
            self.bad.append(rel)

        save_bad("bad/structured.npy", np.zeros(4, dtype=[("a", "<i4"), ("b", "<f8")]))
        save_bad("bad/object.npy", np.array([1, "x", None], dtype=object), allow_pickle=True)
        save_bad("bad/unicode.npy", np.array(["ab", "cd"], dtype="<U2"))
        save_bad("bad/bytes.npy", np.array([b"ab", b"cd"], dtype="|S2"))
        save_bad("bad/datetime.npy", np.array(["2020-01-01"], dtype="<M8[s]"))

        # descriptors
        with open(self.p("bad/short.bin"), "wb") as f:
            f.write(bytes(100))
        self.bad_desc("bad/past_end.array.json", {"file": "short.bin", "dtype": "<f8", "shape": [20]})
        self.bad_desc("bad/offset_past.array.json",
                      {"file": "short.bin", "dtype": "|u1", "shape": [10], "offset": 95})
        self.bad_desc("bad/missing_file.array.json", {"file": "nope.bin", "dtype": "<f4", "shape": [2]})
        escape = os.path.relpath("/etc/passwd", os.path.dirname(self.p("bad/escape.array.json")))
        self.bad_desc("bad/escape.array.json", {"file": escape, "dtype": "|u1", "shape": [1]})
        self.bad_desc("bad/escape2.array.json", {"file": "../../etc/passwd", "dtype": "|u1", "shape": [1]})
        self.bad_desc("bad/absolute.array.json", {"file": "/etc/passwd", "dtype": "|u1", "shape": [1]})
        link = self.p("bad/link_out.bin")
        try:
            os.symlink("/etc/passwd", link)
            self.bad_desc("bad/link_out.array.json", {"file": "link_out.bin", "dtype": "|u1", "shape": [1]})
        except OSError:
            pass
        self.bad_desc("bad/bad_dtype.array.json", {"file": "short.bin", "dtype": "<f3", "shape": [2]})
        self.bad_desc("bad/structured_dtype.array.json",
                      {"file": "short.bin", "dtype": "[('a', '<i4')]", "shape": [2]})
        self.bad_desc("bad/str_dtype.array.json", {"file": "short.bin", "dtype": "<U1", "shape": [2]})
        self.bad_desc("bad/neg_shape.array.json", {"file": "short.bin", "dtype": "|u1", "shape": [-1, 3]})
        self.bad_desc("bad/bad_order.array.json",
                      {"file": "short.bin", "dtype": "|u1", "shape": [2], "order": "X"})
        self.bad_desc("bad/neg_offset.array.json",
                      {"file": "short.bin", "dtype": "|u1", "shape": [2], "offset": -1})
        self.bad_desc("bad/bad_json.array.json", "{this is not json")
        self.bad_desc("bad/no_file.array.json", {"dtype": "|u1", "shape": [2]})
        self.bad_desc("bad/huge_shape.array.json",
                      {"file": "short.bin", "dtype": "<f8", "shape": [4294967296, 4294967296, 4]})

        # file names that cannot make a valid dataset name
        good_arr = make_values("<f4", (2, 2), rng)
        for rel in ["bad name!.npy", "-lead.npy", ".hidden.npy", "a" * 201 + ".npy",
                    os.path.join("bad dir", "x.npy"), "ünïcode.npy"]:
            path = self.p(rel)
            np.save(path, good_arr)
            self.bad.append(rel)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    m = Writer(args.dir, args.seed).write_all()
    print("wrote %d good, %d ambiguous, %d bad fixtures into %s"
          % (len(m["good"]), len(m["ambiguous"]), len(m["bad"]), os.path.abspath(args.dir)))


if __name__ == "__main__":
    main()
