# The two commands a user needs: `make demo` and `make test`. Both install what is missing.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: bootstrap demo test lint down status

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	$(BIN)/churnwire demo

test: bootstrap lint
	$(BIN)/pytest -q

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/mypy

down:
	$(BIN)/churnwire down

status:
	$(BIN)/churnwire status
