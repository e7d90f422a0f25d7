"""Content hashes (exact copies) and perceptual hashes (same picture, different bytes)."""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

HASH_BITS = 64


def content_hash(data: bytes) -> bytes:
    """128-bit BLAKE2b of the file's bytes: equal digests mean byte-identical files."""
    return hashlib.blake2b(data, digest_size=16).digest()


def perceptual_hash(image: Image.Image) -> bytes:
    """imagehash's 64-bit pHash, packed to 8 bytes (the layout FAISS binary indexes take)."""
    import imagehash  # numpy + scipy: only where pixels are hashed, not on a stat-only re-index
    import numpy as np

    bits = imagehash.phash(image).hash.reshape(-1)
    return np.packbits(bits).tobytes()


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
