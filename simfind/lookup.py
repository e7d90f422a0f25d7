"""What a hash query searches instead of the whole library: the candidate structures of one catalog revision,
built (or updated) by `index`, kept in one file beside the catalog, read by `query` a few rows at a time.

One row per file content (the lowest catalog id of each), in id order: the pHash of the thumbnail's 8 rotations
and mirrors, the pHash of the whole frame, and the local-feature search's postings (candidates.postings, every
table) with each picture's best partners there (candidates.top_partners). From these `near` finds, for one query
picture, every row that `dupes`'s whole search could pair with it, and the local-feature candidates that search
would propose for it; the pairs are then decided as `dupes` decides them (pairs.matches_of), on those rows alone.
A query reads the few pages of the file it touches and only its candidates' rows of the catalog.

For an indexed picture the candidates are exactly the whole search's. For a new picture they are the ones the
search would give it with the library's own word tables and descriptor budget (the whole search, counting the
picture as one more, can differ only for words at the edge of being too common to count).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import numpy as np

from .candidates import (
    LOCAL_MIN_VOTES,
    LOCAL_PER_IMAGE,
    LOCAL_STOP_WORD,
    Stacked,
    all_votes,
    pair_votes,
    postings,
    top_partners,
    word_bits,
    word_maps,
    word_tables,
    words,
)
from .hashing import THUMB_SIDE, unpack_frames
from .local import descriptors_of
from .orientations import orientation_codes, upright_codes
from .records import IndexedFile

_MAGIC = b"simfind-lookup\x00\x02"  # the last byte is the format's version (2: six word tables)
_ALIGN = 64
_BLOCK = 512  # postings per 4 KB page
# Each picture's best partners kept: the LOCAL_PER_IMAGE a query is ranked against, and the two keys (upright and
# mirrored) of an indexed query picture's own row, which its query leaves out.
TOP = LOCAL_PER_IMAGE + 2


_LAST = np.iinfo(np.int64).max  # past every posting: fills a window that runs off the end of a table
# Read in full by a query (a few bytes per picture); the rest is read a few rows at a time.
_WHOLE = ("ids", "orient", "whole", "framed")


class _Stored:
    """An array left in the file, read a few rows at a time (os.pread): a query reads a handful of scattered rows,
    which a memory map would bring in with the pages (or folios) around them."""

    def __init__(self, fh, offset: int, dtype: str, shape: tuple[int, ...]):
        self._fh, self._offset, self.dtype, self.shape = fh, offset, np.dtype(dtype), shape
        self._row = self.dtype.itemsize * int(np.prod(shape[1:]))

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index), *self.shape[1:]), self.dtype)
        for k, r in enumerate(np.asarray(index).tolist()):
            out[k] = np.frombuffer(os.pread(self._fh.fileno(), self._row, self._offset + r * self._row),
                                   self.dtype).reshape(self.shape[1:])
        return out

    def whole(self) -> np.ndarray:
        raw = os.pread(self._fh.fileno(), self._row * self.shape[0], self._offset)
        return np.frombuffer(raw, self.dtype).reshape(self.shape)

    def windows(self, starts: np.ndarray, width: int) -> np.ndarray:
        out = np.full((len(starts), width), _LAST, self.dtype)  # what a read short of the end leaves
        fd, view = self._fh.fileno(), memoryview(out).cast("B")
        size, total = width * self._row, self.shape[0]
        for k, s in enumerate(np.asarray(starts).tolist()):  # read straight into the row, never past the array
            wanted = max(0, min(width, total - s)) * self._row
            if wanted:
                os.preadv(fd, [view[k * size:k * size + wanted]], self._offset + s * self._row)
        return out


def _among(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """np.isin for a sorted unique second array, by binary search (a query asks it for a few hundred words)."""
    if not len(sorted_unique):
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(sorted_unique, values), len(sorted_unique) - 1)
    return sorted_unique[at] == values


def _owners_of_changed(post: np.ndarray, old_post: np.ndarray, removed: np.ndarray, added: np.ndarray, m: int,
                       m0: int, n: int) -> np.ndarray:
    """Rows (of the new table `post`) whose votes with some other row can differ from the old table's: the owners
    of every word the change touched that now counts and got a new picture, or that counts now and did not
    before, or the reverse (its size crossed LOCAL_STOP_WORD)."""
    words_ = np.union1d(removed, added)
    if not len(words_):
        return np.zeros(0, np.int64)

    def size(p: np.ndarray, mm: int) -> np.ndarray:
        return np.searchsorted(p, (words_ + 1) * mm) - np.searchsorted(p, words_ * mm)

    def counted(sizes: np.ndarray) -> np.ndarray:
        return (sizes >= 2) & (sizes <= LOCAL_STOP_WORD)

    now, before = counted(size(post, m)), counted(size(old_post, m0))
    wanted = words_[(now != before) | (now & np.isin(words_, added))]
    lo, hi = np.searchsorted(post, wanted * m), np.searchsorted(post, (wanted + 1) * m)
    at = np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist())]) if len(wanted) else lo
    pic = post[at] % m
    return np.unique(np.where(pic >= n, pic - n, pic))


def _codes(pictures: Sequence[IndexedFile]) -> dict[str, np.ndarray]:
    """The pictures' pHash codes: of the 8 rotations and mirrors of each thumbnail, and of each whole frame (the
    thumbnail itself where nothing was trimmed), and which were trimmed."""
    n = len(pictures)
    thumbs = np.frombuffer(b"".join(f.thumb for f in pictures), np.uint8).reshape(n, THUMB_SIDE, THUMB_SIDE)
    framed = np.array([bool(f.frame) for f in pictures], bool)
    whole = thumbs.copy()
    if framed.any():
        whole[framed] = unpack_frames([f.frame for f in pictures if f.frame])[0]
    return {"orient": orientation_codes(thumbs), "whole": upright_codes(whole), "framed": framed}


def _contents(hashes: Sequence[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(hashes), np.uint8).reshape(len(hashes), -1) if hashes else np.zeros((0, 16),
                                                                                                      np.uint8)


def _whole(a) -> np.ndarray:
    return a.whole() if isinstance(a, _Stored) else np.asarray(a)


def _rows(a, index: np.ndarray) -> np.ndarray:
    return a.rows(index) if isinstance(a, _Stored) else a[index]


def _windows(a, starts: np.ndarray, width: int) -> np.ndarray:
    """(len(starts), width): a[start:start + width] for each start, filled with _LAST past the end."""
    if isinstance(a, _Stored):
        return a.windows(starts, width)
    at = starts[:, None] + np.arange(width)
    return np.where(at < len(a), a[np.minimum(at, max(len(a) - 1, 0))], _LAST) if len(a) else np.full(at.shape, _LAST)


class Lookup:
    """The arrays of one revision: in memory (`build`), or read from their file (`read`) as a query needs them;
    `write` keeps them."""

    def __init__(self, meta: dict, arrays: dict[str, np.ndarray]):
        self.meta = meta
        self._arrays = arrays
        self.ids = arrays["ids"]  # (n,) int64 catalog id of each row, ascending
        self.orient = arrays["orient"]  # (n, 8, 8) uint8
        self.whole = arrays["whole"]  # (n, 8) uint8: upright pHash of the whole frame (the thumbnail's if untrimmed)
        self.framed = arrays["framed"]  # (n,) bool
        self.partners = arrays["partners"]  # (n, TOP) int32 rows, -1 past the last
        self.votes = arrays["votes"]  # (n, TOP) int32
        self.mirrors = arrays["mirrors"]  # (n, TOP) int8: the pair is the mirrored one
        self.content = arrays["content"]  # (n, 16) uint8: each row's content hash
        self.counts = arrays["counts"]  # (n, 2) int32: descriptors each row posts, upright and mirrored
        self.postings = [arrays[f"postings{t}"] for t in range(meta["tables"])]
        # every _BLOCK-th posting of each table: a word is found in its block, a read of a page or two
        self.directory = [arrays[f"directory{t}"] for t in range(meta["tables"])]
        self.most = int(meta["most"])
        self.tables = [word_maps(positions) for positions in word_tables(int(meta["descriptors"]))]
        self._searches = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, pictures: Sequence[IndexedFile], searched: Stacked, most: int) -> Lookup:
        """From one file per content, each with a thumbnail, in id order, and `searched`: their `most` strongest
        descriptors, then their mirror images' (as pairs.hash_pairs searches them)."""
        n = len(pictures)
        posts = list(postings(searched, word_tables(searched.columns.shape[1])))
        partners, votes, mirrors = top_partners(*all_votes(posts, n, 2 * n), n, TOP)
        arrays = {"ids": np.array([f.id for f in pictures], np.int64), **_codes(pictures), "partners": partners,
                  "votes": votes, "mirrors": mirrors, "content": _contents([f.content_hash for f in pictures]),
                  "counts": searched.counts.reshape(2, n).T.astype(np.int32)}
        return cls._with_postings(arrays, posts, most)

    @classmethod
    def _with_postings(cls, arrays: dict, posts: list[np.ndarray], most: int) -> Lookup:
        arrays.update((f"postings{t}", p) for t, p in enumerate(posts))
        arrays.update((f"directory{t}", p[::_BLOCK].copy()) for t, p in enumerate(posts))
        meta = {"tables": len(posts), "most": most, "descriptors": int(arrays["counts"].sum())}
        return cls(meta, arrays)

    @classmethod
    def updated(cls, old: Lookup, ids: np.ndarray, contents: np.ndarray,
                pictures: Callable[[list[int]], list[IndexedFile]], searched: Callable[[list[IndexedFile]], Stacked],
                most: int) -> Lookup | None:
        """The lookup of the library's contents now (`ids`, ascending: the lowest catalog id of each content;
        `contents`: their hashes), made from `old` (an earlier revision's) where few contents came or went: what
        build() would make, with only the new pictures read (`pictures`: ids -> files; `searched`: files -> their
        `most` strongest descriptors, then their mirror images') and only the partners that can have changed
        counted again. None where it cannot be (another descriptor budget or word size, or much changed)."""
        n0, n = len(old.ids), len(ids)
        if old.most != most or not n0 or not n:
            return None
        # a row is kept where the same id holds the same content now (a file rewritten in place keeps its id)
        _common, at_old, at_new = np.intersect1d(old.ids, ids, assume_unique=True, return_indices=True)
        same = (_whole(old.content)[at_old] == np.asarray(contents)[at_new]).all(axis=1)
        kept_old, kept_new = np.zeros(n0, bool), np.zeros(n, bool)
        kept_old[at_old[same]], kept_new[at_new[same]] = True, True
        added = np.flatnonzero(~kept_new)
        if len(added) + (n0 - int(kept_old.sum())) > max(64, n // 8):
            return None
        files = pictures(ids[added].tolist())
        if len(files) != len(added):
            return None
        new_search = searched(files)
        counts = np.zeros((n, 2), np.int32)
        remap = np.full(n0, -1, np.int64)
        remap[kept_old] = np.flatnonzero(kept_new)  # both in id order: the kept rows keep their order
        counts[kept_new] = _whole(old.counts)[kept_old]
        counts[added] = new_search.counts.reshape(2, len(added)).T
        if word_bits(int(counts.sum())) != word_bits(int(old.meta["descriptors"])):
            return None  # the words are cut to another size: every posting changes
        tables = word_tables(int(counts.sum()))
        if len(tables) != len(old.postings):
            return None  # another number of tables: the search would propose other pairs
        m0, m = 2 * n0, 2 * n
        # the new pictures' postings: their uprights are rows `added`, their mirror images n + those rows
        owner = np.repeat(np.arange(2 * len(added), dtype=np.int64), new_search.counts)
        owner = np.where(owner < len(added), added[np.minimum(owner, len(added) - 1)],
                         n + added[np.maximum(owner - len(added), 0)]) if len(owner) else owner
        old_partners = _whole(old.partners)
        # rows whose kept partners name a picture gone: their best partners are counted again, and so are the new
        # pictures' and those of every row whose votes with another row can have changed (_owners_of_changed)
        holds_gone = ((old_partners >= 0) & ~np.concatenate([kept_old, [True]])[old_partners]).any(axis=1)
        affected = [added, remap[np.flatnonzero(holds_gone & kept_old)]]
        posts = []
        for positions, stored in zip(tables, old.postings):
            post = _whole(stored)
            word, pic = post // m0, post % m0
            mirror = pic >= n0
            row = remap[pic - n0 * mirror]
            gone = row < 0
            moved = word[~gone] * m + row[~gone] + n * mirror[~gone]  # still sorted: the remap keeps the order
            fresh = np.unique(words(new_search.columns, positions) * m + owner) if len(owner) else owner
            posts.append(np.insert(moved, np.searchsorted(moved, fresh), fresh))
            affected.append(_owners_of_changed(posts[-1], post, np.unique(word[gone]), np.unique(fresh // m), m, m0,
                                               n))
            del post, word, pic, mirror, row, moved
        rows = np.unique(np.concatenate([np.zeros(0, np.int64), *affected]).astype(np.int64))
        rows = rows[rows >= 0]
        partners = np.full((n, TOP), -1, np.int32)
        votes = np.zeros((n, TOP), np.int32)
        mirrors = np.zeros((n, TOP), np.int8)
        stay = kept_old.copy()
        stay[kept_old] = ~np.isin(remap[kept_old], rows)
        partners[remap[stay]] = np.where(old_partners[stay] >= 0, remap[old_partners[stay]], -1)
        votes[remap[stay]] = _whole(old.votes)[stay]
        mirrors[remap[stay]] = _whole(old.mirrors)[stay]
        if len(rows):
            p, v, mi = top_partners(*pair_votes(posts, n, m, rows), n, TOP)
            partners[rows], votes[rows], mirrors[rows] = p[rows], v[rows], mi[rows]
        codes = {"orient": np.zeros((n, 8, 8), np.uint8), "whole": np.zeros((n, 8), np.uint8),
                 "framed": np.zeros(n, bool)}
        fresh = _codes(files)
        for name, a in codes.items():
            a[kept_new], a[added] = getattr(old, name)[kept_old], fresh[name]
        arrays = {"ids": np.asarray(ids, np.int64), **codes, "partners": partners, "votes": votes,
                  "mirrors": mirrors, "content": np.asarray(contents, np.uint8), "counts": counts}
        return cls._with_postings(arrays, posts, most)

    def write(self, path: str) -> None:
        arrays = {name: _whole(a) for name, a in self._arrays.items()}
        layout, at = {}, 0
        for name, a in arrays.items():
            layout[name] = [a.dtype.str, list(a.shape), at]
            at += -(-a.nbytes // _ALIGN) * _ALIGN
        whole = set(_WHOLE) | {f"directory{t}" for t in range(len(self.postings))}
        header = json.dumps({"meta": self.meta, "arrays": layout, "whole": sorted(whole)}).encode()
        start = -(-(len(_MAGIC) + 8 + len(header)) // _ALIGN) * _ALIGN
        with open(path, "wb") as fh:
            fh.write(_MAGIC + len(header).to_bytes(8, "little") + header)
            for name, a in arrays.items():
                fh.seek(start + layout[name][2])
                fh.write(np.ascontiguousarray(a).tobytes())
            fh.truncate(start + at)

    @classmethod
    def read(cls, path: str) -> Lookup | None:
        """The structures in `path`: the small arrays read whole, the postings and partners left in the file and
        read as a query needs them. None where the file is missing or not one this version wrote. The file stays
        open: a newer revision may replace it meanwhile, and this one reads on from the file it opened."""
        try:
            fh = open(path, "rb")
        except OSError:
            return None
        try:
            if fh.read(len(_MAGIC)) != _MAGIC:
                return None
            size = int.from_bytes(fh.read(8), "little")
            head = json.loads(fh.read(size))
            start = -(-(len(_MAGIC) + 8 + size) // _ALIGN) * _ALIGN
            total = os.fstat(fh.fileno()).st_size
            arrays = {}
            for name, (dtype, shape, offset) in head["arrays"].items():
                shape = tuple(shape)
                nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
                if start + offset + nbytes > total:
                    return None
                if name in head["whole"]:
                    raw = os.pread(fh.fileno(), nbytes, start + offset)
                    arrays[name] = np.frombuffer(raw, dtype).reshape(shape)
                else:
                    arrays[name] = _Stored(fh, start + offset, dtype, shape)
            return cls(head["meta"], arrays)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def proposed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(i, j, mirror), i < j, rows: the local-feature candidates of the whole library, as
        candidates.local_candidates proposes them (each picture's LOCAL_PER_IMAGE best pairs), read from the
        partners kept, for a `dupes` over every indexed file."""
        n = len(self.ids)
        partners = _whole(self.partners)[:, :LOCAL_PER_IMAGE]
        mirrors = _whole(self.mirrors)[:, :LOCAL_PER_IMAGE]
        src, rank = np.nonzero(partners >= 0)
        dst, mirror = partners[src, rank].astype(np.int64), mirrors[src, rank].astype(np.int64)
        i, j = np.minimum(src, dst), np.maximum(src, dst)
        key = np.unique((i * n + j) * 2 + mirror)
        return key // 2 // n, key // 2 % n, key % 2

    def row_of(self, ids: Sequence[int]) -> int | None:
        """The row of the content these catalog ids hold (one of them is its row's id), or None."""
        for i in ids:
            r = int(np.searchsorted(self.ids, i))
            if r < len(self.ids) and int(self.ids[r]) == i:
                return r
        return None

    def near(self, thumb: bytes, frame: bytes | None, blob: bytes, max_distance: int,
             own: int | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """(rows, proposed) for a query picture (its thumbnail, whole frame where trimmed, packed local features):
        every row whose pHash lies within `max_distance` bits of the query's in some rotation or mirror, or whose
        whole frame does where either is trimmed; and the local-feature candidates (row, mirror) the whole search
        would propose with it. `own`: the row of the query's own content (an indexed picture), left out."""
        upright, turned, whole_frames = self._hamming()
        q = orientation_codes(np.frombuffer(thumb, np.uint8).reshape(1, THUMB_SIDE, THUMB_SIDE))[0]  # (8, 8)
        found = [upright.within(q, max_distance)[1],  # the query turned or mirrored against each row upright
                turned.within(q[:1], max_distance)[1] // len(q)]  # each row turned against the query
        whole = unpack_frames([frame])[0] if frame else np.frombuffer(thumb, np.uint8).reshape(1, THUMB_SIDE,
                                                                                               THUMB_SIDE)
        framing = whole_frames.within(upright_codes(whole), max_distance)[1]
        found.append(framing if frame else framing[self.framed[framing]])
        proposed = self._proposed(blob, own)
        rows = np.unique(np.concatenate([*found, np.array([r for r, _m in proposed], np.int64)]))
        if own is not None:
            rows = rows[rows != own]
        return rows, proposed

    def _hamming(self):
        """knn.HammingIndex of the rows' upright codes, of all 8 of their codes, and of their whole frames'; built
        on the first query."""
        if self._searches is None:
            from .knn import HammingIndex

            self._searches = (HammingIndex(self.orient[:, 0]), HammingIndex(self.orient.reshape(-1, 8)),
                              HammingIndex(self.whole))
        return self._searches

    def _proposed(self, blob: bytes, own: int | None) -> list[tuple[int, int]]:
        """The local-feature candidates (row, mirror) of the query picture, as candidates.local_candidates picks
        them in the whole library with the query added as its last picture (and its own row, `own`, left out):
        pairs sharing LOCAL_MIN_VOTES words or more that are among the LOCAL_PER_IMAGE best of one of the two."""
        n = len(self.ids)
        if not blob or not n:
            return []
        counts = self._votes(blob, own)
        v0, v1 = counts[0::2], counts[1::2]
        keys = np.flatnonzero(counts >= LOCAL_MIN_VOTES)  # row * 2 + mirror, by row, upright first
        rows, mirror, v = keys // 2, keys % 2, counts[keys]
        if not len(rows):
            return []
        # the query's side: its best by votes, then row, the upright key before the mirrored one
        order = np.lexsort((mirror, rows, -v))
        mine = np.zeros(len(rows), bool)
        mine[order[:LOCAL_PER_IMAGE]] = True
        # each partner's side: the query comes after every other picture, so it is ranked behind every pair with
        # as many votes, and behind its own other key where that one has as many (the upright key) or more
        partners, votes = _rows(self.partners, rows), _rows(self.votes, rows)
        ahead = ((partners >= 0) & (partners != (-2 if own is None else own)) & (votes >= v[:, None])).sum(axis=1)
        other = np.where(mirror == 1, v0[rows], v1[rows])
        ahead += (other >= LOCAL_MIN_VOTES) & np.where(mirror == 1, other >= v, other > v)
        chosen = mine | (ahead < LOCAL_PER_IMAGE)
        return sorted(zip(rows[chosen].tolist(), mirror[chosen].tolist()))

    def _votes(self, blob: bytes, own: int | None) -> np.ndarray:
        """(2n,) words shared, over all tables, by the query with each row upright (2 row) and mirrored
        (2 row + 1), counted as candidates._votes counts them."""
        n = len(self.ids)
        m = 2 * n
        counts = np.zeros(2 * n, np.int64)
        up = descriptors_of(blob, self.most)
        flipped = descriptors_of(blob, self.most, mirror=True)
        for positions, post, directory in zip(self.tables, self.postings, self.directory):
            w_up = np.unique(words(np.ascontiguousarray(up.T), positions))
            w_flip = np.unique(words(np.ascontiguousarray(flipped.T), positions))
            word = np.union1d(w_up, w_flip)
            if not len(word) or not len(post):
                continue
            # each word's postings lie in [word * m, (word + 1) * m): read from its block on, enough for a word
            # with one more than a stop word's (own rows may leave)
            start = np.maximum(np.searchsorted(directory, word * m) - 1, 0) * _BLOCK
            window = _windows(post, start, _BLOCK + LOCAL_STOP_WORD + 3)
            mine = (window >= (word * m)[:, None]) & (window < ((word + 1) * m)[:, None])
            size = mine.sum(axis=1)
            take = np.flatnonzero((size >= 1) & (size <= LOCAL_STOP_WORD + 2))
            owner = window[take][mine[take]] % m
            which = np.repeat(np.arange(len(take)), size[take])
            if own is not None:
                stay = (owner != own) & (owner != own + n)
                owner, which = owner[stay], which[stay]
            in_up = _among(word[take], w_up)
            in_flip = _among(word[take], w_flip)
            total = np.bincount(which, minlength=len(take)) + in_up + in_flip
            good = (total >= 2) & (total <= LOCAL_STOP_WORD)
            keep = good[which]
            owner, which = owner[keep], which[keep]
            upright = owner < n
            # the query upright against each picture (upright: key 0) and each mirror image (key 1)
            a = in_up[which]
            np.add.at(counts, np.where(upright, owner * 2, (owner - n) * 2 + 1)[a], 1)
            # the query's mirror image against each upright picture (key 1); two mirror images count as upright
            b = in_flip[which] & upright
            np.add.at(counts, owner[b] * 2 + 1, 1)
        return counts


def of(idx) -> Lookup | None:
    """The Lookup of an open index's (store.IndexDir) revision, or None where `index` has not written one for it
    (or it cannot be read)."""
    from .store import LOOKUP_PREFIX, LOOKUP_SUFFIX

    return idx.derived(LOOKUP_PREFIX, LOOKUP_SUFFIX, Lookup.read)
