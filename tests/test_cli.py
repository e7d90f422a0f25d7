"""The command-line contract (../shared/SPEC.md): output shapes, exit codes, errors as one line."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import jpeg_bytes, picture, save
from .test_decode import BAD_FILES

SIMFIND = [sys.executable, "-m", "simfind"]


@pytest.fixture
def small_set(tmp_path: Path) -> Path:
    root = tmp_path / "set"
    save(picture(1), root / "one" / "a.jpg", quality=90)
    save(picture(1), root / "two" / "a.png")
    save(picture(2), root / "one" / "b.jpg", quality=90)
    return root


def test_json_matches_the_spec(small_set, cli):
    cli("index", small_set, "--quiet", "--no-clip")
    d = cli.json("dupes")
    assert d["version"] == 1 and d["by"] == "hash" and 0 <= d["threshold"] <= 1
    assert set(d["stats"]) >= {"files", "groups", "duplicates", "errors"}
    (group,) = d["groups"]
    assert group["keep"] == group["files"][0]["path"]
    for f in group["files"]:
        assert set(f) == {"path", "similarity", "size", "width", "height"}
        assert os.path.isabs(f["path"])
        assert f["width"] == 640 and f["height"] == 480 and f["size"] == os.path.getsize(f["path"])


def test_csv_has_one_row_per_file(small_set, cli):
    cli("index", small_set, "--quiet", "--no-clip")
    result = cli("dupes", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["group", "path", "similarity", "size", "width", "height", "keep"]
    assert [r["keep"] for r in rows] == ["true", "false"] and {r["group"] for r in rows} == {"1"}


def test_machine_formats_keep_stdout_clean(small_set, cli):
    result = cli("dupes", small_set, "--format", "json")
    json.loads(result.stdout)  # nothing but the document on stdout
    assert "1 group," in result.stderr  # the summary goes to stderr
    quiet = cli("dupes", small_set, "--format", "json", "--quiet")
    assert quiet.stderr == ""


def test_table_for_people(small_set, cli):
    result = cli("dupes", small_set)
    assert result.exit_code == 0
    assert "keep" in result.stdout and "a.png" in result.stdout and "1 group, 1 duplicate," in result.stdout


def test_output_file(small_set, cli, tmp_path):
    out = tmp_path / "report.json"
    result = cli("dupes", small_set, "--format", "json", "-o", out, "--quiet")
    assert result.stdout == ""
    assert len(json.loads(out.read_text())["groups"]) == 1
    table = tmp_path / "report.txt"
    cli("dupes", small_set, "-o", table, "--quiet")
    assert "a.png" in table.read_text() and "\x1b[" not in table.read_text()


def test_fail_on_dupes_exit_codes(small_set, cli):
    assert cli("dupes", small_set, "--fail-on-dupes", "--quiet").exit_code == 1
    assert cli("dupes", small_set / "one", "--fail-on-dupes", "--quiet").exit_code == 0


@pytest.mark.parametrize(
    "args,words",
    [
        (["dupes", "--threshold", "1.5"], "--threshold"),
        (["dupes", "--threshold", "-0.1"], "--threshold"),
        (["dupes", "--format", "xml"], "--format"),
        (["dupes", "--by", "colour"], "--by"),
        (["index", "/no/such/folder"], "does not exist"),
        (["dupes", "/no/such/folder"], "does not exist"),
        (["index"], "Missing argument"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, words, cli):
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and words in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_index_is_exit_3_naming_the_fix(cli):
    result = cli("dupes")
    assert result.exit_code == 3
    assert "simfind index" in result.stderr and result.stderr.count("\n") == 1
    assert cli("info").exit_code == 3


def test_unreadable_catalog_is_exit_3(tmp_path, cli):
    cli.index_dir.mkdir()
    (cli.index_dir / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    result = cli("dupes")
    assert result.exit_code == 3 and "damaged" in result.stderr and "--rebuild" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_bad_files_are_recorded_counted_and_listed(tmp_path, cli):
    root = tmp_path / "mixed"
    save(picture(1), root / "good.jpg")
    save(picture(1), root / "good copy.png")
    for kind, (data, _words) in BAD_FILES.items():
        (root / f"{kind.replace(' ', '_')}.jpg").write_bytes(data)
    os.symlink(root / "gone.jpg", root / "dangling.jpg")
    index = cli("index", root, "--no-clip")
    assert index.exit_code == 0
    assert f"{len(BAD_FILES) + 1} files could not be read" in index.stderr
    d = cli.json("dupes")
    assert d["stats"]["errors"] == len(BAD_FILES) + 1 and len(d["groups"]) == 1
    again = cli("index", root, "--no-clip")  # nothing changed: the files are still not indexed, and it says so
    assert (f"8 unchanged; 1 file could not be read, {len(BAD_FILES)} more recorded as errors earlier "
            "(simfind info --errors)") in again.stderr  # the dangling link is found (and fails) by every scan
    info = json.loads(cli("info", "--errors", "--format", "json").stdout)
    reasons = {Path(e["path"]).name: e["reason"] for e in info["error_files"]}
    assert set(reasons) == {f"{k.replace(' ', '_')}.jpg" for k in BAD_FILES} | {"dangling.jpg"}
    for kind, (_data, words) in BAD_FILES.items():
        assert words in reasons[f"{kind.replace(' ', '_')}.jpg"]
    table = cli("info", "--errors")
    assert "empty file" in table.stdout


def test_info_reports_what_the_index_holds(small_set, cli):
    cli("index", small_set, "--quiet", "--no-clip")
    info = json.loads(cli("info", "--format", "json").stdout)
    assert info["version"] == 1 and info["files"] == 3 and info["errors"] == 0 and info["hashed"] == 3
    assert info["embedded"] == 0 and info["model"] is None and info["bytes"] > 0
    assert os.path.isabs(info["index"])


def test_version_and_help(cli):
    assert cli("--version", index=False).stdout.startswith("simfind ")
    help_text = cli("dupes", "--help", index=False).stdout
    assert "--threshold" in help_text and "--fail-on-dupes" in help_text


def test_index_location_from_environment(small_set, tmp_path):
    env = dict(os.environ, SIMFIND_INDEX=str(tmp_path / "envindex"))
    done = subprocess.run([*SIMFIND, "index", str(small_set), "--quiet", "--no-clip"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "envindex" / "catalog.sqlite").exists()


def test_real_subprocess_run_end_to_end(small_set, tmp_path):
    idx = str(tmp_path / "idx")
    done = subprocess.run(
        [*SIMFIND, "dupes", str(small_set), "--index", idx, "--format", "json", "--fail-on-dupes"],
        capture_output=True, text=True,
    )
    assert done.returncode == 1, done.stderr
    assert len(json.loads(done.stdout)["groups"]) == 1
    assert "Traceback" not in done.stderr


def test_an_interrupted_index_keeps_what_it_finished(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    data = [jpeg_bytes(picture(s, (1600, 1200)), quality=95) for s in range(8)]
    for k in range(400):
        (root / f"p{k:04d}.jpg").write_bytes(data[k % 8] + k.to_bytes(4, "big"))
    idx = tmp_path / "idx"
    proc = subprocess.Popen(
        [*SIMFIND, "index", str(root), "--index", str(idx), "--workers", "1", "--quiet", "--no-clip"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as a terminal's foreground job gets it: a test run started in the background inherits SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    catalog = idx / "catalog.sqlite"
    deadline = time.time() + 60
    committed = 0
    while time.time() < deadline and proc.poll() is None:
        if catalog.exists():
            try:
                committed = sqlite3.connect(catalog).execute("SELECT COUNT(*) FROM files").fetchone()[0]
            except sqlite3.OperationalError:
                committed = 0
            if committed >= 32:
                break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("indexing finished before it could be interrupted (machine too fast for this test)")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again" in err and "Traceback" not in err
    kept = sqlite3.connect(catalog).execute("SELECT COUNT(*) FROM files").fetchone()[0]
    assert 32 <= kept < 400
    assert sqlite3.connect(catalog).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = subprocess.run(
        [*SIMFIND, "index", str(root), "--index", str(idx), "--workers", "1", "--no-clip"], capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert f"{400 - kept} new" in again.stderr and f"{kept} unchanged" in again.stderr
    assert re.search(r"; \d+\.\d s -> ", again.stderr), again.stderr  # how long it took


_HOLD_LOCK = """
import sys, time
from simfind.lock import writer_lock
lock = writer_lock(sys.argv[1], print)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def test_a_second_writer_waits_for_the_first_and_a_dead_writer_frees_the_index(small_set, tmp_path):
    idx = str(tmp_path / "idx")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, idx, "2.5"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    started = time.time()
    done = subprocess.run([*SIMFIND, "index", str(small_set), "--index", idx, "--no-clip"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "waiting for another simfind" in done.stderr and time.time() - started >= 1.5
    holder.wait(timeout=30)
    # a writer killed while it holds the lock (kill -9, a crash) leaves nothing behind that blocks the next one
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, idx, "60"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait(timeout=30)
    again = subprocess.run([*SIMFIND, "index", str(small_set), "--index", idx, "--no-clip"], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "waiting" not in again.stderr, again.stderr


def test_a_lock_file_that_is_not_sqlites_does_not_block_indexing(small_set, tmp_path):
    """An empty lock file (as older simfinds left it) or one something else overwrote is taken over."""
    from simfind import api
    from simfind.lock import LOCK_NAME

    for content in (b"", b"not a database, whatever wrote it"):
        idx = tmp_path / f"idx{len(content)}"
        idx.mkdir()
        (idx / LOCK_NAME).write_bytes(content)
        assert api.index([str(small_set)], index_dir=str(idx)).added == 3


def test_two_processes_on_one_index_do_not_corrupt_it(small_set, tmp_path):
    for k in range(40):
        save(picture(100 + k, (320, 240)), small_set / "more" / f"m{k}.jpg")
    idx = str(tmp_path / "idx")
    procs = [
        subprocess.Popen([*SIMFIND, "index", str(small_set), "--index", idx, "--quiet", "--no-clip"], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for p in procs:
        _o, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    conn = sqlite3.connect(os.path.join(idx, "catalog.sqlite"))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM files").fetchone() == (43, 43)


def test_a_table_piped_or_redirected_never_splits_a_path(tmp_path, cli):
    deep = tmp_path / ("a folder with a long descriptive name " * 3).strip() / "and another level below it"
    save(picture(7), deep / "holiday photo number one.jpg", quality=90)
    save(picture(7).resize((320, 240)), deep / "holiday photo number one (small copy).jpg", quality=85)
    cli("index", deep, "--no-clip", "--quiet")
    piped = subprocess.run([*SIMFIND, "dupes", "--index", str(cli.index_dir)], capture_output=True, text=True,
                           cwd=tmp_path / "..")
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    for name in ("holiday photo number one.jpg", "holiday photo number one (small copy).jpg"):
        shown = str((deep / name).relative_to(tmp_path.parent))  # below the working folder: shown relative
        assert any(line.endswith(" " + shown) for line in lines), piped.stdout
    assert not any(line != line.rstrip() for line in lines)  # no padding to some terminal width either


def test_quiet_drops_the_summary_of_a_table_too(small_set, cli):
    cli("index", small_set, "--no-clip", "--quiet")
    loud, quiet = cli("dupes"), cli("dupes", "--quiet")
    assert "1 group, 1 duplicate" in loud.stdout
    assert "1 group, 1 duplicate" not in quiet.stdout and "a.png" in quiet.stdout and quiet.stderr == ""


def test_an_empty_query_result_is_one_line_naming_the_query(tmp_path, cli):
    save(picture(1), tmp_path / "set" / "a.jpg", quality=90)
    save(picture(2), tmp_path / "q.jpg", quality=90)
    cli("index", tmp_path / "set", "--no-clip", "--quiet")
    result = cli("query", tmp_path / "q.jpg", "-t", "0.99")
    assert result.exit_code == 0
    assert result.stdout.strip().splitlines() == [
        f"nothing among 1 indexed file is a copy of '{tmp_path / 'q.jpg'}' at similarity 0.99 or above (by hash)"]


def test_a_mistyped_image_path_is_no_such_file_not_a_text_query(small_set, cli):
    cli("index", small_set, "--no-clip", "--quiet")
    for missing in (small_set / "one" / "nope.jpg", "holiday.JPG", small_set / "one" / "nope"):
        result = cli("query", missing)
        assert result.exit_code == 2 and "no such image file" in result.stderr, (missing, result.stderr)
    text = cli("query", "a red car on a bridge")
    assert "needs CLIP" in text.stderr and "with the weights available" in text.stderr  # names the fix
    folder = cli("query", small_set / "one")
    assert folder.exit_code == 2 and "is a folder" in folder.stderr and "no such" not in folder.stderr
