"""FileRefs -> Features/Failures, in parallel chunks.

The parallel backend is one injected choice (a `Runner`): joblib processes by default, in-process for
one worker; a Dask or Ray runner only has to map a function over chunks and yield results as they finish.
Results stream back chunk by chunk so the caller can write them to the catalog as they arrive.
"""

from __future__ import annotations

import os
from functools import partial
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

from .decode import DecodeError, decode
from .embed import Preprocess, prepare
from .hashing import content_hash, perceptual_hash, thumbnail
from .records import Failure, Features, FileRef

# pHash works on a 32x32 grey image: a JPEG decoded at >= 64 px a side (DCT-scaled) loses nothing it uses.
HASH_DRAFT_SIZE = 64
CHUNK_SIZE = 32

T = TypeVar("T")
R = TypeVar("R")

Result = Features | Failure


def process_file(ref: FileRef, clip: Preprocess | None = None) -> Result:
    """Read a file once, hash its bytes, decode it once, hash its pixels (and prepare them for CLIP)."""
    draft_size = max(HASH_DRAFT_SIZE, clip.size) if clip else HASH_DRAFT_SIZE
    try:
        with open(ref.path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        return Failure(ref, f"cannot read file: {e.strerror or e}")
    try:
        decoded = decode(data, draft_size)
        thumb = thumbnail(decoded.image)
        phash = perceptual_hash(thumb)
        pixels = prepare(decoded.image, clip) if clip else None
    except DecodeError as e:
        return Failure(ref, str(e))
    except Exception as e:  # a bad file must never stop a run: record it with what went wrong
        return Failure(ref, f"could not process image ({type(e).__name__}: {e})")
    return Features(ref, content_hash(data), decoded.width, decoded.height, phash, thumb.tobytes(), pixels)


def process_chunk(refs: Sequence[FileRef], clip: Preprocess | None = None) -> list[Result]:
    return [process_file(r, clip) for r in refs]


class Runner(Protocol):
    """Maps `fn` over `items`, yielding results in any order as they finish."""

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]: ...


class InProcessRunner:
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        for item in items:
            yield fn(item)


class JoblibRunner:
    """joblib worker processes (loky); results come back unordered, as soon as each chunk is done."""

    def __init__(self, n_jobs: int, backend: str = "loky"):
        self.n_jobs = n_jobs
        self.backend = backend

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=self.n_jobs, backend=self.backend, return_as="generator_unordered", batch_size=1)
        yield from parallel(delayed(fn)(item) for item in items)


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def make_runner(workers: int | None) -> Runner:
    n = workers or default_workers()
    return InProcessRunner() if n <= 1 else JoblibRunner(n)


def chunks(refs: Sequence[FileRef], size: int = CHUNK_SIZE) -> Iterator[list[FileRef]]:
    for i in range(0, len(refs), size):
        yield list(refs[i : i + size])


def run(
    refs: Sequence[FileRef], runner: Runner, chunk_size: int = CHUNK_SIZE, clip: Preprocess | None = None
) -> Iterator[list[Result]]:
    """Yield one list of results per finished chunk."""
    yield from runner.map(partial(process_chunk, clip=clip), chunks(refs, chunk_size))


def preview_chunk(paths: Sequence[str], size: int = 160) -> dict[str, str]:
    """Report thumbnails: path -> "data:image/jpeg;base64,..." (longest side `size`)."""
    import base64
    import io

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
