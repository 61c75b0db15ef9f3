"""Physical systems (plants), grouped by family. See :mod:`pnnlab.plants.base`."""

from .base import ControlSpec, Plant
from .capabilities import Capability, Dynamical, EnergyBased, ParameterShift, Reciprocal, Simulated

__all__ = ["Capability", "ControlSpec", "Dynamical", "EnergyBased", "ParameterShift", "Plant",
           "Reciprocal", "Simulated"]
