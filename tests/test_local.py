"""Local features: copies a whole-picture hash cannot see (heavy off-centre crops, a picture on a larger canvas
among other things, a turn with filled corners, a mirrored crop) are found by dupes and by query alike, decided
by geometry; a look-alike is refuted by it."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from simfind.geometry import refuted
from simfind.local import FEATURES, extract, unpack

from .conftest import group_paths, save


def textured(seed: int, size: tuple[int, int] = (900, 600), shapes: int | None = None) -> Image.Image:
    """A picture with many corners: a colour field under a hundred sharp shapes of every size, distinct per seed
    (`shapes`: other shapes on the same field)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray((rng.random((4, 6, 3)) * 255).astype(np.uint8), "RGB").resize(size, Image.BICUBIC)
    rng = np.random.default_rng(seed if shapes is None else shapes)
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(100):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(8, w // 5)), y0 + int(rng.integers(8, h // 5))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = (draw.ellipse, draw.rectangle, draw.polygon)[int(rng.integers(0, 3))]
        if shape is draw.polygon:
            shape([(x0, y0), (x1, y0 + (y1 - y0) // 3), (x0 + (x1 - x0) // 2, y1)], fill=colour)
        else:
            shape([x0, y0, x1, y1], fill=colour)
    return img


def _grey(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"))


def test_features_round_trip_as_fractions_of_the_picture():
    blob = extract(_grey(textured(1)))
    xy, descriptors, (w, h) = unpack(blob)
    assert 100 <= len(xy) <= FEATURES and descriptors.shape == (len(xy), 32)
    assert max(w, h) == 320 and (xy >= 0).all() and (xy <= 1).all()
    assert extract(np.full((400, 300), 128, np.uint8)) == b""  # flat: nothing to match on


def test_geometry_refutes_a_look_alike_and_not_a_copy():
    base = textured(2)
    copy = base.resize((600, 400)).convert("L")
    look_alike = textured(2, shapes=5)  # the same field, other things on it
    blobs = [extract(_grey(p)) for p in (base, copy, look_alike, textured(3))]
    no = refuted(blobs, np.zeros((4, 32, 32), np.uint8), np.array([0, 0, 0]), np.array([1, 2, 3]), np.zeros(3, bool))
    assert no.tolist() == [False, True, True]


def test_heavy_crops_canvases_and_turns_group_with_their_original_and_a_query_finds_it(tmp_path, cli):
    photos = tmp_path / "photos"
    original = textured(10)
    save(original, photos / "original.jpg", quality=92)
    save(original.crop((300, 150, 300 + 495, 150 + 360)), photos / "crop.jpg", quality=85)  # 55% x 60%, off-centre
    canvas = textured(99, (1400, 1100))  # other pictures all around it, as on a page or a screen
    canvas.paste(original.resize((840, 560)), (400, 300))  # 60% of the width
    save(canvas, photos / "canvas.jpg", quality=85)
    turned = original.rotate(7, resample=Image.BICUBIC, expand=True, fillcolor=(255, 255, 255))
    save(turned, photos / "turned.png")
    mirrored = original.transpose(Image.Transpose.FLIP_LEFT_RIGHT).crop((100, 60, 100 + 585, 60 + 420))
    save(mirrored, photos / "mirrored.jpg", quality=88)  # mirrored, then cut to 65% x 70%
    for seed in range(20, 26):
        save(textured(seed), photos / f"other{seed}.jpg", quality=90)
    assert cli("index", photos, "--quiet", "--no-clip").exit_code == 0
    d = cli.json("dupes")
    assert group_paths(d) == [{"original.jpg", "crop.jpg", "canvas.jpg", "turned.png", "mirrored.jpg"}]
    members = {f["path"].rsplit("/", 1)[-1]: f["similarity"] for f in d["groups"][0]["files"]}
    assert members["original.jpg"] >= 0.9 and max(members.values()) == 1.0  # geometry undone, never "identical"
    assert sorted(members.values()).count(1.0) == 1
    for copy in ("crop.jpg", "canvas.jpg", "turned.png", "mirrored.jpg"):
        q = cli.json("query", photos / copy, "--exclude-self")
        assert "original.jpg" in [m["path"].rsplit("/", 1)[-1] for m in q["results"]], copy


def test_the_descriptor_search_proposes_copies_and_mirror_images_and_a_focus_gets_the_same_pairs():
    from simfind.candidates import local_candidates
    from simfind.local import descriptors_of

    base = textured(30)
    pictures = [base, base.crop((200, 100, 700, 500)), base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    pictures += [textured(seed, shapes=seed + 100) for seed in range(31, 37)]
    blobs = [extract(_grey(p)) for p in pictures]
    upright = [descriptors_of(b) for b in blobs]
    mirrored = [descriptors_of(b, mirror=True) for b in blobs]
    i, j, mirror = local_candidates(upright, mirrored=mirrored)
    found = set(zip(i.tolist(), j.tolist(), mirror.tolist()))
    assert (0, 1, 0) in found and (0, 2, 1) in found and (1, 2, 1) in found
    for row in range(len(pictures)):
        fi, fj, fm = local_candidates(upright, focus=np.array([row]), mirrored=mirrored)
        assert set(zip(fi.tolist(), fj.tolist(), fm.tolist())) == {p for p in found if row in p[:2]}


def _screenshot(picture: Image.Image, seed: int, width: int = 540) -> Image.Image:
    """A phone screenshot of a social app holding `picture` at 55% of its width (a tenth of its area): a status
    bar, a header, a caption above and comments below the picture, buttons, on a light background (the layout
    drawn from `seed`)."""
    rng = np.random.default_rng(seed)
    height = 2 * width
    shot = Image.new("RGB", (width, height), (246, 246, 246))
    draw = ImageDraw.Draw(shot)
    draw.rectangle([0, 0, width, 48], fill=(30, 30, 30))
    draw.rectangle([0, 48, width, 120], fill=(255, 255, 255))
    for k in range(5):
        draw.text((16 + 100 * k, 70), "header", fill=(20, 20, 20))
    side = round(0.55 * width)
    shown = picture.resize((side, round(side * picture.height / picture.width)))
    top = int(rng.integers(300, 420))
    left = int(rng.integers(16, width - side - 16))
    shot.paste(shown, (left, top))
    for y in [*range(top - 150, top - 40, 34), *range(top + shown.height + 40, top + shown.height + 190, 34)]:
        words = " ".join("lorem ipsum dolor sit amet photo share".split()[int(i)] for i in rng.integers(0, 7, 6))
        draw.text((16, y), words, fill=(40, 40, 40))
    for k in range(4):
        draw.rounded_rectangle([20 + 130 * k, height - 70, 120 + 130 * k, height - 30], 12, fill=(0, 120, 255))
    return shot


def test_a_picture_inside_a_screenshot_groups_with_it_and_not_with_other_screenshots(tmp_path, cli):
    """The screenshot's text and bars would take most of its strongest corners, and the picture is a few pixels of
    its thumbnail: the picture inside is found, described and checked on its own. Screenshots of other pictures in
    the same app stay apart."""
    photos = tmp_path / "photos"
    original = textured(40, (1024, 768))
    save(original, photos / "original.jpg", quality=92)
    save(_screenshot(original, 1), photos / "shot.png")
    for seed in range(41, 44):
        save(_screenshot(textured(seed, (1024, 768)), seed - 40), photos / f"other_shot{seed}.png")
        save(textured(seed + 10, (1024, 768)), photos / f"other{seed}.jpg", quality=90)
    assert cli("index", photos, "--quiet", "--no-clip").exit_code == 0
    assert group_paths(cli.json("dupes")) == [{"original.jpg", "shot.png"}]
    q = cli.json("query", photos / "shot.png", "--exclude-self")
    assert [m["path"].rsplit("/", 1)[-1] for m in q["results"]] == ["original.jpg"]


def test_a_pair_gets_one_verdict_whichever_picture_comes_first():
    """A query lists its picture last and a report in catalog order: the verification of a pair must not depend on
    which comes first (the ratio test and the fit asked one way round can keep other matches), or a query and
    `dupes` disagree. Heavy crops, turns, brightness, blur and shrinks of textured pictures, both as they are and
    mirrored."""
    import io
    import random

    from PIL import ImageEnhance, ImageFilter

    from simfind.geometry import geometric_distances
    from simfind.pipeline import process_bytes
    from simfind.records import FileRef
    from simfind.verify import LOCAL_EDIT_BITS

    def indexed(img: Image.Image, quality: int) -> tuple[bytes, np.ndarray]:
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "JPEG", quality=quality)
        r = process_bytes(FileRef("x.jpg", 0, 0), buf.getvalue())
        return r.local, np.frombuffer(r.thumb, np.uint8).reshape(32, 32)

    rng = random.Random(0)
    verdicts = []
    for seed in range(8):
        img = textured(seed)
        w, h = img.size
        a = indexed(img, 90)
        for _ in range(3):
            cw, ch = int(w * rng.uniform(0.5, 0.8)), int(h * rng.uniform(0.5, 0.8))
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            edit = img.crop((x, y, x + cw, y + ch)).rotate(rng.uniform(-8, 8), resample=Image.BICUBIC)
            edit = ImageEnhance.Brightness(edit).enhance(rng.uniform(0.6, 1.4))
            edit = edit.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.5)))
            edit = edit.resize((int(edit.width * rng.uniform(0.4, 0.9)), int(edit.height * rng.uniform(0.4, 0.9))))
            b = indexed(edit, rng.randint(30, 90))
            for mirror in (False, True):
                one = geometric_distances([a[0], b[0]], np.stack([a[1], b[1]]), np.array([0]), np.array([1]),
                                          np.array([mirror]), LOCAL_EDIT_BITS)
                other = geometric_distances([b[0], a[0]], np.stack([b[1], a[1]]), np.array([0]), np.array([1]),
                                            np.array([mirror]), LOCAL_EDIT_BITS)
                verdicts.append(((bool(one[0][0]), int(one[1][0])), (bool(other[0][0]), int(other[1][0]))))
    assert sum(one[0] for one, _other in verdicts) >= 12  # most of the upright pairs verify: the edits are copies
    assert [one for one, _other in verdicts] == [other for _one, other in verdicts]
