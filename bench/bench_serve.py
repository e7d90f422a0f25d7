"""Latency of `POST /query` on a running `simfind serve`, next to the same query through the CLI.

Hash mode on --files generated pictures (bench_scale.py's collection): queries by an indexed picture's bytes and
by a new picture (an indexed one re-encoded and resized: bytes the index does not hold), median and p95 of
--requests each, one at a time, after one warm-up request. Then with the ViT-B-32 `local-dir:` model (random
weights: the cost of trained ones) on the first --clip-files of them. The CLI figure is a `simfind query`
subprocess per query (start-up and the model's load included), median of 5.
Usage: python bench/bench_serve.py [--files N] [--clip-files N] [--requests N]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from bench_scale import PER_FOLDER, collection  # noqa: E402

SIMFIND = [sys.executable, "-m", "simfind"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_picture(path: str, rng: random.Random) -> bytes:
    from PIL import Image

    im = Image.open(path).convert("RGB")
    scale = rng.uniform(0.6, 0.9)
    im = im.resize((max(8, round(im.width * scale)), max(8, round(im.height * scale))))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=rng.randint(60, 85))
    return buf.getvalue()


def latencies(url: str, bodies: list[bytes]) -> list[float]:
    import httpx

    out = []
    with httpx.Client(timeout=120) as client:
        client.post(url + "/query", files={"image": ("q.jpg", bodies[0])}, data={"k": "5"})  # warm-up
        for body in bodies:
            t = time.perf_counter()
            r = client.post(url + "/query", files={"image": ("q.jpg", body)}, data={"k": "5"})
            out.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
    return out


def cli_seconds(index_dir: str, paths: list[str]) -> float:
    times = []
    for p in paths[:5]:
        t = time.perf_counter()
        subprocess.run([*SIMFIND, "query", p, "--index", index_dir, "-k", "5", "--format", "json", "--quiet"],
                       check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, math.ceil(q * len(xs)) - 1)]


def measure(name: str, index_dir: str, files: list[str], n: int, work: str, rng: random.Random) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*SIMFIND, "serve", "--index", index_dir, "--port", str(port)],
                              stderr=subprocess.DEVNULL)
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        picked = rng.sample(files, n)
        indexed = latencies(url, [open(p, "rb").read() for p in picked])
        fresh = [new_picture(p, rng) for p in picked]
        new = latencies(url, fresh)
        fresh_paths = []
        for k, data in enumerate(fresh[:5]):
            fresh_paths.append(os.path.join(work, f"new{k}.jpg"))
            with open(fresh_paths[-1], "wb") as fh:
                fh.write(data)
        cli_indexed, cli_new = cli_seconds(index_dir, picked), cli_seconds(index_dir, fresh_paths)
    finally:
        server.terminate()
        server.wait(30)
    print(f"{name}: POST /query, indexed picture's bytes: median {1000 * statistics.median(indexed):.0f} ms, "
          f"p95 {1000 * pct(indexed, 0.95):.0f} ms; new picture: median {1000 * statistics.median(new):.0f} ms, "
          f"p95 {1000 * pct(new, 0.95):.0f} ms ({n} each); CLI query {cli_indexed:.2f} s / {cli_new:.2f} s",
          flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--clip-files", type=int, default=1_000)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "simfind-scale", "seed0"))
    a = ap.parse_args()
    try:
        import httpx  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        print("serve bench: skipped, simfind[serve] and httpx are not installed")
        return 0
    folders = collection(a.cache, math.ceil(a.files / PER_FOLDER), 0)
    if folders is None:
        print("serve bench: skipped, the shared photos are not on this machine")
        return 0
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as work:
        index_dir = os.path.join(work, "idx")
        subprocess.run([*SIMFIND, "index", *folders, "--no-clip", "--quiet", "--index", index_dir], check=True)
        files = sorted(os.path.join(f, n) for f in folders for n in os.listdir(f))
        measure(f"hash mode, {len(files):,} files", index_dir, files, a.requests, work, rng)
        import open_clip
        import torch

        from simfind.embed import write_local_dir

        cfg = open_clip.get_model_config("ViT-B-32")
        torch.manual_seed(0)
        spec = write_local_dir(open_clip.CLIP(**cfg), cfg, os.path.join(work, "vitb32"))
        clip_dir = os.path.join(work, "clip-idx")
        first = folders[: max(1, a.clip_files // PER_FOLDER)]
        subprocess.run([*SIMFIND, "index", *first, "--model", spec, "--quiet", "--index", clip_dir], check=True)
        clip_files = sorted(os.path.join(f, n) for f in first for n in os.listdir(f))
        measure(f"CLIP ViT-B-32 (random weights), {len(clip_files):,} files", clip_dir, clip_files, a.requests, work,
                rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
