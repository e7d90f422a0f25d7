"""How `dupes` grows with the collection: time and memory at 10k, 30k and 100k files, and the planted copies found.

The collection is generated from the shared real photos: each distinct picture is a 2x2 collage, split at a
random point, of four of the 180 cells (a 3x3 grid) of its folder's 20 photos (each photo in one folder only), so
that two pictures share at most about a quarter of their content; 240-400 px on the long side, colour-jittered,
JPEG quality 70-92; in every folder of 1,000 files, 20 (2%) are copies of another picture of that folder (resized,
re-encoded, slightly cropped, brightened or mirrored, each drawn over a range). Sizes are prefixes of one
collection (the first 10, 30, 100 folders), so each larger run holds the smaller ones. The collection is written
once under --cache and reused.

For each size: `simfind index --no-clip` and `simfind dupes --format json`, each a real subprocess; the time and
the peak memory (maximum resident set) of dupes; the share of planted copies grouped with their original; pairs
between generated pictures (false pairs, unless two collages share enough). Then the growth exponent of dupes
from the smallest to the largest size (and over the top step), and the time it would take at 1,000,000 files at
the top step's growth.

Then `query` on the same index (queries()): one picture at a time, indexed and new, and a batch of 100.

Targets (issue 14): dupes on 100k files within 120 s and 2 GB; growth no faster than n^1.2 from 10k to 100k.
(issue 17): a query at 100k under 0.5 s and 200 MB, start-up included; a batch under 20 ms per image.
Usage: python bench/bench_scale.py [--sizes 10000,30000,100000] [--cache DIR] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_quality import shuffled_photos  # noqa: E402

PER_FOLDER = 1000
COPIES_PER_FOLDER = 20
GRID = 3  # each photo gives GRID x GRID cells
SIMFIND = [sys.executable, "-m", "simfind"]


def _jitter(im, rng: random.Random):
    from PIL import ImageEnhance

    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        im = enhance(im).enhance(rng.uniform(0.8, 1.2))
    return im


def _folder(args: tuple[str, int, list[str], int]) -> None:
    """Writes folder number `k`: PER_FOLDER - COPIES_PER_FOLDER distinct pictures from `photos`, then the copies."""
    from PIL import Image, ImageOps

    out, k, photos, seed = args
    rng = random.Random(seed * 1_000_003 + k)
    folder = os.path.join(out, f"f{k:03d}")
    tmp = folder + ".part"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    cells = []
    for path in photos:
        with Image.open(path) as src:
            src.draft("RGB", (1200, 1200))
            im = ImageOps.exif_transpose(src).convert("RGB")
        w, h = im.size
        cells += [im.crop((w * (c % GRID) // GRID, h * (c // GRID) // GRID, w * (c % GRID + 1) // GRID,
                           h * (c // GRID + 1) // GRID)) for c in range(GRID * GRID)]
    made = []
    for n in range(PER_FOLDER - COPIES_PER_FOLDER):
        # four cells of the folder's photos as a 2x2 collage split at a random point: two pictures share at most
        # a quarter or so of their content, the way two different photos of one place share some of it
        side = rng.randint(240, 400)
        w, h = side, round(side * rng.uniform(0.6, 1.0))
        if rng.random() < 0.5:
            w, h = h, w
        sx, sy = round(w * rng.uniform(0.35, 0.65)), round(h * rng.uniform(0.35, 0.65))
        pic = Image.new("RGB", (w, h))
        for cell, box in zip(rng.sample(cells, 4), ((0, 0, sx, sy), (sx, 0, w, sy), (0, sy, sx, h), (sx, sy, w, h))):
            pic.paste(ImageOps.fit(cell, (box[2] - box[0], box[3] - box[1])), box[:2])
        pic = _jitter(pic, rng)
        name = os.path.join(tmp, f"p{n:04d}.jpg")
        pic.save(name, "JPEG", quality=rng.randint(70, 92))
        made.append(name)
    for c in range(COPIES_PER_FOLDER):
        original = rng.choice(made)
        with Image.open(original) as src:
            pic = src.convert("RGB")
        kind = rng.choice(["resize", "crop", "bright", "mirror"])
        w, h = pic.size
        if kind == "resize":
            f = rng.uniform(0.5, 0.9)
            pic = pic.resize((round(w * f), round(h * f)), Image.LANCZOS)
        elif kind == "crop":
            f = rng.uniform(0.9, 0.97)
            cw, ch = round(w * f), round(h * f)
            x, y = rng.randrange(0, w - cw + 1), rng.randrange(0, h - ch + 1)
            pic = pic.crop((x, y, x + cw, y + ch))
        elif kind == "bright":
            pic = _jitter(pic, rng)
        else:
            pic = pic.transpose(Image.FLIP_LEFT_RIGHT)
        pic.save(os.path.join(tmp, f"c{c:02d}_{os.path.basename(original)}"), "JPEG", quality=rng.randint(60, 90))
    os.replace(tmp, folder)


def collection(cache: str, folders: int, seed: int) -> list[str] | None:
    """The first `folders` folders of the collection under `cache`, written where missing."""
    drawn = shuffled_photos(seed)
    if drawn is None:
        return None
    _rng, photos = drawn
    wanted = [os.path.join(cache, f"f{k:03d}") for k in range(folders)]
    missing = [k for k, f in enumerate(wanted) if not os.path.isdir(f)]
    if missing:
        from joblib import Parallel, delayed

        print(f"writing {len(missing) * PER_FOLDER:,} files under {cache} (once) ...", flush=True)
        t = time.perf_counter()
        per = math.ceil((PER_FOLDER - COPIES_PER_FOLDER) / GRID ** 2)  # photos per folder, each used once

        def photos_of(k: int) -> list[str]:
            return [photos[(k * per + i) % len(photos)] for i in range(per)]

        Parallel(n_jobs=os.cpu_count() or 1)(delayed(_folder)((cache, k, photos_of(k), seed)) for k in missing)
        print(f"  written in {time.perf_counter() - t:.0f} s", flush=True)
    return wanted


def _run(cmd: list[str]) -> tuple[float, float, bytes]:
    """(seconds, peak resident MB, stdout) of a subprocess, its memory read from wait4."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    chunks = []
    while True:
        data = proc.stdout.read(1 << 20)
        if not data:
            break
        chunks.append(data)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed with exit {code}")
    return seconds, usage.ru_maxrss / 1024, b"".join(chunks)


def measure(folders: list[str], index_dir: str) -> dict:
    shutil.rmtree(index_dir, ignore_errors=True)
    t_index, mb_index, _ = _run([*SIMFIND, "index", *folders, "--no-clip", "--quiet", "--index", index_dir])
    t_dupes, mb_dupes, out = _run([*SIMFIND, "dupes", "--index", index_dir, "--format", "json"])
    full = [[f["path"] for f in g["files"]] for g in json.loads(out)["groups"]]
    groups = [[os.path.basename(p) for p in g] for g in full]
    found = planted = 0
    group_of = {p: gi for gi, g in enumerate(full) for p in g}
    for folder in folders:
        for name in os.listdir(folder):
            if name.startswith("c"):
                planted += 1
                copy, original = os.path.join(folder, name), os.path.join(folder, name.split("_", 1)[1])
                found += copy in group_of and group_of.get(original) == group_of[copy]
    # pairs between two generated pictures: members of a group other than a planted copy and its original
    extra = 0
    for g in groups:
        distinct = {n.split("_", 1)[1] if n.startswith("c") else n for n in g}
        extra += len(distinct) * (len(distinct) - 1) // 2
    return {"files": len(folders) * PER_FOLDER, "index_s": t_index, "index_mb": mb_index, "dupes_s": t_dupes,
            "dupes_mb": mb_dupes, "recall": found / max(1, planted), "planted": planted, "extra_pairs": extra,
            **queries(folders, index_dir)}


QUERY_RUNS = 5
BATCH = 100


def _new_copy(original: str, out: str, rng: random.Random) -> str:
    """A copy of an indexed picture that the index does not hold: resized and re-encoded."""
    from PIL import Image

    with Image.open(original) as src:
        pic = src.convert("RGB")
    f = rng.uniform(0.6, 0.9)
    pic = pic.resize((max(1, round(pic.width * f)), max(1, round(pic.height * f))), Image.LANCZOS)
    pic.save(out, "JPEG", quality=rng.randint(60, 85))
    return out


def queries(folders: list[str], index_dir: str) -> dict:
    """CLI `query` on the index: the median time and peak memory of a query for an indexed picture (a planted
    copy) and for a new one (a fresh copy of an indexed picture), each a process of its own, start-up included;
    and a batch of BATCH images (half indexed, half new) in one run, per image, with the batch of one taken off.
    The batch's answers are checked: each planted copy's lists its original, each new copy's its source."""
    rng = random.Random(7)
    planted = sorted(os.path.join(f, n) for f in folders for n in os.listdir(f) if n.startswith("c"))
    sources = sorted(os.path.join(f, n) for f in folders for n in os.listdir(f) if n.startswith("p"))
    with tempfile.TemporaryDirectory() as tmp:
        indexed = rng.sample(planted, BATCH // 2)
        picked = rng.sample(sources, BATCH // 2)
        new = [_new_copy(p, os.path.join(tmp, f"new{k:03d}.jpg"), rng) for k, p in enumerate(picked)]

        def one(path: str) -> tuple[float, float]:
            t, mb, _ = _run([*SIMFIND, "query", path, "-k", "5", "--index", index_dir, "--format", "json"])
            return t, mb

        runs = {"indexed": [one(p) for p in indexed[:QUERY_RUNS]], "new": [one(p) for p in new[:QUERY_RUNS]]}
        listing = os.path.join(tmp, "batch.txt")
        with open(listing, "w") as fh:
            fh.write("\n".join(indexed + new) + "\n")
        t_batch, mb_batch, out = _run([*SIMFIND, "query", "--from-file", listing, "-k", "5", "--index", index_dir,
                                       "--format", "json"])
        with open(os.path.join(tmp, "one.txt"), "w") as fh:
            fh.write(indexed[0] + "\n")
        t_one, _mb, _ = _run([*SIMFIND, "query", "--from-file", os.path.join(tmp, "one.txt"), "-k", "5", "--index",
                              index_dir, "--format", "json"])
        answers = [json.loads(line) for line in out.decode().splitlines()]
        wanted = [os.path.join(os.path.dirname(p), os.path.basename(p).split("_", 1)[1]) for p in indexed] + picked
        hits = sum(any(r["path"] == w for r in a["results"]) for a, w in zip(answers, wanted))
    med = {k: (statistics.median(t for t, _ in v), max(mb for _, mb in v)) for k, v in runs.items()}
    return {"query_indexed_s": med["indexed"][0], "query_indexed_mb": med["indexed"][1],
            "query_new_s": med["new"][0], "query_new_mb": med["new"][1], "batch_s": t_batch, "batch_mb": mb_batch,
            "batch_per_image_ms": 1000 * (t_batch - t_one) / (BATCH - 1), "batch_found": hits / BATCH}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,30000,100000")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "simfind-scale"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    folders = collection(os.path.join(args.cache, f"seed{args.seed}"), math.ceil(sizes[-1] / PER_FOLDER), args.seed)
    if folders is None:
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            row = measure(folders[: math.ceil(n / PER_FOLDER)], os.path.join(tmp, f"idx{n}"))
            rows.append(row)
            print(f"{row['files']:>8,} files: index {row['index_s']:6.1f} s ({row['index_mb']:,.0f} MB), "
                  f"dupes {row['dupes_s']:6.1f} s ({row['dupes_mb']:,.0f} MB); planted copies found "
                  f"{row['recall']:.3f} of {row['planted']:,}; pairs between generated pictures "
                  f"{row['extra_pairs']:,}", flush=True)
            print(f"{'':>8}        query (median of {QUERY_RUNS}, start-up included): indexed picture "
                  f"{row['query_indexed_s']:.2f} s ({row['query_indexed_mb']:,.0f} MB), new picture "
                  f"{row['query_new_s']:.2f} s ({row['query_new_mb']:,.0f} MB); batch of {BATCH} "
                  f"{row['batch_s']:.2f} s ({row['batch_mb']:,.0f} MB), {row['batch_per_image_ms']:.1f} ms per "
                  f"image; copies' sources listed {row['batch_found']:.2f}", flush=True)
    if len(rows) >= 2:
        lo, hi = rows[0], rows[-1]
        growth = math.log(hi["dupes_s"] / lo["dupes_s"]) / math.log(hi["files"] / lo["files"])
        top = math.log(rows[-1]["dupes_s"] / rows[-2]["dupes_s"]) / math.log(rows[-1]["files"] / rows[-2]["files"])
        at_1m = hi["dupes_s"] * (1_000_000 / hi["files"]) ** top
        print(f"dupes growth: n^{growth:.2f} from {lo['files']:,} to {hi['files']:,} files (n^{top:.2f} over the "
              f"top step); at 1,000,000 files about {at_1m / 60:,.0f} min at the top step's growth")
        big = rows[-1]
        if big["files"] >= 100_000:
            ok = big["dupes_s"] <= 120 and big["dupes_mb"] <= 2048 and growth <= 1.2
            print(f"target (100k within 120 s and 2 GB, growth <= n^1.2): {'met' if ok else 'NOT met'}")
            ok = (big["query_indexed_s"] < 0.5 and big["query_new_s"] < 0.5 and big["query_indexed_mb"] < 200
                  and big["query_new_mb"] < 200 and big["batch_per_image_ms"] < 20)
            print(f"query target (100k: under 0.5 s and 200 MB, a batch under 20 ms per image): "
                  f"{'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
