"""Training methods, one file per family. See :mod:`pnnlab.methods.base`."""

from .base import (BackpropThrough, Method, MethodRequirementError, NeedsCapability, NeedsTwin,
                   Requirement)
from .ideal import IdealBackprop
from .in_silico import InSilico
from .physics_aware import PhysicsAwareTraining

__all__ = ["BackpropThrough", "IdealBackprop", "InSilico", "Method", "MethodRequirementError",
           "NeedsCapability", "NeedsTwin", "PhysicsAwareTraining", "Requirement"]
