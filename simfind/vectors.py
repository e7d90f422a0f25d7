"""FAISS searches. Imported lazily: `simfind --help` and `index` never load FAISS."""

from __future__ import annotations

import os
import tempfile

import numpy as np


# Above this many codes a binary range search goes through an IVF index: the crop-window search holds 168 codes
# per image, and an exact scan of every image against every window grows with the square of the collection
# (5 s at 10,000 images, minutes at 100,000). Measured: candidate search over 30,000 images (5 M window codes)
# 12.9 s instead of 47.3 s, keeping 99.8% of the candidates within the default threshold; with the IVF forced
# on bench/bench_quality.py's 5,272 files, precision 0.989 and recall 0.867 as exact search (0.866).
BINARY_IVF_FROM = 3_000_000  # codes: about 18,000 images


def binary_range(base: np.ndarray, queries: np.ndarray, max_distance: int, *,
                 ivf_from: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (query row, base row, hamming) with hamming <= max_distance, from a FAISS binary range search:
    exact below `ivf_from` base codes (default BINARY_IVF_FROM), through an IVF index (sqrt(n)/4 lists, 8%
    probed) from there."""
    import faiss

    base = np.ascontiguousarray(base, dtype=np.uint8)
    queries = np.ascontiguousarray(queries, dtype=np.uint8)
    if not len(base) or not len(queries):
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    bits = base.shape[1] * 8
    if len(base) < (ivf_from or BINARY_IVF_FROM):
        index = faiss.IndexBinaryFlat(bits)
    else:
        # few lists: training and assigning millions of codes cost more than the scan they save beyond this
        nlist = max(1, min(int(np.sqrt(len(base)) / 4), len(base) // 64))
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, nlist)
        index.train(_training_sample(base, nlist))
        index.nprobe = max(8, nlist // 12)
    index.add(base)
    lims, dist, ids = index.range_search(queries, max_distance + 1)  # keeps distances strictly below the radius
    rows = np.repeat(np.arange(len(queries)), np.diff(lims.astype(np.int64)))
    return rows, ids.astype(np.int64), dist.astype(np.int64)


# -- CLIP vectors -----------------------------------------------------------------------------------------

VECTOR_PREFIX = "clip-"
VECTOR_SUFFIX = ".faiss"
EXACT_PAIRS_UP_TO = 20_000  # above this, pairs come from an IVF index (approximate, far faster)


def vector_file(index_dir: str, rev: int) -> str:
    return os.path.join(index_dir, f"{VECTOR_PREFIX}{rev}{VECTOR_SUFFIX}")


IVF_FROM = 50_000  # one query scans 100k vectors exactly in 9 ms here; an IVF index answers in under 1 ms


def ivf_lists(n: int) -> int:
    return max(1, min(int(4 * np.sqrt(n)), n // 39))  # k-means wants >= 39 points per centroid


def _training_sample(x: np.ndarray, nlist: int) -> np.ndarray:
    """A fixed random sample of 64 rows per list (all rows when there are fewer) to train an IVF on."""
    return x[np.random.default_rng(0).choice(len(x), min(len(x), 64 * nlist), replace=False)]


def build(ids: np.ndarray, vecs: np.ndarray, previous=None):
    """An inner-product index (cosine on L2-normalised vectors) keyed by catalog file ids: exact (flat) below
    IVF_FROM vectors, an IVF index beyond, as autofaiss picks by size (4 sqrt(n) lists, about 3% of them probed).
    The IVF's coarse centroids are taken from `previous` (the last revision's index) while its list count still
    fits, so an incremental index run re-assigns vectors (about 1 s at 100k) instead of re-training (about 5 s)."""
    import faiss

    dim = vecs.shape[1] if vecs.ndim == 2 and vecs.shape[1] else 1
    x = np.ascontiguousarray(vecs, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if len(ids) < IVF_FROM:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if len(ids):
            index.add_with_ids(x, ids)
        return index
    nlist = ivf_lists(len(ids))
    old = _ivf(previous)
    quantizer = faiss.IndexFlatIP(dim)
    if old is not None and old.d == dim and nlist / 2 <= old.nlist <= nlist * 2:
        nlist = old.nlist
        quantizer.add(old.quantizer.reconstruct_n(0, nlist))
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    if quantizer.ntotal:
        index.is_trained = True
    else:
        index.train(_training_sample(x, nlist))
    index.add_with_ids(x, ids)
    index.nprobe = max(16, nlist // 32)
    return index


def _ivf(index):
    import faiss

    if index is None:
        return None
    index = faiss.downcast_index(index)
    return index if isinstance(index, faiss.IndexIVFFlat) else None


def save(index, index_dir: str, rev: int) -> str:
    """Write atomically (temp file + rename) and drop older revisions."""
    import faiss

    path = vector_file(index_dir, rev)
    _write_revision(path, VECTOR_PREFIX, lambda tmp: faiss.write_index(index, tmp))
    return path


def _write_revision(path: str, prefix: str, write) -> None:
    """Write a derived file atomically (`write(tmp)`, then rename into place) and drop the older revisions
    (files in the same folder whose name starts with `prefix`)."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix="." + prefix, suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    for name in os.listdir(folder):
        if name.startswith(prefix) and os.path.join(folder, name) != path:
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def load_or_build(index_dir: str, rev: int, fetch) -> object:
    """The FAISS index for catalog revision `rev`: read from disk, or rebuilt from `fetch()` -> (ids, vecs) and saved
    when the file is missing or behind (an interrupted run, a crash between the catalog commit and the write)."""
    path = vector_file(index_dir, rev)
    if os.path.exists(path):
        index = _read(path)
        if index is not None:
            return index  # else unreadable: rebuild from the catalog, which is the source of truth
    ids, vecs = fetch()
    index = build(ids, vecs, previous=_previous(index_dir, path) if len(ids) >= IVF_FROM else None)
    try:
        save(index, index_dir, rev)
    except OSError:
        pass  # a read-only index folder still answers queries
    return index


def _read(path: str):
    import faiss

    try:
        return faiss.read_index(path)
    except RuntimeError:
        return None


def _previous(index_dir: str, current: str):
    """The newest older revision's index, if one is on disk (its IVF centroids can be reused)."""
    older = []
    for name in os.listdir(index_dir):
        if name.startswith(VECTOR_PREFIX) and name.endswith(VECTOR_SUFFIX):
            try:
                older.append((int(name[len(VECTOR_PREFIX) : -len(VECTOR_SUFFIX)]), name))
            except ValueError:
                continue
    for _rev, name in sorted(older, reverse=True):
        if os.path.join(index_dir, name) != current:
            return _read(os.path.join(index_dir, name))
    return None


WINDOWS_PREFIX = "windows-"


def load_or_build_windows(index_dir: str, rev: int, fetch) -> tuple[np.ndarray, np.ndarray]:
    """(ids, crop-window codes (n, W, 8)) of every thumbnailed file at catalog revision `rev`: read from
    `windows-<rev>.npz`, or computed from `fetch()` -> (ids, thumbs) and saved (atomically, older ones removed).
    Window hashes cost more than the search they feed on a small index; computed once per revision, not per run."""
    from .matching import all_window_codes, windows_per_image

    path = os.path.join(index_dir, f"{WINDOWS_PREFIX}{rev}.npz")
    try:
        with np.load(path) as data:
            if data["codes"].shape[1:2] == (windows_per_image(),):  # else written by a simfind with other windows
                return data["ids"], data["codes"]
    except (OSError, ValueError, KeyError):
        pass
    ids, thumbs = fetch()
    codes = all_window_codes(thumbs)
    try:
        _write_revision(path, WINDOWS_PREFIX, lambda tmp: _savez(tmp, ids=ids, codes=codes))
    except OSError:
        pass  # a read-only index folder still answers, it just recomputes
    return ids, codes


def _savez(path: str, **arrays) -> None:
    with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare temp name
        np.savez(fh, **arrays)


def search(index, queries: np.ndarray, k: int, *, wide: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids), each (len(queries), k). A few queries are searched on one thread: a scan of 100k
    vectors for one query took 10 ms on one thread and 19 ms on two (bench/bench_clip.py, 2-core EPYC).
    `wide` probes 4x the IVF lists (about 2 ms at 100k): for queries that, like texts, lie away from the
    clusters of image vectors, where the default probe finds 75% of the exact top 10 and 4x finds 93%."""
    import faiss

    k = max(1, min(k, index.ntotal))
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    ivf = _ivf(index)
    params = faiss.SearchParametersIVF(nprobe=min(ivf.nlist, 4 * ivf.nprobe)) if wide and ivf is not None else None
    threads = faiss.omp_get_max_threads()
    if len(queries) <= 4:
        faiss.omp_set_num_threads(1)
    try:
        return index.search(queries, k, params=params)
    finally:
        faiss.omp_set_num_threads(threads)


def cosine_pairs(vecs: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """All pairs (i, j, cosine), i < j, of rows of `vecs` at or above `threshold` (a FAISS range search: exact up to
    EXACT_PAIRS_UP_TO vectors, an IVF index with a generous nprobe beyond, as autofaiss picks by size)."""
    import faiss

    n = len(vecs)
    if n < 2:
        return []
    x = np.ascontiguousarray(vecs, dtype=np.float32)
    dim = x.shape[1]
    if n <= EXACT_PAIRS_UP_TO:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = ivf_lists(n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(_training_sample(x, nlist))
        index.nprobe = 16
    index.add(x)
    # range_search keeps results with similarity strictly above the radius for inner product
    lims, sims, ids = index.range_search(x, float(np.nextafter(np.float32(threshold), np.float32(-1))))
    rows = np.repeat(np.arange(n), np.diff(lims.astype(np.int64)))
    keep = (rows < ids) & (sims >= threshold - 1e-6)
    return list(zip(rows[keep].tolist(), ids[keep].tolist(), sims[keep].tolist()))


def binary_knn(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, rows), each (len(queries), k): the k rows of `base` nearest each query in hamming distance
    (rows -1 where there are fewer)."""
    import faiss

    index = faiss.IndexBinaryFlat(base.shape[1] * 8)
    index.add(np.ascontiguousarray(base, dtype=np.uint8))
    dist, rows = index.search(np.ascontiguousarray(queries, dtype=np.uint8), max(1, min(k, len(base))))
    return dist.astype(np.int64), rows.astype(np.int64)

