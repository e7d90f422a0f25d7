"""Search-time perceptual matching: from the index's thumbnails to verified candidate pairs.

- The pHash of each of the 8 rotations/mirrors of an image follows from one 32x32 DCT by sign flips
  ((-1)^u, (-1)^v: reversing an axis) and a transpose (swapping axes) of its 8x8 low-frequency block.
- The pHash of crop windows (a grid of sub-rectangles): resample-then-DCT is one 8x32 matrix per window and
  axis, so every window of every image is two batched matmuls, no decode and no Python loop per window.
- A candidate pair is verified by the normalised cross-correlation of the two thumbnails after the matched
  rotation or window is applied: two different photos can share a 64-bit hash; they rarely share pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .hashing import HASH_SIDE, THUMB_SIDE, dct_rows, median_codes

LOW = HASH_SIDE  # the 8x8 low-frequency DCT block
# crop windows per axis: (start, length) as fractions of the side. Three lengths (72%, 80%, 88%) at steps of 8%,
# plus the whole side, give 13 x 13 - 1 = 168 windows (measured on bench/bench_quality.py's crop family).
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


def _sampling_matrices(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
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
    return _sampling_matrices(spans[:, 0], spans[:, 1])


# Small tilts: a picture turned by a few degrees and cut to hide the turned corners (a straightened horizon, a
# scanned print). Each is one more window after the crop windows: the centre of the picture turned 3.5 or 6
# degrees either way, cut to one of three lengths of the side. A turn within ~1.5 degrees of the true one matches
# (bench/bench_quality.py's tilt family, 2-5 degrees), a length must be within ~0.03. bench/bench_tilt.py, found
# with the original, 1-7 degrees: 0.68-0.17 without tilts, 0.96-0.68 with these twelve (with the 3.5 degree six
# alone 7 degrees reached 0.47); the tilt candidates' stricter check (TILT_AGREEMENT) kept the false pairs of
# bench_quality at the default threshold where they were (373).
_TILT_ANGLES = (-6.0, -3.5, 3.5, 6.0)
_TILT_LENGTHS = (0.8, 0.86, 0.92)
TILTS = tuple((a, length) for a in _TILT_ANGLES for length in _TILT_LENGTHS)
TILT_AGREEMENT = 0.93


def _crop_windows() -> int:
    m = len(axis_windows())
    return m * m - 1


def windows_per_image() -> int:
    return _crop_windows() + len(TILTS)


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
    if index >= _crop_windows():
        return tilted(thumb, index - _crop_windows())
    ry, rx = window_of(index)
    r = _resamplers()
    return r[ry] @ np.asarray(thumb, np.float32) @ r[rx].T


def agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of pixel blocks (..., h, w), on 16x16 means (JPEG and noise averaged out):
    1.0 for the same picture up to brightness and contrast."""
    return agreement_flat(_pool(np.asarray(a, np.float32)), _pool(np.asarray(b, np.float32)))


_POOLED = (THUMB_SIDE // 2) ** 2  # cells agreement() compares
# Local edits (a caption, a logo, a watermark) move pHash further than the threshold allows: candidates up to
# LOCAL_EDIT_BITS beyond it are kept when LOCAL_EDIT_KEEP of the picture agrees to LOCAL_EDIT_AGREEMENT. On
# bench/bench_quality.py's candidates 8-10 bits apart, the clothing look-alikes reach 0.996 only 5 times each.
LOCAL_EDIT_BITS = 4
LOCAL_EDIT_KEEP = 0.85
LOCAL_EDIT_AGREEMENT = 0.995


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


# -- candidate pairs ----------------------------------------------------------------------------------------------

# Two thumbnails that agree this well (normalised cross-correlation at 16x16, after the matched rotation or crop
# window) show the same picture; below it a hash collision is rejected. Tuned on bench/bench_quality.py.
VERIFY_AGREEMENT = 0.85
_WINDOW_CHUNK = 2048  # images per batch of window hashes (bounds memory: about 3 MB of floats per 1,000 images)


@dataclass(frozen=True)
class Candidates:
    """Candidate pairs as columns: image `dst` looks like image `src` seen through `transform` (0-7: rotation or
    mirror number, as in DIHEDRAL; 8 on: window `transform - 8` of src, a crop window or past them a tilt), at pHash
    distance `distance`."""

    src: np.ndarray
    dst: np.ndarray
    distance: np.ndarray
    transform: np.ndarray

    def __len__(self) -> int:
        return len(self.src)


def _closest_per_pair(src: np.ndarray, dst: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Row numbers of the smallest distance of each unordered pair {src, dst}."""
    n = int(max(src.max(), dst.max())) + 1
    return _closest_per_key(np.minimum(src, dst) * n + np.maximum(src, dst), distance)


def _closest_per_key(key: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Row numbers of the smallest distance of each key."""
    order = np.lexsort((distance, key))
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    return order[first]


def all_window_codes(thumbs: np.ndarray) -> np.ndarray:
    """window_codes() in batches (bounded memory): (n, W, 8)."""
    thumbs = np.asarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)
    if not len(thumbs):
        return np.zeros((0, windows_per_image(), 8), np.uint8)
    return np.concatenate([window_codes(thumbs[s : s + _WINDOW_CHUNK]) for s in range(0, len(thumbs), _WINDOW_CHUNK)])


# The rotation/mirror search asks 8 codes per image of every image (the whole-frame search, one per trimmed
# image): from this many images they go through FAISS's binary IVF. Measured on generated pictures: 20,000
# images 1.1 -> 0.3 s, 50,000 5.7 -> 1.1 s, 100,000 23.0 -> 3.1 s, keeping 99.9% of the candidates within the
# default threshold.
ORIENT_IVF_FROM = 20_000


def candidates(thumbs: np.ndarray, max_distance: int, *, crops: bool = True,
               windows: np.ndarray | None = None) -> Candidates:
    """The closest hash match of every pair of images within `max_distance` bits, allowing for any rotation or
    mirror and (with `crops`) for one being a crop of the other, from FAISS binary range searches: per pair, the
    closest rotation/mirror and the closest crop window (an overlay can make a window that leaves it out hash
    closer than the whole picture, which still lines up better). `windows` (all_window_codes of `thumbs`) may
    come from a cache."""
    from .vectors import binary_range

    thumbs = np.asarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)
    empty = np.zeros(0, np.int64)
    columns = [(empty, empty, empty, empty)]
    if len(thumbs) >= 2:
        orient_codes = orientation_codes(thumbs)  # (n, 8, 8)
        # orientation k of image i against the upright hash of image j
        q, j, dist = binary_range(orient_codes[:, 0], orient_codes.reshape(-1, 8), max_distance,
                                  ivf_from=ORIENT_IVF_FROM)
        columns.append((q // len(DIHEDRAL), j, dist, q % len(DIHEDRAL)))
        if crops:
            per = windows_per_image()
            windows = (all_window_codes(thumbs) if windows is None else windows).reshape(-1, 8)
            # image j whole against every window of image i: j is a crop of i
            j, wi, dist = binary_range(windows, orient_codes[:, 0], max_distance)
            columns.append((wi // per, j, dist, len(DIHEDRAL) + wi % per))
    parts = []
    for src, dst, dist, transform in columns:
        keep = src != dst
        src, dst, dist, transform = src[keep], dst[keep], dist[keep], transform[keep]
        if len(src):
            best = _closest_per_pair(src, dst, dist)
            parts.append((src[best], dst[best], dist[best], transform[best]))
    if not parts:
        return Candidates(empty, empty, empty, empty)
    return Candidates(*(np.concatenate(col).astype(np.int64) for col in zip(*parts)))


def _aligned(thumbs: np.ndarray, src: np.ndarray, dst: np.ndarray, transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate's two thumbnails, (n, 32, 32) float32 each: src seen through its transform, and dst."""
    thumbs = np.asarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)
    seen_as = np.empty((len(src), THUMB_SIDE, THUMB_SIDE), np.float32)
    order = np.argsort(transform, kind="stable")
    cuts = np.flatnonzero(np.diff(transform[order])) + 1
    for rows in np.split(order, cuts):  # one batched transform per rotation or window
        if len(rows):
            t = int(transform[rows[0]])
            kind, detail = ("orient", t) if t < len(DIHEDRAL) else ("crop", t - len(DIHEDRAL))
            seen_as[rows] = _transformed(thumbs[src[rows]].astype(np.float32), kind, detail)
    return seen_as, thumbs[dst].astype(np.float32)


# Every local edit that passed on bench/bench_quality.py had a plain agreement of 0.88 or more; the costlier
# local check is only run on candidates above this (about half of them there, a third on smooth pictures).
_LOCAL_PREFILTER = 0.7
_VERIFY_CHUNK = 16_384  # candidates aligned at once: about 130 MB of float32 thumbnails


def near_pairs(thumbs: np.ndarray, max_distance: int, *, crops: bool = True, verify: float = VERIFY_AGREEMENT,
               windows: np.ndarray | None = None, local_bits: int = LOCAL_EDIT_BITS) -> list[tuple[int, int, int]]:
    """Verified pairs (i, j, hamming), i < j: candidates() within `max_distance` that pass the thumbnail check,
    and local edits: candidates up to `local_bits` further whose thumbnails agree almost exactly outside one
    region (local_agreement)."""
    cands = candidates(thumbs, max_distance + local_bits, crops=crops, windows=windows)
    src, dst, dist, transform = cands.src, cands.dst, cands.distance, cands.transform
    ok = np.zeros(len(cands), bool)
    for start in range(0, len(cands), _VERIFY_CHUNK):
        part = slice(start, start + _VERIFY_CHUNK)
        seen_as, other = _aligned(thumbs, src[part], dst[part], transform[part])
        plain = agreement(seen_as, other)
        tilt = transform[part] >= len(DIHEDRAL) + _crop_windows()
        good = (dist[part] <= max_distance) & (plain >= np.where(tilt, max(verify, TILT_AGREEMENT), verify))
        rest = np.flatnonzero(~good & (plain >= _LOCAL_PREFILTER))
        if len(rest):
            good[rest] = local_agreement(seen_as[rest], other[rest]) >= LOCAL_EDIT_AGREEMENT
        ok[part] = good
    return _verified(src, dst, dist, ok)


def _verified(src: np.ndarray, dst: np.ndarray, dist: np.ndarray, ok: np.ndarray) -> list[tuple[int, int, int]]:
    """The candidates that passed (`ok`), closest per unordered pair, as (i, j, hamming) with i < j."""
    if not ok.any():
        return []
    src, dst, dist = src[ok], dst[ok], dist[ok]
    best = _closest_per_pair(src, dst, dist)
    lo, hi = np.minimum(src[best], dst[best]), np.maximum(src[best], dst[best])
    return list(zip(lo.tolist(), hi.tolist(), dist[best].tolist()))


def _upright_codes(thumbs: np.ndarray) -> np.ndarray:
    """(n, 32, 32) -> (n, 8) uint8: each thumbnail's own pHash (orientation_codes without the other seven)."""
    d = _dct_rows()
    return _pack(d @ _thumbs(thumbs) @ d.T)


# A whole-frame match must agree almost exactly outside one region (local_agreement), whatever its hash distance:
# on bench/bench_quality.py the plain check (0.85) let 28 look-alikes through this way (garments of the same
# shape on the same background) against 235 true pairs; at 0.997 locally, 231 true pairs and none false.
FRAME_AGREEMENT = 0.997


def frame_pairs(thumbs: np.ndarray, framed: np.ndarray, frames: np.ndarray, boxes: np.ndarray, max_distance: int, *,
                local_bits: int = LOCAL_EDIT_BITS) -> list[tuple[int, int, int]]:
    """Pairs (i, j, hamming), i < j, that line up only as whole frames: image `framed[k]` was trimmed to
    `boxes[k]` (its whole frame is `frames[k]`) and the other was not trimmed the same way, because a caption or
    logo on its bar or margin kept the bar. Candidates come from the pHash of whole frames (upright), up to
    `local_bits` past `max_distance`; each is verified on the trimmed image's thumbnail against the other's
    whole frame seen through the same box (two different pictures with the same bars share a frame hash, not
    their content), and must agree there to FRAME_AGREEMENT outside one region."""
    from .vectors import binary_range

    thumbs = np.asarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)
    framed = np.asarray(framed, dtype=np.int64)
    if not len(framed) or len(thumbs) < 2:
        return []
    whole = thumbs.copy()
    whole[framed] = frames
    codes = _upright_codes(whole)
    q, j, dist = binary_range(codes, codes[framed], max_distance + local_bits, ivf_from=ORIENT_IVF_FROM)
    i = framed[q]
    keep = i != j
    q, i, j, dist = q[keep], i[keep], j[keep], dist[keep]
    ok = np.zeros(len(q), bool)
    for start in range(0, len(q), _VERIFY_CHUNK):
        part = slice(start, start + _VERIFY_CHUNK)
        box = boxes[q[part]]
        rows = _sampling_matrices(box[:, 0], box[:, 1] - box[:, 0])
        cols = _sampling_matrices(box[:, 2], box[:, 3] - box[:, 2])
        seen = rows @ whole[j[part]].astype(np.float32) @ np.swapaxes(cols, 1, 2)
        mine = thumbs[i[part]].astype(np.float32)
        good = agreement(mine, seen) >= _LOCAL_PREFILTER
        rest = np.flatnonzero(good)
        good[rest] = local_agreement(mine[rest], seen[rest]) >= FRAME_AGREEMENT
        ok[part] = good
    return _verified(i, j, dist, ok)


def frame_distance(thumb_a: bytes, frame_a: bytes | None, thumb_b: bytes, frame_b: bytes | None) -> int:
    """pHash distance of two images' whole frames (the thumbnail itself where nothing was trimmed)."""
    from .hashing import unpack_frames

    whole = [unpack_frames([f])[0][0] if f else np.frombuffer(t, np.uint8).reshape(THUMB_SIDE, THUMB_SIDE)
             for t, f in ((thumb_a, frame_a), (thumb_b, frame_b))]
    codes = _upright_codes(np.stack(whole))
    return int(_distances(codes[:1], codes[1])[0])


def _transformed(thumb: np.ndarray, kind: str, detail: int) -> np.ndarray:
    if kind == "orient":
        return orient(thumb, detail)
    return crop_window(thumb, detail)


def best_distance(thumb_a: bytes | np.ndarray, thumb_b: bytes | np.ndarray,
                  windows_a: np.ndarray | None = None, windows_b: np.ndarray | None = None) -> int:
    """The smallest pHash distance between two images over rotations/mirrors and crop windows (either way).
    Their window codes (window_codes) may be passed in where they are already known."""
    pair = np.stack([np.frombuffer(t, np.uint8) if isinstance(t, bytes) else np.asarray(t, np.uint8).ravel()
                     for t in (thumb_a, thumb_b)]).reshape(2, THUMB_SIDE, THUMB_SIDE)
    orients = orientation_codes(pair)
    windows = window_codes(pair) if windows_a is None or windows_b is None else (windows_a, windows_b)
    up_a, up_b = orients[0, 0], orients[1, 0]
    cands = [_distances(orients[0], up_b), _distances(windows[0], up_b), _distances(windows[1], up_a)]
    return int(min(c.min() for c in cands))


def _distances(codes: np.ndarray, code: np.ndarray) -> np.ndarray:
    return np.unpackbits(codes ^ code, axis=-1).sum(axis=-1)


def rank(query_thumb: np.ndarray, thumbs: np.ndarray, k: int,
         windows: np.ndarray | None = None) -> list[tuple[int, int]]:
    """The k images nearest to a query image, (row, pHash distance) nearest first, allowing for any rotation or
    mirror of the query and for either image being a crop of the other. Images at the same distance (pHash
    distances are even, so ties are common) are ordered by how well their thumbnails agree with the query's
    after the matched rotation or crop: on bench/bench_quality.py 3-10 in 120 variants of the hard kinds had
    their original tied with a look-alike at the top."""
    from .vectors import binary_knn

    thumbs = np.asarray(thumbs, dtype=np.uint8).reshape(-1, THUMB_SIDE, THUMB_SIDE)
    n = len(thumbs)
    if not n:
        return []
    q = np.asarray(query_thumb, dtype=np.uint8).reshape(THUMB_SIDE, THUMB_SIDE)
    q_orients, q_windows = orientation_codes(q[None])[0], window_codes(q[None])[0]
    upright = orientation_codes(thumbs)[:, 0]
    k = max(1, min(k, n))
    # the query turned any way (transform 0-7), or a window of it (8 + w), against each image
    dist, rows = binary_knn(upright, np.concatenate([q_orients, q_windows]), k)
    found = [(rows.ravel(), dist.ravel(), np.repeat(np.arange(len(dist)), dist.shape[1]))]
    # the query against every window of each image (the query is a crop of it): transform -1 - w
    per = windows_per_image()
    windows = (all_window_codes(thumbs) if windows is None else windows).reshape(-1, 8)
    dist, rows = binary_knn(windows, q_orients[:1], min(len(windows), k * 8))
    found.append((rows.ravel() // per, dist.ravel(), -1 - rows.ravel() % per))
    row, dist, transform = (np.concatenate(c) for c in zip(*found))
    ok = row >= 0
    row, dist, transform = row[ok], dist[ok], transform[ok]
    best = _closest_per_key(row, dist)  # each image's closest match
    row, dist, transform = row[best], dist[best], transform[best]
    near = np.flatnonzero(dist <= np.sort(dist)[min(k, len(dist)) - 1])  # the top k, and all tied with the last
    row, dist, transform = row[near], dist[near], transform[near]
    # thumbnail agreement after the matched transform, as near_pairs verifies: the query (last) seen through its
    # rotation or window against the image, or the image seen through its window against the query
    pair = np.concatenate([thumbs[row], q[None]])
    me, them = np.full(len(row), len(row)), np.arange(len(row))
    crop_of_image = transform < 0
    seen_as, other = _aligned(pair, np.where(crop_of_image, them, me), np.where(crop_of_image, me, them),
                              np.where(crop_of_image, len(DIHEDRAL) - 1 - transform, transform))
    agree = agreement(seen_as, other)
    ranked = np.lexsort((row, -agree, dist))[:k]
    return [(int(row[i]), int(dist[i])) for i in ranked]
