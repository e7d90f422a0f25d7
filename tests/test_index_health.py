"""An index a user cannot write, a damaged catalog, the default index: each is one line that names the fix, and
an intact index is never called damaged."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from simfind.catalog import CATALOG_NAME

from .conftest import picture, save


@pytest.fixture
def indexed(tmp_path: Path, cli) -> Path:
    """Eight pictures, two of them copies of another, indexed (hashes only)."""
    root = tmp_path / "photos"
    for i in range(6):
        save(picture(100 + i), root / f"p{i}.jpg", quality=90)
    save(picture(100).resize((320, 240)), root / "p0_small.jpg", quality=85)
    save(picture(101), root / "p1.png")
    assert cli("index", root, "--no-clip", "-q").exit_code == 0
    return root


def _read_only(folder: Path):
    """Make `folder` read-only as a read-only mount would (root ignores file modes, so root bind-mounts it)."""
    if os.geteuid() != 0:
        for p in [folder, *folder.rglob("*")]:
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        return lambda: [p.chmod(p.stat().st_mode | stat.S_IWUSR) for p in [folder, *folder.rglob("*")]]
    ok = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
    if ok and subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode:
        subprocess.run(["umount", str(folder)])
        ok = False
    if not ok:
        pytest.skip("cannot make a read-only mount here (needs mount permission for root)")
    return lambda: subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def read_only_index(indexed, cli):
    undo = _read_only(cli.index_dir)
    with pytest.raises(OSError):
        (cli.index_dir / "probe").write_bytes(b"")
    yield cli.index_dir
    undo()


def test_reading_commands_work_on_a_read_only_index(read_only_index, indexed, cli):
    info = cli.json("info")
    assert info["files"] == 8
    dupes = cli.json("dupes")
    assert {len(g["files"]) for g in dupes["groups"]} == {2}
    assert len(dupes["groups"]) == 2
    query = cli.json("query", indexed / "p0.jpg", "-k", "3")
    assert query["results"][0]["similarity"] == 1.0
    table = cli("dupes")
    assert table.exit_code == 0 and "p0_small.jpg" in table.stdout


def test_writing_to_a_read_only_index_says_so_and_never_advises_deleting_it(read_only_index, indexed, cli):
    for args in (("index", indexed, "--no-clip"), ("dupes", indexed)):
        result = cli(*args)
        assert result.exit_code == 3, result.stderr
        assert result.stderr.count("\n") == 1 and "read-only" in result.stderr
        assert "delete" not in result.stderr and "internal error" not in result.stderr


def _damage(catalog: Path) -> None:
    """Overwrite a run of pages in the middle of the file, as a failing disk or a bad copy would."""
    size = catalog.stat().st_size
    assert size > 8 * 4096
    with open(catalog, "r+b") as fh:
        fh.seek(size // 2 - 2 * 4096)
        fh.write(os.urandom(4 * 4096))


def _one_line_naming_rebuild(result) -> None:
    assert result.exit_code == 3, (result.exit_code, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert "damaged" in result.stderr and "--rebuild" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_a_damaged_catalog_is_one_line_naming_the_fix_and_rebuild_fixes_it(tmp_path, cli):
    root = tmp_path / "many"
    for i in range(60):  # enough rows for the catalog to span many pages
        save(picture(200 + i, (160, 120)), root / f"p{i:02}.jpg", quality=90)
    save(picture(200, (160, 120)), root / "copy.png")
    assert cli("index", root, "--no-clip", "-q").exit_code == 0
    catalog = cli.index_dir / CATALOG_NAME
    _damage(catalog)
    for args in (("dupes",), ("dupes", "--format", "json"), ("index", root, "--no-clip")):
        _one_line_naming_rebuild(cli(*args))

    rebuilt = cli("index", root, "--no-clip", "--rebuild")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert "set aside" in rebuilt.stderr
    aside = [p for p in cli.index_dir.iterdir() if p.name.startswith("catalog-set-aside-")]
    assert [p for p in aside if p.suffix == ".sqlite"]  # the damaged file is kept, under a dated name
    dupes = cli.json("dupes")
    assert dupes["stats"]["files"] == 61
    assert [sorted(os.path.basename(f["path"]) for f in g["files"]) for g in dupes["groups"]] == [["copy.png", "p00.jpg"]]


def test_an_empty_catalog_file_is_damage_not_an_empty_index(indexed, cli):
    (cli.index_dir / CATALOG_NAME).write_bytes(b"")
    for name in os.listdir(cli.index_dir):
        if name.endswith(("-wal", "-shm")):
            os.unlink(cli.index_dir / name)
    for args in (("info",), ("dupes",), ("query", indexed / "p0.jpg")):
        _one_line_naming_rebuild(cli(*args))
    assert cli("index", indexed, "--no-clip", "--rebuild", "-q").exit_code == 0
    assert cli.json("info")["files"] == 8


def test_rebuild_of_an_intact_index_keeps_the_old_catalog_aside(indexed, cli):
    before = (cli.index_dir / CATALOG_NAME).read_bytes()
    result = cli("index", indexed, "--no-clip", "--rebuild")
    assert result.exit_code == 0 and "8 new" in result.stderr
    (aside,) = [p for p in cli.index_dir.iterdir() if p.name.startswith("catalog-set-aside-") and p.suffix == ".sqlite"]
    assert aside.read_bytes()[:16] == before[:16]


def test_the_missing_default_index_is_named_without_spelling_it_as_an_option(tmp_path):
    from typer.testing import CliRunner

    from simfind.cli import app

    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    result = CliRunner().invoke(app, ["dupes"], env=env)
    assert result.exit_code == 3
    assert "run `simfind index DIR` first" in result.stderr and "--index /" not in result.stderr
    named = CliRunner().invoke(app, ["dupes", "--index", str(tmp_path / "elsewhere")], env=env)
    assert named.exit_code == 3 and f"--index {tmp_path / 'elsewhere'}" in named.stderr


def test_a_bad_index_option_names_the_environment_variable_only_when_it_is_set(tmp_path):
    from typer.testing import CliRunner

    from simfind.cli import app

    a_file = tmp_path / "not-a-folder"
    a_file.write_bytes(b"x")
    plain = CliRunner().invoke(app, ["info", "--index", str(a_file)], env={"SIMFIND_INDEX": None})
    assert plain.exit_code == 2 and "SIMFIND_INDEX" not in plain.stderr and "--index" in plain.stderr
    from_env = CliRunner().invoke(app, ["info"], env={"SIMFIND_INDEX": str(a_file)})
    assert from_env.exit_code == 2 and "SIMFIND_INDEX" in from_env.stderr


def test_shutil_copy_of_an_index_is_readable(indexed, cli, tmp_path):
    """An index copied while no one writes it (a backup, a CI cache) is an index, not damage."""
    copy = tmp_path / "copied-index"
    shutil.copytree(cli.index_dir, copy)
    cli.index_dir = copy
    assert cli.json("info")["files"] == 8


def test_the_damage_message_names_the_indexed_folders_where_they_can_still_be_read(indexed, cli):
    from simfind.catalog import damage_error

    message = str(damage_error(str(cli.index_dir / CATALOG_NAME), "test"))
    assert f"simfind index {indexed} --rebuild --index {cli.index_dir}" in message
    empty = cli.index_dir.parent / "elsewhere"
    empty.mkdir()
    (empty / CATALOG_NAME).write_bytes(b"")
    assert "simfind index DIR... --rebuild" in str(damage_error(str(empty / CATALOG_NAME), "empty"))
