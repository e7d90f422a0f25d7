"""Candidate pairs: images whose pHash over rotations and mirrors (orientations.py) lie within a hamming distance,
from FAISS range searches, and images that share many local-feature words (local.py).

A candidate is only a suspicion: verify.py and geometry.py check it. Every FAISS search runs through knn.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .knn import binary_range
from .orientations import DIHEDRAL, THUMB_SIDE, orientation_codes, upright_codes


@dataclass(frozen=True)
class Candidates:
    """Candidate pairs as columns: image `dst` looks like image `src` seen through `transform` (0-7: rotation or
    mirror number, as in DIHEDRAL), at pHash distance `distance`."""

    src: np.ndarray
    dst: np.ndarray
    distance: np.ndarray
    transform: np.ndarray

    def __len__(self) -> int:
        return len(self.src)


def closest_per_pair(src: np.ndarray, dst: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Row numbers of the smallest distance of each unordered pair {src, dst}."""
    n = int(max(src.max(), dst.max())) + 1
    return closest_per_key(np.minimum(src, dst) * n + np.maximum(src, dst), distance)


def closest_per_key(key: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Row numbers of the smallest distance of each key."""
    order = np.lexsort((distance, key))
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    return order[first]


# The rotation/mirror search asks 8 codes per image of every image (the whole-frame search, one per trimmed
# image): from this many images they go through FAISS's binary IVF, whose cost grows far slower than the exact
# scan's square and which keeps nearly every candidate within the default threshold.
ORIENT_IVF_FROM = 20_000


def candidates(thumbs: np.ndarray, max_distance: int, *, focus: np.ndarray | None = None) -> Candidates:
    """The closest hash match of every pair of images within `max_distance` bits, allowing for any rotation or
    mirror, from FAISS binary range searches. `focus` (rows): only the pairs with one of these images, searched
    both ways, as a query asks: the same pairs the whole search finds for them."""
    thumbs = np.asarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)
    empty = np.zeros(0, np.int64)
    columns = [(empty, empty, empty, empty)]
    if len(thumbs) >= 2:
        orient_codes = orientation_codes(thumbs)  # (n, 8, 8)
        if focus is None:
            # orientation k of image i against the upright hash of image j
            q, j, dist = binary_range(orient_codes[:, 0], orient_codes.reshape(-1, 8), max_distance,
                                      ivf_from=ORIENT_IVF_FROM)
            columns.append((q // len(DIHEDRAL), j, dist, q % len(DIHEDRAL)))
        else:
            focus = np.asarray(focus, dtype=np.int64)
            q, j, dist = binary_range(orient_codes[:, 0], orient_codes[focus].reshape(-1, 8), max_distance)
            columns.append((focus[q // len(DIHEDRAL)], j, dist, q % len(DIHEDRAL)))
            q, f, dist = binary_range(orient_codes[focus, 0], orient_codes.reshape(-1, 8), max_distance)
            columns.append((q // len(DIHEDRAL), focus[f], dist, q % len(DIHEDRAL)))
    parts = []
    for src, dst, dist, transform in columns:
        keep = src != dst
        src, dst, dist, transform = src[keep], dst[keep], dist[keep], transform[keep]
        if len(src):
            best = closest_per_pair(src, dst, dist)
            parts.append((src[best], dst[best], dist[best], transform[best]))
    if not parts:
        return Candidates(empty, empty, empty, empty)
    return Candidates(*(np.concatenate(col).astype(np.int64) for col in zip(*parts)))


def frame_candidates(
    thumbs: np.ndarray, framed: np.ndarray, frames: np.ndarray, max_distance: int, *,
    focus: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidates that may line up only as whole frames: trimmed image `framed[k]` (whole frame `frames[k]`)
    against every image's whole frame (its thumbnail where nothing was trimmed), by upright pHash within
    `max_distance`. Returns (k, i, j, hamming, whole): row k of `framed`, image i = framed[k], image j, and the
    whole-frame thumbnails of every image. `focus` (rows): only pairs with one of these images."""
    thumbs = np.asarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)
    framed = np.asarray(framed, dtype=np.int64)
    empty = np.zeros(0, np.int64)
    if not len(framed) or len(thumbs) < 2:
        return empty, empty, empty, empty, thumbs
    whole = thumbs.copy()
    whole[framed] = frames
    codes = upright_codes(whole)
    q, j, dist = binary_range(codes, codes[framed], max_distance, ivf_from=ORIENT_IVF_FROM)
    i = framed[q]
    keep = i != j
    if focus is not None:
        keep &= np.isin(i, focus) | np.isin(j, focus)
    return q[keep], i[keep], j[keep], dist[keep], whole


# The descriptor search: tables of bits drawn once (a fixed seed, so that every run and every query draws the
# same), each turning a 256-bit descriptor into a word; two pictures that share words in several tables share
# corners that look alike. Enough bits per word that a word is shared by chance about as rarely however large the
# collection (LOCAL_OCCUPANCY postings per word on average); a word that many pictures share (sky, a texture, a
# UI element) says nothing about any pair of them and is dropped. A corner that an edit leaves at hamming distance d
# keeps its word of b bits in a table with probability (1 - d/256)^b: at d = 30 and b = 26 (a few thousand
# pictures) about 0.04, so a heavily edited copy's few dozen surviving corners share a handful of words per table.
# Six tables raise that where four left such copies below LOCAL_MIN_VOTES (bench_quality: recall 0.938 with four,
# 0.945 with six, 0.946 with eight; each table is one more sort of the postings, and more chance candidates to verify:
# on 10,000 generated collages six tables propose 19.8k pairs where four proposed 10.3k).
LOCAL_TABLES = 6
LOCAL_OCCUPANCY = 1 / 16
LOCAL_STOP_WORD = 32
# Two unrelated pictures share a handful of words by chance; a copy with a third of its corners in common shares
# dozens. Each picture keeps, of the pictures sharing at least LOCAL_MIN_VOTES words with it, the LOCAL_PER_IMAGE
# that share most: the search stays linear in the collection, and a picture with many copies reaches each of them
# through its copies too.
LOCAL_MIN_VOTES = 5
LOCAL_PER_IMAGE = 16


class Stacked:
    """Descriptors of many pictures as one byte-major array: `columns` (32, M), a byte of every descriptor at a
    time, and `counts` (m,) descriptors per picture, in picture order. Built a chunk of pictures at a time
    (`add`), so that a large library's descriptors are never in memory twice."""

    def __init__(self, total: int, pictures: int):
        self.columns = np.empty((32, total), np.uint8)
        self.counts = np.zeros(pictures, np.int64)
        self._at = self._picture = 0

    def add(self, descriptors: list[np.ndarray]) -> None:
        counts = [len(d) for d in descriptors]
        self.counts[self._picture:self._picture + len(counts)] = counts
        self._picture += len(counts)
        if sum(counts):
            chunk = np.concatenate([d for d in descriptors if len(d)])
            self.columns[:, self._at:self._at + len(chunk)] = chunk.T
            self._at += len(chunk)

    def trimmed(self) -> Stacked:
        """Itself, its columns cut to the descriptors added (no copy)."""
        self.columns = self.columns[:, :self._at]
        return self

    @classmethod
    def of(cls, descriptors: list[np.ndarray]) -> Stacked:
        out = cls(sum(len(d) for d in descriptors), len(descriptors))
        out.add(descriptors)
        return out


def local_candidates(descriptors: list[np.ndarray] | Stacked, focus: np.ndarray | None = None,
                     mirrored: list[np.ndarray] | bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs (i, j, mirror), i < j, from the pictures' local-feature descriptors (one (n_k, 32) uint8
    array per picture, possibly empty, or a Stacked of them, the mirror images after the pictures): pictures that
    share many descriptor words; with `mirrored` (the descriptors of each picture's mirror image), also pictures
    one of which shares them with the other's mirror image (mirror 1; True: a Stacked holds them). `focus`
    (rows): only the pairs with one of these, the same the whole search finds: the votes of the focus and of the
    pictures it shares words with are counted in full, no others."""
    empty = np.zeros(0, np.int64)
    if not isinstance(descriptors, Stacked):
        descriptors = Stacked.of(descriptors + (mirrored if isinstance(mirrored, list) else []))
    n = len(descriptors.counts) // (2 if mirrored else 1)
    columns, counts = descriptors.columns, descriptors.counts
    m = len(counts)  # picture k's mirror image is picture n + k
    if n < 2 or counts.sum() == 0:
        return empty, empty, empty
    tables = word_tables(columns.shape[1])
    if focus is None:
        return _best(*_votes(postings(descriptors, tables), n, m, None), n)
    focus = np.unique(np.asarray(focus, np.int64))
    built = list(postings(descriptors, tables))  # both passes read every table: built once (most of a query's cost)
    key, votes = _votes(built, n, m, focus)
    i, j = key // 2 // n, key // 2 % n
    rows = np.union1d(focus, np.concatenate((i, j))[np.concatenate((votes, votes)) >= LOCAL_MIN_VOTES])
    i, j, mirror = _best(*_votes(built, n, m, rows), n, rows)
    keep = np.isin(i, focus) | np.isin(j, focus)
    return i[keep], j[keep], mirror[keep]


def word_bits(descriptors: int) -> int:
    """Bits per word for a search over `descriptors` descriptors in all."""
    return int(np.clip(np.ceil(np.log2(max(descriptors, 1) / LOCAL_OCCUPANCY)), 16, 40))


def word_tables(descriptors: int) -> list[np.ndarray]:
    """The bit positions of each table's words, for a search over `descriptors` descriptors in all: the same for
    every run and every query over as many word bits (a fixed seed)."""
    rng = np.random.default_rng(20261203)
    return [rng.choice(256, word_bits(descriptors), replace=False) for _ in range(LOCAL_TABLES)]


def postings(descriptors: Stacked, tables: list[np.ndarray]):
    """Each table's sorted unique word * m + picture (m pictures, mirror images included), a table at a time."""
    m = len(descriptors.counts)
    owner = np.repeat(np.arange(m, dtype=np.int64), descriptors.counts)
    for positions in tables:
        word = words(descriptors.columns, positions)
        word *= m
        word += owner
        word.sort()
        yield word[np.r_[True, word[1:] != word[:-1]]] if len(word) else word


def words(columns: np.ndarray, positions: np.ndarray | list[tuple[int, np.ndarray]]) -> np.ndarray:
    """Each descriptor's word (`columns`: descriptors as (32, M) bytes): its bits at `positions` (bit k of the word
    is bit positions[k] of the descriptor; or word_maps(positions)), built a byte at a time through a table of
    what each value adds."""
    word = np.zeros(columns.shape[1], np.int64)
    for byte, table in word_maps(positions) if isinstance(positions, np.ndarray) else positions:
        word |= table[columns[byte]]
    return word


def word_maps(positions: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(byte, table) for each descriptor byte a table's positions read: what each value of that byte adds to a
    word."""
    values = np.arange(256, dtype=np.int64)
    maps = []
    for byte in np.unique(positions >> 3).tolist():
        table = np.zeros(256, np.int64)
        for k in np.flatnonzero((positions >> 3) == byte).tolist():
            table |= ((values >> (7 - (int(positions[k]) & 7))) & 1) << k
        maps.append((byte, table))
    return maps


def all_votes(postings, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(key, votes) of every pair of pictures sharing LOCAL_MIN_VOTES words or more (see _votes)."""
    return _votes(postings, n, m, None)


def pair_votes(postings, n: int, m: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(key, votes) of every pair with one of `rows` sharing LOCAL_MIN_VOTES words or more, counted in full."""
    return _votes(postings, n, m, rows)


def _votes(postings, n: int, m: int, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(key, votes): every pair of pictures sharing words, key (i * n + j) * 2 + mirror with i < j, and how many
    words it shares over all tables. `rows`: only the pairs with one of these pictures."""
    mask = None
    if rows is not None:
        mask = np.zeros(m, bool)
        mask[rows] = True
        if m > n:
            mask[rows + n] = True  # and their mirror images
    parts = []
    for word in postings:
        for a, b in _shared_words(word, m, mask):  # a < b; a chunk of words at a time, counted as it comes
            a, b = a[a < n], b[a < n]  # two mirror images share what the pictures share: counted once, upright
            mirror = b >= n
            b = np.where(mirror, b - n, b)
            keep = a != b
            key, count = _counted((np.minimum(a, b)[keep] * n + np.maximum(a, b)[keep]) * 2 + mirror[keep])
            parts.append(key << _COUNT_BITS | np.minimum(count, _MAX_COUNT))  # the count packed in: one sort
    return _summed(parts)


def _summed(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted packed (key, count) parts -> (key, votes) of the keys whose counts sum to LOCAL_MIN_VOTES or more,
    reduced a range of keys at a time: at most about 1/_RANGES of the parts is copied at once."""
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    top = max(int(p[-1]) for p in parts if len(p)) + 1 if any(len(p) for p in parts) else 1
    bounds = np.linspace(0, top, _RANGES + 1).astype(np.int64)
    cuts = [np.searchsorted(p, bounds) for p in parts]
    keys, votes = [], []
    for r in range(_RANGES):
        packed = np.concatenate([p[c[r]:c[r + 1]] for p, c in zip(parts, cuts)])
        packed.sort()
        key = packed >> _COUNT_BITS
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
        total = np.add.reduceat(packed & _MAX_COUNT, first) if len(first) else first
        keep = total >= LOCAL_MIN_VOTES
        keys.append(key[first[keep]])
        votes.append(total[keep])
    return np.concatenate(keys), np.concatenate(votes)


_RANGES = 16
# A pair's words shared in one chunk of one table, packed beside its key (which needs under 2 * log2(n) + 1 bits)
_COUNT_BITS = 10
_MAX_COUNT = (1 << _COUNT_BITS) - 1


def _counted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys and how often each occurs."""
    if not len(keys):
        return keys, keys.copy()
    keys.sort()
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return keys[first], np.diff(np.r_[first, len(keys)])


def _best(key: np.ndarray, votes: np.ndarray, n: int, rows: np.ndarray | None = None):
    """The pairs among `key` (see _votes) with LOCAL_MIN_VOTES or more that are among the LOCAL_PER_IMAGE best of
    one of their pictures (of `rows` only, where given: the others' votes may not be complete)."""
    keep = votes >= LOCAL_MIN_VOTES
    key, votes = key[keep], votes[keep]
    i, j, mirror = key // 2 // n, key // 2 % n, key % 2
    src, _dst, _v, at, rank = _ranked(i, j, votes)
    best = rank < LOCAL_PER_IMAGE
    if rows is not None:
        best &= np.isin(src, rows)
    chosen = np.unique(at[best])
    return i[chosen], j[chosen], mirror[chosen]


def _ranked(i: np.ndarray, j: np.ndarray, votes: np.ndarray):
    """Each pair (i, j) from both of its pictures, ordered by picture, then most votes first, then the other
    picture's row (the mirror key after the upright one where they tie): (src, dst, votes, pair number, rank of
    the pair among src's)."""
    row = np.arange(len(i))
    src, dst, v, at = (np.concatenate((i, j)), np.concatenate((j, i)), np.concatenate((votes, votes)),
                       np.concatenate((row, row)))
    order = np.lexsort((dst, -v, src))
    src, dst, v, at = src[order], dst[order], v[order], at[order]
    starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
    rank = np.arange(len(src)) - np.repeat(starts, np.diff(np.r_[starts, len(src)]))
    return src, dst, v, at, rank


def top_partners(key: np.ndarray, votes: np.ndarray, n: int, top: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(partners, votes, mirrors), each (n, top): each picture's `top` best pairs among `key` (see _votes) as
    _best ranks them, best first, as the other picture's row (int32, -1 past its last), the pair's votes (int32)
    and whether it is the mirrored pair (int8)."""
    keep = votes >= LOCAL_MIN_VOTES
    key, votes = key[keep], votes[keep]
    src, dst, v, at, rank = _ranked(key // 2 // n, key // 2 % n, votes)
    partners = np.full((n, top), -1, np.int32)
    counts = np.zeros((n, top), np.int32)
    mirrors = np.zeros((n, top), np.int8)
    kept = rank < top
    partners[src[kept], rank[kept]] = dst[kept]
    counts[src[kept], rank[kept]] = v[kept]
    mirrors[src[kept], rank[kept]] = (key % 2)[at[kept]]
    return partners, counts, mirrors


def _shared_words(postings: np.ndarray, n: int, mask: np.ndarray | None = None):
    """Sorted unique word * n + picture postings -> (i, j) arrays, i < j, of every two pictures sharing a word,
    stop words left out, in chunks of at most _CHUNK_PAIRS pairs; with `mask` (n,), only the pairs with a
    picture it marks."""
    word, owner = postings // n, postings % n
    starts = np.flatnonzero(np.r_[True, word[1:] != word[:-1]])
    sizes = np.diff(np.r_[starts, len(word)])
    del word
    wanted = (sizes >= 2) & (sizes <= LOCAL_STOP_WORD)
    if mask is not None:  # only the words a marked picture has
        wanted &= np.maximum.reduceat(mask[owner], starts) if len(starts) else wanted
    starts, sizes = starts[wanted], sizes[wanted]
    for size in np.unique(sizes).tolist():
        a, b = np.triu_indices(size, 1)
        these = starts[sizes == size]
        step = max(1, _CHUNK_PAIRS // len(a))
        for s in range(0, len(these), step):
            members = owner[these[s:s + step, None] + np.arange(size)]  # (words, size), ascending per row
            i, j = members[:, a].ravel(), members[:, b].ravel()
            if mask is not None:
                keep = mask[i] | mask[j]
                i, j = i[keep], j[keep]
            yield i, j


_CHUNK_PAIRS = 2_000_000
