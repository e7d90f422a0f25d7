"""The sync plan: what an `index` run decodes, moves and drops, from the files found and the catalog's rows."""

from __future__ import annotations

from simfind.hashing import content_hash
from simfind.records import Failure, FileRef
from simfind.sync import plan


def _file(tmp_path, name: str, data: bytes, mtime_ns: int = 1_000) -> FileRef:
    path = tmp_path / name
    path.write_bytes(data)
    return FileRef(str(path), len(data), mtime_ns)


def _row(ref: FileRef, data: bytes, id_: int = 1):
    return (id_, ref.size, ref.mtime_ns, content_hash(data))


def test_unchanged_files_are_only_counted_and_changed_or_new_ones_are_decoded(tmp_path):
    same = _file(tmp_path, "same.jpg", b"same")
    edited = _file(tmp_path, "edited.jpg", b"edited now", mtime_ns=2_000)
    new = _file(tmp_path, "new.jpg", b"brand new")
    known = {same.path: _row(same, b"same"), edited.path: (2, 6, 1_000, content_hash(b"edited"))}
    p = plan([same, edited, new], [], known)
    assert [f.path for f in p.todo] == [edited.path, new.path]
    assert (p.unchanged, p.updated, p.added, p.renames, p.removals) == (1, 1, 1, [], [])


def test_a_renamed_file_moves_its_row_without_a_decode_and_a_vanished_one_is_removed(tmp_path):
    moved = _file(tmp_path, "after.jpg", b"the same bytes", mtime_ns=5_000)
    before, gone = str(tmp_path / "before.jpg"), str(tmp_path / "gone.jpg")
    known = {before: (1, moved.size, 4_000, content_hash(b"the same bytes")), gone: (2, 3, 1, content_hash(b"xyz"))}
    p = plan([moved], [], known)
    assert p.todo == [] and p.added == 0
    assert p.renames == [(before, moved.path, moved.size, moved.mtime_ns)]
    assert p.removals == [gone]


def test_a_new_file_of_the_same_size_but_other_bytes_is_not_a_rename(tmp_path):
    new = _file(tmp_path, "new.jpg", b"aaaa")
    old = str(tmp_path / "old.jpg")
    p = plan([new], [], {old: (1, 4, 1, content_hash(b"bbbb"))})
    assert p.renames == [] and p.removals == [old] and [f.path for f in p.todo] == [new.path]


def test_two_copies_renamed_at_once_each_take_one_old_row(tmp_path):
    a = _file(tmp_path, "a2.jpg", b"copy")
    b = _file(tmp_path, "b2.jpg", b"copy")
    old_a, old_b = str(tmp_path / "a1.jpg"), str(tmp_path / "b1.jpg")
    h = content_hash(b"copy")
    p = plan([a, b], [], {old_a: (1, 4, 1, h), old_b: (2, 4, 1, h)})
    assert sorted(o for o, *_ in p.renames) == [old_a, old_b]
    assert sorted(n for _o, n, *_ in p.renames) == [a.path, b.path] and p.todo == []


def test_a_file_the_scan_could_not_read_keeps_its_row(tmp_path):
    """A failure found by the scan (a permission error, say) is still on disk: it is not a removal."""
    ref = FileRef(str(tmp_path / "locked.jpg"), 10, 1)
    p = plan([], [Failure(ref, "permission denied")], {ref.path: (1, 10, 1, None)})
    assert p.removals == [] and p.todo == []


def test_rows_an_older_simfind_wrote_and_rows_without_an_embedding_are_decoded_again(tmp_path):
    old = _file(tmp_path, "old.jpg", b"old")
    bare = _file(tmp_path, "bare.jpg", b"bare")
    known = {old.path: _row(old, b"old", 1), bare.path: _row(bare, b"bare", 2)}
    p = plan([old, bare], [], known, outdated={old.path}, unembedded={bare.path})
    assert [f.path for f in p.todo] == [old.path, bare.path]
    assert p.refreshed == 1 and p.embed_only == {bare.path} and p.unchanged == 2
    p.without_embeddings()  # no model after all: the file that only lacked an embedding is left alone
    assert [f.path for f in p.todo] == [old.path] and p.embed_only == set()
