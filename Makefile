# Quick start: `make demo` runs the demo, `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SIZE   ?= secondary+trust+trust50
PREFIX ?= /usr/local
SCHEDULER ?= auto
MAILTO ?= root

.PHONY: demo test lint typecheck pytest bench soak clean install uninstall

$(BIN)/python:
	@echo "First use: installing smartsync and its dependencies from the package index (PyPI) into $(VENV);"
	@echo "later runs reuse it. The demo's journal goes to ./.smartsync-demo/."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $@ $(VENV)/.installed-run

demo: $(VENV)/.installed-run
	$(BIN)/smartsync demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check smartsync tests benchmarks
	$(BIN)/ruff format --check smartsync tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy smartsync benchmarks

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -q

test: lint typecheck pytest

# `make bench` runs the secondary school, the trust and the large trust's first sync; `make bench SIZE=small`
# the quick version.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks --size $(SIZE)

# `make soak` runs the long reliability soak (a few minutes); SOAK_ARGS="--seeds 30 --kills 20" for more.
soak: $(VENV)/.installed-dev
	$(BIN)/python -u tests/soak.py $(SOAK_ARGS)

# `sudo make install`: the one install path every document uses (see contrib/install.sh for what it
# sets up); DESTDIR=/staging/root installs into a staging root without creating users.
install:
	@DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" PYTHON="$(PYTHON)" SCHEDULER="$(SCHEDULER)" \
	    MAILTO="$(MAILTO)" SITE_PACKAGES_FROM="$(SITE_PACKAGES_FROM)" sh contrib/install.sh install

uninstall:
	@DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" sh contrib/install.sh uninstall

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .smartsync-demo
