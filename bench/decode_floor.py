"""The decode floor of bench/bench_index.py, run as its own process so that it pays what `simfind index` pays:
an interpreter start, its imports (joblib, Pillow) and a fresh pool of worker processes.

Usage: python bench/decode_floor.py PLAN.json WORKERS DRAFT
PLAN.json: a list of chunks, each a list of file paths, in the order they are handed out (pipeline.plan()).
"""

from __future__ import annotations

import io
import json
import sys

from joblib import Parallel, delayed
from PIL import Image


def decode_chunk(paths: list[str], draft: int) -> int:
    n = 0
    for p in paths:
        with open(p, "rb") as fh:
            data = fh.read()
        try:
            im = Image.open(io.BytesIO(data))
            if im.format == "JPEG":
                im.draft(None, (draft, draft))
            im.load()
            n += 1
        except Exception:
            pass
    return n


def main() -> int:
    plan_file, workers, draft = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(plan_file) as fh:
        chunks = json.load(fh)
    Parallel(n_jobs=workers, backend="loky", batch_size=1)(delayed(decode_chunk)(c, draft) for c in chunks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
