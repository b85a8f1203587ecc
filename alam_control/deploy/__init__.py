"""From a trained run to a robot: what sits between the learner and `alam_control.runtime`.

- `export`: a run directory -> a self-contained bundle (policy.onnx + manifest.json, DESIGN.md section 5).
- `calibration`: bundle rollouts in simulation through the deployed tick (`runtime.Controller`), risk thresholds
  written into the manifest, reliability and map figures.
- `riskmap`: lambda(s) over a 2-D state slice next to the violation region.

May import `alam_control.config`, the learner (export reads runs and rebuilds the agent),
`alam_control.runtime` and `sim`; nothing imports it but the cli, the experiments and the tests.
The robot needs none of it: the bundle and `alam_control.runtime` are all it loads.
"""
