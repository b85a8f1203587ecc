"""Imports `sim` before any test module imports dm_control, so sim picks the headless OpenGL backend."""

import sim  # noqa: F401
