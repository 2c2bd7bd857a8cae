# The two commands a newcomer needs: `make demo` and `make test`. Everything else is here too.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# checkov pins packaging<24, which the pipeline cannot use: it gets a venv of its own, with
# the version of the `policy` extra in pyproject.toml.
CHECKOV_STAMP := $(VENV)/checkov/.installed

.PHONY: install browser test lint gen gen-check demo up bench bench-quick reliability clean docs console-screenshots

install: $(STAMP) $(CHECKOV_STAMP)
	@# Bytecode for our own modules, as a non-editable install would have: with
	@# PYTHONDONTWRITEBYTECODE set (as on CI) every `alethia` command compiled them afresh.
	@$(BIN)/python -m compileall -q alethia services >/dev/null

# Reinstall when the dependency list changes; a fresh clone needs nothing but python3.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(CHECKOV_STAMP): pyproject.toml $(STAMP)
	test -x $(VENV)/checkov/bin/python || $(BIN)/python -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/checkov/bin/python -m pip install --quiet $$($(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["policy"])')
	touch $(CHECKOV_STAMP)

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The Console's browser tests (tests/console) drive Debian's chromium through Playwright; no
# browser is ever downloaded. Installed here when missing and when root (CI, a fresh machine);
# otherwise those tests skip, and under CI=true they fail. ALETHIA_CHROMIUM names another binary.
browser:
	@if [ -n "$$ALETHIA_CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the Console's browser tests"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq \
		  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "warning: chromium could not be installed: the Console's browser tests will skip (fail under CI=true)"; \
	else \
		echo "note: no chromium and not root: the Console's browser tests will be skipped"; \
	fi

# docs/console/*.png from the real pages of a real stack (the browser tests, saving each page).
console-screenshots: install browser
	$(BIN)/python scripts/console_screenshots.py

lint: install
	$(BIN)/ruff check alethia services tests bench scripts
	$(BIN)/ruff format --check alethia services tests bench scripts
	$(BIN)/mypy
	$(BIN)/python scripts/checkov_templates.py

gen: install
	$(BIN)/python scripts/gen_protos.py
	$(BIN)/python -m alethia.spec_schema > alethia/mapping/spec_model.py
	$(BIN)/python -m alethia.spec_schema --console > alethia/console/static/spec_schema.json

gen-check: install
	$(BIN)/python scripts/gen_protos.py --check

docs: install
	$(BIN)/python -m alethia.mapping.docs > docs/mapping.md
	$(BIN)/python -m alethia.spec_schema --docs > docs/spec.md

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
