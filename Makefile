# neurodyn: two commands do all setup on a fresh machine.
#   make demo   create .venv, install neurodyn, run the main job on an embedded default
#   make test   create .venv, install neurodyn[dev,notebooks,tune], build .venv-nlb, run the test suite
#   make nlb-env  the nlb_tools reference environment the parity tests compare against
#   make notebooks  re-execute notebooks/*.ipynb at full size (their committed outputs)
# TORCH is the torch requirement; users get plain `torch`, CI passes the local CPU wheel.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# nlb_tools 0.0.4 (the parity reference) pins pandas<=1.3.4, which has no wheel for Python 3.11: it gets
# an environment of its own, installed without its pins; pandas<3 because pandas 3 breaks its resample.
NLB_VENV ?= .venv-nlb
NLB_PY := $(NLB_VENV)/bin/python
NLB_STAMP := $(NLB_VENV)/.installed

.PHONY: demo test lint install clean notebooks nlb-env

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[dev,notebooks,tune]"
	touch $(STAMP)

install: $(STAMP)

$(NLB_STAMP):
	$(PYTHON) -m venv $(NLB_VENV)
	$(NLB_PY) -m pip install -q --upgrade pip
	$(NLB_PY) -m pip install -q --no-deps "nlb-tools==0.0.4"
	$(NLB_PY) -m pip install -q "pandas>=2,<3" numpy scipy scikit-learn h5py pynwb
	$(NLB_PY) -c "import nlb_tools.make_tensors, nlb_tools.evaluation, nlb_tools.nwb_interface"
	touch $(NLB_STAMP)

nlb-env: $(NLB_STAMP)

demo: $(STAMP)
	$(VENV)/bin/neurodyn demo --out data/demo --overwrite

test: $(STAMP) $(NLB_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check neurodyn tests benchmarks

notebooks: $(STAMP)  # re-execute every notebook at full size, outputs in place (minutes each, 1 thread)
	cd notebooks && for nb in *.ipynb; do OMP_NUM_THREADS=1 ../$(VENV)/bin/jupyter nbconvert --to notebook \
		--execute --inplace --ExecutePreprocessor.timeout=-1 "$$nb" || exit 1; done

clean:
	rm -rf $(VENV) $(NLB_VENV) build *.egg-info .pytest_cache data/demo
