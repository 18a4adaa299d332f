"""Calibration of circuit breakers, haircuts and the liquidation engine's order size: CMA-ES, then gradients."""

from stresslab.calibrate.loop import CalibrationResult, Evaluation, calibrate, evaluate
from stresslab.calibrate.objective import objective

__all__ = ["CalibrationResult", "Evaluation", "calibrate", "evaluate", "objective"]
