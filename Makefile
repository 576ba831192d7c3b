# Two commands matter: `make run` (the product on the embedded sandbox) and `make test`.
# DAGSTER_PROFILE picks lnb_pipeline/deploy/dagster.<profile>.yaml: local (SQLite) or production (PostgreSQL).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
SHOPIFY_PORT ?= 8701
LNB_PORT ?= 8702
DAGSTER_PORT ?= 3000
SCENARIO ?= demo
DAGSTER_PROFILE ?= local

.PHONY: run test sandbox install clean free-pool-slots

$(INSTALLED): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (python3.11, python3.12, ...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(INSTALLED)

run: $(INSTALLED)
	@mkdir -p "$(DAGSTER_HOME)"
	@cp lnb_pipeline/deploy/dagster.$(DAGSTER_PROFILE).yaml "$(DAGSTER_HOME)/dagster.yaml"
	@set -e; \
	$(BIN)/lnb-sandbox --shopify-port $(SHOPIFY_PORT) --lnb-port $(LNB_PORT) --scenario $(SCENARIO) & \
	sandbox=$$!; trap 'kill $$sandbox 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python -m lnb_pipeline.sandbox.wait http://127.0.0.1:$(SHOPIFY_PORT) http://127.0.0.1:$(LNB_PORT); \
	echo; echo "Dagster UI: http://127.0.0.1:$(DAGSTER_PORT)  (Jobs -> inventory_sync -> Materialize all)"; echo; \
	[ -n "$${SHOPIFY_CLIENT_ID:-}" ] || export SHOPIFY_ACCESS_TOKEN=$${SHOPIFY_ACCESS_TOKEN:-sandbox-token}; \
	DAGSTER_HOME="$(DAGSTER_HOME)" \
	SHOPIFY_SHOP_URL=$${SHOPIFY_SHOP_URL:-http://127.0.0.1:$(SHOPIFY_PORT)} \
	LNB_BASE_URL=$${LNB_BASE_URL:-http://127.0.0.1:$(LNB_PORT)/apis/wholesale/v2} \
	LNB_CLIENT_ID=$${LNB_CLIENT_ID:-sandbox-client} \
	LNB_CLIENT_SECRET=$${LNB_CLIENT_SECRET:-sandbox-secret} \
	VIRTUAL_ENV="$(CURDIR)/$(VENV)" PATH="$(CURDIR)/$(BIN):$$PATH" \
	$(BIN)/dg dev -h 127.0.0.1 -p $(DAGSTER_PORT)

sandbox: $(INSTALLED)
	$(BIN)/lnb-sandbox --shopify-port $(SHOPIFY_PORT) --lnb-port $(LNB_PORT) --scenario $(SCENARIO)

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# After a run killed outside the daemon (`dg launch`, a reboot): its pool slots, held forever otherwise.
# Fails the runs whose process is gone, frees their slots; DRY_RUN=1 only lists. See lnb_pipeline/deploy/pool_slots.py.
free-pool-slots: $(INSTALLED)
	DAGSTER_HOME="$(DAGSTER_HOME)" $(BIN)/python -m lnb_pipeline.deploy.pool_slots $(if $(DRY_RUN),--dry-run)

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks *.egg-info
