"""A sync plan -> the catalog: decode the files to do (in parallel), embed them where there is a model, and
commit each finished batch, so that Ctrl-C or a crash keeps everything committed before it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import Interrupted, SimfindError
from .interrupts import check, deferred
from .records import Failure

if TYPE_CHECKING:
    from .embed import ClipModel, LazyModel
    from .pipeline import Runner
    from .store import IndexDir
    from .sync import Plan

# (phase, done, total). Phases: "scan" (files found; total 0), "hash" (bytes of the files hashed so far: they go
# largest first, so a count of files would make an ETA wildly wrong), "index" (files, when CLIP embeds them: the
# model's cost is per image), "group" (steps).
Progress = Callable[[str, int, int], None]

# The memo (embed.Availability.memo) of the last situation in which the index was told the model's weights could
# not be had: the warning is given once per situation, not on every re-index.
UNAVAILABLE_MEMO = "clip_unavailable"


def check_model(idx: IndexDir, spec: str, reembed: bool) -> None:
    """One model per index: a different model is refused (or, with reembed, replaces every embedding)."""
    catalog = idx.catalog
    current = catalog.get_meta("model")
    if current == spec or not catalog.counts()["embedded"]:
        return
    if not reembed:
        raise SimfindError(
            f"this index holds embeddings from {current}; pass --model {current}, "
            f"or --reembed to replace them with {spec}, or use another --index"
        )
    catalog.clear_embeddings(spec, 0)  # every file is now unembedded; the dimension is set once the model loads


def ingest(idx: IndexDir, plan: Plan, *, lazy: LazyModel | None, runner: Runner | None, workers: int | None,
           batch_size: int, progress: Progress) -> tuple[list[Failure], int]:
    """Decode, embed and commit `plan.todo`. Returns the files that failed and how many unchanged files got the
    embedding they lacked. Raises Interrupted on Ctrl-C, with what was kept."""
    catalog = idx.catalog
    failures: list[Failure] = []
    done = done_bytes = 0
    batches = None
    remote = lazy is not None and runner is not None and runner.remote  # the cluster's workers load the model
    try:  # from the model's load on: an interrupt while torch loads is one too
        model = None
        if lazy is not None and plan.todo and not remote:
            told = catalog.get_meta(UNAVAILABLE_MEMO) or None
            model = lazy.get(told)
            if (lazy.memo or None) != told:
                catalog.set_meta(UNAVAILABLE_MEMO, lazy.memo)
            if model is None:
                plan.without_embeddings()
            elif catalog.get_meta("model") != model.spec or catalog.get_meta("dim") != str(model.dim):
                catalog.clear_embeddings(model.spec, model.dim)  # a first model for this index (check_model ran)
        todo = plan.todo
        embedding = model is not None or remote
        phase, total_bytes = ("index" if embedding else "hash"), sum(f.size for f in todo)

        def report() -> None:
            progress(phase, *((done, len(todo)) if phase == "index" else (done_bytes, total_bytes)))

        report()
        if todo:  # decoding pulls in Pillow, numpy and maybe a process pool: only when there is work
            if remote:
                batches = _remote_batches(idx, runner, todo, lazy, batch_size)
            else:
                batches = _local_batches(runner, todo, model, workers, batch_size, total_bytes)
            for batch, vectors in batches:
                check()
                with deferred():  # what is committed is counted, so that the message says what the catalog holds
                    catalog.write(batch, vectors)
                    failures += [r for r in batch if isinstance(r, Failure)]
                    done += len(batch)
                    done_bytes += sum(r.ref.size for r in batch)
                report()
    except KeyboardInterrupt:
        if batches is not None:
            batches.close()  # the runner stops its workers (or cancels the cluster's tasks) now, not at exit
        raise Interrupted(interrupted(done, len(plan.todo))) from None
    return failures, len(plan.embed_only)


def _local_batches(runner, todo, model: ClipModel | None, workers: int | None, batch_size: int, total_bytes: int):
    """(results, embeddings) per finished chunk, decoded by this machine's workers and embedded here."""
    from .pipeline import CHUNK_SIZE, clip_workers, embeddings, make_runner, run

    if workers is None and model is not None:
        workers = clip_workers(model.device)
    runner = runner or make_runner(workers, overlap=model is not None, work_bytes=total_bytes)
    chunks = run(todo, runner, batch_size if model else CHUNK_SIZE, model.preprocess if model else None, workers)
    try:
        for batch in chunks:
            yield batch, embeddings(model, batch) if model is not None else None
    finally:
        chunks.close()


def _remote_batches(idx: IndexDir, runner, todo, lazy: LazyModel, batch_size: int):
    """(results, embeddings) per finished chunk, decoded and embedded on a cluster's workers (cluster.py), each
    of which must hold the same model: the first answer's identity (spec and weights digest) is the one."""
    from functools import partial

    from .cluster import embedded_chunk
    from .errors import ClusterMismatch
    from .pipeline import chunks

    catalog = idx.catalog
    options = lazy.options
    work = partial(embedded_chunk, spec=options["spec"], device=options["device"], precision=options["precision"])
    identity, ready = None, False
    answers = runner.map(work, chunks(todo, batch_size))
    try:
        for batch, vectors, who in answers:
            if identity is None:
                identity = who
            elif who != identity:
                raise ClusterMismatch(
                    f"the cluster's workers hold different weights for {lazy.spec} ({identity.split()[-1]} and "
                    f"{who.split()[-1]}); give every worker the same model files")
            if vectors and not ready:  # the model's dimension is known from its first vectors
                dim = len(next(iter(vectors.values()))) // 2  # float16
                if catalog.get_meta("model") != lazy.spec or catalog.get_meta("dim") != str(dim):
                    catalog.clear_embeddings(lazy.spec, dim)  # a first model for this index (check_model ran)
                ready = True
            yield batch, vectors
    finally:
        answers.close()


def interrupted(done: int, total: int) -> str:
    return f"interrupted: {done} of {total} files were indexed and kept; run the same command again to finish"
