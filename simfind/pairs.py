"""Indexed files -> verified similar pairs, from every signal the index has, and the similarity of any two files.

Signals: the perceptual hash of thumbnails over rotations, mirrors and whole frames (found by candidates.py,
checked by verify.py), local features for crops, turns, canvases and screenshots (candidates.py, geometry.py),
and the cosine of CLIP embeddings where the index has them. Rows from an index older than the thumbnail are
matched upright by their stored pHash alone until they are indexed again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .hashing import max_distance, similarity, similarity_of_distance
from .records import IndexedFile

if TYPE_CHECKING:
    import numpy as np

    from .pipeline import Runner

# Chosen on ../shared/data/labelled and bench/bench_quality.py (README, "Choosing the threshold").
DEFAULT_HASH_THRESHOLD = 0.9
# Where published CLIP near-duplicate work (e.g. LAION's dedup) starts; not yet checked against real weights.
DEFAULT_CLIP_THRESHOLD = 0.95

Pair = tuple[int, int, float]  # (i, j, similarity): positions in the list of files given
LocalLookup = Callable[[list[int]], dict[int, bytes]]  # catalog ids -> packed local features of those that have any


# The candidate search posts each picture's strongest descriptors; its work and memory grow with the number of
# pictures times the square of that number, held to about LOCAL_BUDGET: all 256 up to ~7,600 pictures and mirror
# images, then fewer.
LOCAL_BUDGET = 500_000_000


def local_searched(n: int) -> int:
    """How many descriptors per picture the candidate search posts among `n` pictures."""
    from .local import FEATURES

    return int(max(32, min(FEATURES, (LOCAL_BUDGET / max(n, 1)) ** 0.5)))


class LocalFeatures:
    """The local features (local.py) of indexed files, read from the index as the matcher needs them: the
    strongest descriptors of every file for the candidate search, and all of a few files' features at a time for
    verification, so that a large library's features are never all in memory. `extra`: packed features by
    content hash of files the index does not hold (a query picture)."""

    _CHUNK = 4096
    _RECENT = 256  # single pictures' features kept: a report asks for its keeper's once per member

    def __init__(self, fetch: LocalLookup, extra: dict[bytes, bytes] | None = None):
        self._fetch = fetch
        self._extra = extra or {}
        self._recent: dict[int, bytes] = {}

    def blobs(self, files: Sequence[IndexedFile]) -> list[bytes]:
        """Each file's packed features (b"" for none)."""
        if len(files) > 2:
            found = self._fetch([f.id for f in files if f.id >= 0])
            return [found.get(f.id) or self._extra.get(f.content_hash, b"") for f in files]
        wanted = [f.id for f in files if f.id >= 0 and f.id not in self._recent]
        if wanted:
            found = self._fetch(wanted)
            while len(self._recent) + len(wanted) > self._RECENT:
                del self._recent[next(iter(self._recent))]  # the oldest first
            self._recent.update((i, found.get(i, b"")) for i in wanted)
        return [self._recent.get(f.id) or self._extra.get(f.content_hash, b"") for f in files]

    def searched(self, files: Sequence[IndexedFile], most: int):
        """candidates.Stacked of each file's `most` strongest descriptors (possibly none), then of its mirror
        image's, read in chunks."""
        from .candidates import Stacked
        from .local import descriptors_of

        stacked = Stacked(2 * len(files) * most, 2 * len(files))  # room for all: trimmed once filled
        for mirror in (False, True):
            for start in range(0, len(files), self._CHUNK):
                stacked.add([descriptors_of(b, most, mirror) for b in self.blobs(files[start:start + self._CHUNK])])
        return stacked.trimmed()


def hash_pairs(files: Sequence[IndexedFile], threshold: float, focus: Sequence[int] | None = None,
               local: LocalFeatures | None = None, runner: Runner | None = None,
               proposed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> list[Pair]:
    """Verified perceptual pairs at or above `threshold`: any rotation or mirror, whole frames;
    upright pHash alone for rows without a thumbnail; with `local` (the files' local features), also the pairs
    local features find and their geometry verifies, and without the hash's pairs that geometry refutes. `focus`
    (positions in `files`): only the pairs with one of these, the same that the whole search finds for them.
    `runner`: where the verification of many candidate pairs runs (pipeline.over_pairs; default: local workers).
    `proposed`: the local-feature candidates as arrays (i, j, mirror), i < j, positions in `files` that all have
    a thumbnail, where they are known (from lookup.Lookup) instead of searched for."""
    import numpy as np

    from .knn import binary_range
    from .verify import frame_pairs, near_pairs

    max_dist = max_distance(threshold)
    with_thumb = [k for k, f in enumerate(files) if f.thumb]
    thumbs = np.frombuffer(b"".join(files[k].thumb for k in with_thumb), dtype=np.uint8)
    rows = None if focus is None else np.flatnonzero(np.isin(with_thumb, list(focus)))
    found = near_pairs(thumbs, max_dist, focus=rows) if rows is None or len(rows) else []
    framed = [r for r, k in enumerate(with_thumb) if files[k].frame]
    if framed and (rows is None or len(rows)):
        from .hashing import unpack_frames

        fulls, boxes = unpack_frames([files[with_thumb[r]].frame for r in framed])
        found += frame_pairs(thumbs, np.array(framed), fulls, boxes, max_dist, focus=rows)
    if local is not None and (rows is None or len(rows)):
        pictures = [files[k] for k in with_thumb]

        def blobs(rows: list[int]) -> list[bytes]:
            return local.blobs([pictures[r] for r in rows])

        found = _unrefuted(blobs, thumbs, found, runner)
        if proposed is None:
            most = local_searched(2 * len(pictures))  # each picture and its mirror image
            proposed = _local_candidates(local, pictures, most, rows)
        else:  # positions in `files` -> rows of the pictures with a thumbnail
            row = np.full(len(files), -1, np.int64)
            row[with_thumb] = np.arange(len(with_thumb))
            proposed = (row[proposed[0]], row[proposed[1]], np.asarray(proposed[2], bool))
        found += _geometric_pairs(proposed, blobs, thumbs, found, max_dist, runner)
    pairs = [(with_thumb[i], with_thumb[j], similarity_of_distance(d)) for i, j, d in found]
    old = [k for k, f in enumerate(files) if not f.thumb]
    if old:
        codes = np.frombuffer(b"".join(f.phash for f in files), dtype=np.uint8).reshape(len(files), -1)
        q, ids, dist = binary_range(codes, codes[old], max_dist)
        pairs += [(old[a], b, similarity_of_distance(d)) for a, b, d in zip(q.tolist(), ids.tolist(), dist.tolist())
                  if old[a] != b and (focus is None or old[a] in focus or b in focus)]
    return pairs


# Pairs the hash finds this many bits apart or more are put to the local features too (geometry.refuted): at 0-1
# bits a look-alike is vanishingly rare, and most copies are there.
VETO_FROM = 2


def _unrefuted(blobs: Callable[[list[int]], list[bytes]], thumbs: np.ndarray,
               found: list[tuple[int, int, int]], runner: Runner | None = None) -> list[tuple[int, int, int]]:
    """`found` less the pairs, of those VETO_FROM bits apart or more, that local features refute
    (geometry.refuted)."""
    import numpy as np

    from .geometry import refuted
    from .pipeline import over_pairs

    weak = [k for k, (_a, _b, d) in enumerate(found) if d >= VETO_FROM]
    if not weak:
        return found
    i = np.array([found[k][0] for k in weak])
    j = np.array([found[k][1] for k in weak])
    (no,) = over_pairs(refuted, blobs, thumbs.reshape(-1, 32, 32), i, j, np.zeros(len(i), bool), runner=runner)
    drop = {weak[k] for k in np.flatnonzero(no).tolist()}
    return [p for k, p in enumerate(found) if k not in drop]


def _local_candidates(local: LocalFeatures, pictures: Sequence[IndexedFile], most: int, focus: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, mirror), i < j, positions in `pictures`, that local features propose: the search over each
    picture's `most` strongest descriptors and its mirror image's, the pictures in catalog-id order (one not in
    the catalog, a query, last), as lookup.Lookup keeps them, so that the two propose the same."""
    import numpy as np

    from .candidates import local_candidates

    order = np.argsort([f.id if f.id >= 0 else np.iinfo(np.int64).max for f in pictures], kind="stable")
    at = np.empty(len(order), np.int64)
    at[order] = np.arange(len(order))
    i, j, mirror = local_candidates(local.searched([pictures[k] for k in order], most),
                                    focus=None if focus is None else at[focus], mirrored=True)
    i, j = order[i], order[j]
    return np.minimum(i, j), np.maximum(i, j), mirror


def _geometric_pairs(proposed: tuple[np.ndarray, np.ndarray, np.ndarray], blobs: Callable[[list[int]], list[bytes]],
                     thumbs: np.ndarray, found: list[tuple[int, int, int]], max_dist: int,
                     runner: Runner | None = None) -> list[tuple[int, int, int]]:
    """Pairs (i, j, distance) among the local-feature candidates `proposed` (i, j, mirror) that their geometry
    verifies (geometry.py; `blobs`: picture numbers -> packed features), beyond those `found`; a pair proposed
    both as it is and mirrored counts at the closer."""
    import numpy as np

    from .geometry import geometric_distances
    from .pipeline import over_pairs
    from .verify import LOCAL_EDIT_BITS

    i, j, mirror = proposed
    known = {(a, b) for a, b, _d in found}
    new = np.array([(a, b) not in known for a, b in zip(i.tolist(), j.tolist())], bool)
    i, j, mirror = i[new], j[new], mirror[new]
    ok, dist = over_pairs(geometric_distances, blobs, thumbs.reshape(-1, 32, 32), i, j, mirror, LOCAL_EDIT_BITS,
                          runner=runner)
    ok &= dist <= max_dist
    best: dict[tuple[int, int], int] = {}
    for a, b, d in zip(i[ok].tolist(), j[ok].tolist(), dist[ok].tolist()):
        best[a, b] = min(d, best.get((a, b), d))
    return [(a, b, d) for (a, b), d in best.items()]


def matches_of(query: IndexedFile, files: Sequence[IndexedFile], threshold: float,
               local: LocalFeatures | None = None,
               proposed: Sequence[tuple[bytes, int]] | None = None) -> list[tuple[IndexedFile, float]]:
    """The files that hash_pairs pairs with `query` at `threshold`, most similar first: its byte copies (1.0),
    then what the search `dupes` makes finds for this one picture, so that a query and a report agree on every
    pair. `local`: their local features, the query's included. The search runs over one file per content (the
    lowest id), in id order, the query last. `proposed`: the local-feature candidates (content hash, mirror),
    where they are known (lookup.Lookup), instead of searched for among `files` (which then need hold only the
    candidates)."""
    same = [f for f in files if f.content_hash == query.content_hash]
    reps: dict[bytes, IndexedFile] = {}
    for f in sorted(files, key=lambda f: f.id):  # one file per content, as dupes searches them
        if f.content_hash != query.content_hash:
            reps.setdefault(f.content_hash, f)
    others = list(reps.values())
    pairs = None
    if proposed is not None:
        import numpy as np

        at = {f.content_hash: k for k, f in enumerate(others)}
        given = [(at[c], m) for c, m in proposed if c in at]
        pairs = (np.array([a for a, _m in given], np.int64), np.full(len(given), len(others), np.int64),
                 np.array([m for _a, m in given], bool))
    best: dict[bytes, float] = {}
    for i, j, sim in hash_pairs([*others, query], threshold, focus=[len(others)], local=local, proposed=pairs):
        content = others[i if j == len(others) else j].content_hash
        best[content] = max(sim, best.get(content, 0.0))
    found = [(f, best[f.content_hash]) for f in files if f.content_hash in best]
    return [(f, 1.0) for f in sorted(same, key=lambda f: f.path)] + sorted(found, key=lambda t: (-t[1], t[0].path))


def clip_pairs(files: Sequence[IndexedFile], vectors: dict[int, np.ndarray], threshold: float) -> list[Pair]:
    """Pairs of files whose CLIP embeddings (`vectors`, by catalog id) have a cosine at or above `threshold`."""
    import numpy as np

    from .knn import cosine_pairs

    with_vec = [k for k, f in enumerate(files) if f.id in vectors]
    if len(with_vec) < 2:
        return []
    mat = np.stack([vectors[files[k].id] for k in with_vec])
    return [(with_vec[i], with_vec[j], s) for i, j, s in cosine_pairs(mat, threshold)]


class Similarity:
    """The similarity of two files as a report shows it: 1.0 for the same bytes, else the CLIP cosine where both
    have an embedding (`vectors`), else the closest pHash match over every transform the search allows, local
    features' geometry included (`local`)."""

    def __init__(self, vectors: dict[int, np.ndarray] | None = None, local: LocalFeatures | None = None):
        self._vectors = vectors or {}
        self._local = local

    def __call__(self, a: IndexedFile, b: IndexedFile) -> float:
        if a.content_hash == b.content_hash:
            return 1.0
        va, vb = self._vectors.get(a.id), self._vectors.get(b.id)
        if va is not None and vb is not None:
            return float(min(1.0, max(-1.0, va @ vb)))
        return self.by_hash(a, b)

    def by_hash(self, a: IndexedFile, b: IndexedFile) -> float:
        if not (a.thumb and b.thumb):
            return similarity(a.phash, b.phash)
        from .verify import LOCAL_EDIT_BITS, best_distance, frame_distance

        distance = best_distance(a.thumb, b.thumb)
        if a.frame or b.frame:  # a trimmed image may match only as a whole frame (verify.frame_pairs)
            distance = min(distance, frame_distance(a.thumb, a.frame, b.thumb, b.frame))
        blobs = self._local.blobs([a, b]) if self._local is not None and distance > 1 else []
        if blobs and all(blobs):  # the geometry of local features, as the search verifies it
            import numpy as np

            from .geometry import geometric_distances

            thumbs = np.frombuffer(a.thumb + b.thumb, np.uint8).reshape(2, 32, 32)
            ok, found = geometric_distances(blobs, thumbs, np.array([0, 0]), np.array([1, 1]),
                                            np.array([False, True]), LOCAL_EDIT_BITS)
            if ok.any():
                distance = min(distance, int(found[ok].min()))
        return similarity_of_distance(distance)
