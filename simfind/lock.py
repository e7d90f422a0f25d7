"""One writer per index: an exclusive SQLite transaction on the index's own lock file.

SQLite (the catalog's own store) locks portably, on POSIX and Windows, in and across processes, and the OS drops
the lock of a process that dies, so a killed simfind never leaves a lock behind. Readers never take it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable

from .errors import IndexUnreadable

LOCK_NAME = "simfind.lock"
LOCK_TIMEOUT_S = 300.0


class WriterLock:
    """Held from take() to release(); release() is safe to call more than once."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    @classmethod
    def take(cls, path: str, timeout: float, *, again: bool = True) -> WriterLock | None:
        """The lock, or None when another writer still holds it after `timeout` seconds."""
        try:
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise IndexUnreadable(f"cannot open the index lock {path}: {e}") from None
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as e:
            conn.close()
            if "locked" in str(e) or "busy" in str(e):
                return None
            raise IndexUnreadable(f"cannot lock the index ({path}): {e}") from None
        except sqlite3.DatabaseError as e:  # the file is not SQLite's (something else wrote it): no one can hold it
            conn.close()
            if not again:
                raise IndexUnreadable(f"cannot lock the index ({path}): {e}; delete that file") from None
            try:
                os.unlink(path)
            except OSError:
                pass
            return cls.take(path, timeout, again=False)
        return cls(conn)

    def release(self) -> None:
        self._conn.close()  # ends the transaction, and with it the lock


def writer_lock(index_dir: str, notify: Callable[[str], None], timeout: float = LOCK_TIMEOUT_S) -> WriterLock:
    """The index's writer lock, waiting up to `timeout` seconds (and saying so) while another simfind holds it."""
    try:
        os.makedirs(index_dir, exist_ok=True)
    except OSError as e:
        raise IndexUnreadable(f"cannot create the index folder {index_dir}: {e.strerror or e}") from None
    path = os.path.join(index_dir, LOCK_NAME)
    held = WriterLock.take(path, 0)
    if held is None:
        notify(f"waiting for another simfind that is writing {index_dir} ...")
        held = WriterLock.take(path, timeout)
        if held is None:
            raise IndexUnreadable(
                f"another simfind has been writing {index_dir} for over {timeout:.0f}s; "
                "wait for it to finish or pass another --index"
            )
    return held
