"""Local features: ORB keypoints and binary descriptors of a picture, for the copies a whole-picture hash cannot
see (heavy crops, a picture inside a screenshot or on a canvas, turns, perspective, combinations of them).

Computed once per file at index time, from the decoded grey picture with its uniform borders trimmed as the
thumbnail's are, at most LOCAL_SIDE px on the long side, and stored in the catalog packed: keypoint positions as
fractions of the picture's sides (the thumbnail's frame, so a geometric fit of two files maps their thumbnails
too) and 256-bit descriptors. OpenCV (the field's library for local features) is imported only here and in
geometry.py, where features are computed or matched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .hashing import THUMB_SIDE, resized_thumbnail

if TYPE_CHECKING:
    import numpy as np

LOCAL_SIDE = 320  # long side the features are computed at
FEATURES = 256
# ORB's pyramid: 8 levels 1.2 apart span a scale of 3.6, a picture matched inside one 3.6 times its size. Fewer,
# coarser levels cost less and found fewer heavy crops and canvases on bench/bench_quality.py.
LEVELS = 8
SCALE_STEP = 1.2
# ORB's descriptor pattern was learned on 31 px patches: there its 256 bits are each set about half the time, which
# the descriptor search (candidates.local_candidates) relies on; on smaller patches many bits are nearly constant.
PATCH = 31
FAST_THRESHOLD = 10  # below OpenCV's 20, so that soft or low-contrast pictures still give corners
DESCRIPTOR_BYTES = 32
_HEADER = 8  # uint16 count, width, height, flags
_MIRRORED = 1  # flag: the descriptors of the mirror image follow (ORB's do not match a mirror image's corners)
_INNER = 2  # flag: then the box of the picture inside the picture (4 uint16 fractions) and its 32x32 thumbnail


def opencv():
    """cv2, on one thread: features are computed one file per worker process, which already uses every core."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


def extract(grey: np.ndarray) -> bytes:
    """Packed features of a grey uint8 picture (h, w), already trimmed of borders; b"" for a picture too small or
    too flat to have any. Where a picture lies inside it (inner_box), the features of that picture, computed at its
    own resolution, come first, in the whole frame's positions; then the whole's; each strongest first."""
    import numpy as np

    small = _within(grey, LOCAL_SIDE)
    whole = _features(small)
    if whole is None:
        return b""
    xy, descriptors, mirrored, (w, h) = whole
    box = inner_box(small)
    inner = trailer = None
    if box is not None:
        gh, gw = grey.shape
        x0, y0, x1, y1 = round(box[0] * gw), round(box[1] * gh), round(box[2] * gw), round(box[3] * gh)
        crop = grey[y0:y1, x0:x1]
        inner = _features(_within(crop, LOCAL_SIDE))
        box = (x0 / gw, y0 / gh, x1 / gw, y1 / gh)
    if inner is not None:
        ixy, ides, imirrored, _size = inner
        x0, y0, x1, y1 = box
        ixy = np.column_stack((x0 + ixy[:, 0] * (x1 - x0), y0 + ixy[:, 1] * (y1 - y0)))
        trailer = np.round(np.array(box) * 65535).astype("<u2").tobytes() + resized_thumbnail(crop).tobytes()
        # the inner picture's first: the search posts each picture's first few, and a frame's own corners (text,
        # bars, buttons) say little about which picture it holds
        order = np.r_[len(xy) + np.arange(len(ixy)), np.arange(len(xy))]
        xy = np.concatenate((xy, ixy))[order]
        descriptors = np.concatenate((descriptors, ides))[order]
        mirrored = None if mirrored is None or imirrored is None else np.concatenate((mirrored, imirrored))[order]
    flags = (_MIRRORED if mirrored is not None else 0) | (_INNER if trailer else 0)
    header = np.array([len(xy), w, h, flags], "<u2").tobytes()
    packed = header + np.round(np.clip(xy, 0, 1) * 65535).astype("<u2").tobytes() + descriptors.tobytes()
    return packed + (mirrored.tobytes() if mirrored is not None else b"") + (trailer or b"")


def inner_view(blob: bytes | None, mirror: bool = False) -> tuple[tuple[float, float, float, float], np.ndarray] | None:
    """(box (x0, y0, x1, y1) in the picture's unit frame, its 32x32 thumbnail) of the picture inside the picture
    where its features were added (extract), seen in the mirror where `mirror`; None where there is none. The
    verification samples it where a fit lies inside it: in a tall screenshot a picture a tenth of its area is a
    few pixels of the whole thumbnail."""
    import numpy as np

    if not blob:
        return None
    n, _w, _h, flags = np.frombuffer(blob, "<u2", 4).tolist()
    if not flags & _INNER:
        return None
    start = _HEADER + 4 * n + n * DESCRIPTOR_BYTES * (2 if flags & _MIRRORED else 1)
    x0, y0, x1, y1 = (np.frombuffer(blob, "<u2", 4, start).astype(np.float64) / 65535).tolist()
    thumb = np.frombuffer(blob, np.uint8, THUMB_SIDE * THUMB_SIDE, start + 8).reshape(THUMB_SIDE, THUMB_SIDE)
    if mirror:
        return (1 - x1, y0, 1 - x0, y1), thumb[:, ::-1]
    return (x0, y0, x1, y1), thumb


def _within(grey: np.ndarray, side: int) -> np.ndarray:
    """The grey picture reduced (area-averaged) to at most `side` px on its long side, contiguous."""
    import numpy as np

    h, w = grey.shape
    scale = side / max(h, w)
    if scale < 1:
        cv2 = opencv()
        return cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(grey)


def _features(grey: np.ndarray):
    """(positions (n, 2) as fractions of the sides, descriptors (n, 32), the mirror image's descriptors at the
    same corners or None, (width, height) they were computed at) of a grey picture of at most LOCAL_SIDE px,
    strongest first; None for a picture too small or too flat to have any."""
    import numpy as np

    cv2 = opencv()
    h, w = grey.shape
    if min(h, w) <= 2 * PATCH:
        return None
    orb = cv2.ORB_create(nfeatures=FEATURES, scaleFactor=SCALE_STEP, nlevels=LEVELS, edgeThreshold=PATCH,
                         patchSize=PATCH, fastThreshold=FAST_THRESHOLD)
    keypoints, descriptors = orb.detectAndCompute(np.ascontiguousarray(grey), None)
    if descriptors is None or not len(keypoints):
        return None
    order = np.argsort([-k.response for k in keypoints], kind="stable")  # strongest first: the search takes those
    keypoints, descriptors = [keypoints[k] for k in order], descriptors[order]
    # the same corners seen in the mirror image (x -> w - 1 - x, angle -> 180 - angle), for mirrored copies
    flipped = [cv2.KeyPoint(w - 1 - k.pt[0], k.pt[1], k.size, (180.0 - k.angle) % 360.0, k.response, k.octave, n)
               for n, k in enumerate(keypoints)]
    kept, mirrored = orb.compute(np.ascontiguousarray(grey[:, ::-1]), flipped)  # reordered by pyramid level
    if mirrored is not None and len(kept) == len(keypoints):
        mirrored = mirrored[np.argsort([k.class_id for k in kept])]
    else:
        mirrored = None
    xy = np.array([k.pt for k in keypoints], np.float64) / (w, h)
    return xy, descriptors, mirrored, (w, h)


# A picture inside another: a screenshot, an app or social frame, a picture fitted onto a canvas. There the frame's
# text and bars take most of the strongest corners and the inner picture is small at LOCAL_SIDE, so its features
# are also computed on it alone. It is found as the largest region of detail: at INNER_SIDE px, pixels that differ
# from a neighbour by more than _BUSY grey levels (above JPEG noise on a flat background), joined across gaps of
# up to 2 * _JOIN px (a photo's smooth patches; a frame's margins between picture and text are wider), whose
# bounding box covers INNER_SHARE of the frame: smaller is a detail, larger the picture itself.
INNER_SIDE = 160
_BUSY = 6
_JOIN = 2
INNER_SHARE = (0.1, 0.8)


def inner_box(grey: np.ndarray) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1), fractions of the sides, of the picture inside a grey picture; None where none is found."""
    import numpy as np

    cv2 = opencv()
    grey = _within(grey, INNER_SIDE)
    sh, sw = grey.shape
    if min(sh, sw) < 8:
        return None
    level = grey.astype(np.int16)
    busy = np.zeros((sh, sw), np.uint8)
    busy[:, 1:] |= np.abs(np.diff(level, axis=1)) > _BUSY
    busy[1:, :] |= np.abs(np.diff(level, axis=0)) > _BUSY
    busy = cv2.morphologyEx(busy, cv2.MORPH_CLOSE, np.ones((2 * _JOIN + 1, 2 * _JOIN + 1), np.uint8))
    n, _labels, stats, _centres = cv2.connectedComponentsWithStats(busy, connectivity=8)
    if n < 2:
        return None
    stats = stats[1:].astype(np.int64)
    x, y, bw, bh = stats[int(np.argmax(stats[:, cv2.CC_STAT_AREA])), :4].tolist()
    if not INNER_SHARE[0] <= bw * bh / (sw * sh) <= INNER_SHARE[1]:
        return None
    return x / sw, y / sh, (x + bw) / sw, (y + bh) / sh


def unpack(blob: bytes, mirror: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(positions (n, 2) float32 as fractions of (width, height), descriptors (n, 32) uint8, (width, height) the
    features were computed at), strongest first. `mirror`: those of the mirror image (no features where they were
    not stored)."""
    import numpy as np

    n, w, h, flags = np.frombuffer(blob, "<u2", 4).tolist()
    xy = np.frombuffer(blob, "<u2", 2 * n, _HEADER).reshape(n, 2).astype(np.float32) / 65535
    if mirror:
        if not flags & _MIRRORED:
            return np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_BYTES), np.uint8), (w, h)
        xy = xy.copy()
        xy[:, 0] = 1 - xy[:, 0]
    return xy, descriptors_of(blob, mirror=mirror), (w, h)


def descriptors_of(blob: bytes | None, most: int | None = None, mirror: bool = False) -> np.ndarray:
    """Only the descriptors (n, 32) of packed features (none for b"" or None), the `most` strongest at most;
    `mirror`: those of the mirror image."""
    import numpy as np

    if not blob:
        return np.zeros((0, DESCRIPTOR_BYTES), np.uint8)
    n, _w, _h, flags = np.frombuffer(blob, "<u2", 4).tolist()
    if mirror and not flags & _MIRRORED:
        return np.zeros((0, DESCRIPTOR_BYTES), np.uint8)
    start = _HEADER + 4 * n + (n * DESCRIPTOR_BYTES if mirror else 0)
    count = n if most is None else min(n, most)
    return np.frombuffer(blob, np.uint8, count * DESCRIPTOR_BYTES, start).reshape(count, DESCRIPTOR_BYTES)
