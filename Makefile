# sipchain developer entry points. GNU make; needs python3 (3.11) and, for the
# Debian tools the tests use, apt (installed automatically when run as root).
#
#   make demo    venv + reconstruct the call chains of a bundled failover capture
#   make test    venv + Debian tools + ruff + mypy + pytest
#   make lint    ruff + mypy only
#   make bench   parse throughput against dpkt and sipmessage
#   make clean   remove caches and build artefacts (keeps the venv)
#   make distclean   clean, and remove the venv too

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON3 ?= python3
VENV ?= .venv
PY = $(VENV)/bin/python
EXTRAS ?= test,tshark,bench

comma := ,
STAMP = $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

# Debian packages the test suite uses; installed only when missing and root.
APT_PACKAGES = tshark

.PHONY: help venv demo test lint bench tools clean distclean

help:
	@echo "make demo       create the venv and reconstruct a bundled failover capture"
	@echo "make test       install what the tests need, then ruff, mypy and pytest"
	@echo "make lint       ruff and mypy"
	@echo "make bench      parse throughput (benchmarks/bench_parse.py)"
	@echo "make clean      remove caches and build artefacts"
	@echo "make distclean  clean, and remove $(VENV)"

venv: $(STAMP)

# The stamp names the extras it was built with, and is rebuilt whenever
# pyproject.toml changes, so a repeated `make test` does not reinstall.
$(STAMP): pyproject.toml
	@if ! $(PYTHON3) -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "python3 cannot create a venv here: installing python3-venv"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv; \
	  else \
	    echo "python3 cannot create a venv: install python3-venv (apt-get install python3-venv)" >&2; \
	    exit 1; \
	  fi; \
	fi
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

demo: $(STAMP)
	@echo "== an intact failover capture: every leg, the timeout, the failover =="
	$(VENV)/bin/sipchain reconstruct fixtures/captures/failover-timeout.pcap --trunks fixtures/trunks.toml --policy fixtures/policy.toml
	@echo
	@echo "== the same kind of call with the primary's 503 cut from the capture: the audit gap is found =="
	@$(VENV)/bin/sipchain reconstruct fixtures/captures/gap-missing-primary-failure.pcapng --trunks fixtures/trunks.toml --policy fixtures/policy.toml; \
	status=$$?; [ $$status -eq 1 ] && echo "(exit status 1: an error finding, as a pipeline gating on the audit would see it)"

# Installs missing Debian tools when run as root; otherwise only says what is
# missing (the tests that need it are skipped).
tools:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do \
	  command -v $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing with apt:$$missing"; \
	  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "note: not installed:$$missing (not root, so not installing); tests that need them are skipped"; \
	fi

lint: $(STAMP)
	$(PY) -m ruff check sipchain tests benchmarks
	$(PY) -m mypy

test: $(STAMP) tools lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/bench_parse.py
	$(PY) benchmarks/bench_ingest.py

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage htmlcov
	find . -path ./$(VENV) -prune -o -name '__pycache__' -type d -prune -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -name '*.egg-info' -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
