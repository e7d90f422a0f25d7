"""Decoding: every Pillow mode becomes the same picture; every bad file becomes a readable reason."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from simfind.decode import DecodeError, decode, to_rgb
from simfind.hashing import image_phash as perceptual_hash
from simfind.hashing import similarity

from .conftest import jpeg_bytes, picture


def encoded(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def phash_of(data: bytes) -> bytes:
    return perceptual_hash(decode(data, 64).image)


REFERENCE = picture(7)


@pytest.mark.parametrize(
    "mode,fmt",
    [("RGB", "PNG"), ("L", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("LA", "PNG"), ("RGBA", "PNG"),
     ("YCbCr", "JPEG"), ("1", "PNG"), ("RGB", "WEBP"), ("RGB", "TIFF"), ("RGB", "BMP")],
)
def test_every_mode_decodes_to_the_same_picture(mode, fmt):
    ref = perceptual_hash(REFERENCE)
    got = decode(encoded(REFERENCE.convert(mode), fmt), 64)
    assert got.image.mode == "RGB"
    assert (got.width, got.height) == REFERENCE.size
    floor = 0.8 if mode == "1" else 0.9  # 1-bit is dithered
    assert similarity(ref, perceptual_hash(got.image)) >= floor


def test_sixteen_bit_grey_is_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 256, dtype=np.uint16), (64, 1))
    sixteen = Image.fromarray(ramp)
    assert sixteen.mode.startswith("I;16")
    got = decode(encoded(sixteen, "PNG"), 64).image.convert("L")
    values = np.asarray(got)
    assert values.min() < 10 and values.max() > 245
    assert 100 < values[:, 128].mean() < 160  # the middle of the ramp is mid-grey, not white


def test_transparency_is_composited_over_white():
    rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    rgba.paste((200, 0, 0, 255), (25, 25, 75, 75))
    got = decode(encoded(rgba, "PNG"), 64).image
    assert got.getpixel((2, 2)) == (255, 255, 255)
    assert got.getpixel((50, 50)) == (200, 0, 0)
    pa = rgba.convert("PA")
    assert to_rgb(pa).getpixel((2, 2)) == (255, 255, 255)


def test_animated_gif_gives_its_first_frame():
    first, second = picture(1), picture(2)
    data = encoded(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    h = phash_of(data)
    assert similarity(h, perceptual_hash(first)) >= 0.85
    assert similarity(h, perceptual_hash(first)) > similarity(h, perceptual_hash(second))


def test_exif_orientation_is_applied_and_reported_dimensions_are_as_displayed():
    stored = REFERENCE.transpose(Image.Transpose.ROTATE_90)  # sideways on disk
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    got = decode(jpeg_bytes(stored, quality=90, exif=exif.tobytes()), 64)
    assert (got.width, got.height) == REFERENCE.size
    assert similarity(perceptual_hash(got.image), perceptual_hash(REFERENCE)) >= 0.9


def test_jpeg_is_draft_decoded_small():
    big = picture(3, (2400, 1600))
    got = decode(jpeg_bytes(big), 64)
    assert (got.width, got.height) == (2400, 1600)  # full size is still reported
    assert max(got.image.size) <= 300  # but only a 1/8 scale was decoded


def test_grey_decoding_gives_the_same_grey_picture_and_hash():
    """Hash-only indexing decodes colour JPEGs straight to luma: the same grey levels (to rounding) and pHash
    as decoding to RGB and converting, EXIF orientation applied all the same."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = jpeg_bytes(picture(7).transpose(Image.Transpose.ROTATE_90), quality=90, exif=exif.tobytes())
    grey, rgb = decode(data, 64, grey=True), decode(data, 64)
    assert (grey.image.mode, rgb.image.mode) == ("L", "RGB") and grey.image.size == rgb.image.size
    diff = np.abs(np.asarray(grey.image, np.int16) - np.asarray(rgb.image.convert("L"), np.int16))
    assert diff.max() <= 2 and (grey.width, grey.height) == (rgb.width, rgb.height) == picture(7).size
    assert similarity(perceptual_hash(grey.image), perceptual_hash(rgb.image)) >= 62 / 64
    assert decode(jpeg_bytes(picture(7).convert("CMYK")), 64, grey=True).image.mode == "RGB"  # not luma: RGB


def test_heic_through_pillow_heif():
    """An iPhone photo decodes although nothing registered pillow-heif with Pillow before (decode does so when
    it meets a HEIF file); the file is written through pillow-heif's own API, not Pillow's registry."""
    import pillow_heif

    data = io.BytesIO()
    try:
        pillow_heif.from_pillow(REFERENCE).save(data, format="HEIF", quality=90)
    except (KeyError, OSError, ValueError, RuntimeError) as e:
        pytest.skip(f"this pillow-heif build cannot encode HEIF to make a test file: {e}")
    got = decode(data.getvalue(), 64)
    assert similarity(perceptual_hash(got.image), perceptual_hash(REFERENCE)) >= 0.9


def _png_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded(Image.new("L", (8, 8)), "PNG"))
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    return bytes(data)


BAD_FILES = {
    "empty": (b"", "empty file"),
    "not an image": (b"this is a text file with a .jpg name\n" * 20, "not an image"),
    "truncated": (jpeg_bytes(picture(4))[:3000], "truncated"),
    "truncated header": (jpeg_bytes(picture(4))[:300], ""),
    "corrupt": (b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)), ""),
    "decompression bomb": (_png_claiming(100_000, 100_000), "decompression bomb"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_raise_a_readable_reason(kind):
    data, words = BAD_FILES[kind]
    with pytest.raises(DecodeError) as e:
        decode(data, 64)
    assert words in str(e.value)
    assert "\n" not in str(e.value)
