# The two commands a newcomer needs: `make demo` and `make test`. Everything else is here too.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint gen gen-check demo up bench bench-quick reliability clean docs

install: $(STAMP)

# Reinstall when the dependency list changes; a fresh clone needs nothing but python3.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check alethia services tests bench scripts
	$(BIN)/ruff format --check alethia services tests bench scripts
	$(BIN)/mypy

gen: install
	$(BIN)/python scripts/gen_protos.py

gen-check: install
	$(BIN)/python scripts/gen_protos.py --check

docs: install
	$(BIN)/python -m services.mapper.docs > docs/mapping.md

demo: install
	$(BIN)/alethia demo

up: install
	$(BIN)/alethia up

bench: install
	$(BIN)/python -m bench

bench-quick: install
	$(BIN)/python -m bench --quick

reliability: install
	$(BIN)/python -m pytest tests/reliability -m 'slow or not slow' $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .alethia .pytest_cache .mypy_cache .ruff_cache
