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
    _set_mtime(d / "camera.jpg", 1.6e9)
    _set_mtime(d / "export.jpg", 1.5e9)
    assert cli("index", str(d)).exit_code == 0
    assert _keeper(cli, d) == "camera.jpg"


def test_keep_rules_still_override_the_default(tmp_path, cli):
    img = picture(9)
    d = tmp_path / "photos"
    save(img, d / "original.jpg", quality=85, exif=_camera_exif())
    save(img, d / "copy.jpg", quality=92)
    _set_mtime(d / "original.jpg", 1.5e9)
    _set_mtime(d / "copy.jpg", 1.6e9)
    assert cli("index", str(d)).exit_code == 0
    assert _keeper(cli, d) == "original.jpg"
    out = cli.json("dupes", str(d), "--keep", "newest")
    assert os.path.basename(out["groups"][0]["files"][0]["path"]) == "copy.jpg"
