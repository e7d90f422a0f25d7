"""A Dask cluster as the pipeline's runner: the per-file work (read, decode, hashes, thumbnails, local features,
CLIP) runs on the cluster's workers and the results stream back to the command, which commits them.

distributed.Client is used directly rather than through joblib's dask backend. Both map the same chunks in the
same time (bench/bench_cluster.py: within a few per cent), but the Client gives what the runner needs as it is:
a bounded number of chunks out ahead, handed out as the command takes results (as pipeline.JoblibRunner does),
results as they finish (as_completed), and Client.cancel for what is left on Ctrl-C. Nothing here imports Dask
until a scheduler is asked for.

A worker that is lost mid-run loses nothing: the scheduler runs its tasks again elsewhere, and each task's
result is taken (and committed) once, when its future first completes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from itertools import islice
from typing import TypeVar

from .errors import ModelUnavailable, SchedulerUnreachable, SimfindError, UsageError
from .pipeline import embeddings, process_chunk
from .records import Features, FileRef

T = TypeVar("T")
R = TypeVar("R")

# How long the command waits for the scheduler to answer before it says it cannot be reached.
CONNECT_TIMEOUT_S = 5
# Chunks handed out ahead per worker thread: enough that no worker waits for the command to hand out more.
AHEAD_PER_THREAD = 2


class DaskRunner:
    """pipeline.Runner over a distributed.Client: maps a function over items on the cluster's workers, at most
    AHEAD_PER_THREAD chunks per worker thread out at a time, yielding results as they finish. A map abandoned
    (Ctrl-C, an error) cancels what the cluster has not finished."""

    remote = True  # the workers embed with CLIP themselves (ingest.py)

    def __init__(self, client, address: str):
        self.client = client
        self.address = address

    def threads(self) -> int:
        """Worker threads in the cluster now (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        from distributed import as_completed

        todo = iter(items)
        ahead = AHEAD_PER_THREAD * self.threads()
        pending = {self.client.submit(fn, item, pure=False) for item in islice(todo, ahead)}
        finished = as_completed(pending, loop=self.client.loop)
        try:
            for future in finished:
                pending.discard(future)
                result = future.result()  # a task's own exception (a worker that cannot load the model) is raised
                future.release()
                for item in islice(todo, 1):
                    new = self.client.submit(fn, item, pure=False)
                    pending.add(new)
                    finished.add(new)
                yield result
        finally:
            if pending:  # Ctrl-C, an error or an abandoned generator: the cluster stops what is left
                self.client.cancel(list(pending), force=True)

    def close(self) -> None:
        try:
            self.client.close(timeout=CONNECT_TIMEOUT_S)
        except Exception:  # the scheduler may be gone already; nothing of ours is left to lose
            pass

    def __enter__(self) -> DaskRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(address: str) -> DaskRunner:
    """A runner on the Dask scheduler at `address` (tcp://HOST:8786). UsageError when Dask is not installed;
    SchedulerUnreachable when the scheduler does not answer within CONNECT_TIMEOUT_S."""
    try:
        import distributed
    except ImportError:
        raise UsageError(f"--scheduler {address}: Dask is not installed; pip install 'simfind[dask]'") from None
    # The client's own log lines (connection retries, cancelled tasks at Ctrl-C) are not for a user: what goes
    # wrong reaches the command as an exception and is said in one line.
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s ({why}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`, or check --scheduler") from None
    return DaskRunner(client, address)


# -- on the workers ------------------------------------------------------------------------------------------

_models: dict[tuple, tuple] = {}
_loading = threading.Lock()


def _worker_model(spec: str, device: str, precision: str):
    """The CLIP model on this worker, loaded once per worker process (not per task) on the worker's own device,
    and its identity: the canonical spec and a digest of its weights."""
    key = (spec, device, precision)
    with _loading:  # a worker with several threads loads it once
        if key not in _models:
            import socket

            from .embed import load, weights_digest

            try:
                model = load(spec, device=device, precision=precision, threads=_worker_threads())
            except SimfindError as e:
                raise ModelUnavailable(f"worker {socket.gethostname()}: {e}") from None
            except Exception as e:  # torch's own errors, said in one line the command can show
                raise ModelUnavailable(f"worker {socket.gethostname()} cannot load {spec} "
                                       f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
            _models[key] = model, f"{model.spec} {weights_digest(model.model)}"
        return _models[key]


def _worker_threads() -> int | None:
    """The threads the Dask worker this runs on was started with (torch uses as many), None outside one."""
    try:
        from distributed import get_worker

        return get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return None


def embedded_chunk(refs: list[FileRef], spec: str, device: str = "auto",
                   precision: str = "auto") -> tuple[list, dict[str, bytes], str]:
    """pipeline.process_chunk with CLIP on the worker: (results without pixels, path -> float16 embedding,
    the model's identity), so that only the vectors travel back."""
    model, identity = _worker_model(spec, device, precision)
    results = process_chunk(refs, model.preprocess)
    vectors = embeddings(model, results)
    bare = [replace(r, pixels=None) if isinstance(r, Features) else r for r in results]
    return bare, vectors, identity
