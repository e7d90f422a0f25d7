"""The one way simfind writes a whole file: into a temporary file beside it, then renamed into place.

A reader (another command, a query served meanwhile) sees the old file or the new one, never half of either;
a failure or Ctrl-C while writing leaves the old file and no temporary behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable


def write_atomically(path: str, write: Callable[[str], None]) -> None:
    """Call `write(tmp)` to fill a temporary file in `path`'s folder, then rename it to `path`. The file gets an
    ordinary file's permissions (0666 less the umask), not a private temporary file's."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomically(path: str, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)

    write_atomically(path, write)
