"""Pairs -> groups: no chaining, byte copies together, the keeper first, `--between`, and the keeper rules."""

from __future__ import annotations

import pytest

from simfind.errors import UsageError
from simfind.grouping import by_content, make_groups, spanning, star_groups
from simfind.keeper import keeper_rule
from simfind.records import IndexedFile


def _f(id_: int, path: str, *, size: int = 1000, w: int = 100, h: int = 100, mtime: int = 0, content: bytes | None = None,
       content_pixels: int | None = None) -> IndexedFile:
    return IndexedFile(id_, path, size, mtime, content or bytes([id_]) * 4, w, h, b"\0" * 8, None, content_pixels)


def _paths(groups):
    return [[m.file.path for m in g.members] for g in groups]


def test_a_chain_of_small_steps_does_not_join_its_ends():
    """A~B, B~C, C~D, D~E: single linkage would make one group of five; every member of a star group matches its
    centre directly."""
    chain = [(0, 1, 0.95), (1, 2, 0.95), (2, 3, 0.95), (3, 4, 0.95)]
    groups = star_groups(5, chain)
    assert all(len(g) <= 3 for g in groups) and sum(map(len, groups)) <= 5
    for g in groups:
        centre = [c for c in g if all(c == m or tuple(sorted((c, m))) in {(i, j) for i, j, _ in chain} for m in g)]
        assert centre, g


def test_edited_copies_of_one_original_stay_together():
    """A crop and a rotation of one photo rarely match each other, but both match the original."""
    assert star_groups(4, [(0, 1, 0.92), (0, 2, 0.91), (0, 3, 0.9)]) == [[0, 1, 2, 3]]


def test_byte_copies_are_one_node_and_a_group_even_without_pairs():
    a1, a2 = _f(1, "/p/a1.jpg", content=b"AAAA"), _f(2, "/p/a2.jpg", content=b"AAAA")
    b = _f(3, "/p/b.jpg")
    nodes = by_content([a1, b, a2])
    assert [[f.path for f in n] for n in nodes] == [["/p/a1.jpg", "/p/a2.jpg"], ["/p/b.jpg"]]
    groups = make_groups(nodes, [], keeper=keeper_rule("pixels"), similarity=lambda k, f: 1.0)
    assert _paths(groups) == [["/p/a1.jpg", "/p/a2.jpg"]]


def test_the_keeper_comes_first_and_the_others_follow_by_their_pairs_similarity():
    big = _f(1, "/p/big.jpg", w=400, h=300)
    small, mid = _f(2, "/p/small.jpg", w=100, h=75), _f(3, "/p/mid.jpg", w=200, h=150)
    groups = make_groups([[small], [big], [mid]], [(0, 1, 0.91), (1, 2, 0.97)], keeper=keeper_rule("pixels"),
                         similarity=lambda keep, f: 0.5)
    assert _paths(groups) == [["/p/big.jpg", "/p/mid.jpg", "/p/small.jpg"]]
    assert [m.similarity for m in groups[0].members] == [1.0, 0.97, 0.91]  # the pair's own, as a query shows it


def test_a_member_not_paired_with_the_keeper_shows_the_similarity_measured_to_it():
    centre = _f(1, "/p/centre.jpg", w=100, h=75)
    big, other = _f(2, "/p/big.jpg", w=400, h=300), _f(3, "/p/other.jpg", w=50, h=40)
    groups = make_groups([[centre], [big], [other]], [(0, 1, 0.95), (0, 2, 0.92), (0, 0, 1.0)],
                         keeper=keeper_rule("pixels"), similarity=lambda keep, f: 0.5)
    assert [(m.file.path, m.similarity) for m in groups[0].members] == [
        ("/p/big.jpg", 1.0), ("/p/centre.jpg", 0.95), ("/p/other.jpg", 0.5)]


def test_groups_that_waste_the_most_bytes_come_first():
    nodes = [[_f(1, "/a1", size=10)], [_f(2, "/a2", size=10)], [_f(3, "/b1", size=5000)], [_f(4, "/b2", size=5000)]]
    groups = make_groups(nodes, [(0, 1, 0.9), (2, 3, 0.9)], keeper=keeper_rule("pixels"), similarity=lambda k, f: 0.9)
    assert [g.keep.path for g in groups] == ["/b1", "/a1"]


def test_between_keeps_only_groups_with_files_under_both_folders():
    leak = make_groups([[_f(1, "/d/train/x.jpg")], [_f(2, "/d/test/x.jpg")]], [(0, 1, 0.95)],
                       keeper=keeper_rule("pixels"), similarity=lambda k, f: 0.95)
    inside = make_groups([[_f(3, "/d/train/y.jpg")], [_f(4, "/d/train/y2.jpg")]], [(0, 1, 0.95)],
                         keeper=keeper_rule("pixels"), similarity=lambda k, f: 0.95)
    near_name = make_groups([[_f(5, "/d/train/z.jpg")], [_f(6, "/d/test-old/z.jpg")]], [(0, 1, 0.95)],
                            keeper=keeper_rule("pixels"), similarity=lambda k, f: 0.95)
    kept = spanning(leak + inside + near_name, "/d/train", "/d/test")
    assert _paths(kept) == _paths(leak)  # /d/test-old is not under /d/test


def test_the_default_keeper_prefers_picture_pixels_not_letterbox_bars():
    framed = _f(1, "/p/framed.jpg", w=800, h=800, size=90_000, content_pixels=300 * 300)
    plain = _f(2, "/p/plain.jpg", w=600, h=400, size=50_000)
    assert keeper_rule(None)([framed, plain]).path == "/p/plain.jpg"


@pytest.mark.parametrize("rule, expected", [
    ("newest", "/p/new.jpg"), ("oldest", "/p/old.jpg"), ("largest", "/p/old.jpg"), ("smallest", "/p/new.jpg"),
    ("shortest-path", "/p/old.jpg"), ("*/keep/*", "/p/keep/x.jpg"), ("pixels", "/p/keep/x.jpg"),
])
def test_keep_rules(rule, expected):
    files = [_f(1, "/p/old.jpg", size=900, mtime=1), _f(2, "/p/new.jpg", size=100, mtime=9),
             _f(3, "/p/keep/x.jpg", size=500, mtime=5, w=200)]
    assert keeper_rule(rule)(files).path == expected


def test_an_unknown_keep_rule_is_a_usage_error_that_lists_the_rules():
    with pytest.raises(UsageError, match="pixels, newest, oldest"):
        keeper_rule("biggest")
