"""Every FAISS call: binary (hamming) searches over hash codes, and inner-product indexes over CLIP vectors.

Imports nothing from simfind, and FAISS only when a function runs: `simfind --help` and `index` never load it.
"""

from __future__ import annotations

import numpy as np

# Above this many codes a binary range search goes through an IVF index by default: an exact scan grows with the
# square of the collection; the IVF keeps nearly every candidate within the threshold. Callers searching several
# codes per image (the 8 rotations and mirrors) pass their own limit.
BINARY_IVF_FROM = 3_000_000
EXACT_PAIRS_UP_TO = 20_000  # vectors: above this, CLIP pairs come from an IVF index (approximate, far faster)
IVF_FROM = 50_000  # vectors: below it an exact scan answers a query about as fast as an IVF index


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
    if len(base) < (ivf_from or BINARY_IVF_FROM):
        return HammingIndex(base).within(queries, max_distance)
    # few lists: training and assigning millions of codes cost more than the scan they save beyond this
    bits = base.shape[1] * 8
    nlist = max(1, min(int(np.sqrt(len(base)) / 4), len(base) // 64))
    index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, nlist)
    index.train(_training_sample(base, nlist))
    index.nprobe = max(8, nlist // 12)
    index.add(base)
    return _ranged(index, queries, max_distance)


class HammingIndex:
    """Exact hamming range searches over one set of binary codes, indexed once for many searches."""

    def __init__(self, base: np.ndarray):
        import faiss

        base = np.ascontiguousarray(base, dtype=np.uint8)
        self._index = faiss.IndexBinaryFlat(base.shape[1] * 8)
        if len(base):
            self._index.add(base)

    def within(self, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As binary_range: every (query row, base row, hamming) with hamming <= max_distance."""
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        if not self._index.ntotal or not len(queries):
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        return _ranged(self._index, queries, max_distance)


def _ranged(index, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lims, dist, ids = index.range_search(queries, max_distance + 1)  # keeps distances strictly below the radius
    rows = np.repeat(np.arange(len(queries)), np.diff(lims.astype(np.int64)))
    return rows, ids.astype(np.int64), dist.astype(np.int64)


def binary_knn(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, rows), each (len(queries), k): the k rows of `base` nearest each query in hamming distance
    (rows -1 where there are fewer)."""
    import faiss

    index = faiss.IndexBinaryFlat(base.shape[1] * 8)
    index.add(np.ascontiguousarray(base, dtype=np.uint8))
    dist, rows = index.search(np.ascontiguousarray(queries, dtype=np.uint8), max(1, min(k, len(base))))
    return dist.astype(np.int64), rows.astype(np.int64)


def ivf_lists(n: int) -> int:
    return max(1, min(int(4 * np.sqrt(n)), n // 39))  # k-means wants >= 39 points per centroid


def _training_sample(x: np.ndarray, nlist: int) -> np.ndarray:
    """A fixed random sample of 64 rows per list (all rows when there are fewer) to train an IVF on."""
    return x[np.random.default_rng(0).choice(len(x), min(len(x), 64 * nlist), replace=False)]


def build(ids: np.ndarray, vecs: np.ndarray, previous=None):
    """An inner-product index (cosine on L2-normalised vectors) keyed by `ids`: exact (flat) below IVF_FROM
    vectors, an IVF index beyond, as autofaiss picks by size (4 sqrt(n) lists, about 3% of them probed). The
    IVF's coarse centroids are taken from `previous` (an earlier index) while its list count still fits, so an
    update re-assigns vectors instead of re-training."""
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


def read_index(path: str):
    """A FAISS index from disk, or None when the file cannot be read as one."""
    import faiss

    try:
        return faiss.read_index(path)
    except RuntimeError:
        return None


def write_index(index, path: str) -> None:
    import faiss

    faiss.write_index(index, path)


def search(index, queries: np.ndarray, k: int, *, wide: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids), each (len(queries), k). A few queries are searched on one thread: for one query,
    threads cost more to start than they save. `wide` probes 4x the IVF lists: for queries that, like texts,
    lie away from the clusters of image vectors, where the default probe misses a share of the exact top k."""
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
