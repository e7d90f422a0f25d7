"""Found files + catalog rows -> a plan: what to decode, what was renamed, what is gone.

Unchanged files (same size and modification time) are only stat'ed. A new path whose size and bytes equal a
vanished one's is a rename: the row moves, nothing is decoded (a read, not a decode). Rows an older simfind
wrote with less in them, and rows without a CLIP embedding when a model is wanted, are decoded again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from .hashing import content_hash
from .records import Failure, FileRef

StatRow = tuple[int, int, int, "bytes | None"]  # (id, size, mtime_ns, content_hash) as the catalog holds it


@dataclass
class Plan:
    todo: list[FileRef] = field(default_factory=list)  # to decode, in the order found
    embed_only: set[str] = field(default_factory=set)  # paths in todo that are unchanged and only lack an embedding
    renames: list[tuple[str, str, int, int]] = field(default_factory=list)  # (old path, new path, size, mtime_ns)
    removals: list[str] = field(default_factory=list)  # paths gone from disk
    unchanged: int = 0
    added: int = 0
    updated: int = 0
    refreshed: int = 0  # unchanged files decoded again because an older simfind kept less of them

    def without_embeddings(self) -> None:
        """No model after all: nothing to redo for files that only lacked an embedding."""
        self.todo = [f for f in self.todo if f.path not in self.embed_only]
        self.embed_only = set()


def plan(files: Iterable[FileRef], failures: Iterable[Failure], known: dict[str, StatRow], *,
         outdated: set[str] = frozenset(), unembedded: set[str] = frozenset()) -> Plan:
    """The plan for `files` (and the scan's `failures`, which stay on disk) against the catalog's rows `known`
    under the same roots. `outdated`: paths an older simfind indexed with less; `unembedded`: paths without an
    embedding (pass them only when a model is wanted)."""
    files = list(files)
    on_disk = {f.path for f in files} | {f.ref.path for f in failures}
    gone = {p: row for p, row in known.items() if p not in on_disk}
    out = Plan()
    new_files: list[FileRef] = []
    for f in files:
        row = known.get(f.path)
        if row is None:
            new_files.append(f)
        elif row[1] == f.size and row[2] == f.mtime_ns:
            out.unchanged += 1
            if f.path in outdated:
                out.todo.append(f)
                out.refreshed += 1
            elif f.path in unembedded:
                out.todo.append(f)
                out.embed_only.add(f.path)
        else:
            out.todo.append(f)
            out.updated += 1
    out.renames = find_renames(new_files, gone)
    renamed_new = {new for _old, new, _s, _m in out.renames}
    renamed_old = {old for old, _new, _s, _m in out.renames}
    for f in new_files:
        if f.path not in renamed_new:
            out.todo.append(f)
            out.added += 1
    out.removals = [p for p in gone if p not in renamed_old]
    return out


def find_renames(new_files: list[FileRef], gone: dict[str, StatRow]) -> list[tuple[str, str, int, int]]:
    """Match new paths to vanished ones by size, then by the bytes' hash."""
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
