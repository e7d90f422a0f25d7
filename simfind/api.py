"""The library API: index, duplicates, query, info. Each is a short composition of the pipeline's steps
(scan -> sync -> decode/features -> store -> candidates/verify -> group); the CLI is a thin shell over it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache, partial
from typing import TYPE_CHECKING

from .errors import Interrupted, SimfindError, UsageError
from .grouping import by_content, is_under, make_groups, spanning
from .hashing import max_distance
from .ingest import Progress, check_model, ingest, interrupted
from .keeper import keeper_rule
from .options import BY, check_choice
from .pairs import (
    DEFAULT_CLIP_THRESHOLD,
    DEFAULT_HASH_THRESHOLD,
    LocalFeatures,
    Similarity,
    clip_pairs,
    hash_pairs,
    matches_of,
)
from .records import DupesReport, FileRef, IndexedFile, IndexInfo, IndexReport, Match, QueryReport
from .scan import ScanResult, scan
from .store import IndexDir
from .sync import plan as sync_plan

if TYPE_CHECKING:
    from .cluster import DaskRunner
    from .embed import LazyModel
    from .pipeline import Runner

Notify = Callable[[str], None]  # one-line warnings and notices


def _quiet_progress(phase: str, done: int, total: int) -> None: ...
def _quiet_notify(message: str) -> None: ...


def _existing_roots(paths: Iterable[str]) -> list[str]:
    roots = []
    for p in paths:
        if not os.path.exists(p):
            raise UsageError(f"no such file or folder: {p}")
        roots.append(os.path.abspath(p))
    return roots


def _model(spec: str | None, notify: Notify | None, **options) -> LazyModel | None:
    if not spec:
        return None
    from .embed import LazyModel
    from .pipeline import default_workers

    return LazyModel(spec, threads=default_workers(), notify=notify, **options)


def index(
    paths: Sequence[str], *, index_dir: str, workers: int | None = None, hidden: bool = False,
    exclude: Sequence[str] = (), runner: Runner | None = None, clip: str | None = None, require_clip: bool = False,
    reembed: bool = False, device: str = "auto", precision: str = "auto", batch_size: int = 32,
    rebuild: bool = False, progress: Progress = _quiet_progress, notify: Notify = _quiet_notify,
    quiet: bool = False, scheduler: str | None = None,
) -> IndexReport:
    """Bring the index up to date with `paths`: new and changed files are decoded, unchanged ones only stat'ed,
    renamed ones (same bytes) moved without decoding, vanished ones removed. With `clip` (a model spec), files
    also get CLIP embeddings; files indexed earlier without one get it now. `rebuild`: the catalog is set aside
    (a damaged one, say) and every file is indexed again. `quiet`: nobody sees the notices, so the index does not
    remember the missing-weights warning as given (the next run that shows warnings shows it). `scheduler`: the
    address of a Dask scheduler whose workers do the per-file work, CLIP included (cluster.py)."""
    roots = _existing_roots(paths)
    model = _model(clip, None if quiet else notify, require=require_clip, device=device, precision=precision)
    if model is not None:
        model.check()  # a spec that can never work, or missing weights with require_clip: said before the scan
    with _cluster(scheduler) as cluster:  # an unreachable scheduler is said before the scan, too
        found = scan(roots, hidden=hidden, exclude=exclude, on_found=lambda n: progress("scan", n, 0))
        with IndexDir.open(index_dir, write=True, rebuild=rebuild, notify=notify) as idx:
            return _update(idx, roots, found, model, reembed=reembed, runner=cluster or runner,
                           workers=cluster.threads() if cluster else workers, batch_size=batch_size,
                           progress=progress)


@contextmanager
def _cluster(scheduler: str | None) -> Iterator[DaskRunner | None]:
    """A runner on the Dask scheduler at `scheduler`, closed after use; None without one."""
    if not scheduler:
        yield None
        return
    from .cluster import connect

    with connect(scheduler) as runner:
        yield runner


def _update(idx: IndexDir, roots: list[str], found: ScanResult, model: LazyModel | None, *, reembed: bool = False,
            runner: Runner | None = None, workers: int | None = None, batch_size: int = 32,
            progress: Progress = _quiet_progress, lookup: bool = True) -> IndexReport:
    catalog = idx.catalog
    if model is not None:
        check_model(idx, model.spec, reembed)
    catalog.add_roots(roots)
    todo = sync_plan(found.files, found.failures, catalog.stat_rows(roots), outdated=catalog.outdated(roots),
                     unembedded=catalog.unembedded(roots) if model is not None else set())
    catalog.move(todo.renames, todo.removals)
    if found.failures:
        catalog.write(found.failures)
    failed, embedded = ingest(idx, todo, lazy=model, runner=runner, workers=workers, batch_size=batch_size,
                              progress=progress)
    try:
        if catalog.counts()["embedded"]:
            if todo.added or todo.updated or todo.removals or embedded:
                idx.vectors()  # built now, so that the next query does not pay for it
        elif lookup and idx.lookup() is None:  # what a hash query searches, for this revision (or unreadable)
            _write_lookup(idx, progress)
    except KeyboardInterrupt:  # every file is in: the derived files are built again when a search needs them
        raise Interrupted(interrupted(len(todo.todo), len(todo.todo))) from None
    failures = (*found.failures, *failed)
    return IndexReport(scanned=len(found.files), unchanged=todo.unchanged, added=todo.added, updated=todo.updated,
                       renamed=len(todo.renames), removed=len(todo.removals), failed=len(failures),
                       failures=failures, embedded=embedded, refreshed=todo.refreshed)


def _write_lookup(idx: IndexDir, progress: Progress) -> None:
    from .lookup import Lookup
    from .pairs import local_searched

    pictures = idx.catalog.content_pictures()
    if not pictures:
        return
    progress("lookup", 0, 1)
    most = local_searched(2 * len(pictures))  # each picture and its mirror image, as hash_pairs searches them
    searched = LocalFeatures(idx.catalog.local_features).searched(pictures, most)
    idx.save_lookup(Lookup.build(pictures, searched, most))
    progress("lookup", 1, 1)


def duplicates(
    *, index_dir: str, paths: Sequence[str] = (), threshold: float | None = None, by: str = "auto",
    between: tuple[str, str] | None = None, keep: str | None = None, workers: int | None = None,
    move_to: str | None = None, progress: Progress = _quiet_progress, notify: Notify = _quiet_notify,
    scheduler: str | None = None,
) -> DupesReport:
    """Groups of duplicates among indexed files (under `paths` where given; those are indexed first).
    `keep` picks each group's keeper (keeper.keeper_rule). `move_to`: the folder the report's duplicates are to
    be moved to, refused (before any work) when it lies inside a folder the index covers. `scheduler`: a Dask
    scheduler whose workers index `paths` and verify the candidate pairs (the search stays in this process)."""
    keeper = keeper_rule(keep)
    check_choice("--by", by, BY)
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold must be a similarity between 0 and 1, not {threshold}")
    scope = _existing_roots([*paths, *(between or ())])
    if move_to is not None:
        _check_destination(move_to, scope)  # before the index is opened, let alone written
    with _cluster(scheduler) as cluster, IndexDir.open(index_dir, write=bool(scope), notify=notify) as idx:
        if move_to is not None:
            _check_destination(move_to, idx.catalog.roots())
        if scope:  # files added later are embedded with the model the index already holds
            spec = idx.catalog.get_meta("model") if idx.catalog.counts()["embedded"] else None
            found = scan(scope, on_found=lambda n: progress("scan", n, 0))
            _update(idx, scope, found, _model(spec, notify), runner=cluster,
                    workers=cluster.threads() if cluster else workers, progress=progress, lookup=False)
        progress("group", 0, 1)
        report = _group(idx, scope or None, threshold, by, keeper, notify, runner=cluster)
    if between:
        kept = spanning(report.groups, *_existing_roots(between))
        report = DupesReport(report.threshold, report.by, tuple(kept), report.files, report.errors, report.missing)
    progress("group", 1, 1)
    return report


def _group(idx: IndexDir, roots: list[str] | None, threshold: float | None, by: str, keeper,
           notify: Notify = _quiet_notify, runner: Runner | None = None) -> DupesReport:
    """Exact copies collapse into one node; near pairs (hash, CLIP or both) are searched between nodes and joined
    into star groups. With by="auto", `threshold` applies to CLIP and hashes use their own default. A file gone
    from disk since it was indexed is never reported: the groups are made again without it."""
    catalog = idx.catalog
    files = catalog.indexed_files(roots)
    embedded = catalog.counts()["embedded"] > 0
    if by == "clip" and not embedded:
        raise SimfindError(
            "this index has no CLIP embeddings; run `simfind index DIR` with the model available, or use --by hash"
        )
    mode = ("auto" if embedded else "hash") if by == "auto" else by  # "auto": every signal the index has
    if mode == "exact":
        threshold = 1.0
    elif threshold is None:
        threshold = DEFAULT_HASH_THRESHOLD if mode == "hash" else DEFAULT_CLIP_THRESHOLD
    vectors = {}
    if mode in ("auto", "clip"):
        ids, vecs = catalog.embeddings(roots)
        vectors = dict(zip(ids.tolist(), vecs))
    groups, gone = _groups_of(idx, files, mode, threshold, vectors, keeper, runner), set()
    while went := {m.file.id for g in groups for m in g.members if not os.path.exists(m.file.path)}:
        gone |= went  # a stat per reported file; the groups are made again only when some went
        files = [f for f in files if f.id not in went]
        groups = _groups_of(idx, files, mode, threshold, vectors, keeper, runner)
    if gone:
        notify(_gone_notice(len(gone)))
    return DupesReport(threshold=threshold, by=mode, groups=tuple(groups), files=len(files),
                       errors=len(catalog.errors(roots)), missing=len(gone))


def _groups_of(idx: IndexDir, files, mode: str, threshold: float, vectors: dict, keeper,
               runner: Runner | None = None) -> list:
    nodes = by_content(files)
    reps = [n[0] for n in nodes]
    pairs, local = [], None
    if mode in ("hash", "auto") and len(nodes) > 1:
        local = LocalFeatures(idx.catalog.local_features)
        pairs += hash_pairs(reps, threshold if mode == "hash" else DEFAULT_HASH_THRESHOLD, local=local,
                            runner=runner)
    if mode in ("clip", "auto") and vectors:
        pairs += clip_pairs(reps, vectors, threshold)
    return make_groups(nodes, pairs, keeper=keeper, similarity=Similarity(vectors, local))


def _gone_notice(n: int) -> str:
    one = n == 1
    return (f"{n:,} {'file' if one else 'files'} to report {'is' if one else 'are'} gone from disk since indexing "
            "and left out; `simfind index DIR` brings the index up to date")


def _check_destination(to: str, roots: Iterable[str]) -> None:
    """A move destination must not lie in a folder simfind indexes: moved files would be indexed again and found
    as duplicates of what they duplicate, and a second move would nest them deeper."""
    target = os.path.realpath(to)
    for root in roots:
        if is_under(target, os.path.realpath(root)):
            raise UsageError(f"--to {to} is inside {os.path.realpath(root)}, which this index covers: moved files "
                             "would be indexed again and reported as duplicates; pass a folder outside it")


def info(index_dir: str, *, errors_limit: int | None = None) -> IndexInfo:
    with IndexDir.open(index_dir) as idx:
        counts = idx.catalog.counts()
        error_files = idx.catalog.errors()
        model = idx.catalog.get_meta("model")
        schema = int(idx.catalog.get_meta("schema_version") or 0)
        size = idx.bytes_on_disk()
    return IndexInfo(
        index=os.path.abspath(index_dir), files=counts["files"], errors=counts["errors"], hashed=counts["hashed"],
        embedded=counts["embedded"], model=model if counts["embedded"] else None, bytes=size, schema_version=schema,
        error_files=tuple(error_files[:errors_limit] if errors_limit else error_files),
    )


def query(text_or_image: str, *, index_dir: str, k: int = 10, threshold: float | None = None,
          exclude_self: bool = False, device: str = "auto", precision: str = "auto") -> QueryReport:
    """The k indexed files most similar to an image (a path) or a text (anything that is not a file).
    CLIP when the index has embeddings (an image whose bytes are indexed uses its stored embedding, without
    loading the model); otherwise, for an image, the files `dupes` would pair with it at `threshold` (the default
    hash threshold when none is given), by the same search and checks. `exclude_self`: an indexed query image
    finds itself first, at 1.0; this leaves its own path out (its copies stay). Files gone from disk are left out."""
    return query_many([text_or_image], index_dir=index_dir, k=k, threshold=threshold, exclude_self=exclude_self,
                      device=device, precision=precision)[0]


def query_many(items: Sequence[str], *, index_dir: str, k: int = 10, threshold: float | None = None,
               exclude_self: bool = False, device: str = "auto", precision: str = "auto") -> list[QueryReport]:
    """query() for each of `items` (images and texts), in order, on the index opened once and the model loaded
    at most once. Every item is checked (a folder, a mistyped path) before any is searched."""
    if k < 1:
        raise UsageError(f"-k must be at least 1, not {k}")
    labels = [_query_label(item) for item in items]
    load = cache(partial(_load_model, device=device, precision=precision))
    with IndexDir.open(index_dir) as idx:
        return [search(idx, label, data=_read_query(label) if is_image else None, k=k, threshold=threshold,
                       exclude_self=exclude_self, model=load) for label, is_image in labels]


def _query_label(text_or_image: str) -> tuple[str, bool]:
    """(label, is_image): an image file's absolute path, or a text."""
    if os.path.isdir(text_or_image):
        raise UsageError(f"{text_or_image} is a folder: query takes image files (or texts, with CLIP)")
    if os.path.isfile(text_or_image):
        return os.path.abspath(text_or_image), True
    if _looks_like_a_path(text_or_image):
        raise UsageError(f"no such image file: {text_or_image}")
    return text_or_image, False


def _load_model(spec: str, *, device: str = "auto", precision: str = "auto"):
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
        raise UsageError(f"{label!r} is not a file, and a text query needs CLIP embeddings, which this "
                         "index does not have: index the folders again without --no-clip (the model's weights "
                         "must be available) to search by text")
    total = catalog.file_count()
    if not total:
        return QueryReport(label, "clip" if spec else "hash", (), threshold, 0)
    if not spec and threshold is None:
        threshold = DEFAULT_HASH_THRESHOLD  # a hash query lists what dupes would pair with it
    if spec:
        vector = _query_vector(idx, label, data, spec, model or _load_model)

        def ranked(n: int) -> list[tuple[IndexedFile, float]]:
            found = rank.by_clip(idx.vectors(), vector, n, text=not is_image)
            files = {f.id: f for f in catalog.files_by_id([i for i, _s in found])}
            return [(files[i], s) for i, s in found if i in files]
    else:
        q = _query_features(label, data)
        me = IndexedFile(-1, label, q.ref.size, q.ref.mtime_ns, q.content_hash, q.width, q.height, q.phash,
                         q.thumb, q.content_pixels, q.frame or None)
        found = _hash_matches(idx, me, q.local, threshold)

        def ranked(n: int) -> list[tuple[IndexedFile, float]]:
            return found[:n]

    matches = _present(ranked, k + (1 if exclude_self else 0))
    if exclude_self:
        own = os.path.realpath(label)
        matches = [(f, s) for f, s in matches if os.path.realpath(f.path) != own]
    matches = [(f, s) for f, s in matches[:k] if threshold is None or s >= threshold - 1e-9]
    return QueryReport(label, "clip" if spec else "hash", tuple(Match(r, f, s) for r, (f, s) in enumerate(matches, 1)),
                       threshold, total)


def _hash_matches(idx: IndexDir, me: IndexedFile, blob: bytes, threshold: float) -> list[tuple[IndexedFile, float]]:
    """matches_of over the candidates the revision's lookup gives the query (its own content's files included),
    or, where `index` has built none, over the whole catalog."""
    catalog = idx.catalog
    local = LocalFeatures(catalog.local_features, {me.content_hash: blob})
    lookup = idx.lookup()
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


def _present(ranked: Callable[[int], list], k: int) -> list:
    """The top k of `ranked(n)` (the n best, best first) among files still on disk: a stat per result, and a
    wider search only when some are gone."""
    n = k
    while True:
        found = ranked(n)
        present = [(f, s) for f, s in found if os.path.exists(f.path)]
        if len(present) >= k or len(found) < n:
            return present[:k]
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
        return clip.embed_pixels(_query_features(label, data, clip.preprocess).pixels[None])
    return clip.embed_texts([label])


def _read_query(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise UsageError(f"cannot read the query image {path}: {e.strerror or e}") from None


def _query_features(label: str, data: bytes, clip=None):
    """The query image `data`, read exactly as `index` reads files (same decode, same draft size), so that an
    indexed file finds itself at similarity 1.0."""
    from .pipeline import process_bytes
    from .records import Failure

    result = process_bytes(FileRef(label, len(data), 0), data, clip)
    if isinstance(result, Failure):
        raise UsageError(f"cannot read the query image {label}: {result.reason}")
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
