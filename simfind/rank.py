"""Query ranking by CLIP: the indexed images nearest one query embedding. (A hash query asks the matcher itself,
pairs.matches_of, so that it agrees with `dupes`.)"""

from __future__ import annotations

import numpy as np


def by_clip(index, vector: np.ndarray, k: int, *, text: bool) -> list[tuple[int, float]]:
    """(catalog id, cosine) of the k files nearest a query embedding (1, dim) in the CLIP index, most similar
    first. Texts lie away from the clusters of image vectors: their search probes wider."""
    from .knn import search

    sims, ids = search(index, vector, k, wide=text)
    return [(int(i), float(s)) for s, i in zip(sims[0], ids[0]) if i >= 0]
