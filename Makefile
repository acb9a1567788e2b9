# Two commands a new user needs: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export MPLBACKEND := Agg

.PHONY: install run test viz-check clean-data mlflow-ui mlflow-store

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(MAKE) --no-print-directory mlflow-store
	touch $(STAMP)

## Create the MLflow store's tables once (two first runs at once would race on them).
mlflow-store: | $(BIN)/python
	$(BIN)/python -c "from xrf_sr_kedro.hooks import create_mlflow_store as c; c('sqlite:///$(CURDIR)/mlflow.db')"

install: $(STAMP)

## Run the main job on the embedded default data: simulate the sample and the
## training pairs, fine-tune the shipped pretrained network, enhanced tomography, report.
## (`$(BIN)/kedro run --pipeline full` also pretrains the network: ~14 min more on 2 cores.)
run: install
	$(BIN)/kedro run

## Install and run the test suite.
test: install
	$(BIN)/python -m pytest

## Screenshot kedro-viz and the MLflow UI in headless Chromium (installs Chromium).
viz-check: install
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python scripts/ui_check.py

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

clean-data:
	find data -type f ! -name .gitkeep ! -path 'data/01_raw/embedded/*' -delete
