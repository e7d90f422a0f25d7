"""Perceptual matching that survives real edits: rotations, mirrors, crops, borders; and stays precise."""

from __future__ import annotations

import os

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont, ImageOps

from simfind.decode import decode
from simfind.hashing import content_box, perceptual_hash, perceptual_hashes, thumbnail
from simfind.orientations import DIHEDRAL, orient, orientation_codes
from simfind.verify import best_distance, near_pairs

from .conftest import SHARED_DATA, group_paths, picture, save


def test_stored_phash_is_imagehash_phash_of_the_thumbnail():
    for seed in range(5):
        img = picture(seed)
        thumb = thumbnail(img)
        expected = np.packbits(imagehash.phash(img).hash.reshape(-1)).tobytes()
        # no border to trim here, so the thumbnail is imagehash's own 32x32 input
        assert perceptual_hash(thumb) == expected
        assert orientation_codes(thumb[None])[0, 0].tobytes() == expected


def _synthetic_thumbnails() -> list[np.ndarray]:
    """Pictures whose DCT coefficients tie with the median: flat, black, two halves, stripes, a single dot."""
    flat, black = np.full((32, 32), 128, np.uint8), np.zeros((32, 32), np.uint8)
    halves = np.zeros((32, 32), np.uint8)
    halves[:, 16:] = 255
    stripes = np.tile(np.array([0, 255] * 16, np.uint8), (32, 1))
    dot = black.copy()
    dot[5, 7] = 200
    return [flat, black, halves, stripes, dot, halves.T.copy()]


def test_batched_phashes_are_imagehash_phashes_bit_for_bit():
    """The index stores imagehash's pHash; the batched DCT must give the same 64 bits, ties included."""
    thumbs = [thumbnail(picture(seed, (200 + 7 * seed, 150))) for seed in range(40)] + _synthetic_thumbnails()
    assert perceptual_hashes([t.tobytes() for t in thumbs]) == [perceptual_hash(t) for t in thumbs]


def test_batched_phashes_match_imagehash_on_real_photos():
    folder = SHARED_DATA / "photos" / "imagenet"
    if not folder.is_dir():
        pytest.skip(f"the shared real-photo set is not at {folder}; set SIMFIND_TEST_DATA to the shared data folder")
    thumbs = [thumbnail(decode(p.read_bytes(), 64, grey=True).image) for p in sorted(folder.iterdir())[:300]]
    assert perceptual_hashes([t.tobytes() for t in thumbs]) == [perceptual_hash(t) for t in thumbs]


def test_each_rotation_and_mirror_hash_is_the_hash_of_the_turned_picture():
    thumb = thumbnail(picture(3))
    codes = orientation_codes(thumb[None])[0]
    assert len(DIHEDRAL) == 8 and len({c.tobytes() for c in codes}) == 8
    for k in range(8):
        turned = np.ascontiguousarray(orient(thumb, k))
        assert orientation_codes(turned[None])[0, 0].tobytes() == codes[k].tobytes()
    # and a real 90-degree turn of the full picture lands on one of them
    turned = thumbnail(picture(3).transpose(Image.ROTATE_90))
    assert min(np.unpackbits(codes ^ orientation_codes(turned[None])[0, 0], axis=-1).sum(axis=-1)) <= 2


@pytest.mark.parametrize("fill", [(0, 0, 0), (255, 255, 255), (40, 90, 200)])
def test_uniform_borders_are_trimmed_before_hashing(fill):
    img = picture(5)
    framed = Image.new("RGB", (img.width, int(img.height * 1.5)), fill)  # letterbox bars top and bottom
    framed.paste(img, (0, img.height // 4))
    framed = ImageOps.expand(framed, border=30, fill=fill)
    grey = np.asarray(framed.convert("L"))
    top, bottom, left, right = content_box(grey)
    assert abs(top - (30 + img.height // 4)) <= 2 and abs(left - 30) <= 2
    assert abs((bottom - top) - img.height) <= 3 and abs((right - left) - img.width) <= 3
    assert best_distance(thumbnail(framed), thumbnail(img)) <= 4


def test_a_mostly_flat_picture_is_not_trimmed_to_nothing():
    flat = Image.new("RGB", (400, 300), (200, 200, 200))
    flat.paste((10, 10, 10), (190, 140, 210, 160))  # a small mark in a big empty frame
    top, bottom, left, right = content_box(np.asarray(flat.convert("L")))
    assert bottom - top >= 0.4 * 300 and right - left >= 0.4 * 400


def _thumbs(*images):
    return np.stack([thumbnail(im) for im in images])


def test_rotations_mirrors_and_borders_pair_with_their_original_and_nothing_else():
    a, b = picture(10), picture(11)
    edits = [
        a.transpose(Image.ROTATE_90),
        a.transpose(Image.ROTATE_180),
        a.transpose(Image.FLIP_LEFT_RIGHT),
        a.transpose(Image.TRANSPOSE),
        ImageOps.expand(a, border=40, fill="black"),
    ]
    thumbs = _thumbs(a, b, *edits)
    pairs = {(i, j) for i, j, _d in near_pairs(thumbs, max_distance=8)}
    for k in range(2, 2 + len(edits)):
        assert (0, k) in pairs, k
    assert not any(1 in p for p in pairs)


def test_distinct_pictures_do_not_pair_even_at_a_loose_threshold():
    thumbs = _thumbs(*(picture(s) for s in range(20, 60)))
    assert near_pairs(thumbs, max_distance=10) == []


def test_star_groups_keep_edited_copies_together_without_chaining():
    from simfind.grouping import star_groups

    # 0 is an original; 1..3 are edits of it that do not match each other; 4 only matches edit 3
    groups = star_groups(5, [(0, 1, 0.9), (0, 2, 0.9), (0, 3, 0.9), (3, 4, 0.9)])
    assert groups == [[0, 1, 2, 3]]
    # a path of small steps never puts its ends together
    chain = star_groups(6, [(k, k + 1, 0.9) for k in range(5)])
    assert all(len(g) <= 3 for g in chain)
    assert not any({0, 5} <= set(g) or {0, 3} <= set(g) for g in chain)


def test_dupes_finds_turned_mirrored_and_cropped_copies(tmp_path, cli):
    a = picture(30)
    photos = tmp_path / "photos"
    save(a, photos / "a.jpg", quality=92)
    save(a.transpose(Image.ROTATE_270), photos / "turned" / "a_270.jpg", quality=85)
    save(a.transpose(Image.FLIP_LEFT_RIGHT), photos / "a_mirror.webp", quality=80)
    save(a.crop((40, 30, 600, 450)), photos / "crops" / "a_crop.png")
    save(ImageOps.pad(a, (960, 540), color="black"), photos / "a_letterbox.jpg", quality=90)
    save(picture(31), photos / "other.jpg", quality=90)
    cli("index", photos, "--quiet", "--no-clip")
    d = cli.json("dupes")
    assert group_paths(d) == [{"a.jpg", "a_270.jpg", "a_mirror.webp", "a_crop.png", "a_letterbox.jpg"}]
    assert d["groups"][0]["keep"].endswith("a_letterbox.jpg") or d["groups"][0]["keep"].endswith("a.jpg")


def _straightened(im: Image.Image, angle: float, cut: float) -> Image.Image:
    """Turned by `angle` degrees, then cut to hide the turned corners (`cut` of each side), as a photo editor's
    straighten tool does."""
    turned = im.rotate(angle, resample=Image.BICUBIC)
    w, h = im.size
    return turned.crop((round(w * cut), round(h * cut), round(w * (1 - cut)), round(h * (1 - cut))))


def test_straightened_copies_group_with_their_original_and_a_query_finds_it(tmp_path, cli):
    a = picture(70)
    photos = tmp_path / "photos"
    save(a, photos / "a.jpg", quality=92)
    save(_straightened(a, 3.0, 0.08), photos / "edits" / "a_straight.jpg", quality=88)
    save(_straightened(a, -4.5, 0.1), photos / "edits" / "a_scan.jpg", quality=85)
    for seed in (71, 72, 73):
        save(picture(seed), photos / f"other{seed}.jpg", quality=90)
    cli("index", photos, "--quiet", "--no-clip")
    d = cli.json("dupes")
    assert group_paths(d) == [{"a.jpg", "a_straight.jpg", "a_scan.jpg"}]
    assert d["groups"][0]["keep"].endswith("a.jpg")
    top = cli.json("query", str(photos / "edits" / "a_scan.jpg"), "-k", "3")["results"]
    names = [os.path.basename(r["path"]) for r in top]
    assert names[0] == "a_scan.jpg" and set(names[1:]) == {"a.jpg", "a_straight.jpg"}  # both copies, no other


def test_crop_window_codes_an_earlier_simfind_kept_are_removed_by_the_next_index(tmp_path, cli):
    photos = tmp_path / "photos"
    save(picture(50), photos / "a.jpg", quality=90)
    cli("index", photos, "--quiet", "--no-clip")
    stale = cli.index_dir / "windows-1.npz"
    stale.write_bytes(b"codes of crop windows")
    cli.json("dupes")  # reading leaves the folder as it is
    assert stale.exists()
    cli("index", photos, "--quiet", "--no-clip")
    assert not stale.exists()


def _caption_and_logo(im: Image.Image) -> Image.Image:
    out = im.copy()
    draw = ImageDraw.Draw(out, "RGBA")
    size = im.height // 12
    draw.text((20, im.height - 3 * size), "(c) simfind 2026", font=ImageFont.load_default(size=size),
              fill=(255, 255, 255, 230), stroke_width=2, stroke_fill=(0, 0, 0, 200))
    s = min(im.size) // 5
    draw.ellipse((im.width - s - 10, 10, im.width - 10, 10 + s), fill=(220, 30, 30, 230))
    return out


def _new_subject(im: Image.Image, seed: int) -> Image.Image:
    """Same background, a different thing in the middle (a third of the picture): a look-alike, not a copy."""
    out = im.copy()
    w, h = im.size
    colour = tuple(int(c) for c in np.random.default_rng(seed).integers(0, 256, 3))
    ImageDraw.Draw(out).ellipse((int(w * 0.22), int(h * 0.2), int(w * 0.78), int(h * 0.85)), fill=colour)
    return out


def test_captions_and_logos_group_but_a_new_subject_on_the_same_background_does_not(tmp_path, cli):
    """A caption plus a logo moves pHash 8-10 bits (past the default threshold's 6) for these pictures; the rest
    of the picture is untouched, which is what sets it apart from a look-alike."""
    photos = tmp_path / "photos"
    for seed in (13, 22, 23, 24, 26):
        a = picture(seed)
        save(a, photos / f"p{seed}.jpg", quality=92)
        save(_caption_and_logo(a), photos / f"p{seed}_captioned.jpg", quality=92)
        save(_new_subject(a, seed), photos / f"p{seed}_other_subject.jpg", quality=92)
    cli("index", photos, "--quiet", "--no-clip")
    groups = group_paths(cli.json("dupes"))
    assert sorted(groups, key=sorted) == [{f"p{s}.jpg", f"p{s}_captioned.jpg"} for s in (13, 22, 23, 24, 26)]


def test_big_collections_search_rotations_through_an_ivf_index(tmp_path, cli, monkeypatch):
    """Above BINARY_IVF_FROM codes, and for rotations and mirrors above ORIENT_IVF_FROM images, the range
    searches are approximate; forced on a small set, they find the same groups as the exact search."""
    from simfind import candidates, knn

    photos = tmp_path / "photos"
    for seed in range(60, 72):
        a = picture(seed)
        save(a, photos / f"p{seed}.jpg", quality=90)
        save(a.crop((60, 40, 600, 460)), photos / f"p{seed}_crop.jpg", quality=90)
        save(a.transpose(Image.Transpose.ROTATE_90), photos / f"p{seed}_turned.jpg", quality=90)
    barred = _on_bars(picture(72, (360, 480)))  # and a pair that only whole frames match
    save(barred, photos / "p72.jpg", quality=92)
    save(_logo_on_the_bar(barred), photos / "p72_logo.jpg", quality=92)
    cli("index", photos, "--quiet", "--no-clip")
    exact = sorted(map(sorted, group_paths(cli.json("dupes"))))
    assert len(exact) == 13 and ["p72.jpg", "p72_logo.jpg"] in exact
    monkeypatch.setattr(knn, "BINARY_IVF_FROM", 100)
    monkeypatch.setattr(candidates, "ORIENT_IVF_FROM", 2)
    assert sorted(map(sorted, group_paths(cli.json("dupes")))) == exact


def _on_bars(im: Image.Image) -> Image.Image:
    """Pillarboxed to 16:9 with black bars left and right (a portrait picture: the bars are most of the frame)."""
    out = Image.new("RGB", (round(im.height * 16 / 9), im.height), (0, 0, 0))
    out.paste(im, ((out.width - im.width) // 2, 0))
    return out


def _logo_on_the_bar(im: Image.Image) -> Image.Image:
    """A channel logo on the left bar: that bar is no longer uniform, so it is not trimmed as the clean copy's is."""
    out = im.copy()
    s = im.height // 12
    ImageDraw.Draw(out, "RGBA").ellipse((12, 12, 12 + s, 12 + s), fill=(255, 255, 255, 160))
    return out


def test_a_logo_on_a_letterbox_bar_still_groups_with_the_clean_copy_and_nothing_else(tmp_path, cli):
    """The clean letterboxed copy is trimmed to its picture; its twin with a logo on one bar keeps that bar, so
    their thumbnails frame different areas. Whole frames line up; two different pictures on the same bars do
    not group for sharing them."""
    photos = tmp_path / "photos"
    for seed in (31, 32, 33):
        barred = _on_bars(picture(seed, (360, 480)))
        save(barred, photos / f"p{seed}.jpg", quality=92)
        save(_logo_on_the_bar(barred), photos / f"p{seed}_logo.jpg", quality=92)
    cli("index", photos, "--quiet", "--no-clip")
    dupes = cli.json("dupes")
    assert sorted(group_paths(dupes), key=sorted) == [{f"p{s}.jpg", f"p{s}_logo.jpg"} for s in (31, 32, 33)]
    assert all(m["similarity"] >= dupes["threshold"] for g in dupes["groups"] for m in g["files"])


def test_frame_candidates_that_all_fail_the_check_give_no_pairs():
    """Two whole frames that hash alike around different pictures: a candidate that fails before the local check
    (a chunk with nothing left to check locally must not break the search)."""
    from simfind.verify import frame_pairs

    frame = thumbnail(picture(43))
    inside = thumbnail(picture(44))  # what image 0 shows inside its (trimmed) box: another picture
    thumbs = np.stack([inside, frame])
    boxes = np.array([[0.25, 0.75, 0.25, 0.75]], np.float32)
    assert frame_pairs(thumbs, np.array([0]), frame[None], boxes, max_distance=6) == []
