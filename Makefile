PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install test bench clean

# An editable install leaves simfind's own modules uncompiled, and where PYTHONDONTWRITEBYTECODE is set every
# command (and every decode worker) would compile them again at start: compile them once, as installing a wheel
# does. `make bench` compiles again, for sources changed since.
install:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q simfind

# pytest exits 5 when it collects no tests; that must fail the build, and it does (any non-zero exit).
test:
	$(BIN)/python -m pytest -q

bench:
	$(BIN)/pip install --quiet -e ".[bench,dask,serve,test]"
	$(BIN)/python -m compileall -q simfind
	$(BIN)/python bench/bench_index.py
	$(BIN)/python bench/bench_quality.py --size full --out bench/results/quality.md
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/bench_tilt.py
	$(BIN)/python bench/bench_report.py
	$(BIN)/python bench/bench_keeper.py --min 0.97
	$(BIN)/python bench/bench_clip.py
	$(BIN)/python bench/bench_cluster.py
	$(BIN)/python bench/bench_serve.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
