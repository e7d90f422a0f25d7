"""The parallel runner: every item once, and no more work handed out than the caller has room for."""

from __future__ import annotations

import os
import time
from pathlib import Path

from simfind.pipeline import (
    CHUNK_SIZE,
    IN_PROCESS_BYTES,
    InProcessRunner,
    JoblibRunner,
    default_workers,
    make_runner,
    plan,
)
from simfind.records import FileRef


def _touch(path: str) -> str:
    Path(path).touch()
    return path


def test_joblib_runner_returns_every_item_once(tmp_path: Path):
    items = [str(tmp_path / f"{i}") for i in range(30)]
    assert sorted(JoblibRunner(2).map(_touch, items)) == sorted(items)
    assert sorted(InProcessRunner().map(_touch, items)) == sorted(items)


def test_workers_wait_for_a_slow_consumer_instead_of_piling_results_up(tmp_path: Path):
    """A CLIP model on the CPU takes decoded batches slower than the workers make them; the decoded pixels
    must not pile up in memory. With 2 workers, at most 4 chunks may be out beyond the ones taken."""
    items = [str(tmp_path / f"{i}") for i in range(40)]
    results = JoblibRunner(2).map(_touch, items)
    next(results)
    time.sleep(1.0)  # ample time for unbounded workers to run through all 40
    started = len(os.listdir(tmp_path))
    assert started <= 1 + 4 + 1, started  # the one taken, 4 ahead, and the one handed out when it was taken
    assert len(list(results)) == 39


def _pid(_item: int) -> int:
    return os.getpid()


def test_one_worker_beside_a_model_decodes_in_its_own_process():
    """On a 2-core CPU, CLIP indexing gets one decode worker: it must still run beside the model's forward pass
    (another process), not take turns with it in the model's process. Hash-only indexing with one worker
    decodes in-process (no pool to start)."""
    assert set(make_runner(1, overlap=True).map(_pid, range(4))) != {os.getpid()}
    assert set(make_runner(1).map(_pid, range(4))) == {os.getpid()}


def test_big_files_are_handed_out_first_and_spread_over_chunks():
    """Camera photos listed after thousands of small files must not all land in the last chunk, where one worker
    decodes them while the others idle: they go out first, a few per chunk, and every file goes out once."""
    small = [FileRef(f"/s/{i}.jpg", 40_000, 0) for i in range(2000)]
    big = [FileRef(f"/u/{i}.jpg", 5_000_000, 0) for i in range(30)]
    chunks = plan(small + big, workers=2)
    assert sorted(r.path for c in chunks for r in c) == sorted(r.path for r in small + big)
    assert {r.path for r in chunks[0]} <= {r.path for r in big}
    big_chunks = [c for c in chunks if any(r in big for r in c)]
    assert len(big_chunks) >= 8, "the big files must be spread so that both workers share them"
    assert all(len(c) <= CHUNK_SIZE for c in chunks)
    assert len(chunks) < len(small + big) // 8, "small files still travel many to a chunk"


def test_a_small_job_is_decoded_without_starting_worker_processes():
    """Starting workers costs more than decoding a few photos (0.6-0.9 s here): a handful of new files is done in
    simfind's own process unless the user asked for a number of workers; a big job still gets the pool."""
    me = os.getpid()
    assert set(make_runner(None, work_bytes=IN_PROCESS_BYTES - 1).map(_pid, range(4))) == {me}
    assert me not in set(make_runner(2, work_bytes=1000).map(_pid, range(4)))
    if default_workers() > 1:
        assert me not in set(make_runner(None, work_bytes=IN_PROCESS_BYTES).map(_pid, range(4)))
