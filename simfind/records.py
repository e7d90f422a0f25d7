"""Plain values that flow through simfind: scan -> decode -> features -> store -> group -> render."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FileRef:
    """A file found on disk: what `stat` says, before anything is read."""

    path: str  # absolute
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Failure:
    """A file that could not be indexed, and why. Recorded, counted and listed; never silently dropped."""

    ref: FileRef
    reason: str


@dataclass(frozen=True)
class Features:
    """What indexing learns about one image."""

    ref: FileRef
    content_hash: bytes  # digest of the file's bytes: exact copies
    width: int  # as displayed (EXIF orientation applied)
    height: int
    phash: bytes  # 64-bit imagehash pHash of `thumb`, 8 bytes big-endian
    thumb: bytes = b""  # 32x32 grey thumbnail, borders trimmed (hashing.thumbnail): every other hash derives from it
    pixels: Any = field(default=None, repr=False, compare=False)  # CLIP input (S, S, 3) uint8, not stored
    content_pixels: int | None = None  # width x height inside uniform borders (letterbox bars, frames)
    frame: bytes = b""  # trimmed images only: the whole frame's thumbnail and the trimmed box (hashing.FRAME_BYTES)
    # evidence of being the source, for choosing the keeper (decode.Decoded)
    camera: int = 0  # 0 none, 1 camera EXIF edited since it was taken, 2 camera EXIF as taken (decode.camera_evidence)
    quality: int | None = None
    orientation: int | None = None
    local: bytes = b""  # ORB keypoints and descriptors (local.py); b"" for a picture too small or flat to have any


@dataclass(frozen=True)
class IndexedFile:
    """One file as the catalog holds it."""

    id: int
    path: str
    size: int
    mtime_ns: int
    content_hash: bytes
    width: int
    height: int
    phash: bytes
    thumb: bytes | None = field(default=None, repr=False)  # None in rows written before schema 3
    content_pixels: int | None = None  # picture pixels inside uniform borders; None in rows before schema 4
    frame: bytes | None = field(default=None, repr=False)  # trimmed images from schema 5 on (hashing.FRAME_BYTES)
    # evidence of being the source (decode.Decoded); camera is None in rows before schema 6
    camera: int | None = None
    quality: int | None = None
    orientation: int | None = None
    # the 32x32 grey thumbnail of a picture found inside this one (a screenshot, an app frame, a canvas:
    # local.inner_box), where it was read (catalog.inner_thumbs: dupes reads it for files in a pair); else None
    inner_thumb: bytes | None = field(default=None, repr=False)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def picture_pixels(self) -> int:
        """Pixels of the picture itself: a letterboxed or framed copy does not count its bars."""
        return self.pixels if self.content_pixels is None else self.content_pixels


@dataclass(frozen=True)
class Member:
    """A file in a duplicate group, with its similarity to the group's keeper."""

    file: IndexedFile
    similarity: float


@dataclass(frozen=True)
class Group:
    """Files that are the same picture. members[0] is the one to keep (similarity 1.0)."""

    members: tuple[Member, ...]

    @property
    def keep(self) -> IndexedFile:
        return self.members[0].file

    @property
    def wasted_bytes(self) -> int:
        return sum(m.file.size for m in self.members[1:])


@dataclass(frozen=True)
class IndexReport:
    """What one `index` run did."""

    scanned: int
    unchanged: int
    added: int
    updated: int
    renamed: int
    removed: int
    failed: int
    failures: tuple[Failure, ...]
    embedded: int = 0  # unchanged files that got the CLIP embedding they lacked
    refreshed: int = 0  # unchanged files decoded again because an older simfind kept less of them
    errors: int = 0  # files under the indexed folders recorded as errors once the run is done (earlier runs' too)


@dataclass(frozen=True)
class DupesReport:
    threshold: float
    by: str
    groups: tuple[Group, ...]
    files: int
    errors: int
    missing: int = 0  # indexed files that would have been reported but are gone from disk: left out

    @property
    def duplicates(self) -> int:
        return sum(len(g.members) - 1 for g in self.groups)


@dataclass(frozen=True)
class IndexInfo:
    index: str
    files: int
    errors: int
    hashed: int
    embedded: int
    model: str | None
    bytes: int
    schema_version: int
    error_files: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Match:
    rank: int
    file: IndexedFile
    similarity: float


@dataclass(frozen=True)
class QueryReport:
    query: str  # an absolute image path, or the text
    by: str  # "clip" or "hash"
    results: tuple[Match, ...]
    threshold: float | None = None  # what every result meets: --threshold, or a hash query's default
    files: int | None = None  # indexed files searched
    missing: int = 0  # files that would have been listed but are gone from disk since indexing


@dataclass(frozen=True)
class ActionStep:
    """One file acted on (or that would be, or was skipped), with what happened to it."""

    action: str  # move | hardlink | symlink | delete | restore
    path: str
    keep: str  # the group's keeper (the file that stays)
    status: str  # done | planned | skipped | failed | already (undo: restored before)
    target: str | None = None  # move destination
    reason: str = ""


@dataclass(frozen=True)
class ActionReport:
    steps: tuple[ActionStep, ...]
    dry_run: bool
    log: str | None

    def count(self, status: str) -> int:
        return sum(s.status == status for s in self.steps)
