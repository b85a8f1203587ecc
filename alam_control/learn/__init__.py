"""The learner: SAC-ALaM and its baselines in one SAC core, the training loop and what a run leaves on disk.

- `networks`, `losses`, `multipliers`, `agent`: the algorithm (README "The algorithm"; DESIGN.md section 3).
- `buffer`, `trainer`, `cpu`: the training loop, its replay and the threads it runs on.
- `rundir`, `checkpoint`: the run directory's files, logs, resume rule and weights-only checkpoints.
- `metrics`: DESIGN.md section 7 metrics, shared with deploy's calibration and riskmap.

May import `alam_control.config` and `sim`, nothing else of the package: deploy, experiments and the cli build
on it, never the other way round, and the robot (`alam_control.runtime`) never loads it.
"""
