"""Robot-side runtime, importable without torch: bundle loading, the ONNX policy, the risk monitor, fallbacks.

bundle = load_bundle("bundles/diffdrive")          # verifies manifest, hashes and dimensions
action, lam, cost_q = bundle.policy(obs)            # obs [O] -> physical command [A], lambda(s), Q_c
mode = monitor.update(now, lam, fault)              # POLICY or FALLBACK
tick = Controller(bundle, MonitorConfig.from_manifest(bundle.manifest)).step(now, obs)   # the whole deployed tick
"""

from alam_control.runtime.bundle import (
    RISK_SIGNALS,
    Bundle,
    BundleError,
    OnnxPolicy,
    load_bundle,
    read_manifest,
    risk_signal_caveats,
)
from alam_control.runtime.controller import Controller, DiffDriveInputs, JointInputs, Tick, make_inputs
from alam_control.runtime.fallback import FALLBACKS, default_fallback, make_fallback
from alam_control.runtime.monitor import FALLBACK, POLICY, STALLED_LABEL, MonitorConfig, ProgressWatch, RiskMonitor
from alam_control.runtime.observation import (
    DiffDriveObservation,
    InputFault,
    JointObservation,
    ScanBinner,
    bin_scan,
    yaw_from_quaternion,
)

__all__ = [
    "RISK_SIGNALS",
    "Controller",
    "DiffDriveInputs",
    "JointInputs",
    "ScanBinner",
    "Tick",
    "make_inputs",
    "FALLBACK",
    "FALLBACKS",
    "POLICY",
    "STALLED_LABEL",
    "Bundle",
    "BundleError",
    "DiffDriveObservation",
    "InputFault",
    "JointObservation",
    "MonitorConfig",
    "OnnxPolicy",
    "ProgressWatch",
    "RiskMonitor",
    "bin_scan",
    "default_fallback",
    "load_bundle",
    "make_fallback",
    "read_manifest",
    "risk_signal_caveats",
    "yaw_from_quaternion",
]
