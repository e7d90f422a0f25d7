"""Acting on duplicates (move, links, delete, undo) and the HTML report, on generated files."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from .conftest import Cli, group_paths, picture, save


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """Two pictures, each with copies spread over folders: a/x.jpg is the original of the x group."""
    root = tmp_path / "library"
    x, y = picture(40), picture(41)
    save(x, root / "a" / "x.jpg", quality=92)
    (root / "b").mkdir(parents=True)
    shutil.copy2(root / "a" / "x.jpg", root / "b" / "x copy.jpg")  # a byte copy
    save(x.resize((320, 240)), root / "b" / "deep" / "x_small.jpg", quality=85)
    save(y, root / "a" / "y.png")
    save(y.transpose(Image.ROTATE_90), root / "c" / "y_turned.jpg", quality=90)
    save(picture(42), root / "c" / "z.jpg", quality=90)
    return root


def _index(cli: Cli, root: Path) -> None:
    assert cli("index", root, "--quiet", "--no-clip").exit_code == 0


def test_move_keeps_folders_and_undo_restores_every_byte(library, tmp_path, cli):
    _index(cli, library)
    before = _snapshot(library)
    trash, log = tmp_path / "trash", tmp_path / "moves.jsonl"
    result = cli("dupes", "--action", "move", "--to", trash, "--yes", "--log", log)
    assert result.exit_code == 0, result.stderr
    moved = _snapshot(trash)
    assert set(moved) == {"b/x copy.jpg", "b/deep/x_small.jpg", "c/y_turned.jpg"}  # structure kept
    assert all(before[k] == v for k, v in moved.items())
    assert set(_snapshot(library)) == {"a/x.jpg", "a/y.png", "c/z.jpg"}  # keepers and the singleton stay
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 3 and all(r["action"] == "move" for r in lines)

    assert cli("undo", log, index=False).exit_code == 0
    assert _snapshot(library) == before
    assert not any(p.is_file() for p in trash.rglob("*"))


def test_dry_run_prints_the_plan_and_changes_nothing(library, tmp_path, cli):
    _index(cli, library)
    before = _snapshot(library)
    result = cli("dupes", "--action", "delete", "--dry-run")
    assert result.exit_code == 0, result.stderr
    planned = re.findall(r"^would delete (.+)$", result.stdout, re.M)
    assert sorted(os.path.basename(p) for p in planned) == ["x copy.jpg", "x_small.jpg", "y_turned.jpg"]
    assert _snapshot(library) == before


def test_acting_without_a_terminal_needs_yes(library, cli):
    _index(cli, library)
    result = cli("dupes", "--action", "delete")
    assert result.exit_code == 2 and "--yes" in result.stderr
    assert cli("dupes", "--action", "move").exit_code == 2  # move needs --to


def test_a_file_changed_since_indexing_is_never_touched(library, tmp_path, cli):
    _index(cli, library)
    changed = library / "b" / "deep" / "x_small.jpg"
    save(picture(99), changed, quality=85)  # overwritten after the index run
    result = cli("dupes", "--action", "delete", "--yes", "--log", tmp_path / "d.jsonl")
    assert result.exit_code == 0, result.stderr
    assert changed.exists() and "x_small.jpg" in result.stderr and "changed since it was indexed" in result.stderr
    assert not (library / "b" / "x copy.jpg").exists()  # the unchanged duplicate was acted on


def test_nothing_is_touched_when_the_keeper_changed(library, tmp_path, cli):
    """The last copy rule: members are only acted on while their keeper is there, unchanged."""
    _index(cli, library)
    keeper = library / "a" / "x.jpg"
    save(picture(98), keeper, quality=92)  # no longer the picture the index knows
    result = cli("dupes", "--action", "delete", "--yes", "--log", tmp_path / "d.jsonl")
    assert result.exit_code == 0, result.stderr
    assert (library / "b" / "x copy.jpg").exists() and (library / "b" / "deep" / "x_small.jpg").exists()
    assert "nothing in this group was touched" in result.stderr
    assert not (library / "c" / "y_turned.jpg").exists()  # the other group was fine


def test_nothing_is_touched_when_the_keeper_vanished_after_the_report(library, tmp_path, cli):
    from simfind import api
    from simfind.actions import act

    _index(cli, library)
    report = api.duplicates(index_dir=str(cli.index_dir))
    x_group = next(g for g in report.groups if g.keep.path.endswith("x.jpg"))
    os.unlink(x_group.keep.path)
    result = act(report.groups, "delete", log=str(tmp_path / "d.jsonl"))
    assert (library / "b" / "x copy.jpg").exists() and (library / "b" / "deep" / "x_small.jpg").exists()
    assert {s.status for s in result.steps if s.keep == x_group.keep.path} == {"skipped"}
    assert not (library / "c" / "y_turned.jpg").exists()


def test_a_report_never_lists_a_file_gone_from_disk(library, tmp_path, cli):
    _index(cli, library)
    (library / "a" / "x.jpg").unlink()  # a keeper
    (library / "c" / "y_turned.jpg").unlink()  # the only other file of its group
    result = cli("dupes", "--format", "json")
    assert result.exit_code == 0, result.stderr
    listed = {os.path.basename(f["path"]) for g in json.loads(result.stdout)["groups"] for f in g["files"]}
    assert listed == {"x copy.jpg", "x_small.jpg"}  # the byte copy is the keeper now
    assert "2 files to report are gone from disk" in result.stderr and "simfind index" in result.stderr
    table = cli("dupes")
    assert "x.jpg " not in table.stdout and "y_turned" not in table.stdout and "y.png" not in table.stdout
    query = cli.json("query", library / "a" / "y.png", "-k", "10")
    assert [os.path.basename(r["path"]) for r in query["results"]] == ["y.png"]  # its turned copy is gone
    query = cli.json("query", library / "b" / "x copy.jpg", "-k", "10")
    assert {os.path.basename(r["path"]) for r in query["results"]} == {"x copy.jpg", "x_small.jpg"}


def test_the_record_of_an_action_goes_to_stdout_and_quiet_silences_the_summary(library, tmp_path, cli):
    _index(cli, library)
    trash, log = tmp_path / "trash", tmp_path / "moves.jsonl"
    result = cli("dupes", "--action", "move", "--to", trash, "--yes", "--log", log, "--quiet")
    assert result.exit_code == 0
    assert sorted(re.findall(r"^moved (.+) -> ", result.stdout, re.M)) == sorted(
        str(library / p) for p in ("b/x copy.jpg", "b/deep/x_small.jpg", "c/y_turned.jpg"))
    assert result.stderr == ""
    undone = cli("undo", log, "--quiet", index=False)
    assert undone.exit_code == 0 and undone.stderr == "" and undone.stdout.count("restored ") == 3


def test_undo_twice_says_so_once_and_removes_the_folders_the_move_made(library, tmp_path, cli):
    _index(cli, library)
    trash, log = tmp_path / "trash", tmp_path / "moves.jsonl"
    assert cli("dupes", "--action", "move", "--to", trash, "--yes", "--log", log).exit_code == 0
    assert (trash / "b" / "deep").is_dir()
    first = cli("undo", log, index=False)
    assert first.exit_code == 0 and "3 files restored" in first.stderr
    assert not trash.exists()  # b/deep, b, c and the --to folder itself: all made by the move, all empty now
    again = cli("undo", log, index=False)
    assert again.exit_code == 0, again.stderr
    assert again.stderr.strip() == "simfind: nothing to undo: the 3 files of this log were restored already"
    assert again.stdout == ""


def test_undo_keeps_a_destination_that_existed_and_a_file_put_there(library, tmp_path, cli):
    _index(cli, library)
    trash, log = tmp_path / "trash", tmp_path / "moves.jsonl"
    (trash / "c").mkdir(parents=True)
    assert cli("dupes", "--action", "move", "--to", trash, "--yes", "--log", log).exit_code == 0
    (trash / "c" / "notes.txt").write_text("mine")
    assert cli("undo", log, index=False).exit_code == 0
    assert sorted(str(p.relative_to(trash)) for p in trash.rglob("*")) == ["c", "c/notes.txt"]


def test_hardlink_and_symlink_replace_byte_copies_only_and_undo(library, tmp_path, cli):
    _index(cli, library)
    before = _snapshot(library)
    for action in ("hardlink", "symlink"):
        log = tmp_path / f"{action}.jsonl"
        result = cli("dupes", "--action", action, "--yes", "--log", log)
        assert result.exit_code == 0, result.stderr
        copy = library / "b" / "x copy.jpg"
        if action == "hardlink":
            assert os.path.samefile(copy, library / "a" / "x.jpg") and not copy.is_symlink()
        else:
            assert copy.is_symlink() and copy.resolve() == (library / "a" / "x.jpg").resolve()
        assert not (library / "b" / "deep" / "x_small.jpg").is_symlink()  # different bytes: skipped
        assert "not a byte copy" in result.stderr
        assert _snapshot(library) == before  # content reads the same through the link
        assert cli("undo", log, index=False).exit_code == 0
        assert not copy.is_symlink() and not os.path.samefile(copy, library / "a" / "x.jpg")
        assert _snapshot(library) == before
        _index(cli, library)


def test_keep_rules_choose_the_keeper(library, cli):
    _index(cli, library)
    by_rule = {}
    for rule in ("pixels", "smallest", "shortest-path", "*/b/deep/*"):
        d = cli.json("dupes", "--keep", rule)
        x_group = next(g for g in d["groups"] if any("x_small" in f["path"] for f in g["files"]))
        by_rule[rule] = os.path.relpath(x_group["keep"], library)
    assert by_rule["pixels"] == "a/x.jpg"
    assert by_rule["smallest"] == "b/deep/x_small.jpg"
    assert by_rule["shortest-path"] == "a/x.jpg"
    assert by_rule["*/b/deep/*"] == "b/deep/x_small.jpg"
    assert cli("dupes", "--keep", "biggest").exit_code == 2


# -- HTML report ------------------------------------------------------------------------------------------------


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.geteuid() == 0 and shutil.which("apt-get"):  # the test setup installs Debian's chromium where it can
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"], capture_output=True,
                       timeout=600)
        if shutil.which("chromium"):
            return shutil.which("chromium")
    pytest.skip("no headless Chromium here, and it cannot be installed (needs root and apt-get)")


def _render(page: Path, tmp_path: Path, fragment: str = "") -> tuple[str, Path]:
    """The DOM after the page's scripts ran, and a screenshot, from headless Chromium."""
    browser = _chromium()
    common = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--user-data-dir={tmp_path / 'chromium-profile'}", "--run-all-compositor-stages-before-draw",
              "--virtual-time-budget=10000", "--window-size=1200,900"]
    for _attempt in range(3):  # on a loaded machine the first paint can come before the images decode
        dom = subprocess.run(common + ["--dump-dom", page.as_uri() + fragment], capture_output=True, text=True,
                             timeout=120).stdout
        if "data-loaded=" in dom:
            break
    shot = tmp_path / "report.png"
    subprocess.run(common + [f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    return dom, shot


def test_html_report_is_self_contained_and_renders_in_chromium(library, tmp_path, cli):
    _index(cli, library)
    page = tmp_path / "report.html"
    assert cli("dupes", "--format", "html", "-o", page).exit_code == 0
    html = page.read_text()
    assert "http://" not in html and "https://" not in html and "<link" not in html  # nothing from the network
    assert html.count("data:image/jpeg;base64,") == 5
    dom, shot = _render(page, tmp_path)
    assert dom.count('<section class="card"') == 2
    assert re.search(r'data-loaded="5"', dom), "every thumbnail in view decoded"
    assert 'class="badge">keep' in dom and "1 of 2" not in dom and "2 of 2 shown" in dom
    assert Image.open(shot).size == (1200, 900) and shot.stat().st_size > 20_000  # pictures, not a blank page
    filtered, _ = _render(page, tmp_path, "#q=y_turned")  # the filter box, prefilled from the address
    assert filtered.count('<section class="card"') == 1 and "1 of 2 shown" in filtered and "y_turned.jpg" in filtered


def test_html_report_of_the_labelled_photos_renders(labelled, tmp_path):
    cli = Cli(tmp_path / "index")
    assert cli("index", labelled, "--quiet", "--no-clip").exit_code == 0
    page = tmp_path / "labelled.html"
    assert cli("dupes", "--format", "html", "-o", page).exit_code == 0
    groups = len(cli.json("dupes")["groups"])
    dom, shot = _render(page, tmp_path)
    assert groups >= 8 and dom.count('<section class="card"') == groups
    loaded = int(re.search(r'data-loaded="(\d+)"', dom).group(1))
    assert loaded >= 8  # the thumbnails in and near the first screen were decoded (the rest load on scroll)
    assert Image.open(shot).size == (1200, 900)


def test_query_html(library, tmp_path, cli):
    _index(cli, library)
    page = tmp_path / "q.html"
    assert cli("query", library / "a" / "x.jpg", "--format", "html", "-o", page).exit_code == 0
    assert page.read_text().count("data:image/jpeg;base64,") >= 3


def test_groups_stay_put_in_the_report_after_a_dry_run(library, cli):
    _index(cli, library)
    assert [len(g) for g in group_paths(cli.json("dupes"))] == [3, 2]


@pytest.mark.parametrize("scoped", [False, True])
def test_a_move_destination_inside_an_indexed_folder_is_refused(library, tmp_path, cli, scoped):
    if not scoped:
        _index(cli, library)
    before = _snapshot(library)
    args = ["dupes", *([library] if scoped else []), "--action", "move", "--to", library / "_dupes", "--yes"]
    result = cli(*args)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "inside" in result.stderr and str(library) in result.stderr
    assert _snapshot(library) == before and not (library / "_dupes").exists()
    outside = cli("dupes", library, "--action", "move", "--to", tmp_path / "elsewhere", "--yes", "-q")
    assert outside.exit_code == 0 and (tmp_path / "elsewhere").is_dir()


def test_an_unwritable_default_log_names_the_fix(library, tmp_path, cli):
    _index(cli, library)
    (cli.index_dir / "logs").write_text("a file where the log folder would go")
    result = cli("dupes", "--action", "move", "--to", tmp_path / "trash", "--yes")
    assert result.exit_code == 2 and "--log FILE" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "trash").exists()


def test_an_interrupted_action_says_how_far_it_got_and_where_the_log_is(library, tmp_path, cli):
    from simfind import api
    from simfind.actions import act
    from simfind.errors import Interrupted

    _index(cli, library)
    report = api.duplicates(index_dir=str(cli.index_dir))
    log = tmp_path / "moves.jsonl"
    seen = []

    def ctrl_c_after_two(step):
        seen.append(step)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as e:
        act(report.groups, "move", to=str(tmp_path / "trash"), log=str(log), on_step=ctrl_c_after_two)
    assert "2 of 3 files" in str(e.value) and str(log) in str(e.value) and "simfind undo" in str(e.value)
    assert len(log.read_text().splitlines()) == 2
    assert cli("undo", log, index=False).exit_code == 0
