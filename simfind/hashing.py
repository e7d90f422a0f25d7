"""Content hashes (exact copies) and perceptual hashes (same picture, different bytes), at index time.

Per image the index keeps a 32x32 grey thumbnail (uniform borders trimmed first) and its pHash. The thumbnail
is exactly the input imagehash's pHash works on (grey, Lanczos to 32x32), so the rotation and mirror hashes
(orientations.py) and the verification of candidate pairs (verify.py, geometry.py) follow from it without
decoding again. The pHash
is imagehash's, computed for many thumbnails at once (perceptual_hashes) and equal to it bit for bit.
numpy, PIL and imagehash are imported inside the functions that hash pixels: a stat-only re-index needs none.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

HASH_BITS = 64
HASH_SIDE = 8  # pHash's hash_size: an 8x8 block of low frequencies, 64 bits
THUMB_SIDE = 32  # pHash's input size (hash_size 8 x highfreq_factor 4)
# a border line is uniform when its pixels vary less than this (grey levels, std) and match the outer line's level
_BORDER_STD = 6.0
_BORDER_VAR = _BORDER_STD**2
_BORDER_LEVEL = 14.0
_MIN_KEPT = 0.4  # never trim more than 60% of a side: a mostly flat picture is not a border


def content_hash(data: bytes) -> bytes:
    """128-bit BLAKE2b of the file's bytes: equal digests mean byte-identical files."""
    return hashlib.blake2b(data, digest_size=16).digest()


def content_box(grey: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) bounds of the picture inside uniform borders (letterbox bars, frames, mattes).
    Line statistics come from sums and sums of squares: np.mean and np.std per axis cost 3-4x more."""
    import numpy as np

    h, w = grey.shape
    edges = np.concatenate((grey[0], grey[-1], grey[:, 0], grey[:, -1])).astype(np.float64)
    starts = (0, w, 2 * w, 2 * w + h)
    counts = np.array((w, w, h, h), dtype=np.float64)
    means = np.add.reduceat(edges, starts) / counts
    if (np.add.reduceat(edges * edges, starts) / counts - means * means >= _BORDER_VAR).all():
        return 0, h, 0, w  # no edge line is uniform, so none is a border: most photos, at a fraction of the cost
    a = grey.astype(np.float64)
    squares = a * a
    means = a.sum(axis=1) / w
    top, bottom = _borders(means, squares.sum(axis=1) / w - means * means)
    rows = slice(top, h - bottom)
    means = a[rows].sum(axis=0) / (h - bottom - top)
    left, right = _borders(means, squares[rows].sum(axis=0) / (h - bottom - top) - means * means)
    return top, h - bottom, left, w - right


def _borders(means: np.ndarray, variances: np.ndarray) -> tuple[int, int]:
    """How many uniform lines (rows or columns, given by their means and variances) to trim from each end."""
    import numpy as np

    limit = int(len(means) * (1 - _MIN_KEPT))

    def lead(m: np.ndarray, var: np.ndarray) -> int:
        uniform = (var < _BORDER_VAR) & (np.abs(m - m[0]) < _BORDER_LEVEL)
        n = int(np.argmin(uniform)) if not uniform.all() else len(uniform)
        return n if n <= limit else 0

    start, end = lead(means, variances), lead(means[::-1], variances[::-1])
    return (0, 0) if start + end > limit else (start, end)


def thumbnail(image: Image.Image) -> np.ndarray:
    """trimmed_thumbnail() without the content share and the frame."""
    return trimmed_thumbnail(image)[0]


# A trimmed image also keeps its whole frame: the untrimmed 32x32 thumbnail and where the trimmed box lies in it,
# as 4 uint16 fractions of the sides (top, bottom, left, right) / 65535. A caption or logo on a letterbox bar or
# white margin stops its copy from being trimmed like the clean picture; the frames still line up (matching.py).
FRAME_BYTES = THUMB_SIDE * THUMB_SIDE + 8


def trimmed_thumbnail(image: Image.Image) -> tuple[np.ndarray, float, bytes]:
    """(thumbnail, content share, frame): the 32x32 grey uint8 thumbnail every perceptual hash is computed from
    (borders trimmed, Lanczos resized as imagehash's pHash resizes), the share of the picture's area inside
    those borders, and for a trimmed image its frame (FRAME_BYTES; b"" when nothing was trimmed). A big image
    is first box-reduced to >= 64 px a side, as a JPEG's draft decode would be: the same thumbnail whether the
    file was drafted for hashing alone or decoded larger for CLIP, and cheaper than Lanczos over every pixel."""
    import numpy as np

    factor = 1
    while min(image.size) // (2 * factor) >= 2 * THUMB_SIDE:
        factor *= 2
    if factor >= 2:
        image = image.reduce(factor)
    grey = image if image.mode == "L" else image.convert("L")
    h, w = grey.height, grey.width
    top, bottom, left, right = content_box(np.asarray(grey))
    share, frame = 1.0, b""
    if (top, left) != (0, 0) or (bottom, right) != (h, w):
        full = resized_thumbnail(grey)
        box = np.array([top / h, bottom / h, left / w, right / w]) * 65535
        frame = full.tobytes() + np.round(box).astype("<u2").tobytes()
        grey = grey.crop((left, top, right, bottom))
        # the share of the picture inside the borders, counted 2 px short on each trimmed side: never more than
        # the truth, so a clean copy outranks its letterboxed twin when the keeper is chosen by picture size
        rows = bottom - top - 2 * ((top > 0) + (bottom < h))
        cols = right - left - 2 * ((left > 0) + (right < w))
        share = max(0, rows) * max(0, cols) / (h * w)
    return resized_thumbnail(grey), share, frame


def resized_thumbnail(grey: Image.Image | np.ndarray) -> np.ndarray:
    """A grey picture (PIL "L" or uint8 array) resized to the THUMB_SIDE x THUMB_SIDE thumbnail, Lanczos, as
    imagehash's pHash resizes."""
    import numpy as np
    from PIL import Image as PILImage

    if isinstance(grey, np.ndarray):
        grey = PILImage.fromarray(np.ascontiguousarray(grey), "L")
    return np.asarray(grey.resize((THUMB_SIDE, THUMB_SIDE), PILImage.LANCZOS), dtype=np.uint8)


def unpack_frames(frames: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """FRAME_BYTES blobs -> (whole-frame thumbnails (m, 32, 32) uint8, trimmed boxes (m, 4) float32 as fractions
    (top, bottom, left, right))."""
    import numpy as np

    raw = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), FRAME_BYTES)
    fulls = raw[:, : THUMB_SIDE * THUMB_SIDE].reshape(-1, THUMB_SIDE, THUMB_SIDE)
    boxes = raw[:, THUMB_SIDE * THUMB_SIDE :].copy().view("<u2").astype(np.float32) / 65535
    return fulls, boxes


def perceptual_hash(thumb: np.ndarray) -> bytes:
    """imagehash's 64-bit pHash of the thumbnail, packed to 8 bytes (the layout FAISS binary indexes take)."""
    import imagehash  # scipy's DCT
    import numpy as np
    from PIL import Image as PILImage

    bits = imagehash.phash(PILImage.fromarray(thumb, "L")).hash.reshape(-1)
    return np.packbits(bits).tobytes()


# A coefficient this close to the median (relative to the block's largest) could fall on either side of it
# through rounding alone: there, imagehash decides. Real photos stay far above it.
_TIE = 1e-9


def perceptual_hashes(thumbs: list[bytes]) -> list[bytes]:
    """perceptual_hash() of many thumbnails (THUMB_SIDE^2 bytes each), bit for bit, at once: the 8x8 low
    frequencies of imagehash's DCT are one float64 matrix product per thumbnail (several times faster than
    imagehash's scipy DCT, and a decode worker never pays for importing scipy). A thumbnail with a
    coefficient within rounding of its median (flat or synthetic pictures) is hashed by imagehash itself."""
    import numpy as np

    side = THUMB_SIDE
    pixels = np.frombuffer(b"".join(thumbs), dtype=np.uint8).reshape(len(thumbs), side, side)
    d = dct_rows()
    low = (d @ pixels.astype(np.float64) @ d.T).reshape(len(thumbs), -1)
    codes, med = median_codes(low)
    tied = np.abs(low - med).min(axis=1) <= _TIE * np.abs(low).max(axis=1)
    return [perceptual_hash(pixels[i]) if tied[i] else codes[i].tobytes() for i in range(len(thumbs))]


def median_codes(low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 64) low-frequency DCT coefficients -> ((..., 8) uint8 codes, (..., 1) medians): a bit is set where a
    coefficient is above its block's median (imagehash's pHash rule)."""
    import numpy as np

    med = np.median(low, axis=-1, keepdims=True)
    return np.packbits(low > med, axis=-1), med


@lru_cache(maxsize=1)
def dct_rows() -> np.ndarray:
    """The first 8 rows of the 32-point DCT-II matrix (scipy's unnormalised DCT halved): low = D @ X @ D.T is
    the block pHash thresholds (a positive scale does not move a coefficient across the median)."""
    import numpy as np

    n = np.arange(THUMB_SIDE)
    return np.cos(np.pi * np.outer(np.arange(HASH_SIDE), 2 * n + 1) / (2 * THUMB_SIDE))


def image_phash(image: Image.Image) -> bytes:
    """The pHash simfind stores for a decoded image (thumbnail first, so borders are trimmed)."""
    return perceptual_hash(thumbnail(image))


# -- similarity ------------------------------------------------------------------------------------------------


def similarity(a: bytes, b: bytes) -> float:
    """1 - hamming/64: 1.0 is the same hash."""
    return similarity_of_distance(hamming(a, b))


def similarity_of_distance(distance: int) -> float:
    return 1.0 - distance / HASH_BITS


def hamming(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def max_distance(threshold: float) -> int:
    """The largest hamming distance whose similarity is at or above `threshold`."""
    return math.floor((1.0 - threshold) * HASH_BITS + 1e-9)
