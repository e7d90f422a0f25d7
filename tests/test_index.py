"""`simfind index` and `simfind dupes` on generated photo sets, as a user runs them."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from simfind import api

from .conftest import group_paths, picture, save


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Two folders of distinct pictures with the copies a real library collects."""
    root = tmp_path / "photos"
    a, b = picture(1), picture(2)
    save(a, root / "2019" / "a.jpg", quality=92)
    (root / "backup" / "deep").mkdir(parents=True)
    shutil.copy(root / "2019" / "a.jpg", root / "backup" / "deep" / "a copy.jpg")  # byte copy
    save(a, root / "export" / "a.png")  # re-encode, lossless
    save(a, root / "export" / "a.webp", quality=70)  # re-encode, lossy
    save(a.resize((320, 240), Image.LANCZOS), root / "export" / "a_small.jpg", quality=80)  # resize
    save(b, root / "2019" / "b.jpg", quality=90)
    save(b.resize((1280, 960), Image.BICUBIC), root / "2020" / "b_big.jpg", quality=85)  # upscale
    stored = b.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    save(stored, root / "phone" / "b_exif.jpg", quality=90, exif=exif.tobytes())  # EXIF-rotated storage
    for seed in range(10, 16):  # distinct pictures: must stay out of every group
        save(picture(seed), root / "misc" / f"other{seed}.jpg", quality=90)
    return root


def test_exact_copies_reencodes_resizes_and_exif_rotations_group(photos, cli):
    assert cli("index", photos, "--quiet", "--no-clip").exit_code == 0
    d = cli.json("dupes")
    groups = group_paths(d)
    assert {"a.jpg", "a copy.jpg", "a.png", "a.webp", "a_small.jpg"} in groups
    assert {"b.jpg", "b_big.jpg", "b_exif.jpg"} in groups
    assert len(groups) == 2
    assert d["stats"] == d["stats"] | {"files": 14, "groups": 2, "duplicates": 6, "errors": 0}


def test_keeper_is_the_largest_picture_and_members_carry_similarity(photos, cli):
    cli("index", photos, "--quiet", "--no-clip")
    d = cli.json("dupes")
    b_group = next(g for g in d["groups"] if any(f["path"].endswith("b.jpg") for f in g["files"]))
    assert b_group["keep"].endswith("b_big.jpg")  # 1280x960 beats 640x480
    assert b_group["files"][0]["path"] == b_group["keep"] and b_group["files"][0]["similarity"] == 1.0
    exif = next(f for f in b_group["files"] if f["path"].endswith("b_exif.jpg"))
    assert (exif["width"], exif["height"]) == (640, 480)  # as displayed, not as stored
    assert all(0.85 <= f["similarity"] <= 1.0 for f in b_group["files"])
    a_group = next(g for g in d["groups"] if g is not b_group)
    copies = [f for f in a_group["files"] if f["path"].endswith(("a.jpg", "a copy.jpg"))]
    assert all(f["similarity"] == 1.0 for f in copies)


def test_exact_mode_groups_only_byte_copies(photos, cli):
    cli("index", photos, "--quiet", "--no-clip")
    d = cli.json("dupes", "--by", "exact")
    assert group_paths(d) == [{"a.jpg", "a copy.jpg"}]
    assert d["threshold"] == 1.0 and d["by"] == "exact"


def test_threshold_decides_which_edits_count(photos, cli):
    a = picture(1)
    save(a.crop((32, 24, 608, 456)), photos / "edits" / "a_crop.jpg", quality=90)  # 90% of each side, centred
    cli("index", photos, "--quiet", "--no-clip")
    # a crop changes no pixel it keeps: once local features have undone it, it is as close as a re-encode
    for threshold, crop_in in ((1.0, False), (0.9375, True), (0.875, True)):
        d = cli.json("dupes", "--threshold", str(threshold))
        assert any("a_crop.jpg" in g for g in group_paths(d)) is crop_in, threshold
        assert all(f["similarity"] >= threshold for g in d["groups"] for f in g["files"]), (threshold, d["groups"])


def test_dupes_paths_limit_the_report_and_are_indexed_first(photos, cli):
    d = cli.json("dupes", photos / "2019", photos / "2020")  # never indexed before
    assert group_paths(d) == [{"b.jpg", "b_big.jpg"}]
    assert d["stats"]["files"] == 3


def test_between_reports_only_groups_spanning_both_folders(photos, cli):
    d = cli.json("dupes", "--between", photos / "2019", photos / "phone")
    assert group_paths(d) == [{"b.jpg", "b_exif.jpg"}]


def test_hidden_and_excluded_files_are_skipped(photos, cli):
    save(picture(1), photos / ".hidden" / "a_hidden.jpg")
    save(picture(1), photos / "misc" / ".a_dot.jpg")
    cli("index", photos, "--quiet", "--no-clip", "--exclude", "export", "--exclude", "*.webp")
    paths = {os.path.basename(f.path) for f in _catalog_files(cli.index_dir)}
    assert "a_hidden.jpg" not in paths and ".a_dot.jpg" not in paths
    assert not {"a.png", "a.webp", "a_small.jpg"} & paths
    cli("index", photos, "--quiet", "--no-clip", "--hidden")
    paths = {os.path.basename(f.path) for f in _catalog_files(cli.index_dir)}
    assert {"a_hidden.jpg", ".a_dot.jpg", "a.png"} <= paths


def test_symlink_loops_end_and_linked_files_count_once(photos, cli):
    os.symlink(photos, photos / "misc" / "loop")
    os.symlink(photos / "2019" / "b.jpg", photos / "misc" / "b_link.jpg")
    result = cli("index", photos, "--quiet", "--no-clip")
    assert result.exit_code == 0
    files = _catalog_files(cli.index_dir)
    assert len(files) == 14  # nothing twice, and the loop ended


def test_a_file_and_a_link_to_it_are_listed_by_the_file_s_own_path(tmp_path, cli):
    """The link sorts first (`copies/` before `originals/`): the report must still name, keep and act on the
    file, never on the link in its place."""
    lib = tmp_path / "lib"
    save(picture(1), lib / "originals" / "x.jpg")
    shutil.copyfile(lib / "originals" / "x.jpg", lib / "originals" / "x_copy.jpg")
    (lib / "copies").mkdir()
    os.symlink(lib / "originals" / "x.jpg", lib / "copies" / "link.jpg")
    assert cli("index", lib, "--quiet", "--no-clip").exit_code == 0
    assert sorted(os.path.relpath(f.path, lib) for f in _catalog_files(cli.index_dir)) == [
        "originals/x.jpg", "originals/x_copy.jpg"]
    (group,) = cli.json("dupes", lib)["groups"]
    assert {os.path.relpath(f["path"], lib) for f in group["files"]} == {"originals/x.jpg", "originals/x_copy.jpg"}


def _catalog_files(index_dir):
    from simfind.catalog import Catalog

    with Catalog.open(str(index_dir), create=False) as c:
        return c.indexed_files()


# -- incremental re-index ---------------------------------------------------------------------------------


def test_unchanged_files_are_only_stated_not_read(photos, tmp_path):
    idx = str(tmp_path / "idx")
    first = api.index([str(photos)], index_dir=idx, workers=1)
    assert first.added == 14
    # Same size and mtime but different bytes: only a stat-only re-index would miss the change.
    target = photos / "misc" / "other10.jpg"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = api.index([str(photos)], index_dir=idx, workers=1)
    assert (again.unchanged, again.added, again.updated, again.removed, again.renamed) == (14, 0, 0, 0, 0)


def test_changed_files_are_redone(photos, tmp_path):
    idx = str(tmp_path / "idx")
    api.index([str(photos)], index_dir=idx, workers=1)
    save(picture(99), photos / "2019" / "b.jpg", quality=90)  # a different picture under the old name
    st = (photos / "2019" / "b.jpg").stat()
    os.utime(photos / "2019" / "b.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = api.index([str(photos)], index_dir=idx, workers=1)
    assert again.updated == 1 and again.unchanged == 13
    groups = [{os.path.basename(m.file.path) for m in g.members} for g in api.duplicates(index_dir=idx).groups]
    assert {"b_big.jpg", "b_exif.jpg"} in groups and not any("b.jpg" in g for g in groups)


def test_deleted_files_leave_the_index(photos, tmp_path):
    idx = str(tmp_path / "idx")
    api.index([str(photos)], index_dir=idx, workers=1)
    shutil.rmtree(photos / "export")
    again = api.index([str(photos)], index_dir=idx, workers=1)
    assert again.removed == 3
    assert len(_catalog_files(idx)) == 11


def test_renamed_file_is_recognised_by_its_bytes_without_decoding(photos, tmp_path):
    idx = str(tmp_path / "idx")
    api.index([str(photos)], index_dir=idx, workers=1)
    before = {f.path: f for f in _catalog_files(idx)}
    old = photos / "misc" / "other11.jpg"
    new = photos / "misc" / "renamed" / "holiday.jpg"
    new.parent.mkdir()
    os.rename(old, new)
    again = api.index([str(photos)], index_dir=idx, workers=1)
    assert (again.renamed, again.added, again.removed) == (1, 0, 0)
    after = {f.path: f for f in _catalog_files(idx)}
    assert str(new) in after and str(old) not in after
    assert after[str(new)].id == before[str(old)].id  # the same record moved: nothing recomputed


def test_a_file_that_failed_is_retried_once_it_changes(tmp_path):
    root = tmp_path / "p"
    (root).mkdir()
    (root / "x.jpg").write_bytes(b"")
    idx = str(tmp_path / "idx")
    assert api.index([str(root)], index_dir=idx, workers=1).failed == 1
    save(picture(5), root / "x.jpg")
    report = api.index([str(root)], index_dir=idx, workers=1)
    assert report.updated == 1 and report.failed == 0
    assert api.info(idx).errors == 0 and api.info(idx).files == 1


def test_parallel_workers_give_the_same_index_as_one(photos, tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    api.index([str(photos)], index_dir=one, workers=1)
    api.index([str(photos)], index_dir=two, workers=2)
    key = lambda fs: sorted((f.path, f.content_hash, f.phash, f.width, f.height) for f in fs)  # noqa: E731
    assert key(_catalog_files(one)) == key(_catalog_files(two))


def test_hashing_progress_counts_bytes_so_the_eta_holds_with_big_files_first(photos, tmp_path):
    """Files are hashed largest first: progress is told bytes done of bytes to do, rising to the total."""
    calls: list[tuple[str, int, int]] = []
    api.index([str(photos)], index_dir=str(tmp_path / "idx"), progress=lambda *c: calls.append(c))
    hashing = [(done, total) for phase, done, total in calls if phase == "hash"]
    total = sum(p.stat().st_size for p in photos.rglob("*") if p.is_file())
    assert hashing[0] == (0, total) and hashing[-1] == (total, total)
    assert [d for d, _ in hashing] == sorted(d for d, _ in hashing) and len(hashing) > 2


def test_catalog_records_its_schema_version(photos, cli):
    cli("index", photos, "--quiet", "--no-clip")
    conn = sqlite3.connect(cli.index_dir / "catalog.sqlite")
    from simfind.catalog import SCHEMA_VERSION

    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_an_index_from_an_older_schema_is_migrated_and_keeps_its_files(photos, tmp_path):
    from simfind.catalog import MIGRATIONS, SCHEMA_VERSION

    idx = tmp_path / "old"
    idx.mkdir()
    conn = sqlite3.connect(idx / "catalog.sqlite")
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO files (path, size, mtime_ns, content_hash, width, height, phash, indexed_at)"
                 " VALUES ('/x/a.jpg', 1, 1, x'00', 10, 10, x'0000000000000000', 0)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    assert api.info(str(idx)).files == 1 and api.info(str(idx)).schema_version == SCHEMA_VERSION


def test_files_indexed_by_an_older_simfind_are_decoded_again(tmp_path, cli):
    """Rows written before schema 6 lack the keeper's evidence (and before 5 a trimmed picture's whole frame): the
    next `index` decodes every such image again and fills in what it lacked."""
    photos = tmp_path / "photos"
    save(picture(1), photos / "plain.jpg", quality=90)
    save(_letterboxed(picture(2)), photos / "letterboxed.jpg", quality=90)
    cli("index", photos, "--quiet", "--no-clip")
    conn = sqlite3.connect(cli.index_dir / "catalog.sqlite")
    columns = "path, frame, camera, jpeg_quality, orientation"
    rows = {r[0]: r for r in conn.execute(f"SELECT {columns} FROM files")}
    assert rows[str(photos / "plain.jpg")][1:] == (None, 0, 90, None)
    assert len(rows[str(photos / "letterboxed.jpg")][1]) > 1024
    conn.execute("UPDATE files SET frame = NULL, camera = NULL, jpeg_quality = NULL")  # as a schema-4 simfind wrote
    conn.commit()
    result = cli("index", str(photos), "--no-clip")
    assert "0 changed" in result.stderr and "2 unchanged, 2 re-read for this simfind version" in result.stderr
    assert {r[0]: r for r in conn.execute(f"SELECT {columns} FROM files")} == rows


def test_an_index_from_a_newer_simfind_is_refused(tmp_path, cli):
    cli.index_dir.mkdir()
    conn = sqlite3.connect(cli.index_dir / "catalog.sqlite")
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    result = cli("info")
    assert result.exit_code == 3 and "newer simfind" in result.stderr


def _letterboxed(im: Image.Image, colour=(0, 0, 0)) -> Image.Image:
    w, h = im.size
    out = Image.new("RGB", (round(h * 16 / 9), h), colour)
    out.paste(im, ((out.width - w) // 2, 0))
    return out


def test_the_keeper_is_the_clean_copy_not_its_letterboxed_or_framed_twin(tmp_path, cli):
    """Bars and frames add pixels but no picture: the clean original is kept (were it deleted, the user would
    keep a worse copy); a letterboxed copy that is really bigger still wins."""
    root = tmp_path / "photos"
    a, b = picture(31), picture(32)
    save(a, root / "a.jpg", quality=85)
    save(_letterboxed(a), root / "shared" / "a_letterboxed.jpg", quality=95)
    save(ImageOps.expand(a, border=40, fill=(255, 255, 255)), root / "shared" / "a_framed.jpg", quality=95)
    save(b, root / "b.jpg", quality=85)
    save(_letterboxed(b.resize((1280, 960), Image.LANCZOS)), root / "b_big_letterboxed.jpg", quality=90)
    cli("index", root, "--quiet", "--no-clip")
    d = cli.json("dupes")
    groups = {os.path.basename(g["keep"]): group for g, group in zip(d["groups"], group_paths(d))}
    assert groups == {"a.jpg": {"a.jpg", "a_letterboxed.jpg", "a_framed.jpg"},
                      "b_big_letterboxed.jpg": {"b.jpg", "b_big_letterboxed.jpg"}}
