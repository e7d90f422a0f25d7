"""Near-duplicate quality on real photos: simfind (hash mode, offline) against imagededup's PHash and DHash.

Builds a labelled set from ../shared/data/photos, deterministic by seed: a sample of originals, each re-made by
the transform families below, plus distinct photos as negatives (the clothing photos share backgrounds and poses:
hard negatives), all spread over nested folders under unrelated file names. Scores, in one run on the same folder:
- `simfind index --no-clip` + `simfind dupes --format json` (real CLI subprocesses, wall time included), at the
  default threshold and at a sweep of thresholds (for tuning the default);
- imagededup PHash and DHash at their defaults (optional: `pip install imagededup`);
- pairwise precision / recall / F1 over all file pairs, recall per family (variant grouped with its original),
  and `query` recall@1 / @5 of each variant's original among the non-variant files;
- the real cases in ../shared/data/labelled, with their ground truth written down below.
Writes a Markdown report (--out) and prints its summary.

Usage: python bench/bench_quality.py [--size quick|full] [--seed S] [--out FILE] [--no-imagededup]
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
PHOTOS = os.path.join(DATA, "photos")
LABELLED = os.path.join(DATA, "labelled")
SIMFIND = [sys.executable, "-m", "simfind"]  # this checkout's package (PYTHONPATH below), as `simfind` runs it
SIZES = {"quick": (30, 300), "full": (120, 100_000)}  # originals, negatives (capped by what exists)
SWEEP = (0.96875, 0.9375, 0.90625, 0.875, 0.84375)  # 2 to 10 bits: two 64-bit pHashes with 32 bits set each differ by an even count
WORKING_SIDE = 1024  # variants are made from the original scaled to at most this side (a 6000 px photo: 1024)

# -- transform families ---------------------------------------------------------------------------------------


def _jpeg(im: Image.Image, q: int = 90, **kw) -> tuple[bytes, str]:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=q, **kw)
    return buf.getvalue(), ".jpg"


def _save(im: Image.Image, fmt: str, ext: str, **kw) -> tuple[bytes, str]:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue(), ext


def _scale(im: Image.Image, f: float, g: float | None = None) -> Image.Image:
    return im.resize((max(8, round(im.width * f)), max(8, round(im.height * (g or f)))), Image.LANCZOS)


def _crop(im: Image.Image, rng: random.Random) -> Image.Image:
    fw, fh = rng.uniform(0.7, 0.9), rng.uniform(0.7, 0.9)
    w, h = round(im.width * fw), round(im.height * fh)
    x, y = rng.randint(0, im.width - w), rng.randint(0, im.height - h)
    return im.crop((x, y, x + w, y + h))


def _tilt(im: Image.Image, rng: random.Random) -> Image.Image:
    angle = rng.choice((-1, 1)) * rng.uniform(2.0, 5.0)
    rot = im.rotate(angle, resample=Image.BICUBIC)
    m = 0.1  # crop the corners the rotation left empty
    return rot.crop((round(im.width * m), round(im.height * m), round(im.width * (1 - m)), round(im.height * (1 - m))))


def _exif(im: Image.Image, rng: random.Random) -> tuple[bytes, str]:
    """Pixels stored turned, with the EXIF orientation that turns them back: displays as the original."""
    orientation = rng.choice((3, 6, 8))
    stored = im.transpose({3: Image.ROTATE_180, 6: Image.ROTATE_90, 8: Image.ROTATE_270}[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _jpeg(stored, 92, exif=exif.tobytes())


def _overlay(im: Image.Image, rng: random.Random) -> Image.Image:
    out = im.copy()
    d = ImageDraw.Draw(out, "RGBA")
    size = max(12, im.height // 12)
    font = ImageFont.load_default(size=size)
    x, y = rng.randint(0, im.width // 3), rng.randint(im.height // 2, im.height - size * 2)
    d.text((x, y), "(c) simfind 2026", font=font, fill=(255, 255, 255, 220), stroke_width=2, stroke_fill=(0, 0, 0, 200))
    s = min(im.size) // 6  # a logo in a corner
    d.ellipse((im.width - s - 10, 10, im.width - 10, 10 + s), fill=(220, 30, 30, 200))
    return out


def _letterbox(im: Image.Image) -> Image.Image:
    """Pad to 16:9 (landscape) or 9:16 (portrait) with black bars, the way video frames and phone shares do."""
    w, h = im.size
    if w >= h:
        tw, th = max(w, round(h * 16 / 9)), max(h, round(w * 9 / 16))
    else:
        tw, th = max(w, round(h * 9 / 16)), max(h, round(w * 16 / 9))
    if (tw, th) == (w, h):
        th = round(h * 1.3)
    out = Image.new("RGB", (tw, th), (0, 0, 0))
    out.paste(im, ((tw - w) // 2, (th - h) // 2))
    return out


def _border(im: Image.Image) -> Image.Image:
    return ImageOps.expand(im, border=max(4, min(im.size) // 16), fill=(255, 255, 255))


def _noise(im: Image.Image, rng: random.Random) -> Image.Image:
    arr = np.asarray(im, dtype=np.float32)
    noise = np.random.default_rng(rng.randrange(2**31)).normal(0, 12, arr.shape)
    return Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8))


def _colour(im: Image.Image) -> Image.Image:
    im = ImageEnhance.Brightness(im).enhance(1.2)
    im = ImageEnhance.Contrast(im).enhance(1.2)
    return ImageEnhance.Color(im).enhance(1.5)


# name -> (family, make(image, rng) -> (bytes, ext)); "byte copy" is special-cased (the original's own bytes)
VARIANTS = {
    "byte copy": ("byte copy", None),
    "jpeg q40": ("re-encode", lambda im, r: _jpeg(im, 40)),
    "webp q70": ("re-encode", lambda im, r: _save(im, "WEBP", ".webp", quality=70)),
    "png": ("re-encode", lambda im, r: _save(im, "PNG", ".png")),
    "downscale 0.4": ("downscale", lambda im, r: _jpeg(_scale(im, 0.4))),
    "upscale 1.6": ("upscale", lambda im, r: _jpeg(_scale(im, 1.6))),
    "crop": ("crop", lambda im, r: _jpeg(_crop(im, r))),
    "rotate 90": ("rotation", lambda im, r: _jpeg(im.transpose(Image.ROTATE_90))),
    "rotate 180": ("rotation", lambda im, r: _jpeg(im.transpose(Image.ROTATE_180))),
    "rotate 270": ("rotation", lambda im, r: _jpeg(im.transpose(Image.ROTATE_270))),
    "mirror": ("mirror", lambda im, r: _jpeg(im.transpose(Image.FLIP_LEFT_RIGHT))),
    "exif orientation": ("exif orientation", _exif),
    "tilt": ("tilt", lambda im, r: _jpeg(_tilt(im, r))),
    "colour": ("colour", lambda im, r: _jpeg(_colour(im))),
    "grayscale": ("grayscale", lambda im, r: _jpeg(im.convert("L"))),
    "blur": ("blur", lambda im, r: _jpeg(im.filter(ImageFilter.GaussianBlur(2.5)))),
    "noise": ("noise", lambda im, r: _jpeg(_noise(im, r))),
    "overlay": ("overlay", lambda im, r: _jpeg(_overlay(im, r))),
    "letterbox": ("border", lambda im, r: _jpeg(_letterbox(im))),
    "white border": ("border", lambda im, r: _jpeg(_border(im))),
    "squash": ("squash", lambda im, r: _jpeg(_scale(im, 0.7, 1.0))),
    "crop + jpeg q50": ("combination", lambda im, r: _jpeg(_crop(im, r), 50)),
    "mirror + grey + downscale": ("combination", lambda im, r: _jpeg(_scale(im, 0.5).transpose(Image.FLIP_LEFT_RIGHT).convert("L"))),
    "rotate 90 + colour": ("combination", lambda im, r: _jpeg(_colour(im).transpose(Image.ROTATE_90))),
    "letterbox + overlay": ("combination", lambda im, r: _jpeg(_overlay(_letterbox(im), r))),
}
HARD = {"crop", "tilt", "combination"}  # families outside the 0.95 recall target


def _all_photos() -> list[str]:
    out = []
    for dirpath, _dirs, files in os.walk(PHOTOS):
        out += [os.path.join(dirpath, f) for f in files if f.lower().endswith((".jpg", ".jpeg", ".png"))]
    return sorted(out)


def _place(root: str, rng: random.Random, ext: str) -> str:
    depth = rng.randint(0, 3)
    parts = [f"{rng.choice('abcdefgh')}{rng.randrange(10)}" for _ in range(depth)]
    folder = os.path.join(root, *parts)
    os.makedirs(folder, exist_ok=True)
    while True:
        path = os.path.join(folder, f"{rng.getrandbits(40):010x}{ext}")
        if not os.path.exists(path):
            return path


def build_set(root: str, n_orig: int, n_neg: int, seed: int) -> dict:
    """Write the set under `root`; return its ground truth: path -> (group or None, variant name)."""
    rng = random.Random(seed)
    photos = _all_photos()
    rng.shuffle(photos)
    originals, negatives = photos[:n_orig], photos[n_orig : n_orig + n_neg]
    truth: dict[str, tuple[int | None, str]] = {}
    for g, src in enumerate(originals):
        with open(src, "rb") as fh:
            data = fh.read()
        ext = os.path.splitext(src)[1].lower()
        path = _place(root, rng, ext)
        with open(path, "wb") as fh:
            fh.write(data)
        truth[path] = (g, "original")
        im = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
        im.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.LANCZOS)
        for name, (_family, make) in VARIANTS.items():
            out, vext = (data, ext) if make is None else make(im, rng)
            path = _place(root, rng, vext)
            with open(path, "wb") as fh:
                fh.write(out)
            truth[path] = (g, name)
    for src in negatives:
        path = _place(root, rng, os.path.splitext(src)[1].lower())
        shutil.copyfile(src, path)
        truth[path] = (None, "negative")
    return truth


# -- ground truth of ../shared/data/labelled ------------------------------------------------------------------
# Groups of copies, by path relative to labelled/ (prefix match on folders). Everything else is a singleton.
# Written down by looking at every file. jenssegers' orientation/mismatch-1..3 are turned copies of the forest
# and of two office photos (so those are copies); the three `office` shots differ from each other; the `berlin_*` flats (bar one byte-identical pair),
# the exif-rotn photos (four different shots of one desk), c.png vs pen-and-coaster.png and the motorcycle stereo
# pair are similar scenes, not copies.
_TX = "threatexchange/pdq/data/"
_UK = "imagededup/tests/data/"
LABELLED_GROUPS = {
    "bridge": [_TX + "bridge-mods/", _TX + "reg-test-input/dih/", _TX + "misc-images/modes/",
               "threatexchange/python-threatexchange/threatexchange/tests/hashing/resources/sample-b.jpg",
               "threatexchange/python-threatexchange/threatexchange/tests/hashing/resources/letterboxed_sample-b.jpg"],
    "ukbench00120": [_UK + "base_images/ukbench00120.jpg", _UK + "mixed_images/ukbench00120",
                     _UK + "mixed_nested_images/lvl1/ukbench00120.jpg", _UK + "mixed_nested_images/lvl1/lvl2a/ukbench00120",
                     _UK + "mixed_nested_images/lvl1/lvl2b/ukbench00120", _UK + "mixed_nested_images/ukbench00120",
                     _UK + "ukbench00120_gray.jpg", _UK + "alpha_channel_image.png"],
    "ukbench09268": [_UK + "base_images/ukbench09268.jpg", _UK + "mixed_images/ukbench09268.jpg",
                     _UK + "mixed_nested_images/lvl1/lvl2b/ukbench09268.jpg"],
    "ukbench09380": [_UK + "base_images/ukbench09380.jpg", _UK + "formats_images/ukbench09380"],
    "forest": ["jenssegers/tests/images/forest/", "jenssegers/tests/images/orientation/mismatch-1.jpg"],
    "office desk": ["jenssegers/tests/images/orientation/match-", "jenssegers/tests/images/orientation/mismatch-3.jpg",
                    "jenssegers/tests/images/office/tumblr_ndyfdoR6Wp1tubinno1_1280.jpg"],
    "office sofa": ["jenssegers/tests/images/office/tumblr_ndyfnr7lk21tubinno1_1280.jpg",
                    "jenssegers/tests/images/orientation/mismatch-2.jpg"],
    "berlin 315673741": ["imagededup/streamlit_webapp_uploads_history/berlin_315673741_1.jpg",
                         "imagededup/streamlit_webapp_uploads_history/berlin_31567374_1.jpg"],
}


def labelled_truth() -> dict[str, tuple[str | None, str]]:
    truth = {}
    for dirpath, _dirs, files in os.walk(LABELLED):
        for f in files:
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, LABELLED)
            group = next((g for g, prefixes in LABELLED_GROUPS.items() if any(rel.startswith(p) for p in prefixes)), None)
            truth[path] = (group, os.path.basename(path))
    return truth


# -- scoring --------------------------------------------------------------------------------------------------


def true_pairs(truth: dict) -> set[frozenset]:
    by_group = defaultdict(list)
    for path, (g, _name) in truth.items():
        if g is not None:
            by_group[g].append(path)
    return {frozenset(p) for members in by_group.values() for p in itertools.combinations(sorted(members), 2)}


def score(found: set[frozenset], truth: dict, errors: set[str] = frozenset()) -> dict:
    """Pairwise precision/recall/F1 over all file pairs (files that failed to decode are out of the count)."""
    truth = {p: v for p, v in truth.items() if p not in errors}
    want = true_pairs(truth)
    found = {p for p in found if p <= truth.keys()}
    tp = len(found & want)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(want) if want else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # per family: is each variant found together with its original?
    originals = {g: p for p, (g, name) in truth.items() if name == "original"}
    per_family = defaultdict(lambda: [0, 0])
    for path, (g, name) in truth.items():
        if name in VARIANTS:
            family = VARIANTS[name][0]
            per_family[family][1] += 1
            per_family[family][0] += frozenset((path, originals[g])) in found
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "found": len(found), "want": len(want),
            "false": len(found) - tp, "families": {f: hit / n for f, (hit, n) in per_family.items()}}


def group_pairs(groups: list[list[str]]) -> set[frozenset]:
    return {frozenset(p) for g in groups for p in itertools.combinations(sorted(set(g)), 2)}


def run_simfind(folder: str, index_dir: str, thresholds) -> dict:
    env = {**os.environ, "SIMFIND_INDEX": index_dir, "PYTHONPATH": ROOT}
    t0 = time.perf_counter()
    subprocess.run(SIMFIND + ["index", folder, "--no-clip", "--quiet"], check=True, env=env)
    t_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    default = json.loads(subprocess.run(SIMFIND + ["dupes", "--format", "json", "--quiet"], check=True, env=env,
                                        capture_output=True, text=True).stdout)
    t_dupes = time.perf_counter() - t0
    sweep = {}
    for t in thresholds:
        out = subprocess.run(SIMFIND + ["dupes", "--format", "json", "--quiet", "--threshold", str(t)],
                             check=True, env=env, capture_output=True, text=True).stdout
        sweep[t] = json.loads(out)
    info = json.loads(subprocess.run(SIMFIND + ["info", "--errors", "--format", "json"], check=True, env=env,
                                     capture_output=True, text=True).stdout)
    errors = {e["path"] for e in info["error_files"]}
    return {"default": default, "sweep": sweep, "t_index": t_index, "t_dupes": t_dupes, "errors": errors}


def _groups(report: dict) -> list[list[str]]:
    return [[f["path"] for f in g["files"]] for g in report["groups"]]


def run_imagededup(folder: str, method: str) -> tuple[set[frozenset], float]:
    import logging

    logging.disable(logging.WARNING)
    from imagededup import methods

    hasher = getattr(methods, method)(verbose=False)
    t0 = time.perf_counter()
    encodings = hasher.encode_images(image_dir=folder, recursive=True)
    dupes = hasher.find_duplicates(encoding_map=encodings)
    elapsed = time.perf_counter() - t0
    pairs = {frozenset((os.path.join(folder, a), os.path.join(folder, b))) for a, bs in dupes.items() for b in bs}
    return pairs, elapsed


def query_recall(index_dir: str, truth: dict, limit: int, seed: int) -> dict:
    """For each sampled variant, is its original in the top 1 / top 5 among the files that are not variants?
    The sample is stratified: `limit` split evenly over the variant kinds (a plain random sample of 100 held a
    handful of each kind and read 1.000 where whole kinds score 0.87-0.90)."""
    from simfind import api

    originals = {g: p for p, (g, name) in truth.items() if name == "original"}
    kinds = [name for name in VARIANTS if name != "byte copy"]
    rng = random.Random(seed)
    variants = []
    for kind in kinds:
        of_kind = sorted(p for p, (g, name) in truth.items() if name == kind)
        rng.shuffle(of_kind)
        variants += of_kind[: max(1, limit // len(kinds))]
    references = {p for p, (g, name) in truth.items() if name in ("original", "negative")}
    hits1 = hits5 = n = 0
    per_family = defaultdict(lambda: [0, 0, 0])  # hits @1, hits @5, queries
    t0 = time.perf_counter()
    for path in variants:
        g, name = truth[path]
        try:
            report = api.query(path, index_dir=index_dir, k=60)
        except Exception:  # a variant that cannot be queried counts as a miss
            report = None
        ranked = [m.file.path for m in report.results if m.file.path in references][:5] if report else []
        n += 1
        hits1 += ranked[:1] == [originals[g]]
        hits5 += originals[g] in ranked
        per_family[VARIANTS[name][0]][2] += 1
        per_family[VARIANTS[name][0]][0] += originals[g] in ranked[:1]
        per_family[VARIANTS[name][0]][1] += originals[g] in ranked
    return {"n": n, "r1": hits1 / max(n, 1), "r5": hits5 / max(n, 1), "ms": (time.perf_counter() - t0) * 1000 / max(n, 1),
            "families": {f: h1 / c for f, (h1, _h5, c) in per_family.items()},
            "families5": {f: h5 / c for f, (_h1, h5, c) in per_family.items()}}


# -- report ---------------------------------------------------------------------------------------------------


def _row(name: str, s: dict, seconds: float | None, families: list[str]) -> str:
    t = f"{seconds:.1f}" if seconds is not None else "-"
    fam = " | ".join(f"{s['families'].get(f, float('nan')):.2f}" for f in families)
    return f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['false']} | {t} | {fam} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=SIZES, default="full")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "quality.md"))
    ap.add_argument("--queries", type=int, default=240, help="variants to query for recall@k (split evenly over kinds)")
    ap.add_argument("--no-imagededup", action="store_true")
    ap.add_argument("--keep", help="build the set in this folder and keep it")
    a = ap.parse_args()
    if not os.path.isdir(PHOTOS):
        print(f"skipped: {PHOTOS} is absent (the benchmark needs the shared real photos)")
        return 0
    n_orig, n_neg = SIZES[a.size]
    work = tempfile.mkdtemp(prefix="simfind-quality-")
    try:
        folder = a.keep or os.path.join(work, "set")
        t0 = time.perf_counter()
        truth = build_set(folder, n_orig, n_neg, a.seed)
        n_files = len(truth)
        print(f"set: {n_orig} originals x {len(VARIANTS)} variants + {n_files - n_orig * (1 + len(VARIANTS))} "
              f"negatives = {n_files} files ({time.perf_counter() - t0:.0f} s to build)", flush=True)
        families = sorted({f for f, _ in VARIANTS.values()}, key=lambda f: (f in HARD, f))
        lines = [f"# simfind near-duplicate quality (`python bench/bench_quality.py --size {a.size} --seed {a.seed}`)",
                 "", f"{n_files} files: {n_orig} originals from ../shared/data/photos, each with {len(VARIANTS)} variants, "
                 f"plus {n_files - n_orig * (1 + len(VARIANTS))} distinct photos as negatives. Pairwise scores over all "
                 "file pairs; family columns: recall of each variant with its original. Times are wall seconds "
                 f"on this machine ({os.cpu_count()} cores), index + grouping.", ""]
        header = ("| tool | precision | recall | F1 | false pairs | seconds | " + " | ".join(families) + " |\n"
                  + "|---" * (6 + len(families)) + "|")
        lines += [header]
        index_dir = os.path.join(work, "index")
        sim = run_simfind(folder, index_dir, SWEEP)
        s = score(group_pairs(_groups(sim["default"])), truth, sim["errors"])
        lines.append(_row(f"simfind --by {sim['default']['by']} (default {sim['default']['threshold']})", s,
                          sim["t_index"] + sim["t_dupes"], families))
        print(lines[-1], flush=True)
        timing = f"simfind wall time: index {sim['t_index']:.1f} s + dupes {sim['t_dupes']:.1f} s (subprocesses, start-up included)"
        print(timing, flush=True)
        if not a.no_imagededup:
            try:
                import imagededup  # noqa: F401
            except ImportError:
                lines.append("| imagededup | not installed (`pip install imagededup`) |")
            else:
                for method in ("PHash", "DHash"):
                    pairs, secs = run_imagededup(folder, method)
                    lines.append(_row(f"imagededup {method} (defaults)", score(pairs, truth, sim["errors"]), secs, families))
                    print(lines[-1], flush=True)
        lines += ["", timing, "", "## simfind threshold sweep (hash mode)", "", header]
        for t, report in sim["sweep"].items():
            lines.append(_row(f"simfind {t}", score(group_pairs(_groups(report)), truth, sim["errors"]), None, families))
        q = query_recall(index_dir, truth, a.queries, a.seed)
        lines += ["", "## query: is the variant's original the top match among non-variants?", "",
                  f"{q['n']} variants queried (`api.query`, k=60, by {'hash'}): recall@1 {q['r1']:.3f}, "
                  f"recall@5 {q['r5']:.3f}, {q['ms']:.0f} ms per query (in-process, index already on disk)", "",
                  "| family | " + " | ".join(families) + " |", "|---" * (1 + len(families)) + "|",
                  "| recall@1 | " + " | ".join(f"{q['families'].get(f, float('nan')):.2f}" for f in families) + " |",
                  "| recall@5 | " + " | ".join(f"{q['families5'].get(f, float('nan')):.2f}" for f in families) + " |"]
        # the real labelled cases
        if os.path.isdir(LABELLED):
            ltruth = labelled_truth()
            lsim = run_simfind(LABELLED, os.path.join(work, "labelled-index"), ())
            ls = score(group_pairs(_groups(lsim["default"])), ltruth, lsim["errors"])
            want = true_pairs({p: v for p, v in ltruth.items() if p not in lsim["errors"]})
            found = group_pairs(_groups(lsim["default"]))
            missed = defaultdict(int)
            for p in want - found:
                missed[ltruth[next(iter(p))][0]] += 1
            false = sorted(" ~ ".join(sorted(os.path.basename(x) for x in p)) for p in found - want)
            lines += ["", "## ../shared/data/labelled (ground truth in this script)", "",
                      f"simfind --by hash at its default: precision {ls['precision']:.3f}, recall {ls['recall']:.3f}, "
                      f"F1 {ls['f1']:.3f} ({ls['tp']} of {ls['want']} copy pairs, {ls['false']} false pairs, "
                      f"{len(lsim['errors'])} files recorded as errors).", "",
                      "Missed pairs by group: " + (", ".join(f"{g} {n}" for g, n in sorted(missed.items())) or "none"),
                      "", "False pairs: " + ("; ".join(false[:20]) or "none")]
        text = "\n".join(lines) + "\n"
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as fh:
            fh.write(text)
        print("\n".join(lines[lines.index(header) - 1 :]))
        print(f"\nreport written to {a.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
