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
STOCK_MOVEMENT ?= 0
DAGSTER_PROFILE ?= local

.PHONY: run test sandbox install clean free-pool-slots

$(INSTALLED): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (python3.11, python3.12, ...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(INSTALLED)

# The terminal of `make run` shows what a person needs: where the UI is, what to click first, whether
# alerts are on, then warnings and errors. Each run's full log, DEBUG lines included, is on its page in
# the UI; its run worker also prints every line to this terminal, and Dagster has no setting for that
# console that leaves the UI's log whole (python_logs.python_log_level drops context.log lines from the
# UI too), so those DEBUG and INFO lines, and the daemon's notice that a new instance has no event
# cursor yet, are filtered out here.
QUIET_CONSOLE = grep --line-buffered -Ev '^[-0-9]+ [0-9:]+ [-+][0-9]{4} - dagster - (DEBUG|INFO) - |No cursor for event type'

run: $(INSTALLED)
	@mkdir -p "$(DAGSTER_HOME)"
	@cp lnb_pipeline/deploy/dagster.$(DAGSTER_PROFILE).yaml "$(DAGSTER_HOME)/dagster.yaml"
	@set -e; \
	$(BIN)/lnb-sandbox --shopify-port $(SHOPIFY_PORT) --lnb-port $(LNB_PORT) --scenario $(SCENARIO) --stock-movement $(STOCK_MOVEMENT) & \
	sandbox=$$!; trap 'kill $$sandbox 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python -m lnb_pipeline.sandbox.wait http://127.0.0.1:$(SHOPIFY_PORT) http://127.0.0.1:$(LNB_PORT); \
	if [ -n "$$(printf %s "$${LNB_ALERT_WEBHOOK_URL:-}" | tr -d '[:space:]')" ]; then \
		alerts="on: failed runs and blocked orders are posted to LNB_ALERT_WEBHOOK_URL"; \
	else \
		alerts="OFF: set LNB_ALERT_WEBHOOK_URL to be told of failed runs and blocked orders"; \
	fi; \
	printf '%s\n' "" \
		"Dagster UI   http://127.0.0.1:$(DAGSTER_PORT)   (ready in a few seconds)" \
		"First click  Jobs > inventory_preview > Materialize all: what a stock push would change, nothing written" \
		"Then         Jobs > inventory_sync > Materialize all: pushes the stock to LNB" \
		"Alerts       $$alerts" \
		"This terminal shows warnings and errors; each run's full log is on its page in the UI. Ctrl-C stops." ""; \
	[ -n "$${SHOPIFY_CLIENT_ID:-}" ] || export SHOPIFY_ACCESS_TOKEN=$${SHOPIFY_ACCESS_TOKEN:-sandbox-token}; \
	DAGSTER_HOME="$(DAGSTER_HOME)" \
	SHOPIFY_SHOP_URL=$${SHOPIFY_SHOP_URL:-http://127.0.0.1:$(SHOPIFY_PORT)} \
	LNB_BASE_URL=$${LNB_BASE_URL:-http://127.0.0.1:$(LNB_PORT)/apis/wholesale/v2} \
	LNB_CLIENT_ID=$${LNB_CLIENT_ID:-sandbox-client} \
	LNB_CLIENT_SECRET=$${LNB_CLIENT_SECRET:-sandbox-secret} \
	VIRTUAL_ENV="$(CURDIR)/$(VENV)" PATH="$(CURDIR)/$(BIN):$$PATH" \
	$(BIN)/dg dev --no-check-yaml --log-level warning -h 127.0.0.1 -p $(DAGSTER_PORT) 2>&1 \
		| { trap '' INT; $(QUIET_CONSOLE); }

sandbox: $(INSTALLED)
	$(BIN)/lnb-sandbox --shopify-port $(SHOPIFY_PORT) --lnb-port $(LNB_PORT) --scenario $(SCENARIO) \
		--stock-movement $(STOCK_MOVEMENT)

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# After a run killed outside the daemon (`dg launch`, a reboot): its pool slots, held forever otherwise.
# Fails the runs whose process is gone, frees their slots; DRY_RUN=1 only lists. See lnb_pipeline/deploy/pool_slots.py.
free-pool-slots: $(INSTALLED)
	DAGSTER_HOME="$(DAGSTER_HOME)" $(BIN)/python -m lnb_pipeline.deploy.pool_slots $(if $(DRY_RUN),--dry-run)

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks *.egg-info
