# Two commands: `make run` starts the local stack, `make test` runs every check.
# Both create and update .venv from the pinned constraints first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The browser tests drive Debian's Chromium (Playwright never downloads a browser here).
CHROMIUM := $(VENV)/.chromium-stamp

.PHONY: run test lint typecheck pytest bench clean train-ci promote-ci release

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[train,server,dev]'
	@touch $@

run: $(STAMP)
	$(BIN)/irisops up

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench deploy ci
	$(BIN)/ruff format --check src tests bench deploy ci

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest

$(CHROMIUM):
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
		|| echo "warning: no chromium (install Debian's package as root): browser tests will skip"
	@touch $@

# CI's training job (ci/train.sh): train without moving `champion`, then the comparison
# with the champion in $(SUMMARY). TRAIN_ARGS="--n-estimators 300" passes hyperparameters.
train-ci: $(STAMP)
	BIN=$(BIN) bash ci/train.sh

# CI's promotion job: VERSION becomes champion only if the promotion gate passes it.
promote-ci: $(STAMP)
	@test -n "$(VERSION)" || { echo "usage: make promote-ci VERSION=<registered version>"; exit 2; }
	$(BIN)/irisops promote "$(VERSION)" --gate

# The release workflow's step, on a version tag: TAG=v1.2.3 IMAGES="<image@digest> ...".
release:
	@test -n "$(TAG)" || { echo "usage: make release TAG=vX.Y.Z IMAGES='...'"; exit 2; }
	$(PYTHON) ci/release_notes.py "$(TAG)" $(IMAGES) > release-notes.md
	gh release create "$(TAG)" --title "$(TAG)" --notes-file release-notes.md

# Not part of `test`: a few minutes of load against irisops and `mlflow models serve`.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .irisops .pytest_cache .mypy_cache .ruff_cache
