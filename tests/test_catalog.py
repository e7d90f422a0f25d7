"""The catalog: a schema migrated from any older version equals one built from blank, old rows survive (and the
ones an older simfind kept less of are decoded again), a newer schema is refused in one line; rows round-trip."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from simfind.catalog import CATALOG_NAME, MIGRATIONS, SCHEMA_VERSION, Catalog
from simfind.errors import IndexUnreadable, SimfindError
from simfind.records import Failure, Features, FileRef, IndexedFile

W, H = 640, 480
THUMB, FRAME = bytes(range(256)) * 4, b"\7" * 1032  # 32x32 grey; a whole frame (its size does not matter here)

# One row of each kind, as the newest schema holds it; an older version keeps the columns it had.
ROWS = {
    # an untrimmed picture (content_pixels = all its pixels, no frame), with an embedding
    "/p/plain.jpg": dict(size=1000, mtime_ns=11, content_hash=b"\1" * 16, width=W, height=H, phash=b"\2" * 8,
                         error=None, indexed_at=1.0, embedding=b"\0\x3c" * 4, thumb=THUMB, content_pixels=W * H,
                         frame=None, camera=1, jpeg_quality=92, orientation=6, local=b"\5" * 42),
    # a letterboxed picture: fewer picture pixels than the frame has, and the frame kept
    "/p/letterboxed.jpg": dict(size=900, mtime_ns=12, content_hash=b"\3" * 16, width=W, height=H, phash=b"\4" * 8,
                               error=None, indexed_at=1.0, embedding=None, thumb=THUMB, content_pixels=W * 360,
                               frame=FRAME, camera=0, jpeg_quality=None, orientation=None, local=b""),
    # a file that could not be decoded
    "/p/broken.jpg": dict(size=10, mtime_ns=13, content_hash=None, width=None, height=None, phash=None,
                          error="cannot identify image file", indexed_at=1.0, embedding=None, thumb=None,
                          content_pixels=None, frame=None, camera=None, jpeg_quality=None, orientation=None,
                          local=None),
}
IMAGES = ("/p/letterboxed.jpg", "/p/plain.jpg")


def _schema(path: Path) -> tuple:
    """Every schema object (whitespace normalised), every table's and index's columns, and the version."""
    conn = sqlite3.connect(path)
    try:
        objects = sorted(
            (t, n, tbl, " ".join((sql or "").split()))
            for t, n, tbl, sql in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")
        )
        columns = {n: conn.execute(f"PRAGMA table_info('{n}')").fetchall() for t, n, _, _ in objects if t == "table"}
        indexes = {n: conn.execute(f"PRAGMA index_info('{n}')").fetchall() for t, n, _, _ in objects if t == "index"}
        return objects, columns, indexes, conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection) -> list[str]:
    return [r[1] for r in conn.execute("PRAGMA table_info(files)")]


def _at_version(folder: Path, version: int, rows: dict[str, dict] = ROWS) -> Path:
    """A catalog as a simfind of schema `version` left it: MIGRATIONS[:version] applied, the version recorded the
    way Catalog._migrate records it (PRAGMA user_version and meta schema_version), and `rows` as far as that
    version could hold them."""
    folder.mkdir(parents=True)
    conn = sqlite3.connect(folder / CATALOG_NAME, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")  # as simfind creates every catalog: even version 0 has its header
    for v, statements in enumerate(MIGRATIONS[:version]):
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {v + 1}")
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(v + 1),))
    if version:
        have = _columns(conn)
        for path, row in rows.items():
            kept = {"path": path, **{k: v for k, v in row.items() if k in have}}
            conn.execute(f"INSERT INTO files ({', '.join(kept)}) VALUES ({', '.join('?' * len(kept))})",
                         list(kept.values()))
    conn.close()
    return folder


def _blank(tmp_path: Path) -> Path:
    Catalog.open(str(tmp_path / "blank"), create=True).close()
    return tmp_path / "blank" / CATALOG_NAME


def test_the_hand_built_versions_are_the_versions_they_claim():
    """The helper above is only as good as its versions: each adds the columns its migration adds."""
    conn = sqlite3.connect(":memory:")
    seen = []
    for statements in MIGRATIONS:
        for statement in statements:
            conn.execute(statement)
        seen.append(_columns(conn))
    added = ("embedding", "thumb", "content_pixels", "frame", "camera", "jpeg_quality", "orientation", "local")
    assert seen[0][:2] == ["id", "path"] and seen[-1][-1] == "local"
    assert [c for c in added if c not in seen[0]] == seen[-1][-len(added):]
    assert set(ROWS["/p/plain.jpg"]) | {"id", "path"} == set(seen[-1])  # the rows fill every column


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_a_catalog_migrated_from_any_older_version_equals_one_built_from_blank(tmp_path, version):
    blank = _blank(tmp_path)
    old = _at_version(tmp_path / "old", version)
    with Catalog.open(str(old), create=False) as catalog:
        assert catalog.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert _schema(old / CATALOG_NAME) == _schema(blank)
    assert _schema(blank)[3] == SCHEMA_VERSION


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_old_rows_survive_migration(tmp_path, version):
    old = _at_version(tmp_path / "old", version)
    with sqlite3.connect(old / CATALOG_NAME) as conn:
        ids = dict(conn.execute("SELECT path, id FROM files"))
        had = _columns(conn)
    with Catalog.open(str(old), create=False) as catalog:
        assert catalog.stat_rows(["/p"]) == {
            p: (ids[p], r["size"], r["mtime_ns"], r["content_hash"]) for p, r in ROWS.items()}
        assert catalog.errors() == [("/p/broken.jpg", "cannot identify image file")]
        got = {f.path: f for f in catalog.indexed_files()}
        assert sorted(got) == sorted(IMAGES)
        for path in IMAGES:
            r = {k: (v if k in had else None) for k, v in ROWS[path].items()}  # what this version could hold
            assert got[path] == IndexedFile(ids[path], path, r["size"], r["mtime_ns"], r["content_hash"], r["width"],
                                            r["height"], r["phash"], r["thumb"], r["content_pixels"], r["frame"],
                                            r["camera"], r["jpeg_quality"], r["orientation"])
        assert catalog.counts() == {"files": 2, "errors": 1, "hashed": 2, "embedded": int("embedding" in had)}
        # the migrated catalog takes new rows like a fresh one
        catalog.write([Features(FileRef("/p/new.jpg", 5, 6), b"\5" * 16, 10, 20, b"\6" * 8, thumb=THUMB,
                                content_pixels=200)])
        assert "/p/new.jpg" in catalog.stat_rows(["/p"]) and "/p/new.jpg" not in catalog.outdated(["/p"])


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_rows_an_older_version_could_not_hold_are_decoded_again(tmp_path, version):
    """Every image row from an older schema lacks what this version reads from a file (the keeper's evidence, and
    before that the thumbnail, picture pixels or whole frame), so every image is decoded again; a file that could
    not be read is not an image to refresh."""
    old = _at_version(tmp_path / "old", version)
    with Catalog.open(str(old), create=False) as catalog:
        assert catalog.outdated(["/p"]) == set(IMAGES)
        assert catalog.outdated(["/elsewhere"]) == set()


def test_rows_from_schema_3_are_decoded_again(tmp_path):
    """Schema 3 did not record picture pixels or frames, so it cannot tell a letterboxed row from a plain one."""
    old = _at_version(tmp_path / "old", 3)
    with Catalog.open(str(old), create=False) as catalog:
        assert catalog.outdated(["/p"]) == set(IMAGES)


def test_a_catalog_from_blank_has_nothing_outdated(tmp_path):
    with Catalog.open(str(tmp_path / "idx"), create=True) as catalog:
        catalog.write([Features(FileRef("/p/a.jpg", 1, 1), b"a" * 16, W, H, b"b" * 8, thumb=THUMB,
                                content_pixels=W * H),
                       Features(FileRef("/p/b.jpg", 1, 1), b"b" * 16, W, H, b"c" * 8, thumb=THUMB,
                                content_pixels=W * 360, frame=FRAME)])
        assert catalog.outdated(["/p"]) == set()


def _newer(tmp_path: Path) -> Path:
    folder = _at_version(tmp_path / "new", SCHEMA_VERSION)
    with sqlite3.connect(folder / CATALOG_NAME) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.close()
    return folder


@pytest.mark.parametrize("create", [False, True])
def test_a_catalog_from_a_newer_simfind_is_refused_in_one_line_and_left_alone(tmp_path, create):
    folder = _newer(tmp_path)
    with pytest.raises(IndexUnreadable) as e:
        Catalog.open(str(folder), create=create)
    message = str(e.value)
    assert isinstance(e.value, SimfindError) and e.value.exit_code == 3
    assert "\n" not in message and message.strip() == message
    assert "newer simfind" in message and "upgrade simfind" in message and str(SCHEMA_VERSION + 1) in message
    with sqlite3.connect(folder / CATALOG_NAME) as conn:  # not migrated, nothing dropped
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert conn.execute("SELECT COUNT(*) FROM files").fetchone()[0] == len(ROWS)
    conn.close()


def test_the_command_line_reports_a_newer_catalog_in_one_line_with_exit_3(tmp_path, cli):
    cli.index_dir = _newer(tmp_path)
    result = cli("info")
    assert result.exit_code == 3
    assert len(result.stderr.strip().splitlines()) == 1 and "newer simfind" in result.stderr


def test_a_file_that_is_not_a_catalog_is_refused_in_one_line(tmp_path):
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / CATALOG_NAME).write_bytes(b"not a database, just bytes " * 100)
    with pytest.raises(IndexUnreadable) as e:
        Catalog.open(str(tmp_path / "idx"), create=False)
    assert "\n" not in str(e.value) and "is damaged" in str(e.value) and "--rebuild" in str(e.value)


# -- round trips ----------------------------------------------------------------------------------------------


def _features(path: str, size: int = 1000, mtime_ns: int = 1, key: int = 1, **kw) -> Features:
    return Features(FileRef(path, size, mtime_ns), bytes([key]) * 16, W, H, bytes([key]) * 8,
                    **{"thumb": THUMB, "content_pixels": W * H, **kw})


def test_written_rows_read_back_as_they_were_written(tmp_path):
    plain = _features("/p/a.jpg", 1000, 11, key=1)
    framed = _features("/p/sub/b.jpg", 2000, 22, key=2, content_pixels=W * 360, frame=FRAME, camera=True, quality=90,
                       orientation=6)
    bare = _features("/p/c.jpg", 3000, 33, key=3, thumb=b"", content_pixels=None)  # empty bytes are stored as NULL
    broken = Failure(FileRef("/p/d.jpg", 40, 44), "truncated JPEG")
    with Catalog.open(str(tmp_path / "idx"), create=True) as catalog:
        catalog.write([plain, framed, bare, broken])
        rows = catalog.stat_rows(["/p"])
        assert {p: r[1:] for p, r in rows.items()} == {
            "/p/a.jpg": (1000, 11, b"\1" * 16), "/p/sub/b.jpg": (2000, 22, b"\2" * 16),
            "/p/c.jpg": (3000, 33, b"\3" * 16), "/p/d.jpg": (40, 44, None)}
        assert len({r[0] for r in rows.values()}) == 4
        got = catalog.indexed_files()
        assert got == [
            IndexedFile(rows[f.ref.path][0], f.ref.path, f.ref.size, f.ref.mtime_ns, f.content_hash, W, H, f.phash,
                        f.thumb or None, f.content_pixels, f.frame or None, f.camera, f.quality, f.orientation)
            for f in (plain, bare, framed)  # by path
        ]
        assert got[2].picture_pixels == W * 360 and got[1].picture_pixels == W * H
        assert catalog.errors() == [("/p/d.jpg", "truncated JPEG")]
        assert catalog.files_by_id([rows["/p/sub/b.jpg"][0], rows["/p/d.jpg"][0]]) == [got[2]]  # not the failure
        assert catalog.counts() == {"files": 3, "errors": 1, "hashed": 3, "embedded": 0}
    with Catalog.open(str(tmp_path / "idx"), create=False) as again:  # committed: a new process sees it all
        assert again.indexed_files() == got and again.errors() == [("/p/d.jpg", "truncated JPEG")]


def test_rewriting_a_path_keeps_its_id_and_replaces_everything_else(tmp_path):
    with Catalog.open(str(tmp_path / "idx"), create=True) as catalog:
        catalog.write([_features("/p/a.jpg", key=1)], embeddings={"/p/a.jpg": b"\0\x3c" * 4})
        (first,) = catalog.indexed_files()
        assert catalog.counts()["embedded"] == 1 and catalog.unembedded(["/p"]) == set()
        catalog.write([_features("/p/a.jpg", 5, 7, key=9)])  # changed file, no new embedding: the old one is stale
        (second,) = catalog.indexed_files()
        assert second.id == first.id and (second.size, second.mtime_ns, second.content_hash) == (5, 7, b"\x09" * 16)
        assert catalog.counts()["embedded"] == 0 and catalog.unembedded(["/p"]) == {"/p/a.jpg"}
        catalog.write([Failure(FileRef("/p/a.jpg", 6, 8), "now corrupt")])
        assert catalog.indexed_files() == [] and catalog.errors() == [("/p/a.jpg", "now corrupt")]
        assert catalog.stat_rows(["/p"]) == {"/p/a.jpg": (first.id, 6, 8, None)}
        catalog.write([_features("/p/a.jpg", 7, 9, key=4)])  # repaired
        assert [f.id for f in catalog.indexed_files()] == [first.id] and catalog.errors() == []


def test_moves_keep_ids_and_removals_drop_rows(tmp_path):
    with Catalog.open(str(tmp_path / "idx"), create=True) as catalog:
        catalog.write([_features("/p/a.jpg", key=1), _features("/p/b.jpg", key=2),
                       Failure(FileRef("/p/bad.jpg", 1, 1), "truncated")])
        ids = {p: r[0] for p, r in catalog.stat_rows(["/p"]).items()}
        rev = catalog.embeddings_rev()
        catalog.move([("/p/a.jpg", "/p/moved/a.jpg", 1000, 5)], [])
        assert catalog.embeddings_rev() == rev  # a rename keeps the id: derived files stay valid
        catalog.move([], ["/p/b.jpg", "/p/bad.jpg"])
        assert catalog.embeddings_rev() > rev
        catalog.move([], [])  # nothing to do is fine
        assert catalog.stat_rows(["/p"]) == {"/p/moved/a.jpg": (ids["/p/a.jpg"], 1000, 5, b"\1" * 16)}
        (row,) = catalog.indexed_files()
        assert (row.path, row.id, row.mtime_ns, row.thumb, row.content_pixels) == (
            "/p/moved/a.jpg", ids["/p/a.jpg"], 5, THUMB, W * H)
        assert catalog.errors() == []
        assert catalog.counts() == {"files": 1, "errors": 0, "hashed": 1, "embedded": 0}


def test_roots_select_their_own_subtree_only(tmp_path):
    paths = ["/p/a.jpg", "/p/sub/b.jpg", "/p2/c.jpg", "/p-x/d.jpg", "/p%/e.jpg", "/p_/f.jpg", "/q/p/g.jpg", "/p"]
    with Catalog.open(str(tmp_path / "idx"), create=True) as catalog:
        catalog.write([_features(p, key=k) for k, p in enumerate(paths, 1)])
        assert set(catalog.stat_rows(["/p"])) == {"/p/a.jpg", "/p/sub/b.jpg", "/p"}
        assert set(catalog.stat_rows(["/p/"])) == {"/p/a.jpg", "/p/sub/b.jpg", "/p"}
        assert set(catalog.stat_rows(["/p%"])) == {"/p%/e.jpg"}  # no LIKE wildcards
        assert set(catalog.stat_rows(["/p_"])) == {"/p_/f.jpg"}
        assert set(catalog.stat_rows(["/p/sub", "/p2"])) == {"/p/sub/b.jpg", "/p2/c.jpg"}
        assert set(catalog.stat_rows(["/"])) == set(paths)
        assert [f.path for f in catalog.indexed_files(["/p/sub", "/q"])] == ["/p/sub/b.jpg", "/q/p/g.jpg"]
        assert [f.path for f in catalog.indexed_files()] == sorted(paths)


def test_a_batch_that_fails_leaves_the_catalog_as_it_was(tmp_path):
    with Catalog.open(str(tmp_path / "idx"), create=True) as catalog:
        catalog.write([_features("/p/a.jpg", key=1)])
        before = catalog.indexed_files()
        bad = Features(FileRef("/p/c.jpg", None, 1), b"c" * 16, W, H, b"c" * 8)  # size is NOT NULL
        with pytest.raises(sqlite3.IntegrityError):
            catalog.write([_features("/p/b.jpg", key=2), _features("/p/a.jpg", 9, 9, key=3), bad])
        assert catalog.indexed_files() == before
