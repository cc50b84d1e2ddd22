# ocilearn — two commands do everything on a fresh Debian/Ubuntu machine:
#   make lab    set up, then open the course in JupyterLab
#   make test   set up, then run the whole test suite (notebooks included)
#   make hub    a JupyterHub for a workshop room (as root): make hub HUB_PORT=8000 LEARNERS="ana ben" HUB_PASSWORD=...
#   make hub-reset [LEARNER=NAME]   a fresh course copy for one learner (or all of them)
SHELL := /bin/bash
VENV := .venv
PORT ?= 8888
PYTEST_ARGS ?=
LAB_ARGS ?=
# the workshop hub (scripts/hub/): empty values get start.sh's defaults, printed at start
HUB_PORT ?= 8000
LEARNERS ?=
HUB_PASSWORD ?=
HUB_STATE ?= .cache/hub
HUB_VENV ?= /opt/ocilearn-hub/venv
LEARNER ?=

.PHONY: lab test setup-lab setup-test test-images bench lint clean hub hub-reset

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

hub:
	@HUB_PORT='$(HUB_PORT)' LEARNERS='$(LEARNERS)' HUB_PASSWORD='$(HUB_PASSWORD)' HUB_STATE='$(HUB_STATE)' HUB_VENV='$(HUB_VENV)' scripts/hub/start.sh

hub-reset:
	@HUB_STATE='$(HUB_STATE)' HUB_VENV='$(HUB_VENV)' scripts/hub/reset.sh $(LEARNER)

lint: setup-test
	$(VENV)/bin/ruff check ocilearn tests bench

clean:
	rm -rf $(VENV) .cache build *.egg-info
