"""The catalog: a schema migrated from any older version equals one built from blank, and old rows survive."""

from __future__ import annotations

import sqlite3

import pytest

from simfind.catalog import CATALOG_NAME, MIGRATIONS, SCHEMA_VERSION, Catalog
from simfind.errors import IndexUnreadable
from simfind.records import Failure, Features, FileRef


def _schema(path) -> list:
    conn = sqlite3.connect(path)
    try:
        objects = sorted((t, n, " ".join((sql or "").split())) for t, n, sql in
                         conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
        columns = {n: conn.execute(f"PRAGMA table_info({n})").fetchall() for t, n, _ in objects if t == "table"}
        return [objects, columns, conn.execute("PRAGMA user_version").fetchone()[0]]
    finally:
        conn.close()


def _at_version(folder, version: int) -> None:
    """A catalog as a simfind of schema `version` left it, with one file row."""
    folder.mkdir()
    conn = sqlite3.connect(folder / CATALOG_NAME, isolation_level=None)
    for statements in MIGRATIONS[:version]:
        for statement in statements:
            conn.execute(statement)
    if version:
        conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
        conn.execute("INSERT INTO files (path, size, mtime_ns, content_hash, width, height, phash, indexed_at)"
                     " VALUES ('/p/a.jpg', 10, 1, x'00', 4, 3, x'0000000000000000', 0)")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_a_catalog_migrated_from_any_older_version_equals_one_built_from_blank(tmp_path, version):
    Catalog.open(str(tmp_path / "blank"), create=True).close()
    _at_version(tmp_path / "old", version)
    with Catalog.open(str(tmp_path / "old"), create=False) as catalog:
        assert catalog.get_meta("schema_version") == str(SCHEMA_VERSION)
        if version:  # the old row survives, and is decoded again by the next index run (it lacks a thumbnail)
            assert catalog.stat_rows(["/p"]) == {"/p/a.jpg": (1, 10, 1, b"\0")}
            assert catalog.outdated(["/p"]) == {"/p/a.jpg"}
    assert _schema(tmp_path / "old" / CATALOG_NAME) == _schema(tmp_path / "blank" / CATALOG_NAME)


def test_a_catalog_from_a_newer_simfind_is_refused_in_one_line(tmp_path):
    _at_version(tmp_path / "new", 0)
    sqlite3.connect(tmp_path / "new" / CATALOG_NAME).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(IndexUnreadable, match="newer simfind") as e:
        Catalog.open(str(tmp_path / "new"), create=False)
    assert "\n" not in str(e.value)


def test_rows_written_renamed_and_removed(tmp_path):
    a, b = FileRef("/p/a.jpg", 10, 1), FileRef("/p/b.jpg", 20, 2)
    with Catalog.open(str(tmp_path / "idx"), create=True) as catalog:
        catalog.write([Features(a, b"\1" * 8, 4, 3, b"\2" * 8, bytes(1024), None, 12), Failure(b, "corrupt JPEG")])
        assert [f.path for f in catalog.indexed_files()] == ["/p/a.jpg"]
        assert catalog.errors() == [("/p/b.jpg", "corrupt JPEG")]
        catalog.move([("/p/a.jpg", "/p/moved/a.jpg", 10, 5)], ["/p/b.jpg"])
        (row,) = catalog.indexed_files()
        assert (row.path, row.mtime_ns, row.content_pixels) == ("/p/moved/a.jpg", 5, 12)
        assert catalog.counts() == {"files": 1, "errors": 0, "hashed": 1, "embedded": 0}
