"""Index speed against the decode floor, measured in one run on the same files.

floor   = a plain parallel Pillow decode of every file (joblib processes, same workers and the same chunks,
          handed out in the same order as simfind's (pipeline.plan: largest files first), JPEG draft mode to
          the same size simfind's hashes use): the least any indexer must do. It runs as its own process
          (bench/decode_floor.py), so like simfind it starts an interpreter and a fresh worker pool each round;
          run inside this script, rounds 2-5 reused round 1's warm workers (joblib's pool outlives a call).
          That warm-pool time is still printed, as "decode work alone": the decode without any start-up.
index   = `simfind index DIR --no-clip` end to end (a real subprocess: start-up, scan, hashing, SQLite).
reindex = the same command again with nothing changed (stat only).
Each is run --rounds times (default 5), floor and index alternating, into a fresh index each round; the medians
are compared (this machine is noisy: a single round has read anywhere from 1.26x to 1.51x).

Targets (issue 2): index time <= 1.5x floor; reindex < 5% of the first index.
Usage: python bench/bench_index.py [DIR ...] [--workers N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from simfind.pipeline import HASH_DRAFT_SIZE, default_workers, plan  # noqa: E402
from simfind.scan import scan  # noqa: E402

DEFAULT_DIR = os.path.join(ROOT, "..", "shared", "data", "photos")


def floor(plan_file: str, workers: int) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(HERE, "decode_floor.py"), plan_file, str(workers),
                    str(HASH_DRAFT_SIZE)], check=True)
    return time.perf_counter() - t


def warm_floor(plan_file: str, workers: int) -> float:
    """The same decode in this process on a pool already started: the decode work alone, no start-up."""
    sys.path.insert(0, HERE)
    from decode_floor import decode_chunk
    from joblib import Parallel, delayed

    with open(plan_file) as fh:
        chunks = json.load(fh)
    pool = Parallel(n_jobs=workers, backend="loky", batch_size=1)
    pool(delayed(decode_chunk)(c[:1], HASH_DRAFT_SIZE) for c in chunks[: 2 * workers])  # start the workers
    t = time.perf_counter()
    pool(delayed(decode_chunk)(c, HASH_DRAFT_SIZE) for c in chunks)
    return time.perf_counter() - t


def simfind(args: list[str]) -> float:
    exe = os.path.join(os.path.dirname(sys.executable), "simfind")
    t = time.perf_counter()
    subprocess.run([exe, *args], check=True)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*", default=[DEFAULT_DIR])
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    missing = [d for d in a.dirs if not os.path.isdir(d)]
    if missing:
        print(f"bench: skipped, no such folder: {', '.join(missing)} (the shared photo set is not on this machine)")
        return 0
    refs = scan(a.dirs).files
    paths = [f.path for f in refs]
    total_bytes = 0
    for p in paths:  # warm the page cache so every contender reads from memory
        with open(p, "rb") as fh:
            total_bytes += len(fh.read())
    n = len(paths)
    print(f"index bench: {n} files, {total_bytes / 1e6:.0f} MB, {a.workers} workers, draft {HASH_DRAFT_SIZE}px")
    work = tempfile.mkdtemp(prefix="simfind-bench-")
    plan_file = os.path.join(work, "plan.json")
    with open(plan_file, "w") as fh:
        json.dump([[r.path for r in chunk] for chunk in plan(refs, a.workers)], fh)
    floors, warm, indexes, reindexes = [], [], [], []
    for _ in range(a.rounds):
        floors.append(floor(plan_file, a.workers))
        warm.append(warm_floor(plan_file, a.workers))
        with tempfile.TemporaryDirectory() as idx:
            common = ["--index", idx, "--no-clip", "--quiet", "--workers", str(a.workers)]
            indexes.append(simfind(["index", *a.dirs, *common]))
            reindexes.append(simfind(["index", *a.dirs, *common]))
    t_floor, t_warm, t_index, t_re = (statistics.median(t) for t in (floors, warm, indexes, reindexes))
    print(f"rounds: {a.rounds}; floor {' '.join(f'{t:.2f}' for t in floors)} s, index "
          f"{' '.join(f'{t:.2f}' for t in indexes)} s, per-round ratios "
          f"{' '.join(f'{i / f:.2f}' for i, f in zip(indexes, floors))}; medians below")
    rows = [
        ("decode floor", t_floor, "its own process, like simfind: start-up, imports, a fresh pool"),
        ("decode work alone", t_warm, "the same decode on a pool already started (reference)"),
        ("simfind index (hash-only)", t_index, f"{t_index / t_floor:.2f}x floor (target <= 1.50x), "
                                              f"{t_index / t_warm:.2f}x the decode work alone"),
        ("simfind re-index, unchanged", t_re, f"{100 * t_re / t_index:.1f}% of index (target < 5%)"),
    ]
    print(f"{'':30} {'seconds':>8} {'files/s':>9}")
    for name, t, note in rows:
        print(f"{name:30} {t:8.2f} {n / t:9.0f}  {note}")
    shutil.rmtree(work)
    ok = t_index <= 1.5 * t_floor and t_re < 0.05 * t_index
    print("targets met" if ok else "TARGETS MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
