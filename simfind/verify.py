"""Verification: a candidate pair is kept only when the two thumbnails agree after the matched transform.

Two different photos can share a 64-bit hash; they rarely share pixels. The check is the normalised
cross-correlation of the thumbnails (16x16 means) after the candidate's rotation or mirror, and, for
local edits (a caption, a logo, an overlay), the same over the part of the picture that did not change.
"""

from __future__ import annotations

import numpy as np

from .candidates import candidates, closest_per_pair, frame_candidates
from .hashing import unpack_frames
from .orientations import THUMB_SIDE, distances, orient, orientation_codes, sampling_matrices, upright_codes

# Two thumbnails that agree this well (normalised cross-correlation at 16x16, after the matched rotation, or over
# the region a geometric fit matched) show the same picture; below it a hash collision is rejected.
VERIFY_AGREEMENT = 0.85
_POOLED = (THUMB_SIDE // 2) ** 2  # cells agreement() compares

# Local edits (a caption, a logo, a watermark) move pHash further than the threshold allows: candidates up to
# LOCAL_EDIT_BITS beyond it are kept when LOCAL_EDIT_KEEP of the picture agrees to LOCAL_EDIT_AGREEMENT, which
# look-alike photos (same studio, same background) almost never reach.
LOCAL_EDIT_BITS = 4
LOCAL_EDIT_KEEP = 0.85
LOCAL_EDIT_AGREEMENT = 0.995

# A whole-frame match must agree almost exactly outside one region (local_agreement), whatever its hash distance:
# the plain check lets look-alikes through this way (garments of the same shape on the same bars and background),
# the local one keeps nearly every true pair and none of those.
FRAME_AGREEMENT = 0.997

# A local edit that passes still agrees well overall: the costlier local check is only run on candidates above
# this plain agreement, well below what any passing local edit on bench/bench_quality.py has.
_LOCAL_PREFILTER = 0.7
_VERIFY_CHUNK = 16_384  # candidates aligned at once: about 130 MB of float32 thumbnails


def agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of pixel blocks (..., h, w), on 16x16 means (JPEG and noise averaged out):
    1.0 for the same picture up to brightness and contrast."""
    return agreement_flat(_pool(np.asarray(a, np.float32)), _pool(np.asarray(b, np.float32)))


def local_agreement(a: np.ndarray, b: np.ndarray, keep: float = LOCAL_EDIT_KEEP) -> np.ndarray:
    """agreement() over the `keep` share of 16x16 cells where the two differ least (after matching brightness and
    contrast): an overlay, caption or logo changes one region and leaves the rest exactly as it was, which a
    look-alike photo (same studio, same background) does not."""
    a = _pool(np.asarray(a, np.float32)).reshape(-1, _POOLED)
    b = _pool(np.asarray(b, np.float32)).reshape(-1, _POOLED)
    gap = np.abs(_standardised(a) - _standardised(b))
    n_keep = int(keep * _POOLED)
    cells = np.argpartition(gap, n_keep - 1, axis=1)[:, :n_keep]  # the n_keep smallest gaps, in any order
    return agreement_flat(np.take_along_axis(a, cells, 1), np.take_along_axis(b, cells, 1))


def _standardised(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    return x / np.maximum(np.sqrt((x * x).mean(axis=-1, keepdims=True)), 1e-3)


def agreement_flat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of rows."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    num = (a * b).sum(axis=-1)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    return np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0)


def _pool(x: np.ndarray) -> np.ndarray:
    # 2x2 means as four strided adds: a reduce over the split axes was 6x slower on 50k thumbnails
    pooled = x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]
    return (0.25 * pooled).reshape(*x.shape[:-2], pooled.shape[-2] * pooled.shape[-1])  # no -1: n may be 0


def aligned(thumbs: np.ndarray, src: np.ndarray, dst: np.ndarray, transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's two thumbnails, (n, 32, 32) float32 each: src seen through its transform, and dst."""
    thumbs = np.asarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)
    seen_as = np.empty((len(src), THUMB_SIDE, THUMB_SIDE), np.float32)
    order = np.argsort(transform, kind="stable")
    cuts = np.flatnonzero(np.diff(transform[order])) + 1
    for rows in np.split(order, cuts):  # one batched transform per rotation or mirror
        if len(rows):
            seen_as[rows] = orient(thumbs[src[rows]].astype(np.float32), int(transform[rows[0]]))
    return seen_as, thumbs[dst].astype(np.float32)


def near_pairs(thumbs: np.ndarray, max_distance: int, *, verify: float = VERIFY_AGREEMENT,
               local_bits: int = LOCAL_EDIT_BITS, focus: np.ndarray | None = None) -> list[tuple[int, int, int]]:
    """Verified pairs (i, j, distance), i < j: candidates() within `max_distance` that pass the thumbnail check,
    at their hamming distance, and local edits: candidates up to `local_bits` further whose thumbnails agree
    almost exactly outside one region (local_agreement), at their distance less `local_bits` (the edit is
    credited: what it left unchanged is what they are compared on). The distance of a pair is the same whatever
    `max_distance` it is searched within. `focus`: only the pairs with one of these rows (a query)."""
    cands = candidates(thumbs, max_distance + local_bits, focus=focus)
    src, dst, dist, transform = cands.src, cands.dst, cands.distance, cands.transform
    ok = np.zeros(len(cands), bool)
    credited = dist.copy()
    for start in range(0, len(cands), _VERIFY_CHUNK):
        part = slice(start, start + _VERIFY_CHUNK)
        seen_as, other = aligned(thumbs, src[part], dst[part], transform[part])
        plain = agreement(seen_as, other)
        good = plain >= verify
        # every candidate that may be a local edit is checked as one, whether or not the plain check passed, so
        # that its credited distance does not depend on the distance searched within
        rest = np.flatnonzero(plain >= _LOCAL_PREFILTER)
        if len(rest):
            local = rest[local_agreement(seen_as[rest], other[rest]) >= LOCAL_EDIT_AGREEMENT]
            good[local] = True
            credited[start + local] = np.maximum(dist[start + local] - local_bits, 0)
        ok[part] = good
    ok &= credited <= max_distance
    return _verified(src, dst, credited, ok)


def _verified(src: np.ndarray, dst: np.ndarray, dist: np.ndarray, ok: np.ndarray) -> list[tuple[int, int, int]]:
    """The candidates that passed (`ok`), closest per unordered pair, as (i, j, hamming) with i < j."""
    if not ok.any():
        return []
    src, dst, dist = src[ok], dst[ok], dist[ok]
    best = closest_per_pair(src, dst, dist)
    lo, hi = np.minimum(src[best], dst[best]), np.maximum(src[best], dst[best])
    return list(zip(lo.tolist(), hi.tolist(), dist[best].tolist()))


def frame_pairs(thumbs: np.ndarray, framed: np.ndarray, frames: np.ndarray, boxes: np.ndarray, max_distance: int, *,
                local_bits: int = LOCAL_EDIT_BITS, focus: np.ndarray | None = None) -> list[tuple[int, int, int]]:
    """Pairs (i, j, hamming), i < j, that line up only as whole frames: image `framed[k]` was trimmed to
    `boxes[k]` (its whole frame is `frames[k]`) and the other was not trimmed the same way, because a caption or
    logo on its bar or margin kept the bar. Candidates come from the pHash of whole frames (upright), up to
    `local_bits` past `max_distance`; each is verified on the trimmed image's thumbnail against the other's
    whole frame seen through the same box (two different pictures with the same bars share a frame hash, not
    their content), and must agree there to FRAME_AGREEMENT outside one region; their distance is credited
    `local_bits`, as near_pairs credits local edits. `focus`: only the pairs with one of these rows."""
    thumbs = np.asarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)
    q, i, j, dist, whole = frame_candidates(thumbs, framed, frames, max_distance + local_bits, focus=focus)
    ok = np.zeros(len(q), bool)
    for start in range(0, len(q), _VERIFY_CHUNK):
        part = slice(start, start + _VERIFY_CHUNK)
        box = boxes[q[part]]
        rows = sampling_matrices(box[:, 0], box[:, 1] - box[:, 0])
        cols = sampling_matrices(box[:, 2], box[:, 3] - box[:, 2])
        seen = rows @ whole[j[part]].astype(np.float32) @ np.swapaxes(cols, 1, 2)
        mine = thumbs[i[part]].astype(np.float32)
        good = agreement(mine, seen) >= _LOCAL_PREFILTER
        rest = np.flatnonzero(good)
        good[rest] = local_agreement(mine[rest], seen[rest]) >= FRAME_AGREEMENT
        ok[part] = good
    return _verified(i, j, np.maximum(dist - local_bits, 0), ok)


def frame_distance(thumb_a: bytes, frame_a: bytes | None, thumb_b: bytes, frame_b: bytes | None) -> int:
    """pHash distance of two images' whole frames (the thumbnail itself where nothing was trimmed)."""

    whole = [unpack_frames([f])[0][0] if f else np.frombuffer(t, np.uint8).reshape(THUMB_SIDE, THUMB_SIDE)
             for t, f in ((thumb_a, frame_a), (thumb_b, frame_b))]
    codes = upright_codes(np.stack(whole))
    return int(distances(codes[:1], codes[1])[0])


def best_distance(thumb_a: bytes | np.ndarray, thumb_b: bytes | np.ndarray) -> int:
    """The smallest pHash distance between two images over rotations and mirrors."""
    pair = np.stack([np.frombuffer(t, np.uint8) if isinstance(t, bytes) else np.asarray(t, np.uint8).ravel()
                     for t in (thumb_a, thumb_b)]).reshape(2, THUMB_SIDE, THUMB_SIDE)
    orients = orientation_codes(pair)
    return int(distances(orients[0], orients[1, 0]).min())
