"""Many runs at once: grids of training runs and the tables and figures that compare them.

- `sweep`: experiment grids on Ray (`alam sweep`, docs/sweeps.md): spec, trial, table, driver.
- `report`: a sweep's trials (or any directory of runs) -> tables with confidence intervals, learning curves.

May import `alam_control.config` and the learner (every trial is an ordinary training run and run directory);
nothing in the learner, in deploy or in runtime imports it.
"""
