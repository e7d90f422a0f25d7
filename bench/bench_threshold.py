"""Choosing the default --threshold for `--by hash`: recall on edited copies against false pairs among
distinct real photos, measured in one run.

Positives: a seeded sample of real photos, each re-made by simple edit families (re-encode, resize, grey,
brightness), hashed exactly as `simfind index` hashes (same decode, same draft size).
Negatives: every pair of the distinct photos in ../shared/data/photos (the clothing photos share
backgrounds and poses: hard negatives). The motorcycle stereo pair is a similar scene, not a copy.
Usage: python bench/bench_threshold.py [--sample N] [--seed S]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile

import numpy as np
from PIL import Image, ImageEnhance

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from simfind import api  # noqa: E402
from simfind.catalog import Catalog  # noqa: E402
from simfind.decode import decode  # noqa: E402
from simfind.hashing import HASH_BITS, hamming, perceptual_hash  # noqa: E402
from simfind.pipeline import HASH_DRAFT_SIZE  # noqa: E402
from simfind.vectors import hash_pairs  # noqa: E402

PHOTOS = os.path.join(ROOT, "..", "shared", "data", "photos")
THRESHOLDS = (0.96, 0.93, 0.9, 0.87, 0.84, 0.81)


def _enc(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


FAMILIES = {
    "jpeg q50": lambda im: _enc(im, "JPEG", quality=50),
    "webp q75": lambda im: _enc(im, "WEBP", quality=75),
    "png": lambda im: _enc(im, "PNG"),
    "downscale 1/2": lambda im: _enc(im.resize((im.width // 2, im.height // 2), Image.LANCZOS), "JPEG", quality=85),
    "upscale 1.5x": lambda im: _enc(im.resize((im.width * 3 // 2, im.height * 3 // 2), Image.BICUBIC), "JPEG", quality=85),
    "grey": lambda im: _enc(im.convert("L"), "JPEG", quality=90),
    "brightness +20%": lambda im: _enc(ImageEnhance.Brightness(im).enhance(1.2), "JPEG", quality=90),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not os.path.isdir(PHOTOS):
        print(f"bench: skipped, {PHOTOS} is not on this machine")
        return 0
    with tempfile.TemporaryDirectory() as idx:
        api.index([PHOTOS], index_dir=idx)
        with Catalog.open(idx, create=False) as c:
            files = c.indexed_files()
    codes = np.frombuffer(b"".join(f.phash for f in files), dtype=np.uint8).reshape(len(files), -1)
    max_d = int((1 - min(THRESHOLDS)) * HASH_BITS)
    negatives = [d for i, j, d in hash_pairs(codes, max_d)]
    n_pairs = len(files) * (len(files) - 1) // 2

    rng = random.Random(a.seed)
    sample = rng.sample([f.path for f in files if f.path.lower().endswith((".jpg", ".jpeg"))], a.sample)
    dist: dict[str, list[int]] = {k: [] for k in FAMILIES}
    for path in sample:
        data = open(path, "rb").read()
        original = Image.open(io.BytesIO(data)).convert("RGB")
        h0 = perceptual_hash(decode(data, HASH_DRAFT_SIZE).image)
        for family, make in FAMILIES.items():
            dist[family].append(hamming(h0, perceptual_hash(decode(make(original), HASH_DRAFT_SIZE).image)))

    print(f"threshold bench: {a.sample} originals x {len(FAMILIES)} edit families; "
          f"negatives: {len(files)} distinct photos ({n_pairs:,} pairs); seed {a.seed}")
    print(f"{'threshold':>9} {'max hamming':>11} " + " ".join(f"{k:>15}" for k in FAMILIES) + f" {'false pairs':>11}")
    for t in THRESHOLDS:
        d = int(np.floor((1 - t) * HASH_BITS + 1e-9))
        recalls = " ".join(f"{np.mean(np.array(v) <= d):15.3f}" for v in dist.values())
        fp = sum(1 for x in negatives if x <= d)
        mark = "  <- default" if abs(t - api.DEFAULT_HASH_THRESHOLD) < 1e-9 else ""
        print(f"{t:9.2f} {d:11d} {recalls} {fp:11d}{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
