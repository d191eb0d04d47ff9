# The two commands a newcomer runs: `make demo` and `make test`.
# Both create the virtual environment from nothing on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint typecheck bench clean i18n

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tasuki demo
	@echo "Open the Sales Ops console on this data: $(BIN)/tasuki serve --demo"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The console's browser tests drive Debian's Chromium (Playwright never downloads a browser);
# installed once, only when missing (CJK fonts so Japanese pages render in screenshots).
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk

test: lint typecheck $(CHROMIUM)
	$(BIN)/pytest -n auto --maxprocesses 4 --dist loadfile

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# The console's catalogs: new messages from the code and templates into the .po files (then
# translate them), and the .mo files the app reads, compiled from them (both are committed).
I18N := tasuki/console/translations
i18n: $(STAMP)
	$(BIN)/pybabel extract -F tasuki/console/babel.cfg --no-location -o $(I18N)/messages.pot .
	$(BIN)/pybabel update -i $(I18N)/messages.pot -d $(I18N) --width 100
	$(BIN)/pybabel compile -d $(I18N)
	rm $(I18N)/messages.pot

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
