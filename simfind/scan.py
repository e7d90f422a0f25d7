"""Folders -> FileRefs: which files on disk are images to index.

Rules: recursive; hidden files and folders (name starting with '.') are skipped unless `hidden`;
`exclude` globs are matched against the name, the path relative to the root and the absolute path.
Symlinks are followed, but no folder is entered twice and no file is listed twice (same device and
inode), so a link loop ends and a file reached by two routes (or a hard link) counts once: by its own path
where one of the routes is that (a link to a file is not the file a report should name, nor one to act on).
"""

from __future__ import annotations

import fnmatch
import os
import stat as stat_mod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .records import Failure, FileRef

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".dib", ".tif", ".tiff",
        ".heic", ".heif", ".avif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".jp2", ".j2k",
    }
)


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@dataclass
class ScanResult:
    files: list[FileRef] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def _direct(path: str) -> bool:
    """Whether `path` names the file itself, through no symlink (asked only of a file reached twice)."""
    return os.path.realpath(path) == os.path.abspath(path)


def _excluded(patterns: tuple[str, ...], name: str, rel: str, abspath: str) -> bool:
    return any(
        fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(abspath, p) for p in patterns
    )


def scan(
    roots: Iterable[str],
    *,
    hidden: bool = False,
    exclude: Iterable[str] = (),
    on_found: Callable[[int], None] | None = None,
) -> ScanResult:
    """Walk `roots` (folders or single image files) and return the image files found, sorted by path.
    `on_found(n)` is told the running count every few hundred files (for a progress display)."""
    patterns = tuple(exclude)
    result = ScanResult()
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: dict[tuple[int, int], int] = {}  # (device, inode) -> its place in result.files

    def found(path: str, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        at = seen_files.get(key)
        if at is None:
            seen_files[key] = len(result.files)
            result.files.append(FileRef(path, st.st_size, st.st_mtime_ns))
        elif _direct(path) and not _direct(result.files[at].path):  # the file itself after a link to it
            result.files[at] = FileRef(path, st.st_size, st.st_mtime_ns)

    for root in roots:
        root = os.path.abspath(root)
        if os.path.isfile(root):
            found(root, os.stat(root))
            continue
        for entry_path, st, err in _walk(root, hidden, patterns, seen_dirs):
            if err is not None:
                result.failures.append(Failure(FileRef(entry_path, 0, 0), err))
                continue
            found(entry_path, st)
            if on_found is not None and len(result.files) % 500 == 0:
                on_found(len(result.files))
    result.files.sort(key=lambda f: f.path)
    return result


def _walk(
    root: str, hidden: bool, patterns: tuple[str, ...], seen_dirs: set[tuple[int, int]]
) -> Iterator[tuple[str, os.stat_result | None, str | None]]:
    """Yield (path, stat, None) for image files and (path, None, reason) for what cannot be read."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as e:
            yield folder, None, f"cannot read folder: {e.strerror or e}"
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            continue  # a symlink loop, or a folder reached twice
        seen_dirs.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            yield folder, None, f"cannot read folder: {e.strerror or e}"
            continue
        subdirs = []
        for entry in entries:
            name = entry.name
            if not hidden and name.startswith("."):
                continue
            path = entry.path
            if patterns and _excluded(patterns, name, os.path.relpath(path, root), path):
                continue
            try:
                est = entry.stat()  # follows symlinks
            except OSError:
                if is_image_name(name):
                    yield path, None, "broken symlink or unreadable entry"
                continue
            if stat_mod.S_ISDIR(est.st_mode):
                subdirs.append(path)
            elif stat_mod.S_ISREG(est.st_mode) and is_image_name(name):
                yield path, est, None
        stack.extend(reversed(subdirs))
