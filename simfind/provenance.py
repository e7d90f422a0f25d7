"""Which of two JPEGs of one picture was made from the other: the traces a second compression leaves.

A JPEG stores each 8x8 block's DCT coefficients as multiples of its quantisation table. Decode such a file and
save the pixels again with a finer table, and the new coefficients still sit near multiples of the first, coarser
table: their histogram, on the finer grid, has gaps and peaks where multiples of the coarser step fall (the
periodic artefacts of double compression; Popescu & Farid 2004, Lukas & Fridrich 2003). A file compressed once has a smooth
histogram there. So for two files of the same stored size, the finer one shows the coarser one's table in its
coefficients exactly when it was re-saved from it (or from another file with that table): the coarser is the
source even though its quality is lower.

The verdict is a likelihood ratio per histogram (resaved_from): compressed once (a smooth histogram) against
re-saved (the same smooth values quantised with the coarser step, decoded with the noise measured on the file
itself, quantised again with the finer one), at a conventional Bayes factor of 20. The other constants are not
fitted to a benchmark: the frequencies are the low and middle ones a photo fills, a histogram needs a couple of
hundred coefficients to have a shape, and 1% of each is spread evenly so that blocks an edit redrew (a watermark)
are not impossible under either hypothesis.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# AC frequencies (row, column) in zig-zag order after DC: the low and middle ones, where photos have coefficients
# away from zero; high ones are mostly zero after quantisation and say nothing.
_FREQUENCIES = ((0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1), (3, 0), (4, 0), (3, 1), (2, 2),
                (1, 3), (0, 4), (0, 5), (1, 4), (2, 3), (3, 2), (4, 1), (5, 0))
_MAX_INDEX = 40  # quantised values beyond this are too rare to shape a histogram


class Jpeg:
    """What the test needs of one JPEG file: its stored size, EXIF orientation and luminance table, and (decoded
    once, when first asked for) the DCT coefficients of its luminance. The file is read once."""

    def __init__(self, path: str, data: bytes, size: tuple[int, int], orientation: int | None, table: np.ndarray):
        self.path = path
        self.size = size
        self.orientation = orientation
        self.table = table  # (8, 8) luminance quantisation steps, natural order
        self._data: bytes | None = data
        self._coefficients: np.ndarray | None = None

    @classmethod
    def open(cls, path: str) -> Jpeg | None:
        """None for a file that is not a readable baseline JPEG with a luminance table."""
        import numpy as np
        from PIL import Image

        try:
            with open(path, "rb") as fh:
                data = fh.read()
            with Image.open(io.BytesIO(data)) as img:
                tables = getattr(img, "quantization", None)
                if img.format != "JPEG" or not tables or len(tables.get(0, ())) != 64:
                    return None
                orientation = img.getexif().get(0x0112)
                return cls(path, data, img.size, orientation, np.array(tables[0], dtype=np.float64).reshape(8, 8))
        except Exception:  # unreadable now, or a broken header: no evidence either way
            return None

    def coefficients(self) -> np.ndarray | None:
        """(blocks, 8, 8) DCT coefficients of the luminance, as the encoder computed them (up to pixel rounding);
        None where the picture cannot be decoded."""
        if self._data is not None:
            self._coefficients = _coefficients(self._data)
            self._data = None  # decoded once; the bytes are not needed again
        return self._coefficients


def resaved_from(finer: Jpeg, coarser: Jpeg) -> bool | None:
    """True when `finer` was saved from pixels that had been compressed with `coarser`'s table, False when its
    coefficients show no such trace, None when the two cannot be compared (other stored size or orientation, no
    frequency where `coarser` is the coarser table, too few coefficients, or the file cannot be decoded).

    A likelihood ratio over the histograms of the low and middle frequencies: a smooth histogram (compressed once)
    against the same smooth values first quantised with the coarser table, then with the finer one, with the
    decoder's rounding noise as measured on the file's own grid. Re-saved where that is at least twenty times as
    likely (a Bayes factor of 20, "strong" in Kass & Raftery's scale), and where no nearby table (libjpeg's at
    neighbouring qualities) explains it twenty times better: a file re-saved from a third file, with a table
    like the coarser one's but not it, is not taken for a copy of the coarser one."""
    import numpy as np

    if finer.size != coarser.size or (finer.orientation or 1) != (coarser.orientation or 1):
        return None
    usable = [(r, c) for r, c in _FREQUENCIES if coarser.table[r, c] > finer.table[r, c]]
    if not usable:
        return None
    coefficients = finer.coefficients()
    if coefficients is None:
        return None
    sigma = _rounding_noise(coefficients, finer.table)
    histograms = []
    for r, c in usable:
        counts = _histogram(np.rint(coefficients[:, r, c] / finer.table[r, c]).astype(np.int64))
        if counts.sum() >= _MIN_COUNTS:
            histograms.append(((r, c), counts))
    if not histograms:
        return None

    def evidence(table: np.ndarray) -> float:
        """log P(histograms | re-saved from `table`) - log P(histograms | compressed once)."""
        total = 0.0
        for (r, c), counts in histograms:
            fine, coarse = finer.table[r, c], table[r, c]
            once = _smoothed(counts, _period(fine, max(coarse, 1.0)))
            twice = _requantised(once, fine, coarse, sigma)
            n = counts.sum()
            total += float((counts * (np.log(_mix(twice, n)) - np.log(_mix(once, n)))).sum())
        return total

    threshold = math.log(_BAYES_FACTOR)
    own = evidence(coarser.table)
    if own <= threshold:
        return False
    keys = [rc for rc, _counts in histograms]
    rivals = [t for t in _nearby_tables(coarser.table) if any(t[rc] != coarser.table[rc] for rc in keys)]
    return all(evidence(t) - own <= threshold for t in rivals)


def _nearby_tables(table: np.ndarray, reach: int = 6) -> list[np.ndarray]:
    """libjpeg's luminance tables at qualities within `reach` of the one `table` is closest to."""
    from .decode import ijg_table, table_quality

    centre = table_quality(table.ravel().tolist())
    return [ijg_table(q) for q in range(max(1, centre - reach), min(100, centre + reach) + 1)]


_MIN_COUNTS = 200  # coefficients away from zero in a frequency, at the least, for its histogram to say anything
_BAYES_FACTOR = 20.0
_FLOOR = 0.01  # share of each histogram spread evenly: a block the edit redrew must not be "impossible"


def _rounding_noise(coefficients: np.ndarray, table: np.ndarray) -> float:
    """The spread of the decoded coefficients around the file's own grid (pixel rounding, the decoder's integer
    IDCT): measured on the frequencies whose step is wide enough for the nearest grid point to be the right one."""
    import numpy as np

    steps = table[None]
    wide = np.broadcast_to(steps >= 4, coefficients.shape)
    residual = coefficients - steps * np.rint(coefficients / steps)
    picked = residual[wide & (np.abs(coefficients) > steps / 2)]
    if picked.size < 100:
        return 0.5
    return round(float(max(0.2, np.sqrt(np.mean(picked**2)))), 2)  # two decimals: all the measure can tell


def _requantised(smooth: np.ndarray, fine: float, coarse: float, sigma: float) -> np.ndarray:
    """The histogram (on the fine grid) of values drawn from `smooth`'s density, quantised first with the coarse
    step, decoded with noise `sigma`, then quantised with the fine step."""
    import numpy as np

    n = np.arange(len(smooth)) - _MAX_INDEX
    density = smooth.copy()
    density[_MAX_INDEX] = 0.5 * (density[_MAX_INDEX - 1] + density[_MAX_INDEX + 1])  # zero's bin, left out
    m, moves = _transitions(float(fine), float(coarse), float(sigma))
    weight = np.interp(m * coarse / fine, n, density, left=0.0, right=0.0) * coarse / fine  # mass per coarse bin
    out = moves @ weight
    out[_MAX_INDEX] = 0.0
    return out


@lru_cache(maxsize=512)
def _transitions(fine: float, coarse: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The coarse indices m and P(fine index n | coarse index m), (2 * _MAX_INDEX + 1, len(m)): the same for
    every histogram with these steps, and tables share most of their steps."""
    import numpy as np

    top = int(math.ceil(_MAX_INDEX * fine / coarse)) + 1
    m = np.arange(-top, top + 1)
    edges = ((np.arange(2 * _MAX_INDEX + 2) - _MAX_INDEX - 0.5)[:, None] * fine - m[None] * coarse) / sigma
    cdf = _phi(edges)
    return m, cdf[1:] - cdf[:-1]


def _phi(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF (erf by Abramowitz and Stegun 7.1.26, error below 1.5e-7)."""
    import numpy as np

    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def _mix(expected: np.ndarray, total: float) -> np.ndarray:
    """`expected` scaled to `total`, with _FLOOR of it spread over every value but zero."""
    import numpy as np

    present = np.ones_like(expected)
    present[_MAX_INDEX] = 0.0
    shape = expected / max(expected.sum(), 1e-12)
    shape = (1 - _FLOOR) * shape + _FLOOR * present / present.sum()
    shape[_MAX_INDEX] = 1.0  # zero's bin holds no counts: any value will do
    return shape * total


def _coefficients(data: bytes) -> np.ndarray | None:
    import numpy as np
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
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


def _period(fine: float, coarse: float) -> int:
    """How many fine steps the pattern of gaps takes to repeat."""
    f, c = int(round(fine)), int(round(coarse))
    return max(1, c // math.gcd(f, c))


def _smoothed(counts: np.ndarray, period: int) -> np.ndarray:
    """What a histogram without the pattern would hold at each value: the geometric mean over one period of the
    pattern around it (zero's bin, left out, does not count). A photo's coefficients fall off about exponentially
    from zero, and a geometric mean leaves an exponential as it is where an arithmetic one would bend it."""
    import numpy as np

    present = np.ones_like(counts)
    present[_MAX_INDEX] = 0.0
    width = period if period % 2 else period + 1
    kernel = np.ones(width)
    logs = np.log(counts + 0.5) * present
    total = np.convolve(logs, kernel, mode="same")
    n = np.convolve(present, kernel, mode="same")
    out = np.where(n > 0, np.exp(total / np.maximum(n, 1)) - 0.5, 0.0)
    return np.maximum(out, 0.0) * present
