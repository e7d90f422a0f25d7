"""Pairs -> groups, without chaining; each group's keeper first; `--between` as a filter on groups.

Single linkage (connected components) chains unrelated pictures together through a path of small steps
(A~B, B~C, ... so A lands with Z). Star grouping prevents it: the file with the most unassigned matches becomes a
group's centre and takes every unassigned file that matches it directly, then the next centre, and so on. Every
member is a verified match of its centre, so no path is longer than two steps through it. An edited copy (a
crop, a rotation) is rarely a match of another edited copy, but both match the original: star groups keep them
together, where complete linkage (every member matching every other) would split them.
Exact copies (the same bytes) are one node before any of this. Pure: no I/O.
"""

from __future__ import annotations

import heapq
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from .records import Group, IndexedFile, Member


def _edges(pairs: Iterable[tuple[int, int, float]]) -> dict[tuple[int, int], float]:
    edges: dict[tuple[int, int], float] = {}
    for i, j, sim in pairs:
        if i == j:
            continue
        key = (i, j) if i < j else (j, i)
        if sim > edges.get(key, -1.0):
            edges[key] = sim
    return edges


def star_groups(n: int, pairs: Iterable[tuple[int, int, float]]) -> list[list[int]]:
    """Nodes 0..n-1 and (i, j, similarity) pairs -> groups of two or more nodes, each a centre and its matches."""
    adj: dict[int, dict[int, float]] = defaultdict(dict)
    for (i, j), sim in _edges(pairs).items():
        adj[i][j] = sim
        adj[j][i] = sim

    def priority(c: int) -> tuple[int, float, int]:
        free = [s for j, s in adj[c].items() if j not in assigned]
        return (-len(free), -sum(free), c)

    assigned: set[int] = set()
    heap = [priority(c) for c in adj]
    heapq.heapify(heap)
    groups = []
    while heap:
        entry = heapq.heappop(heap)
        c = entry[2]
        if c in assigned:
            continue
        current = priority(c)
        if current != entry:  # a neighbour was taken since: re-queue with the up-to-date count
            if current[0] < 0:
                heapq.heappush(heap, current)
            continue
        if current[0] == 0:
            continue
        members = [c] + [j for j in adj[c] if j not in assigned]
        assigned.update(members)
        groups.append(sorted(members))
    return groups


def by_content(files: Iterable[IndexedFile]) -> list[list[IndexedFile]]:
    """Files with the same bytes, as one node each (a list of one or more files), in first-seen order."""
    nodes: dict[bytes, list[IndexedFile]] = defaultdict(list)
    for f in files:
        nodes[f.content_hash].append(f)
    return list(nodes.values())


def make_groups(nodes: Sequence[list[IndexedFile]], pairs: Iterable[tuple[int, int, float]], *,
                keeper: Callable[[Sequence[IndexedFile]], IndexedFile],
                similarity: Callable[[IndexedFile, IndexedFile], float]) -> list[Group]:
    """Star groups of `nodes` joined by `pairs` (node numbers), plus every node of two or more byte copies on
    its own. Each group's keeper (`keeper` of its files, keeper.py) comes first; the others follow by their
    similarity to it: the pair's own where the two were paired, else `similarity`. Groups are ordered by the
    bytes they waste, most first."""
    pairs = list(pairs)
    edges = _edges(pairs)
    clusters = star_groups(len(nodes), pairs)
    in_cluster = {i for c in clusters for i in c}
    clusters += [[i] for i, n in enumerate(nodes) if len(n) > 1 and i not in in_cluster]
    node_of = {id(f): i for i, n in enumerate(nodes) for f in n}

    def paired(a: IndexedFile, b: IndexedFile) -> float:
        i, j = node_of[id(a)], node_of[id(b)]
        if i == j:
            return 1.0
        found = edges.get((i, j) if i < j else (j, i))
        return similarity(a, b) if found is None else found

    groups = [_group([f for i in c for f in nodes[i]], keeper, paired) for c in clusters]
    groups.sort(key=lambda g: (-g.wasted_bytes, g.keep.path))
    return groups


def _group(files: list[IndexedFile], keeper, similarity) -> Group:
    keep = keeper(files)
    others = [Member(f, similarity(keep, f)) for f in files if f is not keep]
    others.sort(key=lambda m: (-m.similarity, m.file.path))
    return Group((Member(keep, 1.0), *others))


def is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def spanning(groups: Iterable[Group], a: str, b: str) -> list[Group]:
    """The groups with files under both folders `a` and `b` (absolute paths): `--between A B`."""
    out = []
    for g in groups:
        paths = [m.file.path for m in g.members]
        if any(is_under(p, a) for p in paths) and any(is_under(p, b) for p in paths):
            out.append(g)
    return out
