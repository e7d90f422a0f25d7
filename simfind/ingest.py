"""A sync plan -> the catalog: decode the files to do (in parallel), embed them where there is a model, and
commit each finished batch, so that Ctrl-C or a crash keeps everything committed before it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import Interrupted, SimfindError
from .interrupts import check, deferred
from .records import Failure, Features

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
    try:  # from the model's load on: an interrupt while torch loads is one too
        model = None
        if lazy is not None and plan.todo:
            told = catalog.get_meta(UNAVAILABLE_MEMO) or None
            model = lazy.get(told)
            if (lazy.memo or None) != told:
                catalog.set_meta(UNAVAILABLE_MEMO, lazy.memo)
            if model is None:
                plan.without_embeddings()
            elif catalog.get_meta("model") != model.spec or catalog.get_meta("dim") != str(model.dim):
                catalog.clear_embeddings(model.spec, model.dim)  # a first model for this index (check_model ran)
        todo = plan.todo
        phase, total_bytes = ("index" if model is not None else "hash"), sum(f.size for f in todo)

        def report() -> None:
            progress(phase, *((done, len(todo)) if phase == "index" else (done_bytes, total_bytes)))

        report()
        if todo:  # decoding pulls in Pillow, numpy and maybe a process pool: only when there is work
            from .pipeline import CHUNK_SIZE, clip_workers, make_runner, run

            if workers is None and model is not None:
                workers = clip_workers(model.device)
            runner = runner or make_runner(workers, overlap=model is not None, work_bytes=total_bytes)
            batches = run(todo, runner, batch_size if model else CHUNK_SIZE, model.preprocess if model else None,
                          workers)
            for batch in batches:
                check()
                vectors = _embeddings(model, batch) if model is not None else None
                with deferred():  # what is committed is counted, so that the message says what the catalog holds
                    catalog.write(batch, vectors)
                    failures += [r for r in batch if isinstance(r, Failure)]
                    done += len(batch)
                    done_bytes += sum(r.ref.size for r in batch)
                report()
    except KeyboardInterrupt:
        if batches is not None:
            batches.close()  # the runner stops its workers now, not at exit
        raise Interrupted(interrupted(done, len(plan.todo))) from None
    return failures, len(plan.embed_only)


def interrupted(done: int, total: int) -> str:
    return f"interrupted: {done} of {total} files were indexed and kept; run the same command again to finish"


def _embeddings(model: ClipModel, batch) -> dict[str, bytes]:
    """path -> the embedding as the catalog stores it (L2-normalised float16 bytes)."""
    import numpy as np

    done = [r for r in batch if isinstance(r, Features) and r.pixels is not None]
    if not done:
        return {}
    vecs = model.embed_pixels(np.stack([r.pixels for r in done]))
    return {r.ref.path: v.astype(np.float16).tobytes() for r, v in zip(done, vecs)}
