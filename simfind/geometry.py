"""Verification by local-feature geometry: a candidate pair is one picture when enough of its local features
(local.py) match under one affine map, and the two thumbnails agree where that map lays one over the other.

The map is fitted by RANSAC on ratio-tested descriptor matches. Unrelated pictures rarely have more than a few
matches that one affine map explains; a crop, a turn, a picture inside a screenshot or on a canvas keeps dozens.
A shared logo, frame or app screen can also match many corners, so the pictures must agree (thumbnail
correlation, as verify.py checks hash candidates) over all of the region where the map lays one over the other,
not only where the matches lie. The pair's distance is the pHash distance of the two thumbnails sampled over
that region (the inner picture's own thumbnail where the region lies inside it: local.inner_view): the hash
distance the pictures have once the geometry is undone, at least one bit (similarity 1.0 is left to pictures
that match as they are).
"""

from __future__ import annotations

import numpy as np

from .local import INNER_SHARE, inner_view, opencv, unpack
from .orientations import THUMB_SIDE, distances, upright_codes
from .verify import LOCAL_EDIT_AGREEMENT, VERIFY_AGREEMENT, agreement, local_agreement

# More matches under one map than unrelated pictures reach: of 500 random pairs of different photos none had more
# than 9 (bench/results/2026-12-02-local-probe.md).
MIN_INLIERS = 12
RATIO = 0.8  # Lowe's ratio test: a match must be clearly closer than the next best
MAX_HAMMING = 64  # of 256 bits: further than this, two descriptors are not the same corner
REPROJECTION = 0.0125  # RANSAC tolerance, as a share of the long side the features were computed at
# A map that shrinks or grows area more than this is no copy: a picture inside another covers at least the smallest
# share local.inner_box looks for (its own features match at their own scale).
MAX_SCALE = 1 / INNER_SHARE[0]
# The pictures must overlap on this share of one of them at least: one is mostly inside the other for every copy
# (a crop, a picture in a screenshot) and two crops of one picture overlap on much of both. The matches too must
# span this share of one picture for the region they span to be compared on its own.
MIN_OVERLAP = 0.2
# With this many corners on each side a copy always keeps MIN_INLIERS of them under one map.
CONFIDENT_FEATURES = 128
# The ratio test asked from one picture drops a corner whose next best there is close, which asked from the other
# picture can pass: where one side keeps this many matches and no map, the other side is asked too. Unrelated
# pictures rarely keep even this many (half of MIN_INLIERS), so the second look costs about a tenth of `dupes`.
SECOND_LOOK = MIN_INLIERS // 2


def geometric_distances(blobs: list[bytes], thumbs: np.ndarray, i: np.ndarray, j: np.ndarray, mirror: np.ndarray,
                        local_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """For candidate pairs (i[k], j[k]) of pictures with packed local features `blobs` and thumbnails `thumbs`
    (n, 32, 32), picture i seen in the mirror where `mirror[k]`: (verified, distance): whether the pair is one
    picture by geometry, and its pHash distance over the matched region (a local edit, agreeing almost exactly
    outside one region, is credited `local_bits` as verify.near_pairs credits it)."""
    cv2 = opencv()
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    ok = np.zeros(len(i), bool)
    dist = np.full(len(i), 64, np.int64)
    seen_a, seen_b, rows = [], [], []
    feats = _Unpacked(blobs)
    for k, (a, b, m) in enumerate(zip(i.tolist(), j.tolist(), np.asarray(mirror, bool).tolist())):
        a, b = _canonical(blobs, a, b)
        fits = _fit(cv2, matcher, feats[a, m], feats[b, False])
        if not fits:
            continue
        views_a = [(_WHOLE, thumbs[a][:, ::-1] if m else thumbs[a])] + feats.inner(a, m)
        views_b = [(_WHOLE, thumbs[b])] + feats.inner(b, False)
        for unit, regions in fits:
            for box, in_b in regions:
                sa, sb = _samples(cv2, views_a, views_b, unit, box, in_b)
                seen_a.append(sa)
                seen_b.append(sb)
                rows.append(k)
    if rows:
        seen_a, seen_b, rows = np.stack(seen_a), np.stack(seen_b), np.array(rows)
        d = distances(upright_codes(seen_a), upright_codes(seen_b))
        plain = agreement(seen_a, seen_b) >= VERIFY_AGREEMENT
        local = ~plain & (local_agreement(seen_a, seen_b) >= LOCAL_EDIT_AGREEMENT)
        passed = plain | local
        d = np.where(passed, np.maximum(np.where(local, d - local_bits, d), 1), 64)
        np.minimum.at(dist, rows, d)  # the closer of its regions
        ok[rows[passed]] = True
    return ok, dist


def refuted(blobs: list[bytes], thumbs: np.ndarray, i: np.ndarray, j: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """For pairs (i[k], j[k]) that another check proposes (`thumbs` and `mirror` unused: the signature of
    geometric_distances, for pipeline.over_pairs): True where both pictures have corners enough to tell
    (CONFIDENT_FEATURES each) and no affine map explains MIN_INLIERS of their matches, as they are or with one
    seen in the mirror. Copies keep their corners under one map; look-alikes (one garment on one background, two
    shots of a scene) do not."""
    cv2 = opencv()
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    out = np.zeros(len(i), bool)
    feats = _Unpacked(blobs)
    for k, (a, b) in enumerate(zip(i.tolist(), j.tolist())):
        a, b = _canonical(blobs, a, b)
        fa, fb = feats[a, False], feats[b, False]
        if min(len(fa[1]), len(fb[1])) >= CONFIDENT_FEATURES:
            out[k] = not _fit(cv2, matcher, fa, fb) and not _fit(cv2, matcher, feats[a, True], fb)
    return out


def _canonical(blobs: list[bytes], a: int, b: int) -> tuple[int, int]:
    """The two pictures of a pair in the order they are verified: by their features, not by where they stand in
    the list, so that a pair gets one verdict and one distance whichever comes first (a query lists its picture
    last, a report in catalog order; the ratio test and the fit asked one way round keep other matches than the
    other way). The picture with fewer corners asks (a crop's or an inner picture's corners are the ones the other
    holds), ties broken by the features' bytes. A mirrored pair is the same pair either way round: A's mirror image
    matches B where B's matches A."""
    key_a, key_b = (len(blobs[a]), blobs[a]), (len(blobs[b]), blobs[b])
    return (b, a) if key_b < key_a else (a, b)


class _Unpacked(dict):
    """(picture number, mirror) -> unpacked features, each unpacked once (none for a picture without)."""

    def __init__(self, blobs: list[bytes]):
        super().__init__()
        self._blobs = blobs

    def __missing__(self, key: tuple[int, bool]) -> tuple:
        k, mirror = key
        self[key] = unpack(self._blobs[k], mirror) if self._blobs[k] else _NONE
        return self[key]

    def inner(self, k: int, mirror: bool) -> list:
        """[(box, thumbnail)] of the picture inside picture k (local.inner_view), or [] where it has none; read
        once per picture and side, as the features are."""
        key = ("inner", k, mirror)
        if key not in self:
            view = inner_view(self._blobs[k], mirror)
            self[key] = [view] if view is not None else []
        return self[key]


_NONE = (np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), (1, 1))


def _fit(cv2, matcher, fa: tuple, fb: tuple) -> list:
    """The maps A -> B that explain enough matches, each as (map in A's and B's unit frames (2, 3), regions to
    compare them on); empty where none does. A region is a box (x0, y0, x1, y1) of one picture's unit frame and
    whether that picture is B: where the two overlap, and where the matches lie when they span a good part of one
    picture (an edit at the edges, a vignette or filled corners, then weighs less). Two maps are fitted: a full
    affine one (a squash, a perspective) and a similarity (scale, turn and shift: most copies), which is better
    determined where the matches crowd into part of the picture; the thumbnails decide which lays them closer.
    The matches are A's ratio-tested nearest corners in B, and B's in A as well where A's alone fit no map
    (SECOND_LOOK)."""
    if len(fa[1]) < MIN_INLIERS or len(fb[1]) < MIN_INLIERS:
        return []
    good = _matches(matcher, fa[1], fb[1])
    fits = _fitted(cv2, good, fa, fb) if len(good) >= MIN_INLIERS else []
    if not fits and len(good) >= SECOND_LOOK:
        both = np.unique(np.concatenate((good, _matches(matcher, fb[1], fa[1])[:, ::-1])), axis=0)
        if len(both) > len(good):
            fits = _fitted(cv2, both, fa, fb)
    return fits


def _fitted(cv2, good: np.ndarray, fa: tuple, fb: tuple) -> list:
    """_fit's maps for the matches `good` ((k, 2) rows: corner of A, corner of B)."""
    (xy_a, _des_a, size_a), (xy_b, _des_b, size_b) = fa, fb
    pa = xy_a[good[:, 0]] * np.float32(size_a)
    pb = xy_b[good[:, 1]] * np.float32(size_b)
    tolerance = REPROJECTION * max(*size_a, *size_b)
    fits = []
    for estimate in (cv2.estimateAffine2D, cv2.estimateAffinePartial2D):
        m, inliers = estimate(pa, pb, method=cv2.RANSAC, ransacReprojThreshold=tolerance, maxIters=1000,
                              confidence=0.995)
        if m is None or int(inliers.sum()) < MIN_INLIERS:
            if not fits:
                return []  # a similarity never explains what no affine map does
            continue
        fit = _framed(m, inliers.ravel().astype(bool), good, xy_a, xy_b, size_a, size_b)
        if fit is not None:
            fits.append(fit)
    return fits


def _matches(matcher, des_a: np.ndarray, des_b: np.ndarray) -> np.ndarray:
    """(k, 2) rows (corner of A, corner of B) of the descriptor matches that pass Lowe's ratio test: A's nearest in
    B clearly closer than the next best, and close enough to be the same corner."""
    return np.array([(m[0].queryIdx, m[0].trainIdx) for m in matcher.knnMatch(des_a, des_b, k=2)
                     if len(m) == 2 and m[0].distance < RATIO * m[1].distance and m[0].distance <= MAX_HAMMING],
                    np.int64).reshape(-1, 2)


def _framed(m: np.ndarray, matched: np.ndarray, good: np.ndarray, xy_a: np.ndarray, xy_b: np.ndarray, size_a,
            size_b):
    """A pixel map A -> B fitted to matches `good` (`matched`: its inliers) -> (unit map, regions) as _fit gives
    them, or None where it is no copy's map (it shrinks or grows area too much, or the pictures barely overlap)."""
    det = abs(float(np.linalg.det(m[:, :2]))) * size_a[0] * size_a[1] / (size_b[0] * size_b[1])
    if not 1 / MAX_SCALE <= det <= MAX_SCALE:
        return None
    # the map in unit frames: B_unit = (M (A_unit * size_a) + t) / size_b
    unit = np.diag([1 / size_b[0], 1 / size_b[1]]) @ np.hstack((m[:, :2] @ np.diag(size_a), m[:, 2:]))
    a_to_b = np.vstack((unit, [0, 0, 1]))
    in_a, in_b = _overlap(np.linalg.inv(a_to_b)), _overlap(a_to_b)
    if max(_area(in_a), _area(in_b)) < MIN_OVERLAP:
        return None
    regions = [_larger(in_a, in_b)]
    span_a = _box(xy_a[good[matched, 0]])
    span_b = _box(xy_b[good[matched, 1]])
    if max(_area(span_a), _area(span_b)) >= MIN_OVERLAP:
        regions.append(_larger(span_a, span_b))
    return unit, regions


def _larger(box_a: tuple, box_b: tuple) -> tuple[tuple, bool]:
    """The larger of a box of A and a box of B, and whether it is B's."""
    return (box_b, True) if _area(box_b) >= _area(box_a) else (box_a, False)


def _box(xy: np.ndarray) -> tuple[float, float, float, float]:
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def _overlap(other_to_me: np.ndarray) -> tuple[float, float, float, float]:
    """The box of my unit frame that the other picture's frame covers (the bounding box of its corners, mapped)."""
    corners = other_to_me @ np.array([[0, 1, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1]], np.float64)
    x, y = corners[0] / corners[2], corners[1] / corners[2]
    return (float(np.clip(x.min(), 0, 1)), float(np.clip(y.min(), 0, 1)), float(np.clip(x.max(), 0, 1)),
            float(np.clip(y.max(), 0, 1)))


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


_WHOLE = (0.0, 0.0, 1.0, 1.0)
_INNER_SLACK = 0.05  # a twentieth of an inner picture's sides: its box is found at 160 px, a pixel or two short


def _holds(box: tuple, region: tuple) -> bool:
    """Whether `box` holds `region` (both (x0, y0, x1, y1)), within _INNER_SLACK of its sides."""
    sx, sy = _INNER_SLACK * (box[2] - box[0]), _INNER_SLACK * (box[3] - box[1])
    return (region[0] >= box[0] - sx and region[1] >= box[1] - sy and region[2] <= box[2] + sx
            and region[3] <= box[3] + sy)


def _samples(cv2, views_a: list, views_b: list, unit: np.ndarray, box, in_b: bool):
    """Both pictures sampled (32x32 float32, bilinear) over `box`, a region of one picture (B's when `in_b`) in its
    unit frame, and over where `unit` (A -> B) puts it in the other. A picture is seen through its views, (box of
    its unit frame, 32x32 thumbnail of that box): the whole thumbnail, and the inner picture's where it has one and
    the region lies inside it, at several times the resolution."""
    x0, y0, x1, y1 = box
    s = THUMB_SIDE
    # output pixel (u, v) -> unit point of the boxed picture: (x0 + (u + 0.5) (x1 - x0) / s, ...)
    grid = np.array([[(x1 - x0) / s, 0, x0 + 0.5 * (x1 - x0) / s], [0, (y1 - y0) / s, y0 + 0.5 * (y1 - y0) / s],
                     [0, 0, 1]])
    a_to_b = np.vstack((unit, [0, 0, 1]))
    if in_b:
        to_a, to_b = np.linalg.inv(a_to_b) @ grid, grid
    else:
        to_a, to_b = grid, a_to_b @ grid
    return _sampled(cv2, views_a, to_a), _sampled(cv2, views_b, to_b)


def _sampled(cv2, views: list, to_unit: np.ndarray) -> np.ndarray:
    """A 32x32 sampling (output pixel -> unit point `to_unit`, 3x3) of a picture, from the last of its views whose
    box holds the sampled region (the whole thumbnail holds every region)."""
    s = THUMB_SIDE
    corners = to_unit @ np.array([[0, s, 0, s], [0, 0, s, s], [1, 1, 1, 1]], np.float64)
    region = _box(np.column_stack((corners[0] / corners[2], corners[1] / corners[2])))
    (bx0, by0, bx1, by1), thumb = next(v for v in reversed(views) if v[0] == _WHOLE or _holds(v[0], region))
    # unit point -> pixel centres of the view's thumbnail
    to_pixels = np.array([[s / (bx1 - bx0), 0, -s * bx0 / (bx1 - bx0) - 0.5],
                          [0, s / (by1 - by0), -s * by0 / (by1 - by0) - 0.5], [0, 0, 1]])
    return cv2.warpAffine(np.asarray(thumb, np.float32), (to_pixels @ to_unit)[:2], (s, s),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
