"""Query ranking: the indexed images nearest one query, by hash (over rotations, mirrors and crops) or by CLIP."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .candidates import closest_per_key
from .hashing import similarity, similarity_of_distance
from .knn import binary_knn
from .records import IndexedFile
from .verify import agreement, aligned
from .windows import (
    DIHEDRAL,
    THUMB_SIDE,
    all_window_codes,
    orientation_codes,
    window_codes,
    windows_per_image,
)


def rank(query_thumb: np.ndarray, thumbs: np.ndarray, k: int,
         windows: np.ndarray | None = None) -> list[tuple[int, int]]:
    """The k images nearest to a query image, (row, pHash distance) nearest first, allowing for any rotation or
    mirror of the query and for either image being a crop of the other. Images at the same distance (pHash
    distances are even, so ties are common) are ordered by how well their thumbnails agree with the query's
    after the matched rotation or crop: on bench/bench_quality.py 3-10 in 120 variants of the hard kinds had
    their original tied with a look-alike at the top."""
    thumbs = np.asarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)
    n = len(thumbs)
    if not n:
        return []
    q = np.asarray(query_thumb, dtype=np.uint8).reshape(THUMB_SIDE, THUMB_SIDE)
    q_orients, q_windows = orientation_codes(q[None])[0], window_codes(q[None])[0]
    upright = orientation_codes(thumbs)[:, 0]
    k = max(1, min(k, n))
    # the query turned any way (transform 0-7), or a window of it (8 + w), against each image
    dist, rows = binary_knn(upright, np.concatenate([q_orients, q_windows]), k)
    found = [(rows.ravel(), dist.ravel(), np.repeat(np.arange(len(dist)), dist.shape[1]))]
    # the query against every window of each image (the query is a crop of it): transform -1 - w
    per = windows_per_image()
    windows = (all_window_codes(thumbs) if windows is None else windows).reshape(-1, 8)
    dist, rows = binary_knn(windows, q_orients[:1], min(len(windows), k * 8))
    found.append((rows.ravel() // per, dist.ravel(), -1 - rows.ravel() % per))
    row, dist, transform = (np.concatenate(c) for c in zip(*found))
    ok = row >= 0
    row, dist, transform = row[ok], dist[ok], transform[ok]
    best = closest_per_key(row, dist)  # each image's closest match
    row, dist, transform = row[best], dist[best], transform[best]
    near = np.flatnonzero(dist <= np.sort(dist)[min(k, len(dist)) - 1])  # the top k, and all tied with the last
    row, dist, transform = row[near], dist[near], transform[near]
    # thumbnail agreement after the matched transform, as near_pairs verifies: the query (last) seen through its
    # rotation or window against the image, or the image seen through its window against the query
    pair = np.concatenate([thumbs[row], q[None]])
    me, them = np.full(len(row), len(row)), np.arange(len(row))
    crop_of_image = transform < 0
    seen_as, other = aligned(pair, np.where(crop_of_image, them, me), np.where(crop_of_image, me, them),
                              np.where(crop_of_image, len(DIHEDRAL) - 1 - transform, transform))
    agree = agreement(seen_as, other)
    ranked = np.lexsort((row, -agree, dist))[:k]
    return [(int(row[i]), int(dist[i])) for i in ranked]


def by_hash(query_thumb: bytes, query_phash: bytes, files: list[IndexedFile], k: int,
            windows: Callable[[list[int]], np.ndarray | None] | None = None) -> list[tuple[int, float]]:
    """(catalog id, similarity) of the k files nearest a query image by hash, most similar first. `windows`:
    catalog ids -> their window codes (the index's cache), or None to compute them."""
    ordered = [f for f in files if f.thumb]
    thumbs = np.frombuffer(b"".join(f.thumb for f in ordered), dtype=np.uint8)
    codes = windows([f.id for f in ordered]) if windows and ordered else None
    found = [(ordered[i].id, similarity_of_distance(d))
             for i, d in rank(np.frombuffer(query_thumb, np.uint8), thumbs, k, windows=codes)]
    # rows from before schema 3 (no thumbnail yet): upright pHash only
    found += [(f.id, similarity(query_phash, f.phash)) for f in files if not f.thumb]
    return sorted(found, key=lambda t: -t[1])[:k]


def by_clip(index, vector: np.ndarray, k: int, *, text: bool) -> list[tuple[int, float]]:
    """(catalog id, cosine) of the k files nearest a query embedding (1, dim) in the CLIP index, most similar
    first. Texts lie away from the clusters of image vectors: their search probes wider."""
    from .knn import search

    sims, ids = search(index, vector, k, wide=text)
    return [(int(i), float(s)) for s, i in zip(sims[0], ids[0]) if i >= 0]
