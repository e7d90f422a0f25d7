"""Start-up stays light and imports run one way: checked in fresh interpreters, as a user's shell starts them.

`simfind --help` and `import simfind.cli` must not pay for numpy, FAISS, Pillow, torch or OpenCV; every module
of the package must import on its own (an import circle fails for whichever side is imported first). The probes
are checked too, against throw-away modules, so that a broken probe cannot pass for a clean start-up.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import simfind

HEAVY = frozenset({"numpy", "faiss", "PIL", "torch", "open_clip", "cv2", "dask", "distributed", "scipy",
                   "pillow_heif", "imagehash", "torchvision"})
_DUMP = "import atexit, json, sys\natexit.register(lambda: print('\\nMODULES ' + json.dumps(sorted(sys.modules))))\n"


def _run(code: str, *, path: Path | None = None, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env)


def _loaded(out: subprocess.CompletedProcess) -> set[str]:
    """Top-level names in sys.modules at the exit of a process started with _DUMP."""
    (line,) = [ln for ln in out.stdout.splitlines() if ln.startswith("MODULES ")]
    return {m.split(".")[0] for m in json.loads(line[len("MODULES "):])}


def _loaded_after(code: str, path: Path | None = None) -> set[str]:
    out = _run(_DUMP + code, path=path)
    assert out.returncode == 0, out.stderr
    return _loaded(out)


def _help(path: Path | None = None, package: str = "simfind") -> subprocess.CompletedProcess:
    """`python -m simfind --help`, exactly as __main__ runs it, with sys.modules printed at exit."""
    code = _DUMP + f"import runpy, sys\nsys.argv[0] = {package!r}\nrunpy.run_module({package!r}, run_name='__main__')"
    return _run(code, path=path, args=("--help",))


def _modules(package) -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + "."))


def _failing_imports(names: list[str], path: Path | None = None) -> list[tuple[str, str]]:
    def attempt(name: str):
        out = _run(f"import {name}", path=path)
        return name, out.returncode, (out.stderr.strip().splitlines() or [""])[-1]

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        return [(name, err) for name, rc, err in pool.map(attempt, names) if rc]


# -- the package ----------------------------------------------------------------------------------------------


def test_importing_the_cli_loads_none_of_the_heavy_libraries():
    loaded = _loaded_after("import simfind.cli")
    assert "simfind" in loaded and not loaded & HEAVY, sorted(loaded & HEAVY)


def test_help_exits_0_and_loads_none_of_the_heavy_libraries():
    out = _help()
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout and "index" in out.stdout and "dupes" in out.stdout
    loaded = _loaded(out)
    assert "simfind" in loaded and not loaded & HEAVY, sorted(loaded & HEAVY)


def test_the_console_script_help_exits_0():
    script = Path(sys.executable).with_name("simfind")
    if not script.exists():
        pytest.skip(f"no console script at {script} (simfind is not installed in this interpreter's environment)")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Usage" in out.stdout, out.stderr


def test_a_hash_only_index_and_report_load_neither_dask_nor_torch(tmp_path):
    from PIL import Image

    for k in range(3):
        Image.new("RGB", (64, 48), (80 * k, 40, 200)).save(tmp_path / f"{k}.png")
    runs = [["index", str(tmp_path), "--no-clip", "-q", "--index", str(tmp_path / "idx")],
            ["dupes", "-q", "--index", str(tmp_path / "idx")]]
    code = ("import sys\nfrom simfind.cli import app\n"
            f"for argv in {runs!r}:\n    app(argv, standalone_mode=False)\n")
    loaded = _loaded_after(code)
    assert "PIL" in loaded and not loaded & {"dask", "distributed", "torch", "open_clip"}, sorted(loaded & HEAVY)


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """An import circle (a imports b at the top, b imports a) fails for one of the two when it is imported first."""
    names = _modules(simfind)
    assert {"simfind.catalog", "simfind.cli", "simfind.render", "simfind.records"} <= set(names)
    failed = _failing_imports(names)
    assert not failed, failed


def test_knn_imports_nothing_from_simfind():
    """knn.py (the FAISS wrapper) stands alone: loaded from its file, it brings in no simfind module."""
    knn = Path(simfind.__path__[0]) / "knn.py"
    if not knn.exists():
        pytest.skip("no simfind/knn.py in this version")
    code = ("import importlib.util as u\n"
            f"spec = u.spec_from_file_location('knn', {str(knn)!r})\n"
            "m = u.module_from_spec(spec)\nspec.loader.exec_module(m)\n")
    assert "simfind" not in _loaded_after(code)


# -- the probes themselves ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> Path:
    """A throw-away package `fakepkg`: a light module, one that imports numpy, a circle, and a __main__."""
    root = tmp_path_factory.mktemp("fake")
    files = {
        "fakepkg/__init__.py": "",
        "fakepkg/light.py": "import json\n",
        "fakepkg/heavy.py": "import numpy\n",
        "fakepkg/lazy.py": "def f():\n    import numpy\n    return numpy\n",
        "fakepkg/left.py": "from .right import R\nL = 1\n",
        "fakepkg/right.py": "from .left import L\nR = 2\n",
        "fakepkg/sub/__init__.py": "",
        "fakepkg/sub/deep.py": "from ..left import L\n",
        "fakepkg/__main__.py": "import sys\nfrom . import heavy\nprint('Usage: fake')\nsys.exit(0)\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def test_the_module_probe_sees_a_heavy_import_and_not_a_lazy_one(fake):
    assert "numpy" in _loaded_after("import fakepkg.heavy", fake)
    assert not _loaded_after("import fakepkg.lazy", fake) & HEAVY
    assert not _loaded_after("import fakepkg.light", fake) & HEAVY


def test_the_help_probe_sees_what_main_imports(fake):
    out = _help(fake, "fakepkg")
    assert out.returncode == 0 and "Usage: fake" in out.stdout, out.stderr
    assert "numpy" in _loaded(out)


def test_the_import_probe_finds_every_module_and_catches_a_circle(fake):
    sys.path.insert(0, str(fake))
    try:
        import fakepkg

        names = _modules(fakepkg)
    finally:
        sys.path.remove(str(fake))
        for name in [m for m in sys.modules if m == "fakepkg" or m.startswith("fakepkg.")]:
            del sys.modules[name]
    assert {"fakepkg.light", "fakepkg.left", "fakepkg.right", "fakepkg.sub.deep", "fakepkg.__main__"} <= set(names)
    failed = dict(_failing_imports([n for n in names if n != "fakepkg.__main__"], fake))
    assert set(failed) == {"fakepkg.left", "fakepkg.right", "fakepkg.sub.deep"}
    assert all("ImportError" in err for err in failed.values()), failed
