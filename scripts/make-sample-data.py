"""Writes the small sample datasets in data/ that README's examples and the tests use.

Run with the project's venv: `$(scripts/venv) scripts/make-sample-data.py`. The output is
committed; rerunning it reproduces the same bytes (fixed seed).
"""
import json
import pathlib

import numpy as np

out = pathlib.Path(__file__).resolve().parent.parent / "data"
out.mkdir(exist_ok=True)
rng = np.random.default_rng(2026)

# A 1-d float32 signal: a noisy sine with a few NaN dropouts, 100,000 samples (400 KB).
t = np.arange(100_000, dtype=np.float64)
signal = (np.sin(t / 500.0) + 0.1 * rng.standard_normal(t.size)).astype("<f4")
signal[[1234, 50_000, 99_999]] = np.nan
np.save(out / "signal.npy", signal)

# A 2-d uint8 image: a 256 x 256 radial gradient (64 KB).
y, x = np.mgrid[0:256, 0:256]
image = (np.hypot(x - 128, y - 128) * 255 / 182).clip(0, 255).astype("|u1")
np.save(out / "image.npy", image)

# A raw float64 matrix with its descriptor: 200 x 300, little-endian, C order (480 KB).
matrix = rng.standard_normal((200, 300)).astype("<f8")
(out / "climate").mkdir(exist_ok=True)
(out / "climate" / "matrix.f64").write_bytes(matrix.tobytes(order="C"))
(out / "climate" / "matrix.array.json").write_text(
    json.dumps({"file": "matrix.f64", "dtype": "<f8", "shape": [200, 300], "order": "C", "offset": 0}, indent=2)
    + "\n"
)
