"""The library API: index, duplicates, query, info. Each is a short composition of the pipeline's steps
(scan -> sync -> decode/features -> store -> candidates/verify -> group); the CLI is a thin shell over it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache, partial
from typing import TYPE_CHECKING

from .dupes import duplicate_groups
from .errors import Interrupted, UsageError
from .grouping import is_under, spanning
from .ingest import Progress, check_model, ingest, interrupted
from .keeper import keeper_rule
from .options import BY, check_choice
from .records import DupesReport, IndexInfo, IndexReport, QueryReport
from .scan import ScanResult, scan
from .search import load_model, query_label, read_query, search, write_lookup
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
    from .lookup import of as lookup_of

    try:
        if catalog.counts()["embedded"]:
            if todo.added or todo.updated or todo.removals or embedded:
                idx.vectors()  # built now, so that the next query does not pay for it
        elif lookup and lookup_of(idx) is None:  # what a hash query searches, for this revision (or unreadable)
            write_lookup(idx, progress)
    except KeyboardInterrupt:  # every file is in: the derived files are built again when a search needs them
        raise Interrupted(interrupted(len(todo.todo), len(todo.todo))) from None
    failures = (*found.failures, *failed)
    return IndexReport(scanned=len(found.files), unchanged=todo.unchanged, added=todo.added, updated=todo.updated,
                       renamed=len(todo.renames), removed=len(todo.removals), failed=len(failures),
                       failures=failures, embedded=embedded, refreshed=todo.refreshed,
                       errors=len(catalog.errors(roots)))


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
        report = duplicate_groups(idx, scope or None, threshold, by, keeper, notify, runner=cluster)
    if between:
        kept = spanning(report.groups, *_existing_roots(between))
        report = DupesReport(report.threshold, report.by, tuple(kept), report.files, report.errors, report.missing)
    progress("group", 1, 1)
    return report


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
    labels = [query_label(item) for item in items]
    load = cache(partial(load_model, device=device, precision=precision))
    with IndexDir.open(index_dir) as idx:
        return [search(idx, label, data=read_query(label) if is_image else None, k=k, threshold=threshold,
                       exclude_self=exclude_self, model=load) for label, is_image in labels]


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
