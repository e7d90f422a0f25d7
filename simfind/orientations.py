"""The rotations and mirrors a copy may have undergone, and the pHash of each, from a file's 32x32 thumbnail alone.

The pHash of each of the 8 rotations/mirrors of an image follows from one 32x32 DCT by sign flips ((-1)^u, (-1)^v:
reversing an axis) and a transpose (swapping axes) of its 8x8 low-frequency block. Crops, turns, canvases and
screenshots are the local features' (local.py, geometry.py). Pure numpy.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .hashing import HASH_SIDE, THUMB_SIDE, dct_rows, median_codes

LOW = HASH_SIDE  # the 8x8 low-frequency DCT block


@lru_cache(maxsize=1)
def _dct_rows() -> np.ndarray:
    """hashing.dct_rows() in float32: search-time codes are candidates, verified on pixels afterwards."""
    return dct_rows().astype(np.float32)


def _pack(low: np.ndarray) -> np.ndarray:
    """(..., 8, 8) DCT blocks -> (..., 8) uint8 codes: bit set where the coefficient is above the block's median."""
    return median_codes(low.reshape(*low.shape[:-2], LOW * LOW))[0]


def _thumbs(thumbs: np.ndarray) -> np.ndarray:
    return np.asarray(thumbs, dtype=np.float32).reshape(-1, THUMB_SIDE, THUMB_SIDE)


# The 8 rotations/mirrors as (transpose, reverse rows, reverse columns), applied in that order to pixels.
DIHEDRAL = tuple((t, r, c) for t in (False, True) for r in (False, True) for c in (False, True))


def orient(thumb: np.ndarray, k: int) -> np.ndarray:
    """Rotation/mirror number k of a thumbnail, or of a stack of them (..., h, w) (k = 0 is the identity)."""
    t, r, c = DIHEDRAL[k]
    out = np.swapaxes(thumb, -1, -2) if t else thumb
    if r:
        out = out[..., ::-1, :]
    if c:
        out = out[..., ::-1]
    return out


def orientation_codes(thumbs: np.ndarray) -> np.ndarray:
    """(n, 32, 32) thumbnails -> (n, 8, 8) uint8: the pHash of each of the 8 rotations/mirrors of each image,
    from one DCT per image. Reversing an axis multiplies its frequency-u coefficients by (-1)^u; a transpose
    swaps u and v."""
    d = _dct_rows()
    low = d @ _thumbs(thumbs) @ d.T  # (n, 8, 8)
    sign = (-1.0) ** np.arange(LOW, dtype=np.float32)
    blocks = []
    for t, r, c in DIHEDRAL:
        block = np.swapaxes(low, -1, -2) if t else low
        if r:
            block = block * sign[:, None]
        if c:
            block = block * sign[None, :]
        blocks.append(block)
    return _pack(np.stack(blocks, axis=1))


def sampling_matrices(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(k, 32, 32) bilinear resampling matrices: row i of matrix k samples the span (starts[k], lengths[k]) of a
    32-pixel side (fractions of the side) at output pixel i."""
    n = THUMB_SIDE
    starts = np.asarray(starts, np.float64)[:, None]
    lengths = np.asarray(lengths, np.float64)[:, None]
    pos = np.clip((starts + lengths * (np.arange(n) + 0.5) / n) * n - 0.5, 0, n - 1)  # (k, n)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = (pos - lo).astype(np.float32)
    mats = np.zeros((len(pos), n, n), np.float32)
    k, i = np.indices(pos.shape)
    np.add.at(mats, (k, i, lo), 1 - frac)
    np.add.at(mats, (k, i, hi), frac)
    return mats



def upright_codes(thumbs: np.ndarray) -> np.ndarray:
    """(n, 32, 32) -> (n, 8) uint8: each thumbnail's own pHash (orientation_codes without the other seven)."""
    d = _dct_rows()
    return _pack(d @ _thumbs(thumbs) @ d.T)


def distances(codes: np.ndarray, code: np.ndarray) -> np.ndarray:
    return np.unpackbits(codes ^ code, axis=-1).sum(axis=-1)
