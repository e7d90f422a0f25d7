"""CLIP indexing speed against the bare model, bf16 against fp32, and query latency, measured in one run.

- forward: ViT-B-32 (random weights: the same cost as trained ones) on pre-made tensors, same batch size and
  torch threads as indexing.
- index: `api.index` with that model on real photos, end to end (decode and preprocessing in worker
  processes overlapping the forward pass, catalog writes, FAISS file). Steady-state rate from the first to the
  last finished batch, and the whole call including model loading.
- bf16: speed of open_clip's bf16 weights against fp32, and the cosine between their embeddings of real photos.
- query: latency of one CLIP query against 100k synthetic vectors, after the model is loaded.
Usage: python bench/bench_clip.py [--images N] [--batch-size B]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from simfind import api  # noqa: E402
from simfind.embed import cpu_has_bf16, load, prepare, write_local_dir  # noqa: E402
from simfind.pipeline import default_workers  # noqa: E402
from simfind.scan import scan  # noqa: E402

PHOTOS = os.path.join(ROOT, "..", "shared", "data", "photos", "imagenet")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="decode workers (default: simfind's choice)")
    a = ap.parse_args()
    if not os.path.isdir(PHOTOS):
        print(f"bench: skipped, {PHOTOS} is not on this machine")
        return 0
    import open_clip
    import torch

    threads = default_workers()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = open_clip.get_model_config("ViT-B-32")
        torch.manual_seed(0)
        spec = write_local_dir(open_clip.CLIP(**cfg), cfg, os.path.join(tmp, "vitb32"))
        t = time.perf_counter()
        model = load(spec, threads=threads)  # the precision `index` and `query` use by default here
        t_load = time.perf_counter() - t
        chosen = model.precision
        try:
            other = load(spec, threads=threads, precision="fp32" if chosen == "bf16" else "bf16")
        except RuntimeError as e:  # no bf16 kernels on this CPU
            other, other_error = None, e
        models = {chosen: model} | ({other.precision: other} if other else {})

        # bare forward on pre-made tensors; measured before and after the index run, the faster one is compared
        # against (the machine is noisy: a conservative ratio)
        b = a.batch_size
        x = model.tensor(np.random.default_rng(0).integers(0, 256, (b, 224, 224, 3), dtype=np.uint8))
        reps = max(2, a.images // b)

        def forward_rate(precision: str) -> float:
            m = models[precision]
            xx = x.to(m._dtype)
            m.embed_tensor(xx)  # warm-up
            t = time.perf_counter()
            for _ in range(reps):
                m.embed_tensor(xx)
            return reps * b / (time.perf_counter() - t)

        fwd_before = forward_rate(chosen)

        # end to end on real photos (a copy-free subset: the first N files, by symlink-free listing)
        files = scan([PHOTOS]).files[: a.images]
        subset = os.path.join(tmp, "photos")
        os.makedirs(subset)
        for f in files:
            os.link(f.path, os.path.join(subset, os.path.basename(f.path))) if _same_fs(f.path, tmp) else \
                os.symlink(f.path, os.path.join(subset, os.path.basename(f.path)))
        marks: list[float] = []
        t0 = time.perf_counter()
        api.index([subset], index_dir=os.path.join(tmp, "idx"), clip=spec, workers=a.workers, batch_size=b,
                  progress=lambda phase, done, total: marks.append(time.perf_counter()) if phase == "index" else None)
        t_index = time.perf_counter() - t0
        first, last = marks[1], marks[-1]  # marks[0] is the start signal
        steady = (len(files) - b) / (last - first) if last > first else float("nan")
        fwd_rate = max(fwd_before, forward_rate(chosen))

        # bf16 vs fp32 on real photos: agreement, and speed alternated in rounds (medians)
        from PIL import Image

        pix = np.stack([prepare(Image.open(f.path).convert("RGB"), model.preprocess) for f in files[:b]])
        if other is not None:
            fp32, bf16 = (models[p].embed_pixels(pix) for p in ("fp32", "bf16"))
            rounds = [(forward_rate("fp32"), forward_rate("bf16")) for _ in range(3)]
            f32, b16 = (float(np.median([r[k] for r in rounds])) for k in (0, 1))
            cos = (fp32 * bf16).sum(1)
            tf32, tb16 = (models[p].embed_texts(["a red car", "a dog on the grass"]) for p in ("fp32", "bf16"))
            bf16_line = (f"bf16 weights: {b16:.1f} img/s vs fp32 {f32:.1f} img/s ({b16 / f32:.2f}x, medians of 3 "
                         f"alternating rounds); cosine to fp32 on {len(pix)} real photos min {cos.min():.5f}, "
                         f"mean {cos.mean():.5f}, texts min {(tf32 * tb16).sum(1).min():.5f}; probe agreement at "
                         f"load {models['bf16'].agreement:.5f}")
        else:
            bf16_line = f"bf16: not supported here ({other_error})"

        # query latency against 100k vectors, after the model is loaded
        import faiss

        from simfind.knn import build, search
        from simfind.search import query_features, read_query

        # synthetic, but clustered as real embeddings are (2,000 centres): uniform random vectors would be the
        # worst case for an IVF index and unlike any photo collection
        rng = np.random.default_rng(0)
        centres = rng.standard_normal((2000, model.dim)).astype(np.float32)
        vecs = centres[rng.integers(0, 2000, 100_000)] + 0.7 * rng.standard_normal((100_000, model.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        vec_ids = np.arange(100_000, dtype=np.int64)
        t = time.perf_counter()
        index = build(vec_ids, vecs)
        t_build = time.perf_counter() - t
        t = time.perf_counter()
        build(vec_ids, vecs, previous=index)  # the next revision: centroids reused
        t_rebuild = time.perf_counter() - t
        faiss.write_index(index, os.path.join(tmp, "q.faiss"))
        t = time.perf_counter()
        index = faiss.read_index(os.path.join(tmp, "q.faiss"))
        t_read = time.perf_counter() - t
        exact = faiss.IndexFlatIP(model.dim)
        exact.add(vecs)
        near = vecs[rng.choice(100_000, 100)] + 0.02 * rng.standard_normal((100, model.dim)).astype(np.float32)
        far = rng.standard_normal((100, model.dim)).astype(np.float32)  # directions unlike any stored vector

        def recall(q: np.ndarray, wide: bool = False) -> float:
            q = q / np.linalg.norm(q, axis=1, keepdims=True)
            want = exact.search(q, 10)[1]
            got = [search(index, q[i : i + 1], 10, wide=wide)[1][0] for i in range(len(q))]
            return float(np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want)]))

        recall_near, recall_far, recall_far_wide = recall(near), recall(far), recall(far, wide=True)

        def median_ms(fn, n=20) -> float:
            fn()
            lat = []
            for _ in range(n):
                t = time.perf_counter()
                fn()
                lat.append(time.perf_counter() - t)
            return 1000 * float(np.median(lat))

        q_img = pix[:1]
        lat_img = median_ms(lambda: search(index, model.embed_pixels(q_img), 10))
        lat_text = median_ms(lambda: search(index, model.embed_texts(["a red car"]), 10, wide=True))
        lat_file = median_ms(lambda: search(
            index, model.embed_pixels(query_features(files[0].path, read_query(files[0].path),
                                                      model.preprocess).pixels[None]), 10))
        search_ms = median_ms(lambda: search(index, vecs[:1], 10))
        exact_ms = median_ms(lambda: search(exact, vecs[:1], 10))

    print(f"clip bench: ViT-B-32 (random weights, {chosen}), batch {b}, {threads} torch threads, "
          f"{a.workers or 'default'} decode workers, {len(files)} real photos")
    print(f"bare forward (pre-made tensors)   {fwd_rate:7.1f} img/s  (before index {fwd_before:.1f}, best of before/after)")
    print(f"index end to end, steady state    {steady:7.1f} img/s  {steady / fwd_rate:.0%} of bare forward (target >= 90%)")
    print(f"index end to end, whole call      {len(files) / t_index:7.1f} img/s  ({t_index:.1f} s incl. model load and FAISS write)")
    print(bf16_line + f"; CPU has AVX512/AMX-BF16: {cpu_has_bf16()}")
    kind = type(index).__name__
    print(f"query on 100k vectors ({chosen}, median of 20; target < 50 ms): image {lat_img:.1f} ms, text "
          f"{lat_text:.1f} ms, image from its file (decode included) {lat_file:.1f} ms; of which the FAISS search "
          f"{search_ms:.2f} ms ({kind}, nprobe {getattr(index, 'nprobe', '-')}; exact scan {exact_ms:.1f} ms)")
    print(f"{kind} recall@10 against exact search: {recall_near:.3f} for near-copies of stored vectors, "
          f"{recall_far:.3f} for random directions ({recall_far_wide:.3f} with the 4x probe text queries get)")
    print(f"load times: model {t_load:.2f} s, 100k-vector index read {1000 * t_read:.0f} ms; index build "
          f"{t_build:.2f} s, rebuilt for a new revision (centroids reused) {t_rebuild:.2f} s")
    return 0


def _same_fs(a: str, b: str) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


if __name__ == "__main__":
    sys.exit(main())
