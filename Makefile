# neurodyn: two commands do all setup on a fresh machine.
#   make demo   create .venv, install neurodyn, run the main job on an embedded default
#   make test   create .venv, install neurodyn[dev,notebooks], run the test suite
# TORCH is the torch requirement; users get plain `torch`, CI passes the local CPU wheel.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint install clean notebooks

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[dev,notebooks]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/neurodyn demo --out data/demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check neurodyn tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache data/demo
