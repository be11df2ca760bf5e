# The two commands a user needs: `make demo` and `make test`. Both install what is missing.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: bootstrap demo test lint deploy-check down status

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	$(BIN)/churnwire demo

test: bootstrap lint deploy-check
	$(BIN)/pytest -q

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/mypy

# Helm chart, Terraform, Dockerfile, alert rules and dashboards, checked offline; installs
# its tools under .tools/ the first time (scripts/deploy_tools.sh).
deploy-check: bootstrap
	@bash scripts/deploy_check.sh

down:
	$(BIN)/churnwire down

status:
	$(BIN)/churnwire status
