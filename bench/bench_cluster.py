"""`simfind index --scheduler` against the local pool, and Client against joblib's dask backend, in one run.

- hash-only: `simfind index DIR --no-clip` (a subprocess, start-up included) with the local worker pool, and the
  same through `--scheduler` to a LocalCluster of N single-threaded worker processes (N = the local pool's
  workers), started beforehand as a cluster would be. Rounds alternate; medians. Target: within 1.3x.
- the runner: the same chunks of the same files mapped with distributed.Client (simfind's DaskRunner) and with
  joblib's dask backend (Parallel(return_as="generator_unordered") under parallel_config(backend="dask")), on
  the same cluster: why cluster.py uses the Client directly.
- CLIP: files/s of `index` with the ViT-B-32 `local-dir:` model (random weights: the cost of trained ones) on
  the first --clip-images photos, locally (model in the command, decode workers beside it) and on the cluster
  (the model loaded once per worker, the forward on the workers).
Usage: python bench/bench_cluster.py [DIR] [--rounds R] [--clip-images N]
"""

from __future__ import annotations

import argparse
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

from simfind.pipeline import default_workers, plan, process_chunk  # noqa: E402
from simfind.scan import scan  # noqa: E402

DEFAULT_DIR = os.path.join(ROOT, "..", "shared", "data", "photos")
EXE = os.path.join(os.path.dirname(sys.executable), "simfind")


def timed_index(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([EXE, "index", *args, "--quiet"], check=True)
    return time.perf_counter() - t


def runner_rates(address: str, refs, workers: int) -> tuple[float, float]:
    """Seconds to map process_chunk over the plan's chunks with DaskRunner, and with joblib's dask backend."""
    import joblib
    from distributed import Client

    from simfind.cluster import connect

    chunks = plan(refs, workers)
    with connect(address) as runner:
        t = time.perf_counter()
        n = sum(len(r) for r in runner.map(process_chunk, chunks))
        t_client = time.perf_counter() - t
    assert n == len(refs)
    with Client(address) as client, joblib.parallel_config(backend="dask"):
        client.run(lambda: None)
        t = time.perf_counter()
        out = joblib.Parallel(return_as="generator_unordered")(joblib.delayed(process_chunk)(c) for c in chunks)
        n = sum(len(r) for r in out)
        t_joblib = time.perf_counter() - t
    assert n == len(refs)
    return t_client, t_joblib


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", default=DEFAULT_DIR)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clip-images", type=int, default=512)
    a = ap.parse_args()
    if not os.path.isdir(a.dir):
        print(f"cluster bench: skipped, no such folder: {a.dir} (the shared photo set is not on this machine)")
        return 0
    try:
        from distributed import LocalCluster
    except ImportError:
        print("cluster bench: skipped, dask[distributed] is not installed (pip install 'simfind[dask]')")
        return 0
    refs = scan([a.dir]).files
    for r in refs:  # warm the page cache so both contenders read from memory
        with open(r.path, "rb") as fh:
            fh.read()
    work = tempfile.mkdtemp(prefix="simfind-cluster-")
    try:
        with LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=50) as cluster:
            address = cluster.scheduler_address
            print(f"cluster bench: {len(refs)} files, local pool of {a.workers} workers against a LocalCluster of "
                  f"{a.workers} single-threaded workers ({address})")
            local, remote = [], []
            for k in range(a.rounds):
                local.append(timed_index([a.dir, "--no-clip", "--workers", str(a.workers),
                                          "--index", os.path.join(work, f"local{k}")]))
                remote.append(timed_index([a.dir, "--no-clip", "--scheduler", address,
                                           "--index", os.path.join(work, f"cluster{k}")]))
            t_local, t_remote = statistics.median(local), statistics.median(remote)
            print(f"rounds: {a.rounds}; local {' '.join(f'{t:.2f}' for t in local)} s, cluster "
                  f"{' '.join(f'{t:.2f}' for t in remote)} s")
            print(f"index --no-clip, local pool      {t_local:6.2f} s  {len(refs) / t_local:6.0f} files/s")
            print(f"index --no-clip, --scheduler     {t_remote:6.2f} s  {len(refs) / t_remote:6.0f} files/s  "
                  f"{t_remote / t_local:.2f}x the local pool (target <= 1.30x)")
            t_client, t_joblib = runner_rates(address, refs, a.workers)
            print(f"runner over the same chunks: distributed.Client {t_client:.2f} s, joblib's dask backend "
                  f"{t_joblib:.2f} s ({t_joblib / t_client:.2f}x)")
            ok = t_remote <= 1.3 * t_local
            clip_rates(a, address, work, refs)
        print("target met" if ok else "TARGET MISSED")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def clip_rates(a, address: str, work: str, refs) -> None:
    import open_clip
    import torch

    from simfind.embed import write_local_dir

    cfg = open_clip.get_model_config("ViT-B-32")
    torch.manual_seed(0)
    spec = write_local_dir(open_clip.CLIP(**cfg), cfg, os.path.join(work, "vitb32"))
    photos = os.path.join(work, "clip-photos")
    os.makedirs(photos)
    for k, r in enumerate(sorted(refs, key=lambda r: r.path)[:a.clip_images]):
        os.symlink(r.path, os.path.join(photos, f"{k:05d}{os.path.splitext(r.path)[1]}"))
    n = min(a.clip_images, len(refs))
    t_local = timed_index([photos, "--model", spec, "--index", os.path.join(work, "clip-local")])
    t_remote = timed_index([photos, "--model", spec, "--scheduler", address, "--index",
                            os.path.join(work, "clip-cluster")])
    print(f"CLIP ViT-B-32 (random weights), {n} photos, whole command incl. model loads: local {n / t_local:.1f} "
          f"files/s ({t_local:.1f} s), --scheduler {n / t_remote:.1f} files/s ({t_remote:.1f} s; "
          f"{a.workers} workers, 1 torch thread each)")


if __name__ == "__main__":
    sys.exit(main())
