# Integr8sCode: the two commands are `make up` and `make test`; the rest are their parts.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/.local/bin

PACKAGES := integr8scode_spans integr8scode_telemetry integr8scode_events integr8scode_mongo integr8scode_secrets integr8scode_auth integr8scode_api \
	integr8scode_coordinator integr8scode_dlq_processor integr8scode_event_replay \
	integr8scode_notifier integr8scode_client
PYTEST ?= uv run --no-sync pytest
# phase NAME CMD...: run one part of `make test`, then print how long it took.
PHASE := bash deploy/local/phase.sh

.PHONY: help install up down status logs test check lint typecheck contracts compose-check \
	unit integration e2e format images container-test chart-check

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

install: ## install tools, Debian packages and the workspace virtualenv
	@bash deploy/local/prereqs.sh

up: ## build what is missing, start the stack and the five services
	@bash deploy/local/stack.sh up

down: ## stop everything `make up` started
	@bash deploy/local/stack.sh down

status: ## show what runs
	@bash deploy/local/stack.sh status

logs: ## follow every log of the native stack
	@tail -n 20 -F .local/logs/*.log

test: ## everything CI runs: static checks, the Helm chart, every test on the native stack, then the e2e contract again against the five images
	@$(PHASE) install $(MAKE) --no-print-directory install
	@$(PHASE) checks $(MAKE) --no-print-directory check
	@$(PHASE) stack bash deploy/local/stack.sh ensure
	@$(PHASE) chart $(MAKE) --no-print-directory chart-check
	@$(PHASE) tests $(PYTEST) -m "not containers"
	@$(PHASE) images $(MAKE) --no-print-directory images
	@$(PHASE) container-tests $(MAKE) --no-print-directory container-test

images: ## build the five service images (podman with a Debian-made base here; docker where an engine answers)
	@bash deploy/containers/images.sh build
	@bash deploy/containers/images.sh sizes

container-test: ## the e2e contract suite against the five images in place of the native services (needs `make images`)
	@bash deploy/local/stack.sh ensure
	@bash deploy/containers/run.sh up
	@$(PYTEST) -m "contract or containers" tests/e2e tests/containers; rc=$$?; \
		bash deploy/containers/run.sh down; \
		bash deploy/local/components/services.sh start >/dev/null || rc=1; exit $$rc

chart-check: ## the Helm chart offline: lint, template (default and production values), strict schema validation
	@bash deploy/helm/check.sh

check: lint typecheck contracts compose-check ## static checks only

lint: ## ruff lint and format check
	uv run --no-sync ruff check .
	uv run --no-sync ruff format --check .

typecheck: ## mypy strict over every package and the tests
	uv run --no-sync mypy $(addprefix -p ,$(PACKAGES))
	uv run --no-sync mypy tests bench deploy/local/demo.py deploy/helm/apiserver/cluster.py
	@for d in libs/*/tests services/*/tests clients/*/tests; do uv run --no-sync mypy "$$d" || exit 1; done

contracts: ## import-linter: libs never import services, libs and services stay independent
	uv run --no-sync lint-imports

compose-check: ## validate docker-compose.yml without a Docker engine
	docker-compose -f docker-compose.yml config --quiet

unit: ## unit tests only (no stack needed)
	$(PYTEST) -m "not integration and not e2e and not containers"

integration: ## integration tests against the running stack
	$(PYTEST) -m integration

e2e: ## end-to-end tests against the running services
	$(PYTEST) -m e2e

format: ## apply ruff's fixes and formatting
	uv run --no-sync ruff check --fix .
	uv run --no-sync ruff format .
