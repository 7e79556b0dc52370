# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned here (a CPU build lies on the development machines' disk); the package itself
# only asks for torch>=2.3.
TORCH  ?= torch==2.13.0
PYTEST_WORKERS ?= 2

.PHONY: venv install demo demo-quick test test-slow bench lint format docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# setup.py compiles the perturbations' CPU kernels (transforms/csrc); a change there reinstalls
$(VENV)/.installed: $(BIN)/python pyproject.toml setup.py $(wildcard src/semantic_genesis/transforms/csrc/*)
	$(BIN)/python -m pip install -q $(TORCH)
	# the pin again: nnunetv2 pulls timm -> torchvision, whose newest release would replace torch
	$(BIN)/python -m pip install -q -e ".[dev]" $(TORCH)
	touch $@

venv install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/semgen demo --out demo-output

demo-quick: $(VENV)/.installed
	$(BIN)/semgen demo --out demo-output-quick --quick

test: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not slow" -n $(PYTEST_WORKERS) --dist loadfile --durations=20

test-slow: $(VENV)/.installed
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python -m pytest -m slow -v

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_transforms.py --preset sg --json
	$(BIN)/python benchmarks/bench_discover.py --json
	$(BIN)/python benchmarks/bench_train.py --width 32 --batch-size 2 --json

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks

docs: $(VENV)/.installed
	$(BIN)/python -m semantic_genesis.report.cli_reference > docs/cli.md

format: $(VENV)/.installed
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) demo-output demo-output-quick .pytest_cache build
	rm -f src/semantic_genesis/transforms/_native.*.so
