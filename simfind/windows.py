"""The transforms a copy may have undergone, and the pHash of each, from a file's 32x32 thumbnail alone.

- The pHash of each of the 8 rotations/mirrors of an image follows from one 32x32 DCT by sign flips
  ((-1)^u, (-1)^v: reversing an axis) and a transpose (swapping axes) of its 8x8 low-frequency block.
- The pHash of crop windows (a grid of sub-rectangles): resample-then-DCT is one 8x32 matrix per window and
  axis, so every window of every image is two batched matmuls, no decode and no Python loop per window.
- Small tilts (a straightened horizon, a scanned print) are windows too: the centre turned a few degrees.
Pure numpy: these codes are features, computed at search time or cached next to the catalog.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .hashing import HASH_SIDE, THUMB_SIDE, dct_rows, median_codes

LOW = HASH_SIDE  # the 8x8 low-frequency DCT block

# crop windows per axis: (start, length) as fractions of the side. Three lengths (72%, 80%, 88%) at steps of 8%,
# plus the whole side, give 13 x 13 - 1 = 168 windows, for crops that keep about 70-95% of a side.
_WINDOW_LENGTHS = (0.72, 0.8, 0.88)
_WINDOW_STEP = 0.08


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


@lru_cache(maxsize=1)
def axis_windows() -> tuple[tuple[float, float], ...]:
    """(start, length) per axis: the whole side first, then each length at steps of 8%, the last flush right."""
    out = [(0.0, 1.0)]
    for length in _WINDOW_LENGTHS:
        starts = list(np.arange(0.0, 1.0 - length + 1e-9, _WINDOW_STEP))
        if 1.0 - length - starts[-1] > 1e-6:
            starts.append(1.0 - length)
        out += [(round(float(s), 4), length) for s in starts]
    return tuple(out)


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


@lru_cache(maxsize=1)
def _resamplers() -> np.ndarray:
    """(m, 32, 32) bilinear resampling matrices: row i samples window (s, l) of a 32-pixel side at pixel i."""
    spans = np.array(axis_windows())
    return sampling_matrices(spans[:, 0], spans[:, 1])


# Small tilts: a picture turned by a few degrees and cut to hide the turned corners (a straightened horizon, a
# scanned print). Each is one more window after the crop windows: the centre of the picture turned 3.5 or 6
# degrees either way, cut to one of three lengths of the side. A turn within ~1.5 degrees of the true one matches
# and a length must be within ~0.03, so these cover turns of about 2-7 degrees (bench/bench_tilt.py measures it);
# tilt candidates pass a stricter check (verify.TILT_AGREEMENT) so that they add no false pairs.
_TILT_ANGLES = (-6.0, -3.5, 3.5, 6.0)
_TILT_LENGTHS = (0.8, 0.86, 0.92)
TILTS = tuple((a, length) for a in _TILT_ANGLES for length in _TILT_LENGTHS)


def crop_windows() -> int:
    m = len(axis_windows())
    return m * m - 1


def windows_per_image() -> int:
    return crop_windows() + len(TILTS)


@lru_cache(maxsize=1)
def _tilt_taps() -> tuple[np.ndarray, np.ndarray]:
    """Bilinear taps of each tilt, in the thumbnail's own (square) coordinates: (T, 1024, 4) source pixel numbers
    and (T, 1024, 4) weights; pixel p of tilt t is sum_k weight[t, p, k] * thumb.flat[source[t, p, k]]."""
    n = THUMB_SIDE
    u = (np.arange(n) + 0.5) / n - 0.5
    xo, yo = np.meshgrid(u, u)
    sources, weights = [], []
    for angle, length in TILTS:
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        x, y = length * xo, length * yo
        px = np.clip((0.5 + x * c - y * s) * n - 0.5, 0, n - 1)
        py = np.clip((0.5 + x * s + y * c) * n - 0.5, 0, n - 1)
        x0, y0 = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
        x1, y1 = np.minimum(x0 + 1, n - 1), np.minimum(y0 + 1, n - 1)
        fx, fy = px - x0, py - y0
        sources.append(np.stack([y0 * n + x0, y0 * n + x1, y1 * n + x0, y1 * n + x1], -1).reshape(-1, 4))
        weights.append(np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], -1).reshape(-1, 4))
    return np.stack(sources), np.stack(weights).astype(np.float32)


def tilted(thumb: np.ndarray, t: int) -> np.ndarray:
    """Tilt number t (as in TILTS) of a thumbnail or a stack of them (..., 32, 32), float32."""
    sources, weights = _tilt_taps()
    lead = np.shape(thumb)[:-2]
    flat = np.asarray(thumb, np.float32).reshape(*lead, THUMB_SIDE * THUMB_SIDE)
    return (flat[..., sources[t]] * weights[t]).sum(axis=-1).reshape(*lead, THUMB_SIDE, THUMB_SIDE)


@lru_cache(maxsize=1)
def _tilt_projection() -> np.ndarray:
    """(1024, T * 64) float32: a thumbnail's pixels -> the 8x8 low-frequency DCT block of each of its tilts."""
    low_of = np.kron(dct_rows(), dct_rows())  # (64, 1024): low.flat = low_of @ pixels.flat
    sources, weights = _tilt_taps()
    side = THUMB_SIDE * THUMB_SIDE
    blocks = []
    for t in range(len(TILTS)):
        sampler = np.zeros((side, side))
        np.add.at(sampler, (np.repeat(np.arange(side), 4), sources[t].ravel()), weights[t].ravel())
        blocks.append(low_of @ sampler)
    return np.concatenate(blocks).T.astype(np.float32)


def window_codes(thumbs: np.ndarray) -> np.ndarray:
    """(n, 32, 32) thumbnails -> (n, W, 8) uint8: the pHash of every crop window (all but the whole image), then
    of every tilt (TILTS)."""
    proj = _dct_rows() @ _resamplers()  # (m, 8, 32): resample a window, then take its low frequencies
    x = _thumbs(thumbs)
    rows = np.einsum("yai,nij->nyaj", proj, x, optimize=True)  # (n, m, 8, 32)
    low = np.einsum("nyaj,xbj->nyxab", rows, proj, optimize=True)  # (n, m, m, 8, 8)
    codes = _pack(low).reshape(len(x), -1, LOW)[:, 1:]  # window 0 is (whole, whole): the image's own pHash
    tilts = _pack((x.reshape(len(x), -1) @ _tilt_projection()).reshape(len(x), len(TILTS), LOW, LOW))
    return np.concatenate([codes, tilts], axis=1)


def window_of(index: int) -> tuple[int, int]:
    """Window number (as in window_codes) -> (row window, column window) indexes into axis_windows()."""
    m = len(axis_windows())
    return divmod(index + 1, m)


def crop_window(thumb: np.ndarray, index: int) -> np.ndarray:
    """The pixels of window `index` of a thumbnail (or a stack of them), resampled to 32x32 (what its window
    code hashed): a crop window, or past them a tilt."""
    if index >= crop_windows():
        return tilted(thumb, index - crop_windows())
    ry, rx = window_of(index)
    r = _resamplers()
    return r[ry] @ np.asarray(thumb, np.float32) @ r[rx].T


_WINDOW_CHUNK = 2048  # images per batch of window hashes (bounds memory: about 3 MB of floats per 1,000 images)


def all_window_codes(thumbs: np.ndarray) -> np.ndarray:
    """window_codes() in batches (bounded memory): (n, W, 8)."""
    thumbs = np.asarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)
    if not len(thumbs):
        return np.zeros((0, windows_per_image(), 8), np.uint8)
    return np.concatenate([window_codes(thumbs[s : s + _WINDOW_CHUNK]) for s in range(0, len(thumbs), _WINDOW_CHUNK)])


def numbered_window_codes(item: tuple[int, np.ndarray]) -> tuple[int, np.ndarray]:
    """(k, thumbnails) -> (k, all_window_codes(thumbnails)): a chunk for a runner, which returns chunks as they
    finish."""
    k, thumbs = item
    return k, all_window_codes(thumbs)


def upright_codes(thumbs: np.ndarray) -> np.ndarray:
    """(n, 32, 32) -> (n, 8) uint8: each thumbnail's own pHash (orientation_codes without the other seven)."""
    d = _dct_rows()
    return _pack(d @ _thumbs(thumbs) @ d.T)


def transformed(thumb: np.ndarray, kind: str, detail: int) -> np.ndarray:
    if kind == "orient":
        return orient(thumb, detail)
    return crop_window(thumb, detail)


def distances(codes: np.ndarray, code: np.ndarray) -> np.ndarray:
    return np.unpackbits(codes ^ code, axis=-1).sum(axis=-1)
