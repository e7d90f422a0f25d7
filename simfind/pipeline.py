"""FileRefs -> Features/Failures, in parallel chunks.

The parallel backend is one injected choice (a `Runner`): joblib processes by default, in-process for
one worker; a Dask or Ray runner only has to map a function over chunks and yield results as they finish.
Results stream back chunk by chunk so the caller can write them to the catalog as they arrive.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Protocol, TypeVar

from .hashing import content_hash, perceptual_hashes, trimmed_thumbnail
from .interrupts import block_signals, blocked, deferred
from .records import Failure, Features, FileRef

if TYPE_CHECKING:  # decode (Pillow) and embed are imported where files are decoded: the caller of run() never does
    from .embed import Preprocess

# pHash works on a 32x32 grey image: a JPEG decoded at >= 64 px a side (DCT-scaled) loses nothing it uses. Local
# features (local.py) want the picture at up to LOCAL_SIDE px, which a draft decode of a big photo still gives.
HASH_DRAFT_SIZE = 64
CHUNK_SIZE = 32

T = TypeVar("T")
R = TypeVar("R")

Result = Features | Failure


def process_file(ref: FileRef, clip: Preprocess | None = None) -> Result:
    """Read a file once, hash its bytes, decode it once, hash its pixels (and prepare them for CLIP)."""
    return process_chunk([ref], clip)[0]


def process_bytes(ref: FileRef, data: bytes, clip: Preprocess | None = None) -> Result:
    """process_file() for bytes already read."""
    return _with_phashes([_unhashed(ref, data, clip)])[0]


def process_chunk(refs: Sequence[FileRef], clip: Preprocess | None = None) -> list[Result]:
    return _with_phashes([_unhashed(r, data, clip) if isinstance(data := _read(r), bytes) else data for r in refs])


def _read(ref: FileRef) -> bytes | Failure:
    try:
        with open(ref.path, "rb") as fh:
            return fh.read()
    except OSError as e:
        return Failure(ref, f"cannot read file: {e.strerror or e}")


def _unhashed(ref: FileRef, data: bytes, clip: Preprocess | None) -> Result:
    """Everything but the pHash, which _with_phashes computes for a whole chunk at once."""
    from .decode import DecodeError, decode
    from .local import LOCAL_SIDE

    draft_size = max(HASH_DRAFT_SIZE, LOCAL_SIDE, clip.size if clip else 0)
    try:
        decoded = decode(data, draft_size, grey=clip is None)
        thumb, share, frame = trimmed_thumbnail(decoded.image)
        local = _local_features(decoded.image, frame)
        pixels = None
        if clip:
            from .embed import (
                prepare,  # hash-only workers never load embed (or what it imports)
            )

            pixels = prepare(decoded.image, clip)
    except DecodeError as e:
        return Failure(ref, str(e))
    except Exception as e:  # a bad file must never stop a run: record it with what went wrong
        return Failure(ref, f"could not process image ({type(e).__name__}: {e})")
    return Features(ref, content_hash(data), decoded.width, decoded.height, b"", thumb.tobytes(), pixels,
                    round(decoded.width * decoded.height * share), frame, decoded.camera, decoded.quality,
                    decoded.orientation, local)


def _local_features(image, frame: bytes) -> bytes:
    """local.extract() of the picture inside the borders trimmed_thumbnail() trimmed (the box `frame` ends with)."""
    import numpy as np

    from .local import extract

    grey = np.asarray(image if image.mode == "L" else image.convert("L"))
    if frame:
        h, w = grey.shape
        top, bottom, left, right = np.frombuffer(frame[-8:], "<u2").astype(np.float64) / 65535
        grey = grey[round(top * h):round(bottom * h), round(left * w):round(right * w)]
    return extract(grey)


def embeddings(model, results: Sequence[Result]) -> dict[str, bytes]:
    """path -> the CLIP embedding of each decoded result (its prepared pixels) as the catalog stores it:
    L2-normalised float16 bytes. `model`: an embed.ClipModel."""
    import numpy as np

    done = [r for r in results if isinstance(r, Features) and r.pixels is not None]
    if not done:
        return {}
    vecs = model.embed_pixels(np.stack([r.pixels for r in done]))
    return {r.ref.path: v.astype(np.float16).tobytes() for r, v in zip(done, vecs)}


def _with_phashes(results: list[Result]) -> list[Result]:
    done = [i for i, r in enumerate(results) if isinstance(r, Features)]
    if done:
        hashes = perceptual_hashes([results[i].thumb for i in done])
        for i, phash in zip(done, hashes):
            results[i] = replace(results[i], phash=phash)
    return results


class Runner(Protocol):
    """Maps `fn` over `items`, yielding results in any order as they finish. `remote`: its workers are other
    machines', which load the CLIP model themselves (cluster.py) rather than send pixels back to this one."""

    remote: bool

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]: ...

    def threads(self) -> int:
        """How many items it works on at once."""
        ...


class InProcessRunner:
    remote = False

    def threads(self) -> int:
        return 1

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        for item in items:
            yield fn(item)


class JoblibRunner:
    """joblib's worker processes (its loky executor); results come back unordered, as soon as each chunk is done.

    At most `ahead` chunks (default 2 per worker) are out at a time, and a new one is handed out only when the
    caller takes a result: workers that decode faster than the caller consumes (a CLIP model on the CPU) wait
    instead of piling decoded pixels up in memory. joblib's Parallel has no such bound: it hands out new work as
    tasks finish, not as results are taken."""

    remote = False

    def __init__(self, n_jobs: int, ahead: int | None = None):
        self.n_jobs = n_jobs
        self.ahead = ahead or 2 * n_jobs

    def threads(self) -> int:
        return self.n_jobs

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        from concurrent.futures import FIRST_COMPLETED, wait

        from joblib.externals.loky import get_reusable_executor

        # Workers (and the threads that may start more of them) are started with SIGINT and SIGTERM blocked: a
        # Ctrl-C reaches every process of the terminal's job, and each worker would print a traceback. This
        # process handles it alone and stops them below. The resource trackers are started first: the
        # standard library's unblocks both signals once it has started its own process.
        _start_resource_trackers()
        with blocked(), deferred():  # and an interrupt waits until the executor is whole
            executor = get_reusable_executor(max_workers=self.n_jobs, initializer=block_signals)
            todo = iter(items)
            pending = {executor.submit(fn, item) for item in islice(todo, self.ahead)}
        finished = False
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    with blocked(), deferred():
                        pending |= {executor.submit(fn, item) for item in islice(todo, 1)}
                    yield result
            finished = True
        finally:
            for future in pending:  # Ctrl-C, an error or an abandoned generator: nothing more is started
                future.cancel()
            if not finished:  # and what runs is stopped now, not waited for at exit
                executor.shutdown(wait=False, kill_workers=True)
                _kill_workers(executor)


def _kill_workers(executor) -> None:
    """SIGKILL the executor's worker processes. loky kills them from its manager thread, which may not get to it
    before this process exits; a worker left blocked on a full result pipe then keeps the exit waiting for it for
    ever (the interpreter joins its child processes at exit)."""
    import os
    import signal

    for process in list(getattr(executor, "_processes", {}).values()):
        try:
            os.kill(process.pid, signal.SIGKILL)
        except (OSError, AttributeError, TypeError):
            pass


def _start_resource_trackers() -> None:
    from multiprocessing import resource_tracker

    from joblib.externals.loky.backend import resource_tracker as loky_tracker

    resource_tracker.ensure_running()
    loky_tracker.ensure_running()


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# Starting worker processes costs most of a second (each loads an interpreter, joblib and numpy; loky adds a
# resource tracker), which a few new files do not repay. Less work than this is decoded in the caller's own
# process when the number of workers is left to simfind: below the break-even of both small and large machines.
IN_PROCESS_BYTES = 16 << 20


def clip_workers(device: str) -> int:
    """Decode workers beside a CLIP model. On the CPU, one per core: workers that get ahead of the model wait (the
    runner hands out new work only as results are taken), so they use only the time the model leaves, and a bf16
    forward on a CPU that runs it natively is fast enough for one worker to starve it (bench/bench_clip.py
    --workers). A GPU forward is faster than decoding, so there every core but the one feeding the GPU decodes."""
    cores = default_workers()
    return cores if device == "cpu" else max(1, cores - 1)


def make_runner(workers: int | None, overlap: bool = False, work_bytes: int | None = None) -> Runner:
    """Worker processes, or the caller's own process for one worker, or for less than IN_PROCESS_BYTES of files
    (`work_bytes`) when `workers` is None. `overlap`: the caller has work of its own (a CLIP forward pass) that
    decoding must run beside, so even one worker is a separate process."""
    if overlap:
        return JoblibRunner(workers or default_workers())
    n = workers or default_workers()
    if n <= 1 or (workers is None and work_bytes is not None and work_bytes < IN_PROCESS_BYTES):
        return InProcessRunner()
    return JoblibRunner(n)


PAIR_CHUNK = 1024  # candidate pairs per task of geometric verification at most: about half a second of work
IN_PROCESS_PAIRS = 4096  # fewer are verified in this process, faster than starting workers


def over_pairs(fn: Callable, blobs: Callable[[list[int]], list[bytes]], thumbs, i, j, flags, *args,
               runner: Runner | None = None, workers: int | None = None) -> tuple:
    """fn(blobs, thumbs, i, j, flags, *args) -> one array per pair (or a tuple of them), for the pairs (i[k], j[k])
    of pictures with thumbnails `thumbs`, each with `flags[k]`, across worker processes. `blobs`: picture numbers
    -> their packed local features, read task by task, so that each task carries only its own pictures' and no
    more than a few tasks' are in memory at once. Returns a tuple of arrays."""
    import numpy as np

    n = len(i)
    w = workers or (runner.threads() if runner is not None else default_workers())
    if n < IN_PROCESS_PAIRS or w <= 1:
        pics, ends = np.unique(np.concatenate((i, j)), return_inverse=True)
        out = fn(blobs(pics.tolist()), thumbs[pics], ends[:n], ends[n:], flags, *args)
        return out if isinstance(out, tuple) else (out,)
    size = max(256, min(PAIR_CHUNK, -(-n // (4 * w))))
    starts = range(0, n, size)

    def tasks():
        for k, s in enumerate(starts):
            pics, ends = np.unique(np.concatenate((i[s : s + size], j[s : s + size])), return_inverse=True)
            half = len(ends) // 2
            yield k, fn, blobs(pics.tolist()), thumbs[pics], ends[:half], ends[half:], flags[s : s + size], args

    parts: dict[int, tuple] = {}
    for k, out in (runner or make_runner(w)).map(_pair_task, tasks()):
        parts[k] = out
    return tuple(np.concatenate([parts[k][c] for k in range(len(starts))]) for c in range(len(parts[0])))


def _pair_task(task: tuple) -> tuple:
    k, fn, blobs, thumbs, i, j, flags, args = task
    out = fn(blobs, thumbs, i, j, flags, *args)
    return k, out if isinstance(out, tuple) else (out,)


def chunks(refs: Sequence[FileRef], size: int = CHUNK_SIZE) -> Iterator[list[FileRef]]:
    for i in range(0, len(refs), size):
        yield list(refs[i : i + size])


# A chunk of big files holds about this many bytes at most, so that camera photos spread over every worker.
CHUNK_BYTES_MAX = 64 << 20
CHUNKS_PER_WORKER = 16


def plan(refs: Sequence[FileRef], workers: int, size: int = CHUNK_SIZE) -> list[list[FileRef]]:
    """Chunks for hashing, in the order they are handed out: largest files first (a decode costs about its
    compressed size), each chunk at most `size` files and about 1/16 of a worker's share of the bytes. Handed
    out in file order, a folder of camera photos after thousands of thumbnails lands on one worker at the end
    while the others idle."""
    ordered = sorted(refs, key=lambda r: r.size, reverse=True)
    budget = min(CHUNK_BYTES_MAX, max(1, sum(r.size for r in refs) // (max(1, workers) * CHUNKS_PER_WORKER)))
    out: list[list[FileRef]] = []
    chunk: list[FileRef] = []
    held = 0
    for ref in ordered:
        if chunk and (len(chunk) == size or held + ref.size > budget):
            out.append(chunk)
            chunk, held = [], 0
        chunk.append(ref)
        held += ref.size
    if chunk:
        out.append(chunk)
    return out


def run(
    refs: Sequence[FileRef], runner: Runner, chunk_size: int = CHUNK_SIZE, clip: Preprocess | None = None,
    workers: int | None = None,
) -> Iterator[list[Result]]:
    """Yield one list of results per finished chunk. Hashing alone is planned by file size (plan()); with CLIP
    every chunk is one model batch of `chunk_size` files, in the order given."""
    work = chunks(refs, chunk_size) if clip else plan(refs, workers or default_workers(), chunk_size)
    yield from runner.map(partial(process_chunk, clip=clip), work)


def preview_chunk(paths: Sequence[str], size: int = 160) -> dict[str, str]:
    """Report thumbnails: path -> "data:image/jpeg;base64,..." (longest side `size`)."""
    import base64
    import io

    from .decode import DecodeError, decode

    out = {}
    for path in paths:
        try:
            with open(path, "rb") as fh:
                image = decode(fh.read(), size).image
            image.thumbnail((size, size))
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=60)
        except (OSError, DecodeError):
            continue
        out[path] = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return out
