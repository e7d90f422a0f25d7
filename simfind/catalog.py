"""The SQLite catalog: one row per file (features or the reason it failed), a meta table, numbered migrations.

SQLite gives the atomicity: every batch is one transaction, so a crash or Ctrl-C leaves the catalog as of the
last committed batch, never half-written. WAL mode lets readers (`dupes`, `info`) run beside one writer.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .errors import IndexDamaged, IndexMissing, IndexUnreadable
from .hashing import THUMB_SIDE
from .records import Failure, Features, IndexedFile

if TYPE_CHECKING:
    import numpy as np

CATALOG_NAME = "catalog.sqlite"

# Numbered migrations: MIGRATIONS[i] takes the schema from version i to i + 1. Append only.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        content_hash BLOB,
        width INTEGER,
        height INTEGER,
        phash BLOB,
        error TEXT,
        indexed_at REAL NOT NULL
        )""",
        "CREATE INDEX files_content_hash ON files (content_hash)",
    ),
    (
        # CLIP embedding, L2-normalised, float16 bytes; NULL until computed. Kept in SQLite so that it changes in
        # the same transaction as the file's row (a changed file can never keep a stale vector); the FAISS file is
        # a derived copy, rebuilt when its revision falls behind `meta.embeddings_rev`.
        "ALTER TABLE files ADD COLUMN embedding BLOB",
    ),
    (
        # 32x32 grey thumbnail (borders trimmed) that rotation/mirror/crop hashes and pair verification derive from.
        # NULL in rows from older versions: the next `index` run decodes those files again.
        "ALTER TABLE files ADD COLUMN thumb BLOB",
    ),
    (
        # width x height of the picture inside uniform borders, for choosing the keeper; NULL in older rows,
        # which then count all their pixels until they are indexed again.
        "ALTER TABLE files ADD COLUMN content_pixels INTEGER",
    ),
    (
        # a trimmed image's whole frame (hashing.FRAME_BYTES), NULL for untrimmed ones. Trimmed rows from older
        # versions (content_pixels short of width x height) are decoded again by the next `index` run.
        "ALTER TABLE files ADD COLUMN frame BLOB",
    ),
    (
        # evidence of being the source, for choosing the keeper: camera EXIF (0 none, 1 edited since it was taken,
        # 2 as the camera wrote it; never NULL in rows written from this version on), the JPEG quality estimated
        # from the quantisation table (NULL: not a JPEG) and the stored EXIF orientation (NULL: none). Rows from
        # older versions are decoded again by the next `index`.
        "ALTER TABLE files ADD COLUMN camera INTEGER",
        "ALTER TABLE files ADD COLUMN jpeg_quality INTEGER",
        "ALTER TABLE files ADD COLUMN orientation INTEGER",
    ),
    (
        # local features (local.py): ORB keypoints and descriptors, an empty blob for a picture that has none and
        # NULL in rows from older versions, which the next `index` decodes again.
        "ALTER TABLE files ADD COLUMN local BLOB",
    ),
    (
        # local features now include those of a picture inside the picture (a screenshot, a canvas: local.py's
        # inner_box): every row's are computed again by the next `index`, which decodes the files whose `local`
        # is NULL.
        "UPDATE files SET local = NULL WHERE local IS NOT NULL",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_FILE_COLUMNS = ("id, path, size, mtime_ns, content_hash, width, height, phash, thumb, content_pixels, frame, camera,"
                 " jpeg_quality, orientation")


def under_clause(roots: Sequence[str]) -> tuple[str, list[str]]:
    """SQL matching paths equal to or below any root, using the path index (no LIKE escaping pitfalls)."""
    parts, args = [], []
    for root in roots:
        root = root.rstrip(os.sep) or os.sep
        prefix = root if root.endswith(os.sep) else root + os.sep
        # every path below `prefix` sorts in [prefix, prefix + chr(0x10FFFF))
        parts.append("(path = ? OR (path >= ? AND path < ?))")
        args += [root, prefix, prefix + "\U0010ffff"]
    return "(" + " OR ".join(parts) + ")", args


def _connect(path: str, read_only: bool) -> sqlite3.Connection:
    if not read_only:
        return sqlite3.connect(path, timeout=60.0, isolation_level=None)
    uri = "file:" + urllib.parse.quote(os.path.abspath(path))
    conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=60.0, isolation_level=None)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        # WAL needs its shared-memory file beside the catalog, which a reader cannot create in a read-only folder:
        # read the file as it is. Nothing can write there either, so what it holds is the whole catalog.
        conn.close()
        return sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, isolation_level=None)


_DAMAGE_CODES = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


def is_damage(e: BaseException) -> bool:
    """SQLite's own verdict that the catalog file is not (or no longer) a sound database."""
    if not isinstance(e, sqlite3.DatabaseError):
        return False
    name = getattr(e, "sqlite_errorname", None)  # Python >= 3.11
    if name is not None:
        return "_".join(name.split("_")[:2]) in _DAMAGE_CODES  # extended codes too: SQLITE_CORRUPT_INDEX
    text = str(e)
    return "malformed" in text or "not a database" in text


def damage_error(path: str, why: object) -> IndexDamaged:
    index_dir = os.path.dirname(path)
    roots = _roots_if_readable(path)
    folders = " ".join(_quoted(r) for r in roots) if roots else "DIR..."
    return IndexDamaged(
        f"the index catalog {path} is damaged ({why}); run `simfind index {folders} --rebuild --index "
        f"{_quoted(index_dir)}`{'' if roots else ' with the folders you indexed'} to set it aside and index them again"
    )


def _roots_if_readable(path: str) -> list[str]:
    """The folders a damaged catalog was indexing, where the page that holds them can still be read."""
    try:
        conn = _connect(path, read_only=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'roots'").fetchone()
        finally:
            conn.close()
        roots = json.loads(row[0]) if row else []
        return [r for r in roots if isinstance(r, str)]
    except (sqlite3.Error, ValueError, TypeError):
        return []


def _quoted(path: str) -> str:
    import shlex

    return shlex.quote(path)


class Catalog:
    def __init__(self, conn: sqlite3.Connection, path: str):
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, index_dir: str, *, create: bool) -> Catalog:
        """The catalog of `index_dir`, migrated to this schema. `create`: for writing, made where missing.
        For reading (not `create`), an index on a read-only mount or without write permission is opened read-only:
        every reading command works on it."""
        path = os.path.join(index_dir, CATALOG_NAME)
        if not os.path.exists(path):
            if not create:
                raise IndexMissing(f"no index at {index_dir}: run `simfind index DIR --index {index_dir}` first")
            try:
                os.makedirs(index_dir, exist_ok=True)
            except OSError as e:
                raise IndexUnreadable(f"cannot create the index folder {index_dir}: {e.strerror or e}") from None
        elif os.path.getsize(path) == 0 and not os.path.exists(path + "-wal"):
            # SQLite would read an empty file as an empty database: every file indexed so far would seem gone
            raise damage_error(path, "the file is empty")
        read_only = not create and not (os.access(index_dir, os.W_OK) and os.access(path, os.W_OK))
        conn = None
        try:
            conn = _connect(path, read_only)
            if not read_only:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            catalog = cls(conn, path)
            if read_only:
                catalog._check_version()
            else:
                catalog._migrate()
        except BaseException as e:
            if conn is not None:
                conn.close()
            if isinstance(e, sqlite3.DatabaseError):
                raise (damage_error(path, e) if is_damage(e) else IndexUnreadable(
                    f"the index catalog {path} cannot be read ({e}); check its permissions, or pass another --index"
                )) from None
            raise
        return catalog

    def _check_version(self) -> None:
        """A read-only catalog cannot be migrated: it must already be at this schema."""
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        self._refuse_newer(version)
        if version < SCHEMA_VERSION:
            raise IndexUnreadable(
                f"the index at {os.path.dirname(self.path)} is read-only here and was written by an older simfind "
                f"(schema {version}, this one reads {SCHEMA_VERSION}); run `simfind index` once where it can be "
                "written to bring it up to date"
            )

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise IndexUnreadable(
                f"the index at {os.path.dirname(self.path)} was written by a newer simfind "
                f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade simfind or use another --index"
            )

    def _migrate(self) -> None:
        while True:
            with self.transaction():  # the version is read under the write lock: two processes never both migrate
                version = self.conn.execute("PRAGMA user_version").fetchone()[0]
                self._refuse_newer(version)
                if version == SCHEMA_VERSION:
                    return
                for statement in MIGRATIONS[version]:
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {version + 1}")
                self.set_meta("schema_version", str(version + 1))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def transaction(self):
        return _Transaction(self.conn)

    # -- meta
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- reads
    def roots(self) -> list[str]:
        """The folders (and files) `index` was pointed at, outermost only; empty for indexes older than this."""
        return json.loads(self.get_meta("roots") or "[]")

    def add_roots(self, roots: Iterable[str]) -> None:
        known = sorted({*self.roots(), *roots})
        outermost = [r for r in known if not any(r != o and r.startswith(o.rstrip(os.sep) + os.sep) for o in known)]
        if outermost != self.roots():
            self.set_meta("roots", json.dumps(outermost))

    def stat_rows(self, roots: Sequence[str]) -> dict[str, tuple[int, int, int, bytes | None]]:
        """path -> (id, size, mtime_ns, content_hash) for every catalogued path under `roots`."""
        clause, args = under_clause(roots)
        rows = self.conn.execute(f"SELECT path, id, size, mtime_ns, content_hash FROM files WHERE {clause}", args)
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def indexed_files(self, roots: Sequence[str] | None = None) -> list[IndexedFile]:
        sql = f"SELECT {_FILE_COLUMNS} FROM files WHERE error IS NULL"
        args: list[str] = []
        if roots:
            clause, args = under_clause(roots)
            sql += f" AND {clause}"
        return [IndexedFile(*row) for row in self.conn.execute(sql + " ORDER BY path", args)]

    def _where_in(self, sql: str, values: Iterable) -> list[tuple]:
        """Rows of `sql`, whose last condition is `column IN ({marks})`, for every value, a chunk at a time (under
        SQLite's limit of bound parameters)."""
        values, out = list(values), []
        for start in range(0, len(values), 30_000):
            part = values[start:start + 30_000]
            out += self.conn.execute(sql.format(marks=",".join("?" * len(part))), part).fetchall()
        return out

    def inner_thumbs(self, ids: Sequence[int]) -> dict[int, bytes]:
        """id -> the 32x32 thumbnail of the picture found inside the file (a screenshot's, a canvas's: the last bytes
        of its packed local features, local.py, where their flags, the header's fourth uint16, little-endian, have
        _INNER = 2 set; 1 and 2 are the only flags), for the files among `ids` that have one. Read for a few files
        at a time: it reads each one's whole local features."""
        sql = (f"SELECT id, substr(local, -{THUMB_SIDE * THUMB_SIDE}) FROM files WHERE length(local) > 0 AND "
               "substr(local, 7, 1) IN (X'02', X'03') AND id IN ({marks})")
        return dict(self._where_in(sql, ids))

    def files_by_id(self, ids: Sequence[int]) -> list[IndexedFile]:
        sql = f"SELECT {_FILE_COLUMNS} FROM files WHERE error IS NULL AND id IN ({{marks}})"
        return [IndexedFile(*row) for row in self._where_in(sql, ids)]

    def files_with_content(self, hashes: Iterable[bytes]) -> list[IndexedFile]:
        """Every indexed file holding one of these contents, by id."""
        sql = f"SELECT {_FILE_COLUMNS} FROM files WHERE error IS NULL AND content_hash IN ({{marks}})"
        return sorted((IndexedFile(*row) for row in self._where_in(sql, hashes)), key=lambda f: f.id)

    def content_pictures(self) -> list[IndexedFile] | None:
        """One file per content (the lowest id), by id; None when a file lacks a thumbnail (a row an older
        version wrote, read again by the next `index`)."""
        if self.thumbless():
            return None
        sql = (f"SELECT {_FILE_COLUMNS} FROM files WHERE id IN (SELECT MIN(id) FROM files WHERE error IS NULL "
               "GROUP BY content_hash) ORDER BY id")
        return [IndexedFile(*row) for row in self.conn.execute(sql)]

    def content_rows(self) -> list[tuple[int, bytes]]:
        """(lowest id, content hash) of each content, by id: content_pictures() without reading the rows."""
        sql = "SELECT MIN(id), content_hash FROM files WHERE content_hash IS NOT NULL GROUP BY content_hash ORDER BY 1"
        return self.conn.execute(sql).fetchall()

    def thumbless(self) -> bool:
        """Whether an indexed file lacks a thumbnail (a row an older version wrote)."""
        return self.conn.execute("SELECT 1 FROM files WHERE error IS NULL AND thumb IS NULL LIMIT 1").fetchone() \
            is not None

    def errors(self, roots: Sequence[str] | None = None) -> list[tuple[str, str]]:
        sql = "SELECT path, error FROM files WHERE error IS NOT NULL"
        args: list[str] = []
        if roots:
            clause, args = under_clause(roots)
            sql += f" AND {clause}"
        return list(self.conn.execute(sql + " ORDER BY path", args))

    def counts(self) -> dict[str, int]:
        row = self.conn.execute(
            "SELECT COUNT(*) FILTER (WHERE error IS NULL), COUNT(*) FILTER (WHERE error IS NOT NULL),"
            " COUNT(phash), COUNT(embedding) FROM files"
        ).fetchone()
        return {"files": row[0], "errors": row[1], "hashed": row[2], "embedded": row[3]}

    def file_count(self) -> int:
        """Indexed files (errors not counted), from the content-hash index: no scan of the rows."""
        return self.conn.execute("SELECT COUNT(content_hash) FROM files").fetchone()[0]

    def has_embeddings(self) -> bool:
        """Whether any file has a CLIP embedding: none without a model recorded, else the first row that has one."""
        if self.get_meta("model") is None:
            return False
        return self.conn.execute("SELECT 1 FROM files WHERE embedding IS NOT NULL LIMIT 1").fetchone() is not None

    def outdated(self, roots: Sequence[str]) -> set[str]:
        """Paths under `roots` indexed by a simfind older than the current schema (camera and local are set in every
        image row written since): decoded again, so that every row holds what this version reads from a file."""
        clause, args = under_clause(roots)
        sql = f"SELECT path FROM files WHERE error IS NULL AND (camera IS NULL OR local IS NULL) AND {clause}"
        return {r[0] for r in self.conn.execute(sql, args)}

    def unembedded(self, roots: Sequence[str]) -> set[str]:
        """Paths under `roots` that were indexed without an embedding."""
        clause, args = under_clause(roots)
        sql = f"SELECT path FROM files WHERE error IS NULL AND embedding IS NULL AND {clause}"
        return {r[0] for r in self.conn.execute(sql, args)}

    def local_features(self, ids: Sequence[int]) -> dict[int, bytes]:
        """id -> packed local features (local.py) of the files among `ids` that have any."""
        return dict(self._where_in("SELECT id, local FROM files WHERE length(local) > 0 AND id IN ({marks})", ids))

    def embeddings(self, roots: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64 (n,), vectors float32 (n, dim)) of every embedded file (under `roots` where given)."""
        import numpy as np

        sql = "SELECT id, embedding FROM files WHERE embedding IS NOT NULL"
        args: list[str] = []
        if roots:
            clause, args = under_clause(roots)
            sql += f" AND {clause}"
        rows = self.conn.execute(sql + " ORDER BY id", args).fetchall()
        dim = int(self.get_meta("dim") or 0)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16).reshape(len(rows), dim) if rows else np.zeros((0, dim), np.float16)
        return ids, vecs.astype(np.float32)

    def embedding_of_content(self, content_hash: bytes) -> np.ndarray | None:
        """The stored embedding (float32, (dim,)) of any indexed file with these bytes, or None."""
        import numpy as np

        row = self.conn.execute("SELECT embedding FROM files WHERE content_hash = ? AND embedding IS NOT NULL LIMIT 1",
                                (content_hash,)).fetchone()
        return None if row is None else np.frombuffer(row[0], dtype=np.float16).astype(np.float32)

    def embeddings_rev(self) -> int:
        return int(self.get_meta("embeddings_rev") or 0)

    def _bump_embeddings(self) -> None:
        self.set_meta("embeddings_rev", str(self.embeddings_rev() + 1))

    def clear_embeddings(self, model: str, dim: int) -> None:
        with self.transaction():
            self.conn.execute("UPDATE files SET embedding = NULL")
            self.set_meta("model", model)
            self.set_meta("dim", str(dim))
            self._bump_embeddings()

    # -- writes (each call is one transaction)
    def write(self, results: Iterable[Features | Failure], embeddings: dict[str, bytes] | None = None) -> None:
        """Upsert results; a file's embedding is replaced by `embeddings[path]` or cleared (it may be stale)."""
        now = time.time()
        embeddings = embeddings or {}
        rows = []
        for r in results:
            if isinstance(r, Features):
                rows.append((r.ref.path, r.ref.size, r.ref.mtime_ns, r.content_hash, r.width, r.height, r.phash, None,
                             now, embeddings.get(r.ref.path), r.thumb or None, r.content_pixels, r.frame or None,
                             int(r.camera), r.quality, r.orientation, r.local))
            else:
                rows.append((r.ref.path, r.ref.size, r.ref.mtime_ns, None, None, None, None, r.reason, now, None, None,
                             None, None, None, None, None, None))
        with self.transaction():
            self.conn.executemany(
                """INSERT INTO files (path, size, mtime_ns, content_hash, width, height, phash, error, indexed_at,
                                      embedding, thumb, content_pixels, frame, camera, jpeg_quality, orientation,
                                      local)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,
                     content_hash = excluded.content_hash, width = excluded.width, height = excluded.height,
                     phash = excluded.phash, error = excluded.error, indexed_at = excluded.indexed_at,
                     embedding = excluded.embedding, thumb = excluded.thumb,
                     content_pixels = excluded.content_pixels, frame = excluded.frame, camera = excluded.camera,
                     jpeg_quality = excluded.jpeg_quality, orientation = excluded.orientation,
                     local = excluded.local""",
                rows,
            )
            self._bump_embeddings()

    def move(self, renames: Iterable[tuple[str, str, int, int]], removals: Iterable[str]) -> None:
        """Apply renames (old_path, new_path, size, mtime_ns) and removals in one transaction. Only removals
        bump the revision: a rename keeps the file's id, so the derived files keyed by id stay valid."""
        renames, removals = list(renames), list(removals)
        if not renames and not removals:
            return
        with self.transaction():
            self.conn.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in removals))
            if removals:
                self._bump_embeddings()
            self.conn.executemany(
                "UPDATE files SET path = ?, size = ?, mtime_ns = ? WHERE path = ?",
                ((new, size, mtime, old) for old, new, size, mtime in renames),
            )


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
        return False
