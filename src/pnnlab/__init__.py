"""pnnlab: train physical neural networks.

A model is defined once (a ``torch.nn.Module`` with :class:`PhysicalLayer` s around plants),
trained with any method family of the field, on simulated hardware that behaves like the real
thing or on a real device, while every plant query, device second and joule is counted.
"""

from .data.base import TaskData
from .execution import Execution, OnTrueTwin, OnPlant, OnTwin, PhysicsAware, current_execution, executing
from .layers import ChannelAffine, PhysicalLayer, physical_layers, plants_of
from .metering import CostModel, Meter, total_usage
from .methods import (CMAES, SPSA, AugmentedDFA, CoupledLearning, DirectFeedbackAlignment,
                      EquilibriumPropagation, FeedbackAlignment, FiniteDifferences, ForwardForward, IdealBackprop,
                      InSilico, Method, MethodRequirementError, MultiplexedGradientDescent, NodePerturbation,
                      PhysicalLocalLearning, PhysicsAwareTraining, WeightPerturbation)
from .methods import ContrastiveLocalLearning
from .methods.twin_refresh import TwinRefresh
from .methods.adjoint import AdjointInSitu
from .plants import (Capability, ControlSpec, Dynamical, EnergyBased, ParameterShift, Plant, Reciprocal,
                     Simulated)
from .registry import DATASETS, METHODS, MODELS, PLANTS, register
from .recording import PlantRecorder, Recording, ReplayMismatchError, ReplayPlant, record
from .train import History, evaluate, train
from .twins import (CalibratedTwin, Constant, FitReport, FromPlant, LearnedTwin, ResidualTwin, Twin, fit_twin,
                    twin_gap)
from . import devices, validation

__version__ = "0.1.0"

__all__ = [
    "AugmentedDFA", "CMAES", "CoupledLearning", "DirectFeedbackAlignment", "EquilibriumPropagation",
    "FeedbackAlignment", "FiniteDifferences", "ForwardForward", "MultiplexedGradientDescent", "NodePerturbation",
    "PhysicalLocalLearning", "SPSA", "WeightPerturbation", "ContrastiveLocalLearning",
    "Capability", "ChannelAffine", "ControlSpec", "CostModel", "DATASETS", "Dynamical", "EnergyBased",
    "Execution", "History", "IdealBackprop", "InSilico", "METHODS", "MODELS", "Meter", "Method",
    "MethodRequirementError", "OnTrueTwin", "OnPlant", "OnTwin", "PLANTS", "ParameterShift", "register",
    "PhysicalLayer", "PhysicsAware", "PhysicsAwareTraining", "Plant", "Reciprocal", "Simulated",
    "TaskData", "Twin", "current_execution", "evaluate", "executing", "physical_layers", "plants_of",
    "total_usage", "train", "twin_gap", "validation",
    "CalibratedTwin", "Constant", "FitReport", "FromPlant", "LearnedTwin", "ResidualTwin", "fit_twin",
    "TwinRefresh", "AdjointInSitu",
    "PlantRecorder", "Recording", "ReplayMismatchError", "ReplayPlant", "record",
]
