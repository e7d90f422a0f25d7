"""Pairs -> groups, without chaining.

Single linkage (connected components) chains unrelated pictures together through a path of small steps
(A~B, B~C, ... so A lands with Z). Here a pair joins two groups only when every member of one is a known
pair of every member of the other (complete linkage), taking the strongest pairs first. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable


def complete_linkage(n: int, pairs: Iterable[tuple[int, int, float]]) -> list[list[int]]:
    """Nodes 0..n-1 and (i, j, similarity) pairs -> groups of two or more nodes, each a clique of pairs."""
    edges: dict[tuple[int, int], float] = {}
    for i, j, sim in pairs:
        if i == j:
            continue
        key = (i, j) if i < j else (j, i)
        if sim > edges.get(key, -1.0):
            edges[key] = sim
    group_of = list(range(n))
    members: dict[int, list[int]] = {}
    for (i, j), _sim in sorted(edges.items(), key=lambda kv: (-kv[1], kv[0])):
        gi, gj = group_of[i], group_of[j]
        if gi == gj:
            continue
        a, b = members.get(gi, [i]), members.get(gj, [j])
        if all(((x, y) if x < y else (y, x)) in edges for x in a for y in b):
            if len(a) < len(b):
                gi, gj, a, b = gj, gi, b, a
            merged = a + b
            for y in b:
                group_of[y] = gi
            members[gi] = merged
            members.pop(gj, None)
    return [sorted(m) for m in members.values() if len(m) > 1]
