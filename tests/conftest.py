"""Test helpers: pictures are generated here, never mocked; the CLI runs through typer's CliRunner."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from typer.testing import CliRunner

from simfind.cli import app

# The shared real photos: $SIMFIND_TEST_DATA where set, else ../shared/data beside the repository.
SHARED_DATA = Path(os.environ.get("SIMFIND_TEST_DATA") or Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
                   ).expanduser()
SHARED_DATA_HINT = "set SIMFIND_TEST_DATA to the shared photo folder"  # the fix, for every skip that lacks the photos
LABELLED = SHARED_DATA / "labelled"


def picture(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A photo-like RGB picture: a smooth random colour field with random shapes, distinct per seed."""
    rng = np.random.default_rng(seed)
    field = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
    img = Image.fromarray(field, "RGB").resize(size, Image.BICUBIC)
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(w // 10, w // 2)), y0 + int(rng.integers(h // 10, h // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    return img.filter(ImageFilter.GaussianBlur(1))


def save(img: Image.Image, path: Path, **params) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **params)
    return path


def jpeg_bytes(img: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **params)
    return buf.getvalue()


class Cli:
    """Runs `simfind ARGS` in-process against one index folder."""

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir
        self.runner = CliRunner()

    def __call__(self, *args: str, index: bool = True, input: str | None = None):
        argv = [str(a) for a in args]
        if index:
            argv += ["--index", str(self.index_dir)]
        return self.runner.invoke(app, argv, input=input)

    def json(self, *args: str):
        result = self(*args, "--format", "json")
        assert result.exit_code in (0, 1), result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "index")


@pytest.fixture(scope="session")
def labelled() -> Path:
    if not LABELLED.is_dir():
        pytest.skip(f"the shared real-photo set is not at {LABELLED}; {SHARED_DATA_HINT}")
    return LABELLED.resolve()


def group_paths(dupes: dict) -> list[set[str]]:
    return [{os.path.basename(f["path"]) for f in g["files"]} for g in dupes["groups"]]
