"""Which of two JPEGs of one picture was made from the other: the traces a second compression leaves.

A JPEG stores each 8x8 block's DCT coefficients as multiples of its quantisation table. Decode such a file and
save the pixels again with a finer table, and the new coefficients still sit near multiples of the first, coarser
table: their histogram, on the finer grid, has gaps where no multiple of the coarser step falls (the periodic
artefacts of double compression; Popescu & Farid 2004, Lukas & Fridrich 2003). A file compressed once has a smooth
histogram there. So for two files of the same stored size, the finer one shows the coarser one's table in its
coefficients exactly when it was re-saved from it (or from another file with that table): the coarser is the
source even though its quality is lower.

Nothing here is a tuned constant: a frequency takes part only where the coarser step leaves gaps on the finer
grid, and the verdict is the midpoint between no gaps (compressed once: the gap bins hold what a smooth histogram
puts there) and empty gaps (re-saved).
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# AC frequencies (row, column) in zig-zag order after DC: the low and middle ones, where photos have coefficients
# away from zero; high ones are mostly zero after quantisation and say nothing.
_FREQUENCIES = ((0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1), (3, 0), (4, 0), (3, 1), (2, 2),
                (1, 3), (0, 4), (0, 5), (1, 4), (2, 3), (3, 2), (4, 1), (5, 0))
_MAX_INDEX = 40  # quantised values beyond this are too rare to shape a histogram
_MIN_EXPECTED = 50  # coefficients a smooth histogram would put in the gaps, at the least, for a verdict


class Jpeg:
    """What the test needs of one JPEG file: its stored size, EXIF orientation and luminance table."""

    def __init__(self, path: str, size: tuple[int, int], orientation: int | None, table: np.ndarray):
        self.path = path
        self.size = size
        self.orientation = orientation
        self.table = table  # (8, 8) luminance quantisation steps, natural order

    @classmethod
    def open(cls, path: str) -> Jpeg | None:
        """None for a file that is not a readable baseline JPEG with a luminance table."""
        import numpy as np
        from PIL import Image

        try:
            with Image.open(path) as img:
                tables = getattr(img, "quantization", None)
                if img.format != "JPEG" or not tables or len(tables.get(0, ())) != 64:
                    return None
                orientation = img.getexif().get(0x0112)
                return cls(path, img.size, orientation, np.array(tables[0], dtype=np.float64).reshape(8, 8))
        except Exception:  # unreadable now, or a broken header: no evidence either way
            return None


def resaved_from(finer: Jpeg, coarser: Jpeg) -> bool | None:
    """True when `finer` was saved from pixels that had been compressed with `coarser`'s table, False when its
    coefficients show no such trace, None when the two cannot be compared (other stored size or orientation, no
    frequency where `coarser` is the coarser table, too few coefficients, or the file cannot be decoded)."""
    import numpy as np

    if finer.size != coarser.size or (finer.orientation or 1) != (coarser.orientation or 1):
        return None
    usable = [(r, c) for r, c in _FREQUENCIES if coarser.table[r, c] > finer.table[r, c]]
    if not usable:
        return None
    coefficients = _coefficients(finer.path)
    if coefficients is None:
        return None
    observed = expected = 0.0
    for r, c in usable:
        fine, coarse = finer.table[r, c], coarser.table[r, c]
        counts = _histogram(np.rint(coefficients[:, r, c] / fine).astype(np.int64))
        gaps = _gaps(fine, coarse)
        smooth = _smoothed(counts, _period(fine, coarse))
        observed += float(counts[gaps].sum())
        expected += float(smooth[gaps].sum())
    if expected < _MIN_EXPECTED:
        return None
    return observed < 0.5 * expected


def _coefficients(path: str) -> np.ndarray | None:
    """(blocks, 8, 8) DCT coefficients of the luminance, as the encoder computed them (up to pixel rounding)."""
    import numpy as np
    from PIL import Image

    try:
        with open(path, "rb") as fh:
            img = Image.open(io.BytesIO(fh.read()))
            img.draft("L", img.size)  # the decoder's own luminance, at full size: no colour conversion
            luma = np.asarray(img.convert("L"), dtype=np.float64) - 128.0
    except Exception:
        return None
    h, w = (luma.shape[0] // 8) * 8, (luma.shape[1] // 8) * 8
    if h == 0 or w == 0:
        return None
    blocks = luma[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    d = _dct_matrix()
    return d @ blocks @ d.T


def _dct_matrix() -> np.ndarray:
    """The orthonormal 8-point DCT-II: JPEG's forward DCT is this in both directions."""
    import numpy as np

    k = np.arange(8)[:, None]
    n = np.arange(8)[None, :]
    m = np.cos((2 * n + 1) * k * np.pi / 16) * np.sqrt(2 / 8)
    m[0] /= np.sqrt(2)
    return m


def _histogram(indices: np.ndarray) -> np.ndarray:
    """Counts of quantised values -_MAX_INDEX.._MAX_INDEX (index i holds value i - _MAX_INDEX); zero left out: every
    grid has it, so it tells nothing, and its peak would swamp the smoothing."""
    import numpy as np

    kept = indices[(indices != 0) & (np.abs(indices) <= _MAX_INDEX)]
    return np.bincount(kept + _MAX_INDEX, minlength=2 * _MAX_INDEX + 1).astype(np.float64)


def _gaps(fine: float, coarse: float) -> np.ndarray:
    """The quantised values (as histogram indices) whose value on the fine grid lies more than half a fine step from
    every multiple of the coarse step: where a re-saved file has (next to) nothing."""
    import numpy as np

    values = (np.arange(2 * _MAX_INDEX + 1) - _MAX_INDEX) * fine
    distance = np.abs(values - coarse * np.rint(values / coarse))
    gaps = distance > fine / 2 + 0.5  # half a step, and the decoder's pixel rounding
    gaps[_MAX_INDEX] = False
    return gaps


def _period(fine: float, coarse: float) -> int:
    """How many fine steps the pattern of gaps takes to repeat."""
    f, c = int(round(fine)), int(round(coarse))
    return max(1, c // math.gcd(f, c))


def _smoothed(counts: np.ndarray, period: int) -> np.ndarray:
    """What a histogram without gaps would hold at each value: the mean over one period of the gap pattern around
    it (zero's bin, left out, does not count)."""
    import numpy as np

    present = np.ones_like(counts)
    present[_MAX_INDEX] = 0.0
    width = period if period % 2 else period + 1
    kernel = np.ones(width)
    total = np.convolve(counts, kernel, mode="same")
    n = np.convolve(present, kernel, mode="same")
    return np.where(n > 0, total / np.maximum(n, 1), 0.0)
