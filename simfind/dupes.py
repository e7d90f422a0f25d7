"""An open index -> its groups of duplicates: exact copies as one node, near pairs from every signal the index
has (pairs.py), star groups with their keepers (grouping.py); files gone from disk since indexing left out."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import SimfindError
from .grouping import by_content, make_groups
from .pairs import DEFAULT_CLIP_THRESHOLD, DEFAULT_HASH_THRESHOLD, LocalFeatures, Similarity, clip_pairs, hash_pairs
from .records import DupesReport
from .store import IndexDir

if TYPE_CHECKING:
    from .pipeline import Runner

Notify = Callable[[str], None]


def _quiet_notify(message: str) -> None: ...


def duplicate_groups(idx: IndexDir, roots: list[str] | None, threshold: float | None, by: str, keeper,
                     notify: Notify = _quiet_notify, runner: Runner | None = None) -> DupesReport:
    """Exact copies collapse into one node; near pairs (hash, CLIP or both) are searched between nodes and joined
    into star groups. With by="auto", `threshold` applies to CLIP and hashes use their own default. A file gone
    from disk since it was indexed is never reported: the groups are made again without it."""
    catalog = idx.catalog
    files = catalog.indexed_files(roots)
    embedded = catalog.has_embeddings()
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
                            runner=runner, proposed=_proposed(idx, nodes))
    if mode in ("clip", "auto") and vectors:
        pairs += clip_pairs(reps, vectors, threshold)
    return make_groups(_with_inner_pictures(idx, nodes, pairs), pairs, keeper=keeper,
                       similarity=Similarity(vectors, local))


def _with_inner_pictures(idx: IndexDir, nodes: list[list], pairs: list) -> list[list]:
    """`nodes`, each file in a pair given the thumbnail of the picture inside it (for the keeper: a screenshot
    holding another file of its group is a copy), read for those files only."""
    from dataclasses import replace

    paired = {k for i, j, _s in pairs for k in (i, j)}
    inner = idx.catalog.inner_thumbs([f.id for k in paired for f in nodes[k]])
    if not inner:
        return nodes
    return [[replace(f, inner_thumb=inner[f.id]) if f.id in inner else f for f in node] for node in nodes]


def _proposed(idx: IndexDir, nodes: list[list]):
    """The local-feature candidates (i, j, mirror) among `nodes` (node numbers, as arrays) that the revision's
    lookup keeps, where it holds exactly these nodes (a report over every indexed file, none gone); None otherwise
    (the search then runs)."""
    import numpy as np

    from .lookup import of

    lookup = of(idx)
    if lookup is None or len(lookup) != len(nodes) or any(not n[0].thumb for n in nodes):
        return None
    node_of = {f.id: k for k, node in enumerate(nodes) for f in node}
    rows = np.array([node_of.get(i, -1) for i in lookup.ids.tolist()], np.int64)
    if (rows < 0).any() or len(np.unique(rows)) != len(rows):
        return None
    i, j, mirror = lookup.proposed()
    a, b = rows[i], rows[j]
    return np.minimum(a, b), np.maximum(a, b), mirror


def _gone_notice(n: int) -> str:
    one = n == 1
    return (f"{n:,} {'file' if one else 'files'} to report {'is' if one else 'are'} gone from disk since indexing "
            "and left out; `simfind index DIR` brings the index up to date")
