"""The default keeper: the share of duplicate groups whose keeper is the original.

From ../shared/data/photos, deterministic by seed: each original is a real photo resampled to a random size (55-95%
of the photo, at most 1400 px a side: a first compression, as a camera's file is) and saved as a JPEG at a random
quality with camera EXIF (Make, Model, DateTimeOriginal and DateTime as a camera writes
them, written here: the shared photos carry none); 30% are stored as a camera stores a portrait shot (pixels
sideways, an EXIF orientation that turns them upright). A second set of groups (--bare) has originals with no EXIF
at all, reported on its own line. Each original gets 1 to 6 copies, each one kind of edit drawn over wide random
ranges:
  reencode-higher / reencode-lower: the same pixels at a JPEG quality above / below the original's
  watermark: a text or logo of random size, opacity and position
  caption: a bar of random height with text, drawn over the top or bottom or added below the picture
  rotated: the pixels turned 90, 180 or 270 degrees (the copy shows the picture turned)
  exif-rotated: the original's pixels with an EXIF orientation that shows them turned
  upright-export: a sideways-stored original exported upright (pixels turned, orientation dropped)
  resized: scaled by 0.25 to 0.9 (and a few upscales, 1.1 to 1.6)
  screenshot: a PNG at 0.3 to 1.0 of the size, sometimes with a window bar above it
What a copy keeps of the EXIF depends on the tool that made it, drawn per copy: 60% drop it (Pillow's default,
web exports, chat apps), 30% keep it as editors do (DateTime set to the edit's time, Software named), 10% pass
it through byte for byte (scripts); a screenshot never has any. Every file gets a random name and a random mtime
within two years either side, so neither the name nor being oldest gives the original away. `simfind index` and `dupes` (library API, hash only, default threshold) on the folder form the
groups; each original's group counts when its keeper is the original. Printed: the share overall, by whether the
original carries camera EXIF, and for the groups holding each kind of copy (with the kind that won instead).

Usage: python bench/bench_keeper.py [--groups N] [--seed S] [--min SHARE]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict

from PIL import Image, ImageDraw, ImageFont, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench_quality import shuffled_photos  # noqa: E402

from simfind import api  # noqa: E402

KINDS = ("reencode-higher", "reencode-lower", "watermark", "caption", "rotated", "exif-rotated", "resized",
         "screenshot")
_MAKES = (("Canon", "Canon EOS 80D"), ("NIKON CORPORATION", "NIKON D750"), ("SONY", "ILCE-7M3"),
          ("Apple", "iPhone 12"), ("FUJIFILM", "X-T3"))
_WORDS = ("SAMPLE", "(c) Studio", "PREVIEW", "www.example.com", "Holiday 2019", "stock photo", "DRAFT")


_EDITORS = ("Adobe Photoshop Lightroom Classic 12.0", "GIMP 2.10.34", "Adobe Photoshop 24.1 (Windows)", "Snapseed 2.0",
            "darktable 4.2.1")


def _exif(rng: random.Random, size: tuple[int, int], orientation: int | None = None) -> Image.Exif:
    """EXIF as a camera writes it: make and model, the time taken (DateTime equal to DateTimeOriginal) and the
    stored pixel dimensions (PixelXDimension, PixelYDimension)."""
    exif = Image.Exif()
    make, model = rng.choice(_MAKES)
    exif[0x010F], exif[0x0110] = make, model
    stamp = f"20{rng.randint(10, 22)}:{rng.randint(1, 12):02d}:{rng.randint(1, 28):02d} 12:{rng.randint(0, 59):02d}:00"
    exif[0x0132] = stamp  # DateTime: a camera writes the time it took the picture
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = stamp  # DateTimeOriginal
    sub[0xA002], sub[0xA003] = size
    if orientation:
        exif[0x0112] = orientation
    return exif


def _copy_exif(exif: Image.Exif | None, rng: random.Random) -> Image.Exif | None:
    """What the tool that made a copy keeps of the original's EXIF (see the module's docstring)."""
    tool = rng.random()
    if exif is None or tool < 0.6:
        return None
    kept = Image.Exif()
    kept.load(exif.tobytes())
    if tool < 0.9:  # an editor: the time of the edit, and its name
        kept[0x0132] = f"2023:{rng.randint(1, 12):02d}:{rng.randint(1, 28):02d} 18:{rng.randint(0, 59):02d}:00"
        kept[0x0131] = rng.choice(_EDITORS)
    return kept


def _font(size: int):
    try:
        return ImageFont.load_default(size=max(8, size))
    except TypeError:  # Pillow without scalable default font
        return ImageFont.load_default()


def _watermark(im: Image.Image, rng: random.Random) -> Image.Image:
    w, h = im.size
    layer = Image.new("RGBA", im.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    alpha = round(255 * rng.uniform(0.3, 1.0))
    colour = rng.choice(((255, 255, 255), (0, 0, 0), (rng.randrange(256), rng.randrange(256), rng.randrange(256))))
    side = rng.uniform(0.08, 0.35) * min(w, h)
    x, y = rng.uniform(0, w - side), rng.uniform(0, h - side)
    if rng.random() < 0.5:
        draw.text((x, y), rng.choice(_WORDS), fill=(*colour, alpha), font=_font(round(side / 2.5)))
    else:  # a logo: a ring and a block
        draw.ellipse((x, y, x + side, y + side), outline=(*colour, alpha), width=max(2, round(side / 8)))
        draw.rectangle((x + side * 0.3, y + side * 0.3, x + side * 0.7, y + side * 0.7), fill=(*colour, alpha))
    return Image.alpha_composite(im.convert("RGBA"), layer).convert("RGB")


def _caption(im: Image.Image, rng: random.Random) -> Image.Image:
    w, h = im.size
    bar = max(8, round(rng.uniform(0.05, 0.2) * h))
    background = rng.choice(((0, 0, 0), (255, 255, 255), (30, 30, 120)))
    ink = (255, 255, 255) if sum(background) < 300 else (0, 0, 0)
    where = rng.choice(("top", "bottom", "below"))
    if where == "below":
        out = Image.new("RGB", (w, h + bar), background)
        out.paste(im, (0, 0))
        top = h
    else:
        out = im.copy()
        top = 0 if where == "top" else h - bar
        ImageDraw.Draw(out).rectangle((0, top, w, top + bar), fill=background)
    ImageDraw.Draw(out).text((rng.uniform(0.02, 0.4) * w, top + bar * 0.2), rng.choice(_WORDS), fill=ink,
                             font=_font(round(bar * 0.6)))
    return out


def _make_group(src: str, g: int, rng: random.Random, root: str, mtime0: float, camera: bool
                ) -> tuple[str, dict[str, str], bool]:
    """Write one original and its copies; returns (original path, {copy path: kind}, original has camera EXIF)."""
    im = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
    # resampled, so that the original is a first compression as a camera's is (the shared photos are JPEGs already)
    f = min(rng.uniform(0.55, 0.95), rng.randint(480, 1400) / max(im.size))
    im = im.resize((max(64, round(im.width * f)), max(64, round(im.height * f))), Image.LANCZOS)
    sideways = camera and rng.random() < 0.3
    q0 = rng.randint(75, 95)
    orientation = rng.choice((6, 8)) if sideways else None
    stored = im.transpose(Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270) \
        if sideways else im  # orientation 6 turns stored pixels 90 degrees clockwise to show them upright
    exif = _exif(rng, stored.size, orientation) if camera else None
    files: dict[str, str] = {}

    def name(ext: str) -> str:
        return os.path.join(root, f"{rng.getrandbits(48):012x}{ext}")

    original = name(rng.choice((".jpg", ".JPG", ".jpeg")))
    stored.save(original, quality=q0, **({"exif": exif} if exif else {}))
    # every copy is made from the original file, as anyone making one makes it: its decoded pixels, as stored and
    # as shown (the pixels before the original was saved exist only in the camera)
    with Image.open(original) as saved:
        stored = saved.convert("RGB")
        im = ImageOps.exif_transpose(saved).convert("RGB")
    kinds = list(KINDS) + (["upright-export"] * 2 if sideways else [])
    for kind in rng.sample(kinds, rng.randint(1, 6)):
        kept = _copy_exif(exif, rng) if kind not in ("screenshot", "upright-export") else None
        keep_exif = kept is not None
        params = {"quality": rng.randint(60, 98)}
        if keep_exif and kind not in ("rotated", "exif-rotated"):
            if kind not in ("reencode-higher", "reencode-lower") and 0x0112 in kept:
                kept[0x0112] = 1  # the pixels below are written upright
            params["exif"] = kept
        pixels = im
        if kind in ("reencode-higher", "reencode-lower"):
            lo, hi = (q0 + 1, 100) if kind == "reencode-higher" else (max(30, q0 - 35), q0 - 1)
            params["quality"] = rng.randint(lo, hi)
            pixels = stored if keep_exif else im  # with the EXIF, the orientation tag too
        elif kind == "watermark":
            pixels = _watermark(im, rng)
        elif kind == "caption":
            pixels = _caption(im, rng)
        elif kind == "rotated":
            pixels = im.transpose(rng.choice((Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                                              Image.Transpose.ROTATE_270)))
        elif kind == "exif-rotated":  # upright pixels, a tag that shows them turned
            params["exif"] = kept if keep_exif else Image.Exif()
            params["exif"][0x0112] = rng.choice((3, 6, 8))
        elif kind == "resized":
            f = rng.uniform(1.1, 1.6) if rng.random() < 0.2 else rng.uniform(0.25, 0.9)
            pixels = im.resize((max(16, round(im.width * f)), max(16, round(im.height * f))), Image.LANCZOS)
        elif kind == "screenshot":
            f = rng.uniform(0.3, 1.0)
            shot = im.resize((max(16, round(im.width * f)), max(16, round(im.height * f))), Image.BILINEAR)
            if rng.random() < 0.5:
                bar = rng.randint(20, 60)
                frame = Image.new("RGB", (shot.width, shot.height + bar), (rng.randint(200, 245),) * 3)
                frame.paste(shot, (0, bar))
                shot = frame
            path = name(".png")
            shot.save(path)
            files[path] = kind
            continue
        path = name(rng.choice((".jpg", ".jpeg")))
        pixels.save(path, **params)
        files[path] = kind
    for path in (original, *files):
        t = mtime0 + rng.uniform(-2, 2) * 365 * 86400
        os.utime(path, (t, t))
    return original, files, camera


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=150, help="groups whose original carries camera EXIF")
    ap.add_argument("--bare", type=int, default=40, help="groups whose original carries no EXIF (reported apart)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min", type=float, default=None,
                    help="exit 1 when the share for originals with camera EXIF is below this")
    a = ap.parse_args()
    drawn = shuffled_photos(a.seed)
    if drawn is None:
        return 0
    rng, photos = drawn
    work = tempfile.mkdtemp(prefix="simfind-keeper-")
    try:
        root = os.path.join(work, "set")
        os.makedirs(root)
        groups = [_make_group(src, g, rng, root, 1.6e9, camera=g < a.groups)
                  for g, src in enumerate(photos[: a.groups + a.bare])]
        index_dir = os.path.join(work, "index")
        api.index([root], index_dir=index_dir)
        t0 = time.perf_counter()
        report = api.duplicates(index_dir=index_dir, by="hash")
        dupes_s = time.perf_counter() - t0
        keeper_of = {m.file.path: g.keep.path for g in report.groups for m in g.members}
        by_kind: dict[bool, dict[str, list[bool]]] = {True: defaultdict(list), False: defaultdict(list)}
        by_exif: dict[bool, list[bool]] = defaultdict(list)
        lost_to: dict[bool, Counter] = {True: Counter(), False: Counter()}
        ungrouped = 0
        for original, copies, camera in groups:
            if original not in keeper_of:
                ungrouped += 1
                continue
            keeper = keeper_of[original]
            ok = keeper == original
            by_exif[camera].append(ok)
            members = {p: k for p, k in copies.items() if keeper_of.get(p) == keeper}
            for kind in set(members.values()):
                by_kind[camera][kind].append(ok)
            if not ok:
                lost_to[camera][copies.get(keeper, "another picture")] += 1
        print(f"keeper bench: {len(groups)} originals with {sum(len(c) for _, c, _ in groups)} copies; "
              f"{sum(map(len, by_exif.values()))} originals grouped ({ungrouped} with no copy found); "
              f"dupes {dupes_s:.2f} s")
        for camera in (True, False):
            oks = by_exif[camera]
            label = "originals with camera EXIF" if camera else "originals without EXIF (--bare)"
            print(f"keeper is the original, {label}: {sum(oks) / max(1, len(oks)):.3f} ({sum(oks)} of {len(oks)})")
            print(f"  {'groups holding a copy':<24} share  groups  (kept instead)")
            for kind in (*KINDS, "upright-export"):
                kinds = by_kind[camera].get(kind, [])
                if kinds:
                    print(f"  {kind:<24} {sum(kinds) / len(kinds):.3f}  {len(kinds):>6}  ({lost_to[camera].get(kind, 0)})")
        share = sum(by_exif[True]) / max(1, len(by_exif[True]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if a.min is not None and share < a.min else 0


if __name__ == "__main__":
    sys.exit(main())
