"""`query` and `dupes` are one matcher: a pair that one reports at a threshold, the other reports too."""

from __future__ import annotations

import os

import pytest
from PIL import Image, ImageDraw, ImageOps

from .conftest import picture, save


def _edits(im: Image.Image, k: int) -> Image.Image:
    """One edited copy per picture, of many kinds, some of which the matcher finds and some it does not."""
    w, h = im.size
    kinds = [
        lambda: im.crop((round(w * 0.08), round(h * 0.08), round(w * 0.92), round(h * 0.92))),  # 84% centre crop
        lambda: im.crop((round(w * 0.15), round(h * 0.02), w, round(h * 0.84))),  # 85% x 82%, off centre
        lambda: im.resize((w // 2, h // 2), Image.LANCZOS),
        lambda: im.transpose(Image.ROTATE_90),
        lambda: im.transpose(Image.FLIP_LEFT_RIGHT),
        lambda: ImageOps.expand(im, border=(0, 0, 0, h // 6), fill="white"),  # a caption bar
        lambda: _stamped(im),
        lambda: im.rotate(3, resample=Image.BICUBIC).crop((30, 25, w - 30, h - 25)),
        lambda: im.crop((round(w * 0.2), round(h * 0.2), round(w * 0.8), round(h * 0.8))),  # 60%: often missed
        lambda: ImageOps.pad(im.resize((w // 3, h // 3)), (w, w), color=(40, 40, 40)),  # on a canvas
    ]
    return kinds[k % len(kinds)]()


def _stamped(im: Image.Image) -> Image.Image:
    out = im.copy()
    d = ImageDraw.Draw(out)
    d.rectangle((20, 20, 220, 70), fill=(255, 255, 255))
    d.text((30, 30), "(c) studio", fill=(0, 0, 0))
    return out


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("agree")
    for k in range(20):
        save(picture(400 + k), root / f"p{k:02d}.jpg", quality=90)
        save(_edits(picture(400 + k), k), root / "copies" / f"p{k:02d}_copy.jpg", quality=80)
    for k in range(10):  # distractors: no copy of their own
        save(picture(500 + k), root / "other" / f"o{k:02d}.jpg", quality=90)
    return root


@pytest.mark.parametrize("threshold", ["0.9", "0.8"])
def test_every_query_result_at_the_threshold_is_grouped_with_the_query_and_the_reverse(library, cli, threshold):
    cli("index", library, "--quiet", "--no-clip")
    groups = cli.json("dupes", "-t", threshold)["groups"]
    mates = {}
    for g in groups:
        paths = {f["path"] for f in g["files"]}
        for p in paths:
            mates[p] = paths - {p}
    assert all(len(g["files"]) == 2 for g in groups)  # one copy each: each group is exactly one pair
    files = sorted(str(p) for p in library.rglob("*.jpg"))
    found = 0
    for path in files:
        results = cli.json("query", path, "-t", threshold, "-k", "50")["results"]
        listed = {r["path"] for r in results if r["path"] != os.path.abspath(path)}
        assert listed == mates.get(os.path.abspath(path), set()), path
        found += bool(listed)
        paired = {f["path"]: f["similarity"] for g in groups for f in g["files"]}
        for r in results:  # the same similarity in both
            if r["path"] in listed and r["path"] in paired and paired[r["path"]] < 1.0:
                assert r["similarity"] >= float(threshold) - 1e-9
    assert found >= 20  # the set is not trivially empty: most pictures find their copy
