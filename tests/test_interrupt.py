"""Ctrl-C as a terminal sends it: SIGINT to the whole process group (the command and its worker processes), at
moments told apart by what the command leaves behind (the catalog, its rows, the summary line, torch mapped
in). Whenever it comes, stderr holds one line, the exit status is 130 (as a shell reports it), the catalog is
whole, and the next run finishes the rest."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import jpeg_bytes, picture

SIMFIND = [sys.executable, "-m", "simfind"]
FILES = 400
pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups are POSIX")


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """Enough camera-sized JPEGs that two workers take a while: 8 pictures, each file with other bytes."""
    root = tmp_path_factory.mktemp("many")
    data = [jpeg_bytes(picture(s, (1600, 1200)), quality=95) for s in range(8)]
    for k in range(FILES):
        (root / f"p{k:04d}.jpg").write_bytes(data[k % 8] + k.to_bytes(4, "big"))
    return root


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*SIMFIND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job: workers get it too
        # a test run started in the background inherits SIGINT ignored; a terminal's job has it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _rows(catalog: Path) -> int:
    try:
        with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=0.1) as conn:
            return conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    except sqlite3.Error:  # not there yet, or the schema is still being made
        return -1


def _wait(proc: subprocess.Popen, ready, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not ready():
        if proc.poll() is not None:
            pytest.skip(f"the command finished before {what} (machine too fast for this moment)")
        assert time.monotonic() < deadline, f"no {what} after {limit} s"
        time.sleep(0.01)


def _interrupt(proc: subprocess.Popen) -> tuple[int, list[str]]:
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:  # it had exited already
        pass
    _out, err = proc.communicate(timeout=60)
    return proc.returncode, err.splitlines()


# Python's own exit after an interrupt that landed in exec() of a string (dataclasses, namedtuple) re-raises
# SIGINT on itself, which a shell reports as 130 too.
INTERRUPTED = (130, -signal.SIGINT)


def _kept_and_resumed(idx: Path, root: Path, lines: list[str], total: int, *extra: str) -> None:
    """The one line says what the catalog holds, the catalog is whole, and the next run does the rest."""
    catalog = idx / "catalog.sqlite"
    kept = _rows(catalog)
    line = f"simfind: interrupted: {kept} of {total} files were indexed and kept; run the same command again to finish"
    assert lines == [line], lines
    with sqlite3.connect(catalog) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = subprocess.run([*SIMFIND, "index", str(root), "--index", str(idx), *extra], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"{total - kept} new" in again.stderr and f"{kept} unchanged" in again.stderr, again.stderr
    assert _rows(catalog) == total


@pytest.mark.parametrize("moment", ["workers-start", "mid-run"])
def test_index_interrupted_while_hashing(many, tmp_path, moment):
    idx = tmp_path / "idx"
    catalog = idx / "catalog.sqlite"
    proc = _start("index", str(many), "--index", str(idx), "--workers", "2", "--no-clip")
    if moment == "workers-start":  # its first child: the resource tracker, then the workers, are being started
        _wait(proc, lambda: _children(proc.pid), "a child process")
    else:
        _wait(proc, lambda: _rows(catalog) >= 32, "32 files committed")
    rc, lines = _interrupt(proc)
    assert rc in INTERRUPTED, lines
    _kept_and_resumed(idx, many, lines, FILES, "--no-clip")


def test_dupes_interrupted_while_it_indexes(many, tmp_path):
    idx = tmp_path / "idx"
    proc = _start("dupes", str(many), "--index", str(idx), "--workers", "2")
    _wait(proc, lambda: _rows(idx / "catalog.sqlite") >= 32, "32 files committed")
    rc, lines = _interrupt(proc)
    assert rc in INTERRUPTED, lines
    _kept_and_resumed(idx, many, lines, FILES, "--no-clip")


def test_interrupt_right_after_the_run_changes_nothing(many, tmp_path):
    """Once the summary is out every file is in: a Ctrl-C while the command exits (its workers being stopped)
    adds no line and changes no status."""
    idx = tmp_path / "idx"
    proc = _start("index", str(many), "--index", str(idx), "--workers", "2", "--no-clip")
    summary = proc.stderr.readline()
    assert summary.startswith("simfind: indexed:"), summary
    rc, rest = _interrupt(proc)
    assert (rc, rest) == (0, []), rest
    assert _rows(idx / "catalog.sqlite") == FILES


def _children(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return bool(fh.read().split())
    except OSError:
        pytest.skip("needs /proc to see child processes")


def _maps_torch(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/maps", encoding="ascii", errors="replace") as fh:
            return "libtorch" in fh.read()
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to see torch load")
def test_interrupted_while_the_clip_model_loads(tmp_path):
    """index and query, each stopped while torch loads: before, typer made this a silent exit 130."""
    pytest.importorskip("open_clip")
    from .test_clip import tiny_model

    spec = tiny_model(tmp_path / "tiny")
    root = tmp_path / "pics"
    root.mkdir()
    for seed in range(6):
        (root / f"p{seed}.jpg").write_bytes(jpeg_bytes(picture(seed), quality=90))
    idx = tmp_path / "idx"
    proc = _start("index", str(root), "--index", str(idx), "--model", spec, "--workers", "2")
    _wait(proc, lambda: _maps_torch(proc.pid), "torch loading")
    rc, lines = _interrupt(proc)
    assert rc in INTERRUPTED, lines
    _kept_and_resumed(idx, root, lines, 6, "--model", spec)

    query = _start("query", "a red square", "--index", str(idx))  # the model the index holds
    _wait(query, lambda: _maps_torch(query.pid), "torch loading")
    rc, lines = _interrupt(query)
    assert (rc in INTERRUPTED, lines) == (True, ["simfind: interrupted"])
