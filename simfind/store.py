"""An index folder, opened once per command: its catalog, the writer lock, and the derived files beside them.

The catalog (SQLite) is the source of truth. Beside it, files derived from it are kept per catalog revision
(`meta.embeddings_rev`, bumped by every write that changes a vector or a thumbnail): the CLIP index
`clip-<rev>.faiss` and the crop-window codes `windows-<rev>.npz`. Each is written atomically, older revisions
are dropped, and one that is missing, behind or unreadable is rebuilt from the catalog; in a read-only folder
it is rebuilt in memory and not saved.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .atomic import write_atomically
from .catalog import CATALOG_NAME, Catalog, damage_error, is_damage
from .errors import IndexMissing, IndexReadOnly
from .lock import WriterLock, writer_lock

if TYPE_CHECKING:
    import numpy as np

VECTOR_PREFIX = "clip-"
VECTOR_SUFFIX = ".faiss"
WINDOWS_PREFIX = "windows-"
WINDOWS_SUFFIX = ".npz"


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
        if name.startswith((VECTOR_PREFIX, WINDOWS_PREFIX)) and name.endswith((VECTOR_SUFFIX, WINDOWS_SUFFIX)):
            os.unlink(os.path.join(path, name))


class IndexDir:
    """Use as a context manager: `with IndexDir.open(path) as idx: idx.catalog ...`."""

    def __init__(self, path: str, catalog: Catalog, lock: WriterLock | None):
        self.path = path
        self.catalog = catalog
        self._lock = lock
        self._windows: tuple[int, np.ndarray, np.ndarray] | None = None

    @classmethod
    def open(cls, path: str, *, write: bool = False, rebuild: bool = False,
             notify: Callable[[str], None] = lambda m: None) -> IndexDir:
        """For reading (the index must exist; a read-only one is read as it is), or for writing (created where
        missing, after taking the writer lock, which it holds until close()). `rebuild` (writing only): the
        catalog and the files derived from it are set aside first, and the index starts again from blank."""
        if not write:
            try:
                return cls(path, Catalog.open(path, create=False), None)
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
            return cls(path, Catalog.open(path, create=True), lock)
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
        index = build(ids, vecs, previous=self._previous_vectors(path) if len(ids) >= IVF_FROM else None)
        self._save(path, VECTOR_PREFIX, lambda tmp: write_index(index, tmp))
        return index

    def _previous_vectors(self, current: str):
        """The newest older revision's CLIP index, if one is on disk (its IVF centroids can be reused)."""
        from .knn import read_index

        older = self._older(VECTOR_PREFIX, VECTOR_SUFFIX, current)
        return read_index(older[0]) if older else None

    # -- crop-window codes -------------------------------------------------------------------------------------

    def window_codes(self, ids) -> np.ndarray | None:
        """The crop-window codes (len(ids), W, 8) of files by catalog id, from the revision's cache (computed once
        per revision: window hashes cost more than the search they feed); None when the catalog moved on under
        a reader and the cache lacks some (the caller computes them from the thumbnails)."""
        import numpy as np

        all_ids, codes = self._all_window_codes()
        row = {int(i): r for r, i in enumerate(all_ids.tolist())}
        if not all(int(i) in row for i in ids):
            return None
        return codes[np.fromiter((row[int(i)] for i in ids), dtype=np.int64, count=len(ids))]

    def refresh_windows(self, compute: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """Write this revision's window-code cache now (`index` does, so that `dupes` only searches): codes of
        contents the previous revision's cache holds are taken from it, the rest computed by `compute`
        (thumbnails -> codes, e.g. across worker processes; windows.all_window_codes by default)."""
        self._all_window_codes(compute)

    def _all_window_codes(self, compute: Callable[[np.ndarray], np.ndarray] | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        from .windows import all_window_codes, windows_per_image

        rev = self.revision
        if self._windows is not None and self._windows[0] == rev:
            return self._windows[1], self._windows[2]
        path = self._derived(WINDOWS_PREFIX, WINDOWS_SUFFIX)
        loaded = _read_windows(path)
        if loaded is None:
            ids, contents, thumbs = self.catalog.thumbs()
            codes = np.zeros((len(ids), windows_per_image(), 8), np.uint8)
            todo = np.ones(len(ids), bool)
            older = self._older(WINDOWS_PREFIX, WINDOWS_SUFFIX, path)
            previous = _read_windows(older[0]) if older else None
            if previous is not None and len(previous) == 3:  # the codes of unchanged contents are reused
                row = {c: r for r, c in enumerate(previous[2].tolist())}
                hits = [(r, row[c]) for r, c in enumerate(contents.tolist()) if c in row]
                if hits:
                    mine, theirs = (np.array(x, np.int64) for x in zip(*hits))
                    codes[mine] = previous[1][theirs]
                    todo[mine] = False
            if todo.any():
                codes[todo] = (compute or all_window_codes)(thumbs[todo])
            loaded = ids, codes
            self._save(path, WINDOWS_PREFIX, lambda tmp: _savez(tmp, ids=ids, codes=codes, contents=contents))
        self._windows = (rev, loaded[0], loaded[1])
        return loaded[0], loaded[1]

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


def _read_windows(path: str) -> tuple | None:
    """(ids, codes) or (ids, codes, contents) from a window-code cache file; None where it is missing, unreadable
    or written by a simfind with other windows."""
    import numpy as np

    from .windows import windows_per_image

    try:
        with np.load(path) as data:
            if data["codes"].shape[1:2] != (windows_per_image(),):
                return None
            found = data["ids"], data["codes"]
            return (*found, data["contents"]) if "contents" in data else found
    except (OSError, ValueError, KeyError):
        return None


def _savez(path: str, **arrays) -> None:
    import numpy as np

    with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare temp name
        np.savez(fh, **arrays)
