"""An image or a text -> the indexed files most like it, on an open index: by CLIP where the index has
embeddings, else the files the matcher `dupes` uses pairs with the image, found through the revision's lookup
(lookup.py; written here, by `index`) or, without one, in the whole catalog."""

from __future__ import annotations

import os
from collections.abc import Callable

from .errors import UsageError
from .hashing import max_distance
from .ingest import Progress
from .pairs import DEFAULT_HASH_THRESHOLD, LocalFeatures, matches_of
from .records import FileRef, IndexedFile, Match, QueryReport
from .store import LOOKUP_PREFIX, LOOKUP_SUFFIX, IndexDir


def query_label(text_or_image: str) -> tuple[str, bool]:
    """(label, is_image): an image file's absolute path, or a text."""
    if os.path.isdir(text_or_image):
        raise UsageError(f"{text_or_image} is a folder: query takes image files (or texts, with CLIP)")
    if os.path.isfile(text_or_image):
        return os.path.abspath(text_or_image), True
    if _looks_like_a_path(text_or_image):
        raise UsageError(f"no such image file: {text_or_image}")
    return text_or_image, False


def load_model(spec: str, *, device: str = "auto", precision: str = "auto"):
    from .embed import load

    return load(spec, device=device, precision=precision)


def search(idx: IndexDir, label: str, *, data: bytes | None = None, k: int = 10, threshold: float | None = None,
           exclude_self: bool = False, model: Callable | None = None) -> QueryReport:
    """query() on an open index: the image `data` (its bytes; `label` names it) or, without data, the text
    `label`. `model`: spec -> embed.ClipModel, asked only when the query needs a forward pass (a server passes
    the model it holds)."""
    from . import rank

    is_image = data is not None
    catalog = idx.catalog
    spec = catalog.get_meta("model") if catalog.has_embeddings() else None
    if not spec and not is_image:  # one answer, whether or not the index holds any files
        raise UsageError(f"a text query ({label!r} is not an image file) needs CLIP embeddings, which this "
                         "index does not have (it was made by hashes only: with --no-clip, or without the model's "
                         "weights at hand); run `simfind index DIR` again with the weights available (--model) to "
                         "search by text")
    total = idx.cached("files", catalog.file_count)  # a scan of the content-hash index: once per batch
    if not total:
        return QueryReport(label, "clip" if spec else "hash", (), threshold, 0)
    if not spec and threshold is None:
        threshold = DEFAULT_HASH_THRESHOLD  # a hash query lists what dupes would pair with it
    if spec:
        vector = _query_vector(idx, label, data, spec, model or load_model)

        def ranked(n: int) -> list[tuple[IndexedFile, float]]:
            found = rank.by_clip(idx.vectors(), vector, n, text=not is_image)
            files = {f.id: f for f in catalog.files_by_id([i for i, _s in found])}
            return [(files[i], s) for i, s in found if i in files]
    else:
        q = query_features(label, data)
        me = IndexedFile(-1, label, q.ref.size, q.ref.mtime_ns, q.content_hash, q.width, q.height, q.phash,
                         q.thumb, q.content_pixels, q.frame or None)
        found = _hash_matches(idx, me, q.local, threshold)

        def ranked(n: int) -> list[tuple[IndexedFile, float]]:
            return found[:n]

    matches, gone = _present(ranked, k + (1 if exclude_self else 0))
    if exclude_self:
        own = os.path.realpath(label)
        matches = [(f, s) for f, s in matches if os.path.realpath(f.path) != own]
    matches = [(f, s) for f, s in matches[:k] if threshold is None or s >= threshold - 1e-9]
    return QueryReport(label, "clip" if spec else "hash", tuple(Match(r, f, s) for r, (f, s) in enumerate(matches, 1)),
                       threshold, total, gone)


def _hash_matches(idx: IndexDir, me: IndexedFile, blob: bytes, threshold: float) -> list[tuple[IndexedFile, float]]:
    """matches_of over the candidates the revision's lookup gives the query (its own content's files included),
    or, where `index` has built none, over the whole catalog."""
    catalog = idx.catalog
    local = LocalFeatures(catalog.local_features, {me.content_hash: blob})
    from .lookup import of

    lookup = of(idx)
    if lookup is None:
        return matches_of(me, catalog.indexed_files(), threshold, local)
    from .verify import LOCAL_EDIT_BITS

    own = lookup.row_of([f.id for f in catalog.files_with_content([me.content_hash])])
    rows, proposed = lookup.near(me.thumb, me.frame, blob, max_distance(threshold) + LOCAL_EDIT_BITS, own)
    content = {f.id: f.content_hash for f in catalog.files_by_id(lookup.ids[rows].tolist())}
    files = catalog.files_with_content({*content.values(), me.content_hash})
    return matches_of(me, files, threshold, local, [(content[int(lookup.ids[r])], m) for r, m in proposed])


def _looks_like_a_path(text: str) -> bool:
    """A name with an image extension, or a path in a folder that exists: a mistyped file, not a text query."""
    from .scan import is_image_name

    parent = os.path.dirname(text)
    return is_image_name(text) or (bool(parent) and os.path.isdir(parent))


def _present(ranked: Callable[[int], list], k: int) -> tuple[list, int]:
    """(the top k of `ranked(n)` (the n best, best first) among files still on disk, how many ranked above the
    last of them are gone): a stat per result, and a wider search only when some are gone."""
    n = k
    while True:
        found = ranked(n)
        present = [(f, s) for f, s in found if os.path.exists(f.path)]
        if len(present) >= k or len(found) < n:
            last = found.index(present[k - 1]) + 1 if len(present) >= k else len(found)
            return present[:k], last - min(k, len(present))
        n += 2 * (len(found) - len(present))


def _query_vector(idx: IndexDir, label: str, data: bytes | None, spec: str, model: Callable):
    """(1, dim) float32: a stored embedding where the index holds the query image's bytes `data` (the file
    itself, or a byte copy: no model load, no forward pass), else the model's embedding of the image or, without
    data, of the text `label`."""
    if data is not None:
        from .hashing import content_hash

        stored = idx.catalog.embedding_of_content(content_hash(data))
        if stored is not None:
            return stored[None]
    clip = model(spec)
    if data is not None:
        return clip.embed_pixels(query_features(label, data, clip.preprocess).pixels[None])
    return clip.embed_texts([label])


def read_query(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise UsageError(f"cannot read the query image {path}: {e.strerror or e}") from None


def query_features(label: str, data: bytes, clip=None):
    """The query image `data`, read exactly as `index` reads files (same decode, same draft size), so that an
    indexed file finds itself at similarity 1.0."""
    from .pipeline import process_bytes
    from .records import Failure

    result = process_bytes(FileRef(label, len(data), 0), data, clip)
    if isinstance(result, Failure):
        raise UsageError(f"cannot read the query image {label}: {result.reason}")
    return result


def write_lookup(idx: IndexDir, progress: Progress) -> None:
    """Write the lookup of the index's revision: made from the previous revision's where few contents changed
    (lookup.Lookup.updated), else built from every content's features."""
    import numpy as np

    from .lookup import Lookup
    from .pairs import local_searched

    catalog = idx.catalog
    if catalog.thumbless():
        return
    rows = catalog.content_rows()
    if not rows:
        return
    progress("lookup", 0, 1)
    most = local_searched(2 * len(rows))  # each picture and its mirror image, as hash_pairs searches them
    local = LocalFeatures(catalog.local_features)
    previous = idx.previous_derived(LOOKUP_PREFIX, LOOKUP_SUFFIX)
    old = Lookup.read(previous) if previous else None
    lookup = None
    if old is not None:
        ids = np.array([i for i, _c in rows], np.int64)
        contents = np.frombuffer(b"".join(c for _i, c in rows), np.uint8).reshape(len(rows), -1)
        lookup = Lookup.updated(old, ids, contents, lambda wanted: sorted(catalog.files_by_id(wanted),
                                                                          key=lambda f: f.id),
                                lambda files: local.searched(files, most), most)
    if lookup is None:
        pictures = catalog.content_pictures()
        lookup = Lookup.build(pictures, local.searched(pictures, most), most)
    idx.save_derived(LOOKUP_PREFIX, LOOKUP_SUFFIX, lookup.write)
    progress("lookup", 1, 1)
