# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use. torch is installed from its CPU pin first, so that no later
# requirement can pull a multi-GB CUDA build.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.alam-installed
TORCH_PIN := torch==2.13.0

.PHONY: test demo bench sysdeps lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -e ".[dev,export]"
	@touch $(STAMP)

# CPU offscreen rendering for `alam eval --video` (MUJOCO_GL=osmesa). Installed when missing and we are root.
sysdeps:
	@if ! ldconfig -p | grep -q libOSMesa; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq libosmesa6 >/dev/null; \
	  else echo "note: libosmesa6 missing (video recording needs it: sudo apt-get install libosmesa6)"; fi; \
	fi

test: $(STAMP) sysdeps
	$(BIN)/python -m pytest

# The main job on a small embedded default: train SAC-ALaM on the safe cart-pole, then evaluate it.
DEMO_RUN := runs/demo
demo: $(STAMP)
	$(BIN)/alam train --config configs/demo.yaml --run-dir $(DEMO_RUN) $$(test -f $(DEMO_RUN)/checkpoint.pt && echo --resume)
	$(BIN)/alam eval --run-dir $(DEMO_RUN) --episodes 5

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/throughput.py

lint: $(STAMP)
	$(BIN)/ruff check alam_control sim tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
