"""The library API: index, duplicates, info. The only module that composes the others; the CLI is a thin shell."""

from __future__ import annotations

import os
from functools import partial
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from .catalog import Catalog
from .errors import IndexUnreadable, SimfindError, UsageError
from .group import star_groups
from .hashing import content_hash, max_distance, similarity, similarity_of_distance
from .records import (
    DupesReport,
    Failure,
    FileRef,
    Group,
    IndexedFile,
    IndexInfo,
    IndexReport,
    Match,
    Member,
    QueryReport,
)
from .scan import scan

if TYPE_CHECKING:
    import numpy as np

    from .pipeline import Runner

# Tuned on ../shared/data/labelled (see README, "Choosing the threshold").
DEFAULT_HASH_THRESHOLD = 0.9
# Not yet tuned on real weights (none can be downloaded where this was written): a cosine of 0.95 is where
# published CLIP near-duplicate work (e.g. LAION's dedup) starts; see README.
DEFAULT_CLIP_THRESHOLD = 0.95
BY_CHOICES = ("auto", "exact", "hash", "clip")
LOCK_NAME = "simfind.lock"
LOCK_TIMEOUT_S = 300.0

# (phase, done, total). Phases: "scan" (files found; total 0), "hash" (bytes of the files hashed so far: they go
# largest first, so a count of files would make an ETA wildly wrong), "index" (files, when CLIP embeds them: the
# model's cost is per image), "group" (steps).
Progress = Callable[[str, int, int], None]
Notify = Callable[[str], None]  # one-line warnings and notices


class Interrupted(SimfindError):
    """Ctrl-C during indexing. What finished is committed."""

    exit_code = 130


def default_index_dir() -> str:
    from platformdirs import user_data_dir

    return os.path.join(user_data_dir("simfind", appauthor=False), "index")


def _quiet_progress(phase: str, done: int, total: int) -> None:
    pass


def _quiet_notify(message: str) -> None:
    pass


def _existing_roots(paths: Iterable[str]) -> list[str]:
    roots = []
    for p in paths:
        if not os.path.exists(p):
            raise UsageError(f"no such file or folder: {p}")
        roots.append(os.path.abspath(p))
    return roots


def _lock(index_dir: str, notify: Notify) -> _WriterLock:
    """One writer per index: an exclusive SQLite transaction on its own empty database file (LOCK_NAME). SQLite
    locks portably (POSIX and Windows), in and across processes, and the OS drops the lock of a process that
    dies; filelock did the same job but its import took ~17 ms of a ~195 ms stat-only re-index."""
    try:
        os.makedirs(index_dir, exist_ok=True)
    except OSError as e:
        raise IndexUnreadable(f"cannot create the index folder {index_dir}: {e.strerror or e}") from None
    path = os.path.join(index_dir, LOCK_NAME)
    held = _WriterLock.take(path, 0)
    if held is None:
        notify(f"waiting for another simfind that is writing {index_dir} ...")
        held = _WriterLock.take(path, LOCK_TIMEOUT_S)
        if held is None:
            raise IndexUnreadable(
                f"another simfind has been writing {index_dir} for over {LOCK_TIMEOUT_S:.0f}s; "
                "wait for it to finish or pass another --index"
            )
    return held


class _WriterLock:
    def __init__(self, conn):
        self._conn = conn

    @classmethod
    def take(cls, path: str, timeout: float, *, again: bool = True) -> _WriterLock | None:
        """The lock, or None when another writer still holds it after `timeout` seconds."""
        import sqlite3

        try:
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise IndexUnreadable(f"cannot open the index lock {path}: {e}") from None
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as e:
            conn.close()
            if "locked" in str(e) or "busy" in str(e):
                return None
            raise IndexUnreadable(f"cannot lock the index ({path}): {e}") from None
        except sqlite3.DatabaseError as e:  # the file is not SQLite's (something else wrote it): no one can hold it
            conn.close()
            if not again:
                raise IndexUnreadable(f"cannot lock the index ({path}): {e}; delete that file") from None
            try:
                os.unlink(path)
            except OSError:
                pass
            return cls.take(path, timeout, again=False)
        return cls(conn)

    def release(self) -> None:
        self._conn.close()  # ends the transaction, and with it the lock


def index(
    paths: Sequence[str],
    *,
    index_dir: str,
    workers: int | None = None,
    hidden: bool = False,
    exclude: Sequence[str] = (),
    runner: Runner | None = None,
    clip: str | None = None,
    require_clip: bool = False,
    reembed: bool = False,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int = 32,
    progress: Progress = _quiet_progress,
    notify: Notify = _quiet_notify,
) -> IndexReport:
    """Bring the index up to date with `paths`: new and changed files are decoded, unchanged ones only stat'ed,
    renamed ones (same bytes) moved without decoding, vanished ones removed. With `clip` (a model spec), files
    also get CLIP embeddings; files indexed earlier without one get it now."""
    roots = _existing_roots(paths)
    model = _LazyModel(clip, require_clip, device, precision, notify) if clip else None
    found = scan(roots, hidden=hidden, exclude=exclude, on_found=lambda n: progress("scan", n, 0))
    lock = _lock(index_dir, notify)
    try:
        with Catalog.open(index_dir, create=True) as catalog:
            if model is not None:
                _check_model(catalog, model.spec, reembed)
            report = _update(catalog, roots, found.files, found.failures, runner, workers, progress, model, batch_size)
            if catalog.counts()["embedded"] and (report.added or report.updated or report.removed or report.embedded):
                _refresh_vectors(catalog, index_dir)  # so the next query does not pay for the rebuild
            return report
    finally:
        lock.release()


class _LazyModel:
    """The CLIP model, loaded on first use: a re-index with nothing to embed never imports torch."""

    def __init__(self, spec: str, require: bool, device: str, precision: str, notify: Notify):
        from .embed import canonical

        self.spec = canonical(spec)
        self._args = (spec, require, device, precision, notify)
        self._model = None
        self._tried = False

    def get(self):
        if not self._tried:
            self._tried = True
            self._model = _load_model(*self._args)
        return self._model


def _load_model(spec: str, require: bool, device: str, precision: str, notify: Notify):
    from .embed import ModelUnavailable, load
    from .pipeline import default_workers

    try:
        return load(spec, device=device, threads=default_workers(), precision=precision)
    except ModelUnavailable as e:
        if require:
            raise
        notify(f"warning: {e}; indexing hashes only")
        return None


def _check_model(catalog: Catalog, spec: str, reembed: bool) -> None:
    """One model per index: a different model is refused (or, with reembed, replaces every embedding)."""
    current = catalog.get_meta("model")
    if current == spec or not catalog.counts()["embedded"]:
        return
    if not reembed:
        raise SimfindError(
            f"this index holds embeddings from {current}; pass --model {current}, "
            f"or --reembed to replace them with {spec}, or use another --index"
        )
    catalog.clear_embeddings(spec, 0)  # every file is now unembedded; the dimension is set once the model loads


def _refresh_vectors(catalog: Catalog, index_dir: str):
    from .vectors import load_or_build

    return load_or_build(index_dir, catalog.embeddings_rev(), catalog.embeddings)


def _update(
    catalog: Catalog,
    roots: list[str],
    files: list[FileRef],
    scan_failures: list[Failure],
    runner: Runner | None,
    workers: int | None,
    progress: Progress,
    model=None,
    batch_size: int = 32,
) -> IndexReport:
    known = catalog.stat_rows(roots)
    unembedded = catalog.unembedded(roots) if model is not None else set()
    outdated = catalog.outdated(roots)
    reembed_only: set[str] = set()
    on_disk = {f.path for f in files} | {f.ref.path for f in scan_failures}
    gone = {p: row for p, row in known.items() if p not in on_disk}
    todo: list[FileRef] = []
    unchanged = added = updated = refreshed = 0
    new_files: list[FileRef] = []
    for f in files:
        row = known.get(f.path)
        if row is None:
            new_files.append(f)
        elif row[1] == f.size and row[2] == f.mtime_ns:
            unchanged += 1
            if f.path in outdated:
                todo.append(f)  # indexed by an older simfind that kept less of it: decode again
                refreshed += 1
            elif f.path in unembedded:
                todo.append(f)  # indexed earlier without CLIP: decode again for the embedding
                reembed_only.add(f.path)
        else:
            todo.append(f)
            updated += 1

    renames = _find_renames(new_files, gone)
    renamed_new = {new for _old, new, _s, _m in renames}
    renamed_old = {old for old, _new, _s, _m in renames}
    for f in new_files:
        if f.path not in renamed_new:
            todo.append(f)
            added += 1
    removals = [p for p in gone if p not in renamed_old]
    catalog.move(renames, removals)
    if scan_failures:
        catalog.write(scan_failures)

    lazy, model = model, None
    if lazy is not None and todo:
        model = lazy.get()
        if model is None:  # no weights: hashes only, and nothing to redo for files that only lacked a vector
            todo = [f for f in todo if f.path not in reembed_only]
            reembed_only = set()
        elif catalog.get_meta("model") != model.spec or catalog.get_meta("dim") != str(model.dim):
            catalog.clear_embeddings(model.spec, model.dim)  # a first model for this index (checked above)
    failures: list[Failure] = list(scan_failures)
    done = done_bytes = 0
    phase, total_bytes = ("index" if model is not None else "hash"), sum(f.size for f in todo)

    def report() -> None:
        if phase == "index":
            progress(phase, done, len(todo))
        else:
            progress(phase, done_bytes, total_bytes)

    report()
    try:
        if todo:  # decoding pulls in Pillow, numpy and maybe a process pool: only when there is work
            from .pipeline import CHUNK_SIZE, default_workers, make_runner, run

            clip_pp = model.preprocess if model is not None else None
            if workers is None and model is not None:
                # On the CPU the model takes every core and decoding needs a small share (3 ms a photo against
                # 52 core-ms for a bf16 ViT-B-32 forward, bench/bench_clip.py); a GPU forward is faster than
                # decoding, so there every core but the one feeding the GPU decodes.
                cores = default_workers()
                workers = max(1, cores // 4) if model.device == "cpu" else max(1, cores - 1)
            runner = runner or make_runner(workers, overlap=model is not None, work_bytes=total_bytes)
            batches = run(todo, runner, batch_size if model else CHUNK_SIZE, clip_pp, workers)
        else:
            batches = iter(())
        for batch in batches:
            catalog.write(batch, _embed(model, batch) if model is not None else None)
            failures += [r for r in batch if isinstance(r, Failure)]
            done += len(batch)
            done_bytes += sum(r.ref.size for r in batch)
            report()
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: {done} of {len(todo)} files were indexed and kept; run the same command again to finish"
        ) from None
    return IndexReport(
        scanned=len(files),
        unchanged=unchanged,
        added=added,
        updated=updated,
        renamed=len(renames),
        removed=len(removals),
        failed=len(failures),
        failures=tuple(failures),
        embedded=len(reembed_only),
        refreshed=refreshed,
    )


def _embed(model, batch) -> dict[str, bytes]:
    import numpy as np

    from .records import Features

    done = [r for r in batch if isinstance(r, Features) and r.pixels is not None]
    if not done:
        return {}
    vecs = model.embed_pixels(np.stack([r.pixels for r in done]))
    return {r.ref.path: v.astype(np.float16).tobytes() for r, v in zip(done, vecs)}


def _find_renames(
    new_files: list[FileRef], gone: dict[str, tuple[int, int, int, bytes | None]]
) -> list[tuple[str, str, int, int]]:
    """Match new paths to vanished ones by size, then by the bytes' hash: a rename costs a read, not a decode."""
    by_size: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
    for path, (_id, size, _mtime, chash) in gone.items():
        if chash is not None:
            by_size[size].append((path, chash))
    renames = []
    for f in new_files:
        candidates = by_size.get(f.size)
        if not candidates:
            continue
        try:
            with open(f.path, "rb") as fh:
                digest = content_hash(fh.read())
        except OSError:
            continue  # the pipeline will record why it cannot be read
        for k, (old, chash) in enumerate(candidates):
            if chash == digest:
                renames.append((old, f.path, f.size, f.mtime_ns))
                del candidates[k]
                break
    return renames


def duplicates(
    *,
    index_dir: str,
    paths: Sequence[str] = (),
    threshold: float | None = None,
    by: str = "auto",
    between: tuple[str, str] | None = None,
    keep: str | None = None,
    workers: int | None = None,
    progress: Progress = _quiet_progress,
    notify: Notify = _quiet_notify,
) -> DupesReport:
    """Groups of duplicates among indexed files (under `paths` where given; those are indexed first).
    `keep` picks each group's keeper (KEEP_RULES or a path glob; default: most picture pixels)."""
    keep_key = keeper_rule(keep)
    if by not in BY_CHOICES:
        raise UsageError(f"--by must be one of {', '.join(BY_CHOICES)}, not {by!r}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold must be a similarity between 0 and 1, not {threshold}")
    scope = list(paths) + (list(between) if between else [])
    if scope:
        model = _index_model(index_dir)
        index(scope, index_dir=index_dir, workers=workers, clip=model, progress=progress, notify=notify)
    roots = _existing_roots(scope) if scope else None
    with Catalog.open(index_dir, create=False) as catalog:
        files = catalog.indexed_files(roots)
        errors = len(catalog.errors(roots))
        embedded = catalog.counts()["embedded"] > 0
        ids, vecs = catalog.embeddings(roots) if embedded and by in ("auto", "clip") else (None, None)
    if by == "clip" and not embedded:
        raise SimfindError(
            "this index has no CLIP embeddings; run `simfind index DIR` with the model available, or use --by hash"
        )
    # "auto" uses every signal the index has: hashes and, where there are embeddings, CLIP
    mode = ("auto" if embedded else "hash") if by == "auto" else by
    if mode == "exact":
        threshold = 1.0
    elif threshold is None:
        threshold = DEFAULT_HASH_THRESHOLD if mode == "hash" else DEFAULT_CLIP_THRESHOLD
    progress("group", 0, 1)
    vectors = dict(zip(ids.tolist(), vecs)) if ids is not None else {}
    groups = _group(files, threshold, by=mode, vectors=vectors, keep_key=keep_key, windows=_windows(index_dir))
    if between:
        a, b = (_existing_roots([p])[0] for p in between)
        groups = [g for g in groups if _spans(g, a, b)]
    progress("group", 1, 1)
    return DupesReport(threshold=threshold, by=mode, groups=tuple(groups), files=len(files), errors=errors)


def _windows(index_dir: str):
    """A lookup: file ids -> their crop-window codes (n, W, 8), from the cache next to the catalog (built on
    first use per catalog revision)."""
    import numpy as np

    def lookup(ids):
        from .vectors import load_or_build_windows

        with Catalog.open(index_dir, create=False) as catalog:
            all_ids, codes = load_or_build_windows(index_dir, catalog.embeddings_rev(), catalog.thumbs)
        row = {int(i): r for r, i in enumerate(all_ids.tolist())}
        if not all(int(i) in row for i in ids):
            return None  # the catalog moved on under us: compute from the thumbnails instead
        return codes[np.fromiter((row[int(i)] for i in ids), dtype=np.int64, count=len(ids))]

    return lookup


def _index_model(index_dir: str) -> str | None:
    """The model an existing index was embedded with (so that files added later match it), if any."""
    try:
        with Catalog.open(index_dir, create=False) as catalog:
            return catalog.get_meta("model") if catalog.counts()["embedded"] else None
    except SimfindError:
        return None


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _spans(group: Group, a: str, b: str) -> bool:
    paths = [m.file.path for m in group.members]
    return any(_is_under(p, a) for p in paths) and any(_is_under(p, b) for p in paths)


def _group(files: list[IndexedFile], threshold: float, *, by: str, vectors: dict | None = None,
           keep_key=None, windows=None) -> list[Group]:
    """Exact copies collapse into one node; near pairs (hash, CLIP or both) are searched between nodes and joined
    into star groups (every member a direct match of its group's centre: no chaining). With by="auto",
    `threshold` applies to CLIP and hashes use their own default."""
    import numpy as np

    by_content: dict[bytes, list[IndexedFile]] = defaultdict(list)
    for f in files:
        by_content[f.content_hash].append(f)
    nodes = list(by_content.values())
    pairs: list[tuple[int, int, float]] = []
    win: dict[bytes, np.ndarray] = {}
    if by in ("hash", "auto") and len(nodes) > 1:
        hash_threshold = threshold if by == "hash" else DEFAULT_HASH_THRESHOLD
        reps = [n[0] for n in nodes]
        win = _window_codes([f for f in reps if f.thumb], windows)
        pairs += _hash_pairs(reps, max_distance(hash_threshold), win)
    if by in ("clip", "auto") and vectors:
        from .vectors import cosine_pairs

        with_vec = [k for k, n in enumerate(nodes) if n[0].id in vectors]
        if len(with_vec) > 1:
            mat = np.stack([vectors[nodes[k][0].id] for k in with_vec])
            pairs += [(with_vec[i], with_vec[j], s) for i, j, s in cosine_pairs(mat, threshold)]
    clusters = star_groups(len(nodes), pairs) if pairs else []
    in_cluster = {i for c in clusters for i in c}
    clusters += [[i] for i, n in enumerate(nodes) if len(n) > 1 and i not in in_cluster]
    score = _clip_similarity(vectors) if by in ("clip", "auto") and vectors else None
    groups = [_make_group([f for i in c for f in nodes[i]], score, keep_key, win) for c in clusters]
    groups.sort(key=lambda g: (-g.wasted_bytes, g.keep.path))
    return groups


def _window_codes(files: list[IndexedFile], windows=None) -> dict[bytes, np.ndarray]:
    """content hash -> crop-window codes (W, 8) of each file with a thumbnail: from the cache lookup `windows`
    where it has them all, else computed from the thumbnails. Computed once per `dupes`, used for both the pair
    search and each member's similarity to its keeper."""
    import numpy as np

    from .matching import all_window_codes

    if not files:
        return {}
    codes = windows([f.id for f in files]) if windows else None
    if codes is None:
        codes = all_window_codes(np.frombuffer(b"".join(f.thumb for f in files), dtype=np.uint8))
    return {f.content_hash: c for f, c in zip(files, codes)}


def _hash_pairs(files: list[IndexedFile], max_dist: int, win: dict[bytes, np.ndarray]) -> list[tuple[int, int, float]]:
    """Verified perceptual pairs: any rotation or mirror, crops; files from an index older than the thumbnail
    (schema 3) are matched upright by their stored pHash alone until they are indexed again."""
    import numpy as np

    from .matching import near_pairs
    from .vectors import binary_range

    with_thumb = [k for k, f in enumerate(files) if f.thumb]
    thumbs = np.frombuffer(b"".join(files[k].thumb for k in with_thumb), dtype=np.uint8)
    codes = np.stack([win[files[k].content_hash] for k in with_thumb]) if with_thumb else None
    found = near_pairs(thumbs, max_dist, windows=codes)
    framed = [r for r, k in enumerate(with_thumb) if files[k].frame]
    if framed:
        from .hashing import unpack_frames
        from .matching import frame_pairs

        fulls, boxes = unpack_frames([files[with_thumb[r]].frame for r in framed])
        found += frame_pairs(thumbs, np.array(framed), fulls, boxes, max_dist)
    pairs = [(with_thumb[i], with_thumb[j], similarity_of_distance(d)) for i, j, d in found]
    old = [k for k, f in enumerate(files) if not f.thumb]
    if old:
        codes = np.frombuffer(b"".join(f.phash for f in files), dtype=np.uint8).reshape(len(files), -1)
        q, ids, dist = binary_range(codes, codes[old], max_dist)
        pairs += [(old[a], b, similarity_of_distance(d)) for a, b, d in zip(q.tolist(), ids.tolist(), dist.tolist())
                  if old[a] != b]
    return pairs


def _clip_similarity(vectors: dict):
    def score(a: IndexedFile, b: IndexedFile) -> float | None:
        va, vb = vectors.get(a.id), vectors.get(b.id)
        return None if va is None or vb is None else float(min(1.0, max(-1.0, va @ vb)))

    return score


def _keeper_key(f: IndexedFile):
    """Largest picture (pixels inside any letterbox bars or frame), then largest file, then oldest, then path
    (deterministic)."""
    return (-f.picture_pixels, -f.size, f.mtime_ns, f.path)


KEEP_RULES = ("pixels", "newest", "oldest", "largest", "smallest", "shortest-path")


def keeper_rule(rule: str | None):
    """A sort key whose minimum is the file to keep: one of KEEP_RULES, or a glob (files whose path matches it
    are preferred; ties and groups without a match fall back to the default rule)."""
    import fnmatch

    keys = {
        None: _keeper_key,
        "pixels": _keeper_key,
        "newest": lambda f: (-f.mtime_ns, _keeper_key(f)),
        "oldest": lambda f: (f.mtime_ns, _keeper_key(f)),
        "largest": lambda f: (-f.size, _keeper_key(f)),
        "smallest": lambda f: (f.size, _keeper_key(f)),
        "shortest-path": lambda f: (len(f.path), _keeper_key(f)),
    }
    if rule in keys:
        return keys[rule]
    if not any(c in rule for c in "*?[/"):
        raise UsageError(f"--keep must be one of {', '.join(KEEP_RULES)} or a path glob (like '*/originals/*'), not {rule!r}")
    return lambda f: (not fnmatch.fnmatch(f.path, rule), _keeper_key(f))


def _hash_similarity(a: IndexedFile, b: IndexedFile, win: dict | None = None) -> float:
    """The closest pHash match of two files over rotations, mirrors, crop windows and whole frames (upright only
    for rows without a thumbnail). `win` (content hash -> window codes) saves recomputing the windows."""
    if not (a.thumb and b.thumb):
        return similarity(a.phash, b.phash)
    from .matching import best_distance

    win = win or {}
    distance = best_distance(a.thumb, b.thumb, win.get(a.content_hash), win.get(b.content_hash))
    if a.frame or b.frame:  # a trimmed image may match only as a whole frame (matching.frame_pairs)
        from .matching import frame_distance

        distance = min(distance, frame_distance(a.thumb, a.frame, b.thumb, b.frame))
    return similarity_of_distance(distance)


def _make_group(files: list[IndexedFile], score=None, keep_key=None, win: dict | None = None) -> Group:
    keep = min(files, key=keep_key or _keeper_key)

    def sim(f: IndexedFile) -> float:
        if f.content_hash == keep.content_hash:
            return 1.0
        s = score(keep, f) if score else None
        return _hash_similarity(keep, f, win) if s is None else s

    others = [Member(f, sim(f)) for f in files if f is not keep]
    others.sort(key=lambda m: (-m.similarity, m.file.path))
    return Group((Member(keep, 1.0), *others))


def info(index_dir: str, *, errors_limit: int | None = None) -> IndexInfo:
    with Catalog.open(index_dir, create=False) as catalog:
        counts = catalog.counts()
        error_files = catalog.errors()
        model = catalog.get_meta("model")
        schema = int(catalog.get_meta("schema_version") or 0)
    size = 0
    for entry in os.scandir(index_dir):
        if entry.is_file(follow_symlinks=False):
            size += entry.stat().st_size
    return IndexInfo(
        index=os.path.abspath(index_dir),
        files=counts["files"],
        errors=counts["errors"],
        hashed=counts["hashed"],
        embedded=counts["embedded"],
        model=model if counts["embedded"] else None,
        bytes=size,
        schema_version=schema,
        error_files=tuple(error_files[:errors_limit] if errors_limit else error_files),
    )


def query(
    text_or_image: str,
    *,
    index_dir: str,
    k: int = 10,
    threshold: float | None = None,
    device: str = "auto",
    precision: str = "auto",
) -> QueryReport:
    """The k indexed files most similar to an image (a path) or a text (anything that is not a file).
    CLIP when the index has embeddings (an image whose bytes are indexed uses its stored embedding, without
    loading the model); otherwise, for an image, the perceptual hash."""
    import numpy as np

    if k < 1:
        raise UsageError(f"-k must be at least 1, not {k}")
    is_image = os.path.isfile(text_or_image)
    with Catalog.open(index_dir, create=False) as catalog:
        counts = catalog.counts()
        model_spec = catalog.get_meta("model") if counts["embedded"] else None
        vectors = _refresh_vectors(catalog, index_dir) if model_spec else None
        # a CLIP query reads only the rows it returns; a hash query needs every hash
        files = {} if model_spec else {f.id: f for f in catalog.indexed_files()}
    if not counts["files"]:
        return QueryReport(os.path.abspath(text_or_image) if is_image else text_or_image, "clip" if model_spec else "hash", ())
    if model_spec:
        from .embed import load
        from .vectors import search

        data = _read_query(text_or_image) if is_image else None
        vec = _stored_embedding(index_dir, data) if is_image else None
        if vec is None:  # a new picture or a text: through the model
            model = load(model_spec, device=device, precision=precision)
            if is_image:
                vec = model.embed_pixels(_query_features(text_or_image, model.preprocess, data).pixels[None])
            else:
                vec = model.embed_texts([text_or_image])
        sims, ids = search(vectors, vec, k, wide=not is_image)  # texts lie away from the image clusters
        found = [(int(i), float(s)) for s, i in zip(sims[0], ids[0]) if i >= 0]
        with Catalog.open(index_dir, create=False) as catalog:
            files = {f.id: f for f in catalog.files_by_id([i for i, _s in found])}
        by = "clip"
    elif is_image:
        from .matching import rank

        q = _query_features(text_or_image)
        ordered = [f for f in files.values() if f.thumb]
        thumbs = np.frombuffer(b"".join(f.thumb for f in ordered), dtype=np.uint8)
        codes = _windows(index_dir)([f.id for f in ordered]) if ordered else None
        found = [(ordered[i].id, similarity_of_distance(d))
                 for i, d in rank(np.frombuffer(q.thumb, np.uint8), thumbs, k, windows=codes)]
        # rows from before schema 3 (no thumbnail yet): upright pHash only
        found += [(f.id, similarity(q.phash, f.phash)) for f in files.values() if not f.thumb]
        found = sorted(found, key=lambda t: -t[1])[:k]
        by = "hash"
    else:
        raise UsageError(
            f"{text_or_image!r} is not a file, and a text query needs CLIP embeddings, which this index does not have"
        )
    matches = [(files[i], s) for i, s in found if i in files and (threshold is None or s >= threshold - 1e-9)]
    return QueryReport(
        os.path.abspath(text_or_image) if is_image else text_or_image,
        by,
        tuple(Match(r, f, s) for r, (f, s) in enumerate(matches, 1)),
    )


def _read_query(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise UsageError(f"cannot read the query image {path}: {e.strerror or e}") from None


def _stored_embedding(index_dir: str, data: bytes):
    """The embedding the index already holds for a query image's bytes (the file itself, or any byte copy of it):
    (1, dim) float32, or None. Such a query needs no model: no 3-4 s load, no forward pass."""
    from .hashing import content_hash

    with Catalog.open(index_dir, create=False) as catalog:
        vec = catalog.embedding_of_content(content_hash(data))
    return None if vec is None else vec[None]


def _query_features(path: str, clip=None, data: bytes | None = None):
    """The query image, read exactly as `index` reads files (same decode, same draft size), so that an indexed
    file finds itself at similarity 1.0. `data`: its bytes where they were read already."""
    from .pipeline import process_bytes
    from .records import Failure

    if data is None:
        data = _read_query(path)
    st = os.stat(path)
    result = process_bytes(FileRef(os.path.abspath(path), st.st_size, st.st_mtime_ns), data, clip)
    if isinstance(result, Failure):
        raise UsageError(f"cannot read the query image {path}: {result.reason}")
    return result


def display_thumbnails(paths: Sequence[str], *, size: int = 160, workers: int | None = None) -> dict[str, str]:
    """path -> a small JPEG as a data URI, for reports: each file decoded as `index` decodes it (draft mode,
    EXIF orientation, every mode to RGB), in parallel. A file that cannot be read now simply has no preview."""
    from .pipeline import make_runner, preview_chunk

    unique = sorted(set(paths))
    out: dict[str, str] = {}
    chunked = [unique[i : i + 64] for i in range(0, len(unique), 64)]
    runner = make_runner(workers if len(unique) > 64 else 1)
    for batch in runner.map(partial(preview_chunk, size=size), chunked):
        out.update(batch)
    return out
