"""The default keeper is the original, as a user sees it through `index` + `dupes`: not a re-encode that came out
larger, not a watermarked or turned copy, not a newer or older copy by date alone; `--keep` rules still apply."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageDraw

from tests.conftest import picture, save


def _camera_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 80D"
    exif.get_ifd(0x8769)[0x9003] = "2019:06:01 12:00:00"  # DateTimeOriginal
    if orientation:
        exif[0x0112] = orientation
    return exif


def _watermarked(img: Image.Image) -> Image.Image:
    out = img.copy()
    draw = ImageDraw.Draw(out)
    draw.ellipse((420, 300, 600, 460), outline=(255, 255, 255), width=14)
    draw.rectangle((470, 350, 550, 410), fill=(255, 255, 255))
    return out


def _set_mtime(path: Path, t: float) -> None:
    os.utime(path, (t, t))


def _kept(cli, folder: Path, **mtimes: float) -> str:
    """Set the mtimes of `folder`'s JPEGs (`camera=t` is camera.jpg), index the folder, and return the keeper's
    name."""
    for stem, t in mtimes.items():
        _set_mtime(folder / f"{stem}.jpg", t)
    assert cli("index", str(folder)).exit_code == 0
    return _keeper(cli, folder)


def _keeper(cli, folder: Path) -> str:
    out = cli.json("dupes", str(folder))
    assert len(out["groups"]) == 1, out
    return os.path.basename(out["groups"][0]["files"][0]["path"])


def test_the_original_is_kept_over_a_larger_reencode_a_watermark_and_a_turned_copy(tmp_path, cli):
    """A re-encode at a higher quality is larger than its original; the copies are older than it too."""
    img = picture(3)
    d = tmp_path / "photos"
    save(img, d / "a_original.jpg", quality=85, exif=_camera_exif())
    save(img, d / "b_reencoded.jpg", quality=92)
    save(_watermarked(img), d / "c_watermarked.jpg", quality=95)
    save(img.transpose(Image.Transpose.ROTATE_180), d / "d_upside_down.jpg", quality=95)
    assert (d / "b_reencoded.jpg").stat().st_size > (d / "a_original.jpg").stat().st_size
    for k, name in enumerate(("b_reencoded.jpg", "c_watermarked.jpg", "d_upside_down.jpg")):
        _set_mtime(d / name, 1.5e9 + k)
    _set_mtime(d / "a_original.jpg", 1.6e9)
    assert cli("index", str(d)).exit_code == 0
    assert _keeper(cli, d) == "a_original.jpg"
    html = tmp_path / "report.html"
    assert cli("dupes", str(d), "--format", "html", "-o", str(html)).exit_code in (0, 1)
    page = html.read_text()
    first = page.index('"keep":true')  # the badged card is the original's
    assert page.rindex('"name":"', 0, first) == page.rindex('"name":"a_original.jpg"', 0, first)


def test_without_exif_the_watermarked_copy_is_not_the_keeper_even_when_it_is_the_best_encoded(tmp_path, cli):
    img = picture(5)
    d = tmp_path / "photos"
    save(img, d / "original.jpg", quality=88)
    save(img, d / "smaller.jpg", quality=70)
    save(_watermarked(img), d / "marked.jpg", quality=97)
    save(_watermarked(img), d / "marked_again.jpg", quality=96)
    save(img.resize((320, 240)), d / "small.jpg", quality=90)
    assert cli("index", str(d)).exit_code == 0
    # two watermarked copies outvote nothing: the watermark is a region the rest of the group does not have
    assert _keeper(cli, d) in ("original.jpg",)


def test_a_photo_stored_with_an_exif_orientation_is_kept_over_its_upright_export(tmp_path, cli):
    img = picture(7)
    d = tmp_path / "photos"
    # a camera's portrait shot: the pixels sideways, orientation 6 turns them upright
    save(img.transpose(Image.Transpose.ROTATE_90), d / "camera.jpg", quality=90, exif=_camera_exif(6))
    save(img, d / "export.jpg", quality=90, exif=_camera_exif())  # an editor kept the EXIF but turned the pixels
    assert _kept(cli, d, camera=1.6e9, export=1.5e9) == "camera.jpg"


def test_keep_rules_still_override_the_default(tmp_path, cli):
    img = picture(9)
    d = tmp_path / "photos"
    save(img, d / "original.jpg", quality=85, exif=_camera_exif())
    save(img, d / "copy.jpg", quality=92)
    assert _kept(cli, d, original=1.5e9, copy=1.6e9) == "original.jpg"
    out = cli.json("dupes", str(d), "--keep", "newest")
    assert os.path.basename(out["groups"][0]["files"][0]["path"]) == "copy.jpg"


def _textured(seed: int, size=(640, 480)) -> Image.Image:
    """A photo-like picture: shapes plus the fine grain every camera picture has, so that its JPEG coefficients
    spread as a photo's do."""
    import numpy as np

    img = np.asarray(picture(seed, size), dtype=np.float32)
    grain = np.random.default_rng(seed).normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img + grain, 0, 255).astype(np.uint8))


def _resave(src: Path, dst: Path, **params) -> None:
    with Image.open(src) as im:
        im.convert("RGB").save(dst, **params)


def test_without_exif_a_re_encode_at_a_higher_quality_yields_to_the_file_it_was_made_from(tmp_path, cli):
    d = tmp_path / "photos"
    save(_textured(11), d / "original.jpg", quality=80)
    _resave(d / "original.jpg", d / "higher.jpg", quality=93)  # larger, better encoded, and a copy
    _resave(d / "original.jpg", d / "lower.jpg", quality=60)
    assert _kept(cli, d, original=1.6e9, higher=1.5e9) == "original.jpg"  # the copy is older, too


def test_the_compression_history_test_tells_a_re_save_from_a_first_compression(tmp_path):
    from simfind.provenance import Jpeg, resaved_from

    save(_textured(12), tmp_path / "o.jpg", quality=82)
    _resave(tmp_path / "o.jpg", tmp_path / "h.jpg", quality=95)
    _resave(tmp_path / "o.jpg", tmp_path / "l.jpg", quality=70)
    o, h, lo = (Jpeg.open(str(tmp_path / n)) for n in ("o.jpg", "h.jpg", "l.jpg"))
    assert resaved_from(h, o) is True  # h shows o's coarser table
    assert resaved_from(o, lo) is False  # o was compressed once: no trace of l's table
    save(_textured(12).resize((600, 450)), tmp_path / "other_size.jpg", quality=70)
    assert resaved_from(o, Jpeg.open(str(tmp_path / "other_size.jpg"))) is None  # blocks do not line up
    (tmp_path / "p.png").write_bytes(b"")
    assert Jpeg.open(str(tmp_path / "p.png")) is None


def test_an_editors_copy_that_kept_the_exif_is_not_taken_for_the_camera_file(tmp_path, cli):
    img = _textured(13)
    d = tmp_path / "photos"
    exif = _camera_exif()
    exif[0x0132] = "2019:06:01 12:00:00"  # a camera writes DateTime equal to DateTimeOriginal
    save(img, d / "camera.jpg", quality=80, exif=exif)
    edited = _camera_exif()
    edited[0x0132], edited[0x0131] = "2023:02:11 18:30:00", "GIMP 2.10.34"  # an editor's export
    with Image.open(d / "camera.jpg") as im:
        im.convert("RGB").resize((800, 600)).save(d / "export.jpg", quality=95, exif=edited)  # larger, too
    assert _kept(cli, d, camera=1.6e9, export=1.5e9) == "camera.jpg"


def test_a_copy_that_passed_the_exif_through_is_told_by_the_pixel_dimensions_it_records(tmp_path, cli):
    img = _textured(14)
    d = tmp_path / "photos"
    exif = _camera_exif()
    exif.get_ifd(0x8769)[0xA002], exif.get_ifd(0x8769)[0xA003] = img.size  # PixelXDimension, PixelYDimension
    save(img, d / "camera.jpg", quality=85, exif=exif)
    with Image.open(d / "camera.jpg") as im:
        im.convert("RGB").resize((960, 720)).save(d / "upscaled.jpg", quality=90, exif=im.getexif())
    assert cli("index", str(d)).exit_code == 0
    assert _keeper(cli, d) == "camera.jpg"


def test_camera_evidence_levels():
    from simfind.decode import CAMERA_AS_TAKEN, CAMERA_EDITED, NO_CAMERA, camera_evidence

    assert camera_evidence(Image.Exif(), (10, 10)) == NO_CAMERA
    taken = _camera_exif()
    taken[0x0132] = "2019:06:01 12:00:00"
    assert camera_evidence(taken, (10, 10)) == CAMERA_AS_TAKEN
    taken.get_ifd(0x8769)[0xA002], taken.get_ifd(0x8769)[0xA003] = 10, 10
    assert camera_evidence(taken, (10, 10)) == CAMERA_AS_TAKEN
    assert camera_evidence(taken, (20, 20)) == CAMERA_EDITED
    taken[0x0132] = "2020:01:01 00:00:00"
    assert camera_evidence(taken, (10, 10)) == CAMERA_EDITED


def test_a_screenshot_holding_the_picture_at_full_size_is_not_kept_over_the_original(tmp_path, cli):
    """A browser screenshot (a PNG: lossless) with the photo pasted at its own size in a larger window: its window
    and text are no picture pixels, and a picture inside a frame is a copy of it, as letterbox bars make one."""
    from tests.test_local import textured

    img = textured(7, (640, 480))
    d = tmp_path / "photos"
    save(img, d / "photo.jpg", quality=85)
    shot = Image.new("RGB", (1280, 800), (242, 242, 242))
    draw = ImageDraw.Draw(shot)
    draw.rectangle((0, 0, 1280, 56), fill=(60, 60, 64))
    for y in range(100, 760, 28):
        draw.text((40, y), "lorem ipsum dolor sit amet, photo of the day", fill=(30, 30, 30))
    shot.paste(img, (560, 150))
    save(shot, d / "screenshot.png")
    assert cli("index", str(d), "--no-clip").exit_code == 0
    assert _keeper(cli, d) == "photo.jpg"
