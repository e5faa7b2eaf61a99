# Two commands set everything up: `make reports` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= sample
STAMP := $(VENV)/.vtr-installed

.PHONY: venv reports test lint format clean-reports lab docs

venv: $(STAMP)

# Re-install when the package metadata changes; `pip install -e` keeps lib/ live otherwise.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

reports: $(STAMP)
	$(PY) run_all.py --profile $(PROFILE)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest
	@# no --quiet: it hides the warnings that --strict turns into errors
	$(VENV)/bin/mkdocs build --strict --site-dir site

# The documentation site (docs/ + docstrings) into site/; warnings are errors, as in `make test`.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir site

# JupyterLab on the project. The notebooks' python3 kernel is the venv's own Python: Jupyter run from
# the venv prefers the venv's kernelspecs to user-wide ones (JUPYTER_PREFER_ENV_PATH makes that explicit).
# Extra options: make lab LAB_ARGS="--no-browser --port 8890".
LAB_ARGS ?=
lab: $(STAMP)
	JUPYTER_PREFER_ENV_PATH=1 $(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
		--LabApp.default_url=/lab/tree/notebooks $(LAB_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean-reports:
	rm -rf reports
