"""`--scheduler`: the per-file work on a Dask cluster. A LocalCluster of worker processes started here stands in
for a cluster of machines (same paths, same model folder): the catalog it builds must be the one a local run
builds, a worker lost mid-run must lose nothing, and failures must stay values."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simfind import api
from simfind.errors import SimfindError

from .conftest import jpeg_bytes, picture, save
from .test_clip import tiny_model

distributed = pytest.importorskip("distributed", reason="the cluster tests need dask[distributed] (make install)")

SIMFIND = [sys.executable, "-m", "simfind"]


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes behind a scheduler on a loopback port."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as c:
        yield c


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Pictures with copies (a resize, a re-encode), a corrupt file and a text file posing as a JPEG."""
    root = tmp_path_factory.mktemp("photos")
    for s in range(10):
        img = picture(100 + s)
        save(img, root / f"p{s:02d}.jpg", quality=90)
        if s % 3 == 0:
            save(img.resize((320, 240)), root / "copies" / f"p{s:02d}-small.png")
    (root / "broken.jpg").write_bytes(jpeg_bytes(picture(7))[:500])
    (root / "notes.jpg").write_text("not a picture")
    return root


def catalog_rows(index_dir: Path) -> tuple[dict, dict]:
    """Every file row (less its id and when it was written) by path, and the meta table less the embeddings
    revision."""
    with sqlite3.connect(index_dir / "catalog.sqlite") as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(files)") if r[1] not in ("id", "indexed_at")]
        rows = {r[0]: r for r in conn.execute(f"SELECT {', '.join(cols)} FROM files")}
        meta = dict(conn.execute("SELECT key, value FROM meta WHERE key != 'embeddings_rev'"))
    return rows, meta


def test_a_cluster_run_builds_the_catalog_a_local_run_builds(folder, cluster, tmp_path):
    api.index([str(folder)], index_dir=str(tmp_path / "local"), clip=None)
    report = api.index([str(folder)], index_dir=str(tmp_path / "cluster"), clip=None,
                       scheduler=cluster.scheduler_address)
    assert report.added == 16 and report.failed == 2
    local, cluster_rows = catalog_rows(tmp_path / "local"), catalog_rows(tmp_path / "cluster")
    assert cluster_rows == local
    rows = cluster_rows[0]
    assert all(rows[str(folder / n)][7] for n in ("broken.jpg", "notes.jpg"))  # recorded with a reason
    assert sum(r[3] is not None for r in rows.values()) == 14  # content hashes of every picture


def test_clip_on_the_workers_gives_the_local_embeddings(folder, cluster, tmp_path):
    spec = tiny_model(tmp_path / "model")
    api.index([str(folder)], index_dir=str(tmp_path / "local"), clip=spec, device="cpu")
    api.index([str(folder)], index_dir=str(tmp_path / "cluster"), clip=spec, device="cpu",
              scheduler=cluster.scheduler_address)
    local, on_cluster = catalog_rows(tmp_path / "local"), catalog_rows(tmp_path / "cluster")
    assert on_cluster == local
    assert on_cluster[1]["model"] == spec and on_cluster[1]["dim"] == "32"
    assert sum(r[8] is not None for r in on_cluster[0].values()) == 14  # every picture embedded


def test_workers_with_other_weights_for_one_model_stop_the_run(folder, cluster, tmp_path):
    """The same local-dir path holding another checkpoint on one worker (simulated: the folder changes between
    one worker's load and the other's) is refused, not mixed into one index."""
    spec = tiny_model(tmp_path / "model", seed=1)
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    try:
        first = sorted(client.scheduler_info()["workers"])[0]
        from simfind.cluster import _worker_model

        client.run(lambda: _worker_model(spec, "cpu", "auto") and None, workers=[first])
        tiny_model(tmp_path / "model", seed=2)  # the other worker will load these weights
        with pytest.raises(SimfindError, match="different weights"):
            api.index([str(folder)], index_dir=str(tmp_path / "idx"), clip=spec, device="cpu", batch_size=2,
                      scheduler=cluster.scheduler_address)
    finally:
        client.run(lambda: __import__("simfind.cluster").cluster._models.clear())
        client.close()


def test_a_file_the_workers_cannot_read_is_a_recorded_error(folder, cluster, tmp_path):
    root = tmp_path / "pics"
    for s in range(4):
        save(picture(s), root / f"{s}.jpg")
    gone = root / "3.jpg"

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "hash" and done == 0 and gone.exists():
            gone.unlink()  # found by the scan, gone before a worker reads it

    report = api.index([str(root)], index_dir=str(tmp_path / "idx"), clip=None, progress=progress,
                       scheduler=cluster.scheduler_address)
    assert report.failed == 1 and "cannot read file" in report.failures[0].reason


def test_a_worker_lost_mid_run_loses_nothing(cluster, tmp_path):
    root = tmp_path / "many"
    data = [jpeg_bytes(picture(s, (1600, 1200)), quality=95) for s in range(4)]
    for k in range(120):
        (root / f"p{k:03d}.jpg").parent.mkdir(exist_ok=True)
        (root / f"p{k:03d}.jpg").write_bytes(data[k % 4] + k.to_bytes(4, "big"))
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    killed = []

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "hash" and done and not killed:
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)  # its nanny starts another; its tasks go to the other worker
            killed.append(pid)

    try:
        report = api.index([str(root)], index_dir=str(tmp_path / "idx"), clip=None, progress=progress,
                           scheduler=cluster.scheduler_address)
        client.wait_for_workers(2, timeout=30)
    finally:
        client.close()
    assert killed and report.added == 120 and report.failed == 0
    api.index([str(root)], index_dir=str(tmp_path / "local"), clip=None)
    assert catalog_rows(tmp_path / "idx") == catalog_rows(tmp_path / "local")  # each file once, all of them


def test_an_unreachable_scheduler_is_one_line_and_exit_3(folder, tmp_path):
    run = subprocess.run([*SIMFIND, "index", str(folder), "--no-clip", "--index", str(tmp_path / "idx")],
                         env={**os.environ, "SIMFIND_SCHEDULER": "tcp://127.0.0.1:9"}, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 3
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in lines[0], run.stderr
    assert not (tmp_path / "idx").exists()  # said before any work


def test_ctrl_c_cancels_the_clusters_tasks_and_keeps_what_finished(cluster, tmp_path):
    from .test_interrupt import INTERRUPTED, _interrupt, _kept_and_resumed, _rows, _start, _wait

    root = tmp_path / "many"
    root.mkdir()
    data = [jpeg_bytes(picture(s, (1600, 1200)), quality=95) for s in range(4)]
    for k in range(400):
        (root / f"p{k:04d}.jpg").write_bytes(data[k % 4] + k.to_bytes(4, "big"))
    idx = tmp_path / "idx"
    proc = _start("index", str(root), "--no-clip", "--index", str(idx), "--scheduler", cluster.scheduler_address)
    _wait(proc, lambda: _rows(idx / "catalog.sqlite") > 0, "a first committed batch")
    code, lines = _interrupt(proc)
    assert code in INTERRUPTED, lines
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    try:
        deadline = time.monotonic() + 20
        while any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(client.processing().values())  # nothing left running for a command that has gone
    finally:
        client.close()
    _kept_and_resumed(idx, root, lines, 400, "--no-clip")


def test_dupes_on_the_cluster_reports_what_a_local_dupes_reports(folder, cluster, tmp_path, cli):
    api.index([str(folder)], index_dir=str(tmp_path / "idx"), clip=None)
    local = api.duplicates(index_dir=str(tmp_path / "idx"))
    remote = api.duplicates(index_dir=str(tmp_path / "idx"), scheduler=cluster.scheduler_address)
    groups = lambda r: sorted(sorted(m.file.path for m in g.members) for g in r.groups)  # noqa: E731
    assert groups(remote) == groups(local) and len(local.groups) == 4


def test_scheduler_without_dask_installed_is_exit_2_naming_the_extra(folder, tmp_path):
    code = ("import sys\nsys.modules['distributed'] = None  # as if dask[distributed] were not installed\n"
            "from simfind.__main__ import main\n"
            f"sys.argv = ['simfind', 'index', {str(folder)!r}, '--no-clip', '--index', {str(tmp_path / 'idx')!r}, "
            "'--scheduler', 'tcp://127.0.0.1:8786']\nmain()\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == ["simfind: error: --scheduler tcp://127.0.0.1:8786: Dask is not installed; "
                                       "pip install 'simfind[dask]'"]
