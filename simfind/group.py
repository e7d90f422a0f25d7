"""Pairs -> groups, without chaining.

Single linkage (connected components) chains unrelated pictures together through a path of small steps
(A~B, B~C, ... so A lands with Z). Star grouping prevents it: the file with the most unassigned matches becomes a
group's centre and takes every unassigned file that matches it directly, then the next centre, and so on. Every
member is a verified match of its centre, so no path is longer than two steps through it. An edited copy (a
crop, a rotation) is rarely a match of another edited copy, but both match the original: star groups keep them
together, where complete linkage (every member matching every other) would split them.
Pure: no I/O.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable


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
