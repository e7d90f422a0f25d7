"""The parallel runner: every item once, and no more work handed out than the caller has room for."""

from __future__ import annotations

import os
import time
from pathlib import Path

from simfind.pipeline import InProcessRunner, JoblibRunner, make_runner


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
