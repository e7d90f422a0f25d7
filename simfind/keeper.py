"""Which file of a duplicate group to keep.

The default keeper is the file a person would call the original. Edited copies give themselves away against the
rest of the group: a copy shown turned while the others agree on one way up (a pixel rotation, an EXIF tag that
turns it), or a copy that differs from the group's consensus in one region while agreeing elsewhere (a watermark,
a logo, a caption drawn over the picture), or a screenshot or canvas holding another file of the group inside a
frame of its own (framed_copies). Among the files that are not such copies: the strongest camera record
(EXIF as the camera wrote it, then camera EXIF an editor changed, then none: decode.camera_evidence), then the
most picture pixels (letterbox bars and frames not counted; counts within a trim's precision are the same), then
evidence_key (no bars or frame; camera EXIF; the higher JPEG quality estimated from the quantisation table, a
lossless file counting as the highest; stored with an EXIF orientation rather than pixel-rotated; the oldest; the
largest file; the path), except that a same-size JPEG shown to be re-saved from another candidate yields to it
(source_of, provenance.py). `--keep RULE` replaces all of this with a plain rule (keeper_rule).
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from .errors import UsageError
from .options import KEEP_RULES
from .pipeline import HASH_DRAFT_SIZE
from .records import IndexedFile

KeeperKey = Callable[[IndexedFile], Any]
Keeper = Callable[[Sequence[IndexedFile]], IndexedFile]  # a group's files -> the one to keep

LOSSLESS = 101  # a file that is not a JPEG lost nothing to quantisation: above any JPEG quality

# Picture pixels are counted inside the borders found on a draft decode of at least HASH_DRAFT_SIZE a side, so a
# trimmed side is known to about a draft line at each end: pixel counts within that of the largest are the same
# picture size, and evidence decides between them (a re-encode's noise moves a trimmed border by a line).
SAME_SIZE = (1 - 2 / HASH_DRAFT_SIZE) ** 2


def pixels_key(f: IndexedFile):
    """`--keep pixels`: largest picture (pixels inside any letterbox bars or frame), then largest file, then
    oldest, then path (deterministic). The tie-break of every other rule."""
    return (-f.picture_pixels, -f.size, f.mtime_ns, f.path)


def evidence_key(f: IndexedFile):
    """Among files of the same picture size: no bars or frame around the picture (those are added to a picture,
    hashing.trimmed_thumbnail), then camera EXIF, then the higher JPEG quality, then stored with an EXIF
    orientation, then more picture pixels, then oldest, then largest, then path."""
    quality = LOSSLESS if f.quality is None else f.quality
    return (bool(f.frame), -(f.camera or 0), -quality, -(f.orientation not in (None, 1)), -f.picture_pixels,
            f.mtime_ns, -f.size, f.path)


def original(files: Sequence[IndexedFile]) -> IndexedFile:
    """The default keeper: of the files that are not edited copies (edited_copies; all files where every one is),
    those with the strongest camera record (EXIF as the camera wrote it, then camera EXIF an editor has changed,
    then none), then those of the largest picture size (SAME_SIZE), the one with the best evidence_key.

    The camera record comes before the pixel count because pixels are not picture content: an upscale, a caption
    bar added below, a screenshot's window each add pixels and no picture, and none of the tools that make such
    copies writes a camera's untouched EXIF (they drop it, or keep it and set its DateTime to the edit's)."""
    if len(files) == 1:
        return files[0]
    edited = edited_copies(files) | framed_copies(files)
    pool = [f for f in files if f.id not in edited] or list(files)
    best = max(f.camera or 0 for f in pool)
    pool = [f for f in pool if (f.camera or 0) == best]
    most = max(f.picture_pixels for f in pool)
    ranked = sorted((f for f in pool if f.picture_pixels >= SAME_SIZE * most), key=evidence_key)
    return source_of(ranked)


# Files read for the compression-history test per group at most: the candidates left after every cheaper
# evidence are few, and each test decodes a file at full size.
MAX_HISTORY_TESTS = 4


def source_of(ranked: Sequence[IndexedFile]) -> IndexedFile:
    """The first of `ranked` (best evidence first), unless its compression history shows it was re-saved from a
    JPEG with another candidate's coarser table: then that one, which is its source (provenance.resaved_from).
    The higher quality of a re-encode is what ranked it first, and it is the one thing a re-encode adds."""
    best = ranked[0]
    others = [f for f in ranked[1:] if f.content_hash != best.content_hash and f.quality is not None]
    if best.quality is None or not others:
        return best
    from .provenance import Jpeg, resaved_from

    current = Jpeg.open(best.path)
    tested = 0
    for f in sorted(others, key=lambda f: -(f.quality or 0)):
        if current is None or tested >= MAX_HISTORY_TESTS:
            break
        candidate = Jpeg.open(f.path)
        if candidate is None:
            continue
        tested += 1
        if resaved_from(current, candidate):
            best, current = f, candidate
    return best


def framed_copies(files: Sequence[IndexedFile]) -> set[int]:
    """Ids of the files that hold another file of the group inside a frame of their own: a screenshot, an app or
    social frame, a canvas. The picture found inside the file (local.inner_box, its thumbnail) looks like another
    content's whole thumbnail (verify.VERIFY_AGREEMENT, in any orientation). Such a file's screen or canvas adds
    pixels and no picture, and a lossless screenshot would otherwise outrank a JPEG original on quality. A photo
    whose subject merely stands out from a plain background holds no other file of its group."""
    import numpy as np

    from .orientations import DIHEDRAL, THUMB_SIDE, orient
    from .verify import VERIFY_AGREEMENT, agreement

    def grid(thumb: bytes) -> np.ndarray:
        return np.frombuffer(thumb, np.uint8).reshape(THUMB_SIDE, THUMB_SIDE).astype(np.float32)

    holders = [f for f in files if f.inner_thumb]
    if not holders:
        return set()
    contents = {f.content_hash: f.thumb for f in files if f.thumb}
    keys = list(contents)
    wholes = np.stack([grid(contents[c]) for c in keys])
    framed = set()
    for f in holders:
        others = wholes[[c != f.content_hash for c in keys]]
        inner = grid(f.inner_thumb)
        if len(others) and any((agreement(orient(inner, k)[None], others) >= VERIFY_AGREEMENT).any()
                               for k in range(len(DIHEDRAL))):
            framed.add(f.id)
    return framed


def edited_copies(files: Sequence[IndexedFile]) -> set[int]:
    """Ids of the files the rest of the group shows to be edited copies, judged on the stored thumbnails (32x32,
    borders trimmed) brought to one orientation:
    - turned: the file shows the picture in another orientation than most of the group's distinct contents do
      (it looks like the same picture, verify.VERIFY_AGREEMENT, only when turned back);
    - locally edited: among three or more distinct contents that line up, the file agrees with their consensus
      (the per-cell median) almost exactly outside one region (verify.LOCAL_EDIT_AGREEMENT) and differs from it
      inside that region by more than the copies that line up differ anywhere."""
    import numpy as np

    from .orientations import DIHEDRAL, THUMB_SIDE, orient
    from .verify import LOCAL_EDIT_AGREEMENT, VERIFY_AGREEMENT, agreement, local_agreement

    distinct: dict[bytes, list[IndexedFile]] = {}
    for f in files:
        if f.thumb:
            distinct.setdefault(f.content_hash, []).append(f)
    if len(distinct) < 2:
        return set()
    reps = sorted(distinct.values(), key=lambda fs: (-fs[0].picture_pixels, evidence_key(fs[0])))
    thumbs = np.stack([np.frombuffer(fs[0].thumb, np.uint8).reshape(THUMB_SIDE, THUMB_SIDE) for fs in reps])
    thumbs = thumbs.astype(np.float32)
    ref = thumbs[0]
    # agree[i, k]: content i turned by transform k against the reference
    agree = np.stack([agreement(orient(thumbs, k), ref[None]) for k in range(len(DIHEDRAL))], axis=1)
    turn = agree.argmax(axis=1)
    votes = Counter(int(k) for k, a in zip(turn, agree.max(axis=1)) if a >= VERIFY_AGREEMENT)
    if not votes:
        return set()
    top = max(votes.values())
    leaders = [k for k, n in votes.items() if n == top]
    if len(leaders) > 1:  # a tie: the way up of camera files, else the reference's own
        camera = Counter(int(turn[i]) for i, fs in enumerate(reps) if any(f.camera for f in fs))
        leaders.sort(key=lambda k: (-camera.get(k, 0), k != 0))
    upright = leaders[0]
    edited: set[int] = set()
    for i, fs in enumerate(reps):
        if agree[i, upright] < VERIFY_AGREEMENT <= agree[i].max():
            # a picture that looks the same turned (a garment, a face, a building front: mirror-symmetric) cannot
            # show which way it is turned: only one that looks different turned is an edited copy
            shown = orient(thumbs[i], upright)
            if agreement(orient(thumbs[i], int(turn[i]))[None], shown[None])[0] < VERIFY_AGREEMENT:
                edited.update(f.id for f in fs)
    # bring every content to the reference's view, then to the group's way up
    aligned = np.stack([orient(thumbs[i], int(turn[i])) for i in range(len(reps))])
    lined = [i for i in range(len(reps)) if reps[i][0].id not in edited
             and (agree[i].max() >= VERIFY_AGREEMENT
                  or local_agreement(aligned[i][None], ref[None])[0] >= LOCAL_EDIT_AGREEMENT)]
    if len(lined) >= 3:
        edited |= _locally_edited([reps[i] for i in lined], aligned[lined])
    return edited


def _locally_edited(reps: list[list[IndexedFile]], thumbs) -> set[int]:
    """Of contents that line up (thumbs (n, 32, 32), n >= 3), those that differ from the consensus in one region:
    the rest agrees with it almost exactly (LOCAL_EDIT_AGREEMENT, as a local-edit pair is verified) and the region
    (the 1 - LOCAL_EDIT_KEEP share of cells that differ most) differs more than in any content whose whole
    picture agrees with the consensus that well."""
    import numpy as np

    from .verify import LOCAL_EDIT_AGREEMENT, LOCAL_EDIT_KEEP, _pool, _standardised, agreement_flat, local_agreement

    cells = _standardised(_pool(thumbs))  # (n, 256)
    consensus = np.median(cells, axis=0)
    whole = agreement_flat(cells, consensus[None])
    rest = local_agreement(thumbs, np.broadcast_to(_unpool(consensus), thumbs.shape))
    gap = np.abs(cells - consensus[None])
    worst = np.sort(gap, axis=1)[:, -max(1, round((1 - LOCAL_EDIT_KEEP) * gap.shape[1])):].mean(axis=1)
    clean = whole >= LOCAL_EDIT_AGREEMENT
    noise = worst[clean].max() if clean.any() else 0.0
    out: set[int] = set()
    for i, fs in enumerate(reps):
        if not clean[i] and rest[i] >= LOCAL_EDIT_AGREEMENT and worst[i] > 2 * noise:
            out.update(f.id for f in fs)
    return out


def _unpool(cells):
    import numpy as np

    side = round(np.sqrt(cells.shape[-1]))
    return np.repeat(np.repeat(cells.reshape(side, side), 2, axis=0), 2, axis=1)


def _by_key(key: KeeperKey) -> Keeper:
    return lambda files: min(files, key=key)


_RULES: dict[str, KeeperKey] = {
    "pixels": pixels_key,
    "newest": lambda f: (-f.mtime_ns, pixels_key(f)),
    "oldest": lambda f: (f.mtime_ns, pixels_key(f)),
    "largest": lambda f: (-f.size, pixels_key(f)),
    "smallest": lambda f: (f.size, pixels_key(f)),
    "shortest-path": lambda f: (len(f.path), pixels_key(f)),
}
assert set(_RULES) == set(KEEP_RULES)


def keeper_rule(rule: str | None) -> Keeper:
    """The keeper for `--keep RULE`: one of KEEP_RULES, or a glob (files whose path matches it are preferred; ties
    and groups without a match fall back to the pixels rule). None is the default keeper (original)."""
    if rule is None:
        return original
    if rule in _RULES:
        return _by_key(_RULES[rule])
    if not any(c in rule for c in "*?[/"):
        raise UsageError(f"--keep must be one of {', '.join(KEEP_RULES)} or a path glob (like '*/originals/*'), not {rule!r}")
    return _by_key(lambda f: (not fnmatch.fnmatch(f.path, rule), pixels_key(f)))
