"""Training methods, one file per family. See :mod:`pnnlab.methods.base`."""

from .base import (BackpropThrough, Method, MethodRequirementError, NeedsCapability, NeedsTwin,
                   Requirement)
from .cmaes import CMAES
from .coupled_learning import CoupledLearning
from .equilibrium_propagation import (CentredNudging, EquilibriumPropagation, NegativeNudging, Nudging,
                                      PositiveNudging)
from .feedback_alignment import AugmentedDFA, DirectFeedbackAlignment, FeedbackAlignment
from .forward_forward import ForwardForward
from .ideal import IdealBackprop
from .in_silico import InSilico
from .local_learning import ContrastiveLocalLearning, PhysicalLocalLearning
from .multiplexed import CodeMultiplexed, FrequencyMultiplexed, MultiplexedGradientDescent, TimeMultiplexed
from .physics_aware import PhysicsAwareTraining
from .zeroth_order import SPSA, FiniteDifferences, NodePerturbation, WeightPerturbation, ZerothOrderMethod

__all__ = ["AugmentedDFA", "BackpropThrough", "CMAES", "CentredNudging", "CodeMultiplexed", "ContrastiveLocalLearning", "CoupledLearning",
           "DirectFeedbackAlignment", "EquilibriumPropagation", "FeedbackAlignment", "FiniteDifferences",
           "ForwardForward", "FrequencyMultiplexed", "IdealBackprop", "InSilico", "Method",
           "MethodRequirementError", "MultiplexedGradientDescent", "NeedsCapability", "NeedsTwin",
           "NegativeNudging", "NodePerturbation", "Nudging", "PhysicalLocalLearning", "PhysicsAwareTraining",
           "PositiveNudging", "Requirement", "SPSA", "TimeMultiplexed", "WeightPerturbation",
           "ZerothOrderMethod"]
