"""FAISS searches. Imported lazily: `simfind --help` and `index` never load FAISS."""

from __future__ import annotations

import numpy as np


def hash_pairs(codes: np.ndarray, max_distance: int) -> list[tuple[int, int, int]]:
    """All pairs (i, j, hamming), i < j, of 64-bit codes ((n, 8) uint8) within `max_distance`.

    A FAISS binary range search (C++, popcount), never a Python double loop.
    """
    import faiss

    n = len(codes)
    if n < 2:
        return []
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    index.add(codes)
    # range_search keeps distances strictly below the radius
    lims, dist, ids = index.range_search(codes, max_distance + 1)
    rows = np.repeat(np.arange(n), np.diff(lims.astype(np.int64)))
    keep = rows < ids
    return list(zip(rows[keep].tolist(), ids[keep].tolist(), dist[keep].tolist()))
