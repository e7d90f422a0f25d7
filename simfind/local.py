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


def opencv():
    """cv2, on one thread: features are computed one file per worker process, which already uses every core."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


def extract(grey: np.ndarray) -> bytes:
    """Packed features of a grey uint8 picture (h, w), already trimmed of borders; b"" for a picture too small or
    too flat to have any."""
    import numpy as np

    cv2 = opencv()

    h, w = grey.shape
    scale = LOCAL_SIDE / max(h, w)
    if scale < 1:
        grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        h, w = grey.shape
    if min(h, w) <= 2 * PATCH:
        return b""
    orb = cv2.ORB_create(nfeatures=FEATURES, scaleFactor=SCALE_STEP, nlevels=LEVELS, edgeThreshold=PATCH,
                         patchSize=PATCH, fastThreshold=FAST_THRESHOLD)
    keypoints, descriptors = orb.detectAndCompute(np.ascontiguousarray(grey), None)
    if descriptors is None or not len(keypoints):
        return b""
    order = np.argsort([-k.response for k in keypoints], kind="stable")  # strongest first: the search takes those
    keypoints, descriptors = [keypoints[k] for k in order], descriptors[order]
    # the same corners seen in the mirror image (x -> w - 1 - x, angle -> 180 - angle), for mirrored copies
    flipped = [cv2.KeyPoint(w - 1 - k.pt[0], k.pt[1], k.size, (180.0 - k.angle) % 360.0, k.response, k.octave, n)
               for n, k in enumerate(keypoints)]
    kept, mirrored = orb.compute(np.ascontiguousarray(grey[:, ::-1]), flipped)  # reordered by pyramid level
    flags = _MIRRORED if mirrored is not None and len(kept) == len(keypoints) else 0
    if flags:
        mirrored = mirrored[np.argsort([k.class_id for k in kept])]
    xy = np.array([k.pt for k in keypoints], np.float64) / (w, h)
    header = np.array([len(keypoints), w, h, flags], "<u2").tobytes()
    packed = header + np.round(np.clip(xy, 0, 1) * 65535).astype("<u2").tobytes() + descriptors.tobytes()
    return packed + (mirrored.tobytes() if flags & _MIRRORED else b"")


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
