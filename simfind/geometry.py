"""Verification by local-feature geometry: a candidate pair is one picture when enough of its local features
(local.py) match under one affine map, and the two thumbnails agree where that map lays one over the other.

The map is fitted by RANSAC on ratio-tested descriptor matches. Unrelated pictures rarely have more than a few
matches that one affine map explains; a crop, a turn, a picture inside a screenshot or on a canvas keeps dozens.
A shared logo, frame or app screen can also match many corners, so the matches must spread over a good part of
one picture, and the pictures must agree (thumbnail correlation, as verify.py checks hash candidates) over the
region the matches span. The pair's distance is the pHash distance of the two thumbnails sampled over that
region: the hash distance the pictures have once the geometry is undone, at least one bit (similarity 1.0 is
left to pictures that match as they are).
"""

from __future__ import annotations

import numpy as np

from .local import opencv, unpack
from .verify import LOCAL_EDIT_AGREEMENT, VERIFY_AGREEMENT, agreement, local_agreement
from .windows import THUMB_SIDE, distances, upright_codes

# More matches under one map than unrelated pictures reach: of 500 random pairs of different photos none had more
# than 9 (bench/results/2026-12-02-local-probe.md).
MIN_INLIERS = 12
RATIO = 0.8  # Lowe's ratio test: a match must be clearly closer than the next best
MAX_HAMMING = 64  # of 256 bits: further than this, two descriptors are not the same corner
REPROJECTION = 0.0125  # RANSAC tolerance, as a share of the long side the features were computed at
MAX_SCALE = 8.0  # a map that shrinks or grows area more than this is no copy (and no reliable fit)
# The matches must span this share of one picture's area: a logo or a shared UI element spans less.
MIN_SPAN = 0.2


def geometric_distances(blobs: list[bytes], thumbs: np.ndarray, i: np.ndarray, j: np.ndarray,
                        local_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """For candidate pairs (i[k], j[k]) of pictures with packed local features `blobs` and thumbnails `thumbs`
    (n, 32, 32): (verified, distance): whether the pair is one picture by geometry, and its pHash distance over
    the matched region (a local edit, agreeing almost exactly outside one region, is credited `local_bits` as
    verify.near_pairs credits it)."""
    cv2 = opencv()
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    ok = np.zeros(len(i), bool)
    dist = np.full(len(i), 64, np.int64)
    seen_a, seen_b, rows = [], [], []
    feats: dict[int, tuple] = {}
    for k, (a, b) in enumerate(zip(i.tolist(), j.tolist())):
        fa = feats.setdefault(a, unpack(blobs[a]))
        fb = feats.setdefault(b, unpack(blobs[b]))
        fit = _fit(cv2, matcher, fa, fb)
        if fit is None:
            continue
        sa, sb = _samples(cv2, thumbs[a], thumbs[b], *fit)
        seen_a.append(sa)
        seen_b.append(sb)
        rows.append(k)
    if rows:
        seen_a, seen_b, rows = np.stack(seen_a), np.stack(seen_b), np.array(rows)
        d = distances(upright_codes(seen_a), upright_codes(seen_b))
        plain = agreement(seen_a, seen_b) >= VERIFY_AGREEMENT
        local = ~plain & (local_agreement(seen_a, seen_b) >= LOCAL_EDIT_AGREEMENT)
        ok[rows] = plain | local
        dist[rows] = np.maximum(np.where(local, d - local_bits, d), 1)
    return ok, dist


def _fit(cv2, matcher, fa: tuple, fb: tuple):
    """(map A -> B in A's and B's unit frames (2, 3), region of A the matches span (x0, y0, x1, y1), whether
    that region is taken from B) or None when no map explains enough matches."""
    (xy_a, des_a, size_a), (xy_b, des_b, size_b) = fa, fb
    if len(des_a) < MIN_INLIERS or len(des_b) < MIN_INLIERS:
        return None
    pairs = matcher.knnMatch(des_a, des_b, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < RATIO * m[1].distance
            and m[0].distance <= MAX_HAMMING]
    if len(good) < MIN_INLIERS:
        return None
    pa = xy_a[[m.queryIdx for m in good]] * np.float32(size_a)
    pb = xy_b[[m.trainIdx for m in good]] * np.float32(size_b)
    tolerance = REPROJECTION * max(*size_a, *size_b)
    m, inliers = cv2.estimateAffine2D(pa, pb, method=cv2.RANSAC, ransacReprojThreshold=tolerance, maxIters=1000,
                                      confidence=0.995)
    if m is None or int(inliers.sum()) < MIN_INLIERS:
        return None
    det = abs(float(np.linalg.det(m[:, :2]))) * size_a[0] * size_a[1] / (size_b[0] * size_b[1])
    if not 1 / MAX_SCALE <= det <= MAX_SCALE:
        return None
    keep = inliers.ravel().astype(bool)
    # the map in unit frames: B_unit = (M (A_unit * size_a) + t) / size_b
    unit = np.diag([1 / size_b[0], 1 / size_b[1]]) @ np.hstack((m[:, :2] @ np.diag(size_a), m[:, 2:]))
    matched = [g for g, k in zip(good, keep) if k]
    span_a, span_b = _span(xy_a[[g.queryIdx for g in matched]]), _span(xy_b[[g.trainIdx for g in matched]])
    area_a, area_b = _area(span_a), _area(span_b)
    if max(area_a, area_b) < MIN_SPAN:
        return None
    return unit, (span_b if area_b >= area_a else span_a), area_b >= area_a


def _span(xy: np.ndarray) -> tuple[float, float, float, float]:
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def _area(box: tuple[float, float, float, float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _samples(cv2, thumb_a: np.ndarray, thumb_b: np.ndarray, unit: np.ndarray, box, in_b: bool):
    """Both thumbnails sampled (32x32 float32, bilinear) over `box`, a region of one picture (B's when `in_b`)
    in its unit frame, and over where `unit` (A -> B) puts it in the other."""
    x0, y0, x1, y1 = box
    s = THUMB_SIDE
    # output pixel (u, v) -> unit point of the boxed picture: (x0 + (u + 0.5) (x1 - x0) / s, ...)
    grid = np.array([[(x1 - x0) / s, 0, x0 + 0.5 * (x1 - x0) / s], [0, (y1 - y0) / s, y0 + 0.5 * (y1 - y0) / s],
                     [0, 0, 1]])
    to_pixels = np.array([[s, 0, -0.5], [0, s, -0.5], [0, 0, 1]])  # unit frame -> thumbnail pixel centres
    a_to_b = np.vstack((unit, [0, 0, 1]))
    if in_b:
        to_a, to_b = np.linalg.inv(a_to_b) @ grid, grid
    else:
        to_a, to_b = grid, a_to_b @ grid
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    sa = cv2.warpAffine(thumb_a.astype(np.float32), (to_pixels @ to_a)[:2], (s, s), flags=flags,
                        borderMode=cv2.BORDER_REPLICATE)
    sb = cv2.warpAffine(thumb_b.astype(np.float32), (to_pixels @ to_b)[:2], (s, s), flags=flags,
                        borderMode=cv2.BORDER_REPLICATE)
    return sa, sb
