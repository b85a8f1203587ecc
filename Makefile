# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use. torch is installed from its CPU pin first, so that no later
# requirement can pull a multi-GB CUDA build.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.alam-installed
TORCH_PIN := torch==2.13.0

.PHONY: test demo bench sysdeps lint mutate clean sweep-snapshot sweep-readout sweep-restore

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -e ".[train,dev,export,ros,sweep]"
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

# The main job on a small embedded default: the shipped diff-drive bundle (bundles/diffdrive, trained by
# configs/diffdrive_demo.yaml; retrained here only if it is missing) driven through ROS 2 by alam_policy_node
# against alam_sim_bridge, with a push toward the nearest obstacle every 15 s. Prints live risk and mode and
# writes runs/demo/trace.csv + trace.png (lambda, mode and true cost over time).
DEMO_BUNDLE := bundles/diffdrive
DEMO_RUN := runs/diffdrive_demo
DEMO_SECONDS ?= 45
demo: $(STAMP)
	@test -f $(DEMO_BUNDLE)/manifest.json || { \
	  $(BIN)/alam train --config configs/diffdrive_demo.yaml --run-dir $(DEMO_RUN) $$(test -f $(DEMO_RUN)/checkpoint.pt && echo --resume) && \
	  $(BIN)/alam export --run-dir $(DEMO_RUN) --out $(DEMO_BUNDLE) && \
	  $(BIN)/alam calibrate --bundle $(DEMO_BUNDLE) --episodes 100 --recall 0.4; }
	ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-42} \
	  $(BIN)/alam-ros-demo --bundle $(DEMO_BUNDLE) --duration $(DEMO_SECONDS) --record runs/demo/trace

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/throughput.py

lint: $(STAMP)
	$(BIN)/ruff check alam_control sim tests benchmarks

# A sweep run over several sittings (configs/sweeps/paper.yaml): runs/ may be gone at the next one. At the end of
# a sitting, sweep-snapshot copies the small files of every trial that the sweep's manifest (sweep.json) records as
# done (config, evaluations, summary; not one finished under a budget raised since) and, for
# the fac / sac_alam trials that benchmarks/evidence.py studies, the exported bundle (manifest.json + policy.onnx,
# exported here while the checkpoint exists; ~0.1 MB at 64x64) with its evidence cache into docs/results/$(SWEEP)/
# (commit them): training is bit-exact on one machine only, so a lost checkpoint cannot be trained again to the
# same policy, but its bundle can be calibrated again. sweep-restore puts them back, and `alam sweep --resume` then
# skips those trials (no checkpoints or buffers are kept). A committed bundle with the same policy.onnx is left as it
# is: `make sweep-readout` calibrated it there, and the fresh export in runs/ has no calibration (a second snapshot
# in one sitting had overwritten a calibrated manifest with it).
SWEEP ?= paper
sweep-snapshot: $(STAMP)
	@test -f runs/sweeps/$(SWEEP)/sweep.json || { echo "runs/sweeps/$(SWEEP)/sweep.json: no sweep manifest there;" \
	  "nothing has run in this sitting (alam sweep --config configs/sweeps/$(SWEEP).yaml --resume)" >&2; exit 1; }
	@$(BIN)/python benchmarks/evidence.py runs/sweeps/$(SWEEP) --export-only
	@for n in $$($(BIN)/python -c "from alam_control.experiments.sweep import done_trials; \
	    print(' '.join(sorted(done_trials('runs/sweeps/$(SWEEP)'))))"); do \
	  t=runs/sweeps/$(SWEEP)/trials/$$n; d=docs/results/$(SWEEP)/trials/$$n; b=runs/sweeps/$(SWEEP)/bundles/$$n; \
	  mkdir -p "$$d" && cp "$$t/config.yaml" "$$t/eval.csv" "$$t/summary.json" "$$d/"; \
	  test -f "$$b/manifest.json" || continue; \
	  db=docs/results/$(SWEEP)/bundles/$$n; \
	  if cmp -s "$$b/policy.onnx" "$$db/policy.onnx"; then continue; fi; \
	  mkdir -p "$$db" && cp "$$b"/manifest.json "$$b"/policy.onnx "$$db"/ && \
	  for f in evidence.json riskmap.npz; do test ! -f "$$b/$$f" || cp "$$b/$$f" "$$db"/; done; \
	done; \
	echo "finished trials of runs/sweeps/$(SWEEP) in docs/results/$(SWEEP): $$(ls docs/results/$(SWEEP)/trials | wc -l)"

# The grid as far as it has run: `alam report` and benchmarks/evidence.py over the trials committed in
# docs/results/$(SWEEP) (their bundles' evidence caches make it ~1 min), into docs/results/$(SWEEP)-readout/.
sweep-readout: $(STAMP)
	@rm -rf docs/results/$(SWEEP)-readout  # no figure left from a trial since dropped
	@$(BIN)/alam report docs/results/$(SWEEP) --out docs/results/$(SWEEP)-readout > /dev/null
	@$(BIN)/python benchmarks/evidence.py docs/results/$(SWEEP) --out docs/results/$(SWEEP)-readout \
	  $(if $(filter paper,$(SWEEP)),--page docs/results.md) > /dev/null  # the paper grid's table on the results page
	@$(BIN)/python benchmarks/time_to_safe.py --from-sweep docs/results/$(SWEEP) \
	  $(if $(filter paper,$(SWEEP)),--page docs/performance.md) > /dev/null
	@echo "docs/results/$(SWEEP)-readout: report.md, evidence.md and figures from $$(ls docs/results/$(SWEEP)/trials | wc -l) trials"

sweep-restore:
	@mkdir -p runs/sweeps/$(SWEEP) && cp -rn docs/results/$(SWEEP)/. runs/sweeps/$(SWEEP)/ && \
	  echo "restored into runs/sweeps/$(SWEEP); continue with: $(BIN)/alam sweep --config configs/sweeps/$(SWEEP).yaml --resume"

# Mutation testing of alam_control/learn/{losses,multipliers,agent}.py against the fast algorithm tests (settings in
# pyproject.toml [tool.mutmut]); one child process, as other jobs may share the CPU. Results stay in mutants/
# (reruns test only changed code); `$(BIN)/mutmut show <mutant>` prints one mutant's diff.
mutate: $(STAMP)
	$(BIN)/mutmut run --max-children 1
	@$(BIN)/mutmut export-cicd-stats >/dev/null
	@$(BIN)/python -c 'import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); \
	  print("mutation score: %(killed)d killed / %(total)d total" % s, {k: v for k, v in s.items() if v and k not in ("killed", "total")})'
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) runs .pytest_cache mutants
