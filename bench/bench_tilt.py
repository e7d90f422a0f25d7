"""Straightened copies: how far a turn (and the cut that hides its corners) may go before simfind misses it.

From ../shared/data/photos, deterministic by seed: 120 originals (scaled to at most 1024 px, JPEG q92), each
turned by a range of angles (either way) and cut by a range of margins, as a photo editor's straighten tool or a
scanned print makes them (JPEG q88), plus 800 distinct photos as negatives. `simfind index --no-clip` and `dupes`
(in-process, default threshold); a copy counts as found when it lands in its original's group. Also counts the
groups that mix pictures (a negative, or two originals).

Usage: python bench/bench_tilt.py [--seed S]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench_quality import shuffled_photos  # noqa: E402

from simfind import api  # noqa: E402

CASES = [(1.0, 0.03), (1.5, 0.04), (2.0, 0.05), (3.0, 0.06), (4.0, 0.08), (5.0, 0.10), (7.0, 0.12)]  # degrees, cut


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    drawn = shuffled_photos(a.seed)
    if drawn is None:
        return 0
    rng, photos = drawn
    originals, negatives = photos[:120], photos[120:920]
    work = tempfile.mkdtemp(prefix="simfind-tilt-")
    try:
        root, kind = os.path.join(work, "set"), {}
        os.makedirs(root)
        for g, src in enumerate(originals):
            im = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
            im.thumbnail((1024, 1024))
            kind[_save(im, root, f"o{g}", 92)] = (g, "original")
            w, h = im.size
            for angle, cut in CASES:
                turned = im.rotate(rng.choice((-1, 1)) * angle, resample=Image.BICUBIC)
                copy = turned.crop((round(w * cut), round(h * cut), round(w * (1 - cut)), round(h * (1 - cut))))
                kind[_save(copy, root, f"t{g}_{angle}_{cut}", 88)] = (g, (angle, cut))
        for k, src in enumerate(negatives):
            path = os.path.join(root, f"n{k}{os.path.splitext(src)[1].lower()}")
            shutil.copyfile(src, path)
            kind[path] = (None, "negative")
        index_dir = os.path.join(work, "index")
        api.index([root], index_dir=index_dir)
        report = api.duplicates(index_dir=index_dir, by="hash")
        group_of = {m.file.path: n for n, g in enumerate(report.groups) for m in g.members}
        print(f"tilt bench: {len(originals)} originals x {len(CASES)} straightened copies + {len(negatives)} negatives, "
              f"default threshold {report.threshold}")
        print(f"{'turn':>6} {'cut':>5} {'found':>6}")
        for case in CASES:
            found = sum(1 for p, (g, v) in kind.items() if v == case and p in group_of
                        and group_of.get(os.path.join(root, f"o{g}.jpg")) == group_of[p])
            print(f"{case[0]:5.1f}d {case[1]:5.0%} {found / len(originals):6.2f}")
        pictures = [[kind[m.file.path][0] for m in g.members] for g in report.groups]
        mixed = sum(1 for ps in pictures if None in ps or len(set(ps)) > 1)
        print(f"groups mixing pictures: {mixed} of {len(report.groups)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _save(im: Image.Image, root: str, name: str, quality: int) -> str:
    path = os.path.join(root, f"{name}.jpg")
    im.save(path, quality=quality)
    return path


if __name__ == "__main__":
    sys.exit(main())
