"""An index folder, opened once per command: its catalog, the writer lock, and the derived files beside them.

The catalog (SQLite) is the source of truth. Beside it, files derived from it are kept per catalog revision
(`meta.embeddings_rev`, bumped by every write that changes a vector or a thumbnail): the CLIP index
`clip-<rev>.faiss`, and the structures a hash query searches, `lookup-<rev>.bin` (lookup.py). Each is written
atomically and older revisions are dropped. A CLIP index that is missing, behind or unreadable is rebuilt from
the catalog (in a read-only folder in memory, not saved); the lookup is built only by `index`, and a query that
finds none for the current revision searches the catalog itself, as `dupes` does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from .atomic import write_atomically
from .catalog import CATALOG_NAME, Catalog, damage_error, is_damage
from .errors import IndexMissing, IndexReadOnly
from .lock import WriterLock, writer_lock

VECTOR_PREFIX = "clip-"
VECTOR_SUFFIX = ".faiss"
LOOKUP_PREFIX = "lookup-"
LOOKUP_SUFFIX = ".bin"
# crop-window codes an earlier simfind kept beside the catalog; removed by the next command that writes the index
STALE_PREFIX, STALE_SUFFIX = "windows-", ".npz"


def default_index_dir() -> str:
    """The index `--index` names when it is not given: a per-user data folder."""
    from platformdirs import user_data_dir

    return os.path.join(user_data_dir("simfind", appauthor=False), "index")


def _set_aside(path: str, notify: Callable[[str], None]) -> None:
    """`index --rebuild`: the catalog (with its WAL files) is renamed to a dated name beside it, never deleted, and
    the files derived from it are removed."""
    catalog = os.path.join(path, CATALOG_NAME)
    if os.path.exists(catalog):
        aside = os.path.join(path, time.strftime("catalog-set-aside-%Y%m%d-%H%M%S.sqlite"))
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(catalog + suffix):
                os.replace(catalog + suffix, aside + suffix)
        notify(f"the old catalog is set aside as {aside}; indexing from blank")
    for name in os.listdir(path):
        if (name.startswith((VECTOR_PREFIX, LOOKUP_PREFIX, STALE_PREFIX))
                and name.endswith((VECTOR_SUFFIX, LOOKUP_SUFFIX, STALE_SUFFIX))):
            os.unlink(os.path.join(path, name))


class IndexDir:
    """Use as a context manager: `with IndexDir.open(path) as idx: idx.catalog ...`."""

    def __init__(self, path: str, catalog: Catalog, lock: WriterLock | None, cache: dict | None = None):
        self.path = path
        self.catalog = catalog
        self._lock = lock
        self._read: dict[tuple[str, int], object] = {} if cache is None else cache

    @classmethod
    def open(cls, path: str, *, write: bool = False, rebuild: bool = False,
             notify: Callable[[str], None] = lambda m: None, cache: dict | None = None) -> IndexDir:
        """For reading (the index must exist; a read-only one is read as it is), or for writing (created where
        missing, after taking the writer lock, which it holds until close()). `rebuild` (writing only): the
        catalog and the files derived from it are set aside first, and the index starts again from blank.
        `cache` (reading): where what is read once per revision is kept, so that it outlives this opening (a
        server opens the index per request)."""
        if not write:
            try:
                return cls(path, Catalog.open(path, create=False), None, cache)
            except IndexMissing:
                if os.path.abspath(path) != os.path.abspath(default_index_dir()):
                    raise
                raise IndexMissing("no index yet: run `simfind index DIR` first (or pass --index PATH)") from None
        if os.path.isdir(path) and not os.access(path, os.W_OK):
            raise IndexReadOnly(
                f"the index at {path} is read-only here: `simfind index` and `simfind dupes PATH` (which indexes "
                "PATH first) need to write it; `simfind dupes` without paths, `query` and `info` read it as it is"
            )
        lock = writer_lock(path, notify)
        try:
            if rebuild:
                _set_aside(path, notify)
            idx = cls(path, Catalog.open(path, create=True), lock)
            for name in os.listdir(path):
                if name.startswith(STALE_PREFIX) and name.endswith(STALE_SUFFIX):
                    os.unlink(os.path.join(path, name))
            return idx
        except BaseException:
            lock.release()
            raise

    def close(self) -> None:
        self.catalog.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> IndexDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
        if exc is not None and is_damage(exc):  # SQLite found the damage while reading or writing a page
            raise damage_error(self.catalog.path, exc) from None

    @property
    def revision(self) -> int:
        return self.catalog.embeddings_rev()

    def bytes_on_disk(self) -> int:
        size = 0
        for entry in os.scandir(self.path):
            if entry.is_file(follow_symlinks=False):
                size += entry.stat().st_size
        return size

    # -- the CLIP index ----------------------------------------------------------------------------------------

    def vectors(self):
        """The FAISS index of every embedding at this revision, keyed by catalog file id."""
        from .knn import IVF_FROM, build, read_index, write_index

        path = self._derived(VECTOR_PREFIX, VECTOR_SUFFIX)
        if os.path.exists(path):
            index = read_index(path)
            if index is not None:
                return index  # else unreadable: rebuilt from the catalog
        ids, vecs = self.catalog.embeddings()
        older = self.previous_derived(VECTOR_PREFIX, VECTOR_SUFFIX) if len(ids) >= IVF_FROM else None
        index = build(ids, vecs, previous=read_index(older) if older else None)  # its IVF centroids can be reused
        self.save_derived(VECTOR_PREFIX, VECTOR_SUFFIX, lambda tmp: write_index(index, tmp))
        return index

    def _older(self, prefix: str, suffix: str, current: str) -> list[str]:
        """Derived files of older revisions (`prefix`REV`suffix`), newest first."""
        older = []
        for name in os.listdir(self.path):
            if name.startswith(prefix) and name.endswith(suffix) and os.path.join(self.path, name) != current:
                try:
                    older.append((int(name[len(prefix) : -len(suffix)]), os.path.join(self.path, name)))
                except ValueError:
                    continue
        return [p for _rev, p in sorted(older, reverse=True)]

    # -- derived files -----------------------------------------------------------------------------------------

    def _derived(self, prefix: str, suffix: str) -> str:
        return os.path.join(self.path, f"{prefix}{self.revision}{suffix}")

    def derived(self, prefix: str, suffix: str, read: Callable[[str], object]):
        """read(path) of this revision's derived file `prefix`REV`suffix` (read copes with a missing file), read
        once per revision however often it is asked for (a batch of queries reads it once)."""
        return self.cached(prefix + suffix, lambda: read(self._derived(prefix, suffix)))

    def cached(self, name: str, compute: Callable[[], object]):
        """compute() once per revision of this open index, however often it is asked for."""
        rev = self.revision
        key = (name, rev)
        if key not in self._read:
            for stale in [k for k in list(self._read) if k[0] == name and k[1] != rev]:
                self._read.pop(stale, None)  # an earlier revision's: never asked for again
            self._read[key] = compute()
        return self._read[key]

    def previous_derived(self, prefix: str, suffix: str) -> str | None:
        """The newest earlier revision's derived file `prefix`REV`suffix`, if one is on disk."""
        older = self._older(prefix, suffix, self._derived(prefix, suffix))
        return older[0] if older else None

    def save_derived(self, prefix: str, suffix: str, write: Callable[[str], None]) -> None:
        """Write this revision's derived file `prefix`REV`suffix` by write(tmp), atomically; older revisions go."""
        self._save(self._derived(prefix, suffix), prefix, write)
        self._read.pop((prefix + suffix, self.revision), None)

    def _save(self, path: str, prefix: str, write: Callable[[str], None]) -> None:
        """Write a derived file atomically and drop its older revisions; in a read-only folder, skip it."""
        try:
            write_atomically(path, write)
        except OSError:
            return  # a read-only index still answers; it recomputes next time
        for name in os.listdir(self.path):
            if name.startswith(prefix) and os.path.join(self.path, name) != path:
                try:
                    os.unlink(os.path.join(self.path, name))
                except OSError:
                    pass
