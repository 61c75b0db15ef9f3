"""Differentiable models of plants. See :mod:`pnnlab.twins.base`."""

from .base import Twin, twin_gap
from .calibrated import CalibratedTwin, Constant, SHGCalibratableTwin
from .fit import FitReport, FromPlant, fit_twin, relative_error
from .grouped import GroupedControls
from .learned import LearnedTwin, ResidualTwin

__all__ = ["CalibratedTwin", "Constant", "FitReport", "FromPlant", "GroupedControls", "LearnedTwin", "ResidualTwin",
           "SHGCalibratableTwin", "Twin", "fit_twin", "relative_error", "twin_gap"]
