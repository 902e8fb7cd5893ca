# The two commands of the README: `make chat` (install, build the demo index, open the chat page)
# and `make test` (install with test extras, then run the whole test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: chat test test-fast lint eval-gate install install-test browser build-tools

chat: install
	$(BIN)/rag chat

test: install-test browser lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

# ruff's default rules at the pinned version (see [tool.ruff] in pyproject.toml).
lint: install-test
	$(BIN)/ruff check .

test-fast: install-test
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow and not browser and not benchmark"

# The SciFact and SQuAD suites against their stored baselines and the targets (embeds SciFact once: ~7 min).
eval-gate: install-test
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m benchmark tests/evals

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: a bare torch requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The test extras build llama-cpp-python from source (about 5 minutes on 2 cores; it serves the
# small SmolLM2 model the LLM tests talk to), which needs CMake and a C++ compiler.
$(VENV)/.installed-test: $(VENV)/.installed
	@$(MAKE) --no-print-directory build-tools
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

build-tools:
	@if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ >/dev/null; \
		else echo "cmake and g++ are needed to build llama-cpp-python: sudo apt-get install cmake g++"; exit 1; fi; \
	fi

# Debian's Chromium for the browser tests (never a downloaded browser); skipped where apt is unusable.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium not installed: browser tests will be skipped (sudo apt-get install chromium)"; fi; \
	fi
