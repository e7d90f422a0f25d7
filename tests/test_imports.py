"""Start-up stays light and imports run one way: checked in fresh interpreters, as a user's shell starts them."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import simfind

HEAVY = ("numpy", "faiss", "PIL", "torch", "open_clip", "cv2", "dask")


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}


def test_importing_the_cli_loads_no_numpy_faiss_pillow_or_torch():
    assert not _loaded_after("import simfind.cli") & set(HEAVY)


def test_help_loads_no_numpy_faiss_pillow_or_torch():
    code = ("import contextlib, io, simfind.__main__ as m, sys\nsys.argv = ['simfind', '--help']\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    try:\n        m.main()\n    except SystemExit as e:\n"
            "        assert e.code in (0, None), e.code\n")
    assert not _loaded_after(code) & set(HEAVY)


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """An import circle (a imports b at the top, b imports a) fails for one of the two when it is imported first."""
    names = [f"simfind.{m.name}" for m in pkgutil.iter_modules(simfind.__path__)]
    assert {"simfind.api", "simfind.cli", "simfind.knn", "simfind.store"} <= set(names)

    def attempt(name: str):
        r = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=120)
        return name, r.returncode, r.stderr.strip().splitlines()[-1:] if r.returncode else []

    with ThreadPoolExecutor(4) as pool:
        failed = [r for r in pool.map(attempt, names) if r[1]]
    assert not failed, failed


def test_knn_imports_nothing_from_simfind():
    assert "simfind" not in _loaded_after("import importlib.util as u, sys\n"
                                          "spec = u.spec_from_file_location('knn', simfind_knn)\n"
                                          "m = u.module_from_spec(spec); spec.loader.exec_module(m)"
                                          .replace("simfind_knn", repr(simfind.__path__[0] + "/knn.py")))
