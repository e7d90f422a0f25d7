"""FileRef -> a small RGB image (or a Failure with a reason).

Each file is read once: the caller hashes the same bytes for exact-copy detection. JPEGs are decoded
in draft mode (DCT scaling, 1/2 to 1/8) to the smallest size the features need; EXIF orientation is
applied; every Pillow mode becomes RGB (alpha composited over white, 16-bit and float scaled to 8-bit).
Animated GIF/WebP give their first frame; HEIC/HEIF/AVIF come through pillow-heif.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_ORIENTATION_TAG = 0x0112
# Camera fields: Make, Model (IFD0) and DateTimeOriginal (the EXIF sub-IFD). A camera or phone writes them; a
# screenshot or a re-encode without EXIF leaves them out. DateTime (IFD0, "ModifyDate") is written by the camera
# equal to DateTimeOriginal, and set to the time of the edit by editors that keep the EXIF (Lightroom, Photoshop,
# GIMP, phone photo editors): a later DateTime marks a file changed since it was taken.
_CAMERA_TAGS = (0x010F, 0x0110)
_DATETIME = 0x0132
_EXIF_IFD, _DATETIME_ORIGINAL, _PIXEL_X, _PIXEL_Y = 0x8769, 0x9003, 0xA002, 0xA003
NO_CAMERA, CAMERA_EDITED, CAMERA_AS_TAKEN = 0, 1, 2
# The IJG luminance table (quality 50, natural order). libjpeg scales it by quality (jcparam.c), and most encoders
# follow it, so the sum of a file's luminance table tells the quality it was saved at.
IJG_LUMINANCE = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
_SWAPS_AXES = {5, 6, 7, 8}
_BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class Decoded:
    image: Image.Image  # RGB (or L where grey was asked for), small (draft-decoded), orientation applied
    width: int  # full size as displayed
    height: int
    camera: int = NO_CAMERA  # camera EXIF: none, edited since it was taken, or as the camera wrote it
    quality: int | None = None  # JPEG quality estimated from the luminance quantisation table; None: not a JPEG
    orientation: int | None = None  # the EXIF orientation tag as stored (None: none)


class DecodeError(Exception):
    """Raised with a reason a user can read; the pipeline records it as a Failure."""


def decode(data: bytes, draft_size: int, *, grey: bool = False) -> Decoded:
    """Decode image bytes. Raises DecodeError with a readable reason for anything that is not a usable image.
    `grey`: only grey levels are needed (hashing without CLIP): a colour JPEG is decoded straight to its luma
    channel, skipping chroma upsampling and colour conversion (5% of a draft decode); other files give RGB."""
    if not data:
        raise DecodeError("empty file (0 bytes)")
    if data[4:8] == b"ftyp":  # an ISO media file: HEIC/HEIF (iPhone photos) or AVIF
        _register_heif()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning for big-but-allowed photos, EXIF noise
        try:
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            exif = _exif(img)
            orientation = exif.get(_ORIENTATION_TAG) if exif is not None else None
            camera = NO_CAMERA if exif is None else camera_evidence(exif, img.size)
            quality = jpeg_quality(img)
            if orientation in _SWAPS_AXES:
                width, height = height, width
            if getattr(img, "is_animated", False):
                img.seek(0)
            if img.format == "JPEG":
                img.draft("L" if grey and img.mode == "RGB" else None, (draft_size, draft_size))
            img.load()
            if orientation not in (None, 1):
                img = ImageOps.exif_transpose(img)
            rgb = img if grey and img.mode == "L" else to_rgb(img)
        except Image.DecompressionBombError as e:
            raise DecodeError(f"image too large, refused as a possible decompression bomb ({e})") from None
        except UnidentifiedImageError:
            raise DecodeError("not an image Pillow can read (unknown or corrupt format)") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError) as e:
            raise DecodeError(_reason(e)) from None
        except MemoryError:
            raise DecodeError("out of memory decoding this image") from None
    return Decoded(rgb, width, height, camera, quality, orientation if isinstance(orientation, int) else None)


@lru_cache(maxsize=1)
def _register_heif() -> None:
    """pillow-heif's openers, registered on the first HEIF/AVIF file: importing it slows every decode worker's
    start, and most folders hold none."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # pragma: no cover - declared dependency; a broken install still indexes the rest
        pass


def _exif(img: Image.Image) -> Image.Exif | None:
    try:
        return img.getexif()
    except Exception:  # a broken EXIF block must not lose the picture
        return None


def camera_evidence(exif: Image.Exif, stored_size: tuple[int, int]) -> int:
    """NO_CAMERA; CAMERA_EDITED: camera fields, but a DateTime later than when it was taken, or pixel dimensions
    (PixelXDimension/PixelYDimension, which cameras write) other than the file's own, as a resized, cropped or
    captioned copy that passed the EXIF through has; else CAMERA_AS_TAKEN."""
    try:
        sub = exif.get_ifd(_EXIF_IFD)
        taken = sub.get(_DATETIME_ORIGINAL)
        if not (taken or any(exif.get(tag) for tag in _CAMERA_TAGS)):
            return NO_CAMERA
        modified = exif.get(_DATETIME)
        if taken and modified and str(modified).strip() != str(taken).strip():
            return CAMERA_EDITED
        recorded = (sub.get(_PIXEL_X), sub.get(_PIXEL_Y))
        if all(isinstance(v, int) and v > 0 for v in recorded) and recorded != tuple(stored_size):
            return CAMERA_EDITED
        return CAMERA_AS_TAKEN
    except Exception:
        return NO_CAMERA


def jpeg_quality(img: Image.Image) -> int | None:
    """The quality (1-100) a JPEG was saved at, estimated from its luminance quantisation table; None for other
    formats."""
    tables = getattr(img, "quantization", None)
    if img.format != "JPEG" or not tables:
        return None
    luma = tables.get(0) if isinstance(tables, dict) else None
    return table_quality(luma) if luma else None


def table_quality(luma) -> int:
    """The libjpeg quality whose scaling of the IJG table comes closest to this luminance table (by its sum)."""
    scale = 100.0 * sum(luma) / sum(IJG_LUMINANCE)  # percent of the quality-50 table
    quality = 100.0 - scale / 2.0 if scale <= 100.0 else 5000.0 / scale
    return max(1, min(100, round(quality)))


def ijg_table(quality: int) -> np.ndarray:
    """The luminance table libjpeg (and Pillow, and most encoders) writes at `quality` (jcparam.c), (8, 8)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    base = np.array(IJG_LUMINANCE, dtype=np.int64).reshape(8, 8)
    return np.clip((base * scale + 50) // 100, 1, 255).astype(np.float64)


def _reason(e: BaseException) -> str:
    msg = str(e).strip() or type(e).__name__
    if "truncated" in msg.lower():
        return f"truncated image data ({msg})"
    return f"corrupt image data ({msg})"


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB. Transparency is composited over white; high bit depths are scaled, not clipped."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_l(img).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("PA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, _BACKGROUND)
        background.paste(img, mask=img.getchannel("A"))
        return background
    if img.mode == "RGB":
        return img
    if img.mode in ("LAB", "HSV", "YCbCr"):
        return _via_array(img)
    return img.convert("RGB")


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    arr = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16"):
        arr = arr / 257.0
    elif img.mode == "F" and arr.size and np.nanmax(arr) <= 1.0:
        arr = arr * 255.0
    elif arr.size and np.nanmax(arr) > 255:
        arr = arr / (65535.0 if np.nanmax(arr) <= 65535 else np.nanmax(arr)) * 255.0
    return Image.fromarray(np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8), "L")


def _via_array(img: Image.Image) -> Image.Image:
    if img.mode == "LAB":
        from PIL import ImageCms

        return ImageCms.applyTransform(
            img, ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
        )
    return img.convert("RGB")
