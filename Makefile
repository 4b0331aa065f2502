# Two commands: `make run` starts the local stack, `make test` runs every check.
# Both create and update .venv from the pinned constraints first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The browser tests drive Debian's Chromium (Playwright never downloads a browser here).
CHROMIUM := $(VENV)/.chromium-stamp

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[train,server,dev]'
	@touch $@

run: $(STAMP)
	$(BIN)/irisops up

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench deploy
	$(BIN)/ruff format --check src tests bench deploy

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest

$(CHROMIUM):
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
		|| echo "warning: no chromium (install Debian's package as root): browser tests will skip"
	@touch $@

# Not part of `test`: a few minutes of load against irisops and `mlflow models serve`.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .irisops .pytest_cache .mypy_cache .ruff_cache
