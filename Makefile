# ocilearn — two commands do everything on a fresh Debian/Ubuntu machine:
#   make lab    set up, then open the course in JupyterLab
#   make test   set up, then run the whole test suite (notebooks included)
SHELL := /bin/bash
VENV := .venv
PORT ?= 8888
PYTEST_ARGS ?=
LAB_ARGS ?=

.PHONY: lab test setup-lab setup-test test-images bench lint clean

setup-lab:
	@scripts/setup.sh lab

setup-test:
	@scripts/setup.sh test

test-images: setup-test
	@scripts/build-test-images.sh
	@scripts/build-runtime-tools.sh

lab: setup-lab
	@scripts/build-test-images.sh --embedded-only
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root,) $(LAB_ARGS)

test: setup-test test-images
	$(VENV)/bin/ruff check ocilearn tests bench
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: setup-test test-images
	$(VENV)/bin/python -m bench

lint: setup-test
	$(VENV)/bin/ruff check ocilearn tests bench

clean:
	rm -rf $(VENV) .cache build *.egg-info
