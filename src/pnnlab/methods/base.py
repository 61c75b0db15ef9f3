"""Training methods.

Most methods are *gradient estimators*: :meth:`Method.step` fills ``.grad`` of the model's
parameters for one batch and returns the loss; any ``torch.optim`` optimizer then applies the
update, so comparing methods isolates the estimator. Methods that update parameters themselves
(evolution strategies, closed-form read-outs) set ``updates_parameters = True``.

Each method declares what it needs from the model's physical layers (:class:`Requirement` s).
:meth:`Method.check` runs before the first step and its error names what is missing and which
registered methods would work instead.
"""

from __future__ import annotations

import abc
from typing import Callable, ClassVar

import torch
from torch import nn

from ..execution import Execution, OnPlant
from ..layers import PhysicalLayer, physical_layers


class Requirement(abc.ABC):
    """Something a method needs from every physical layer."""

    @abc.abstractmethod
    def missing(self, layer: PhysicalLayer) -> str | None:
        """A description of what is missing on ``layer``, or None if satisfied."""


class ModelRequirement(Requirement):
    """Something a method needs from the model as a whole (its type or its structure), checked once
    per model rather than per physical layer."""

    def missing(self, layer):
        return None

    @abc.abstractmethod
    def missing_in(self, model: nn.Module) -> str | None:
        """A description of what the model lacks, or None if satisfied."""


class NeedsModel(ModelRequirement):
    """The model must be an instance of ``model_type`` (for example a GoodnessNet for layer-local
    goodness methods, an ``nn.Sequential`` for direct feedback alignment). ``build`` says how to get
    one, for the error message."""

    def __init__(self, model_type: type, *, build: str = "") -> None:
        if not isinstance(model_type, type):
            raise TypeError(f"model_type must be a class, got {model_type!r}.")
        self.model_type, self.build = model_type, build

    def missing_in(self, model):
        if isinstance(model, self.model_type):
            return None
        hint = f"; build one with {self.build}" if self.build else ""
        return f"to be a {self.model_type.__name__} (got {type(model).__name__}){hint}"


class NeedsDigitalModule(ModelRequirement):
    """The model must contain at least one trainable digital module of ``module_type`` outside its
    physical layers (for example the ``nn.Linear`` layers whose backward pass feedback alignment
    replaces)."""

    def __init__(self, module_type: type = nn.Linear, *, why: str = "") -> None:
        if not isinstance(module_type, type):
            raise TypeError(f"module_type must be a class, got {module_type!r}.")
        self.module_type, self.why = module_type, why

    def missing_in(self, model):
        inside = {id(m) for layer in physical_layers(model) for m in layer.modules()}
        for module in model.modules():
            if (id(module) not in inside and isinstance(module, self.module_type)
                    and any(p.requires_grad for p in module.parameters(recurse=False))):
                return None
        why = f" ({self.why})" if self.why else ""
        return f"to contain a trainable digital {self.module_type.__name__}{why}"


class NeedsTwin(Requirement):
    def missing(self, layer):
        return None if layer.twin is not None else "a twin (pass twin=... to PhysicalLayer)"


class NeedsCapability(Requirement):
    def __init__(self, capability: type) -> None:
        self.capability = capability

    def missing(self, layer):
        if isinstance(layer.plant, self.capability):
            return None
        return f"a plant with the {self.capability.__name__} capability ({self.capability.offers})"


class MethodRequirementError(RuntimeError):
    """A method cannot train this model because a physical layer lacks what it needs."""


class Method(abc.ABC):
    """Base class of training methods."""

    #: registered name, one-line description
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: what the method needs from each physical layer
    requirements: ClassVar[tuple[Requirement, ...]] = ()
    #: plant queries per training step, in words (the query meter confirms it in tests)
    plant_queries_per_step: ClassVar[str] = ""
    #: True for methods that change parameters themselves instead of filling .grad
    updates_parameters: ClassVar[bool] = False
    #: True for reference methods no hardware can reach (the ideal bound on the true physics, noise off)
    upper_bound: ClassVar[bool] = False
    #: where accuracy is measured after training; always the plant, except for the ideal bound
    evaluation: ClassVar[Execution] = OnPlant()

    @classmethod
    def missing_for(cls, model: nn.Module) -> list[str]:
        """Everything this method needs and ``model`` lacks (empty: the method can train it): per
        physical layer (a twin, a capability) and for the model as a whole (its type, a digital
        layer), see :class:`Requirement` and :class:`ModelRequirement`."""
        out = []
        for requirement in cls.requirements:
            if isinstance(requirement, ModelRequirement):
                what = requirement.missing_in(model)
                if what is not None:
                    out.append(f"the model needs {what}")
        for index, layer in enumerate(physical_layers(model)):
            for requirement in cls.requirements:
                what = requirement.missing(layer)
                if what is not None:
                    out.append(f"physical layer {index} ({layer.plant.describe()}) lacks {what}")
        return out

    @staticmethod
    def methods_that_can_train(model: nn.Module) -> list[str]:
        """Registered methods whose requirements ``model`` meets (model type and structure included);
        the ideal bound is marked, since no hardware reaches it."""
        from ..registry import METHODS
        names = []
        for entry in METHODS.entries():
            method_cls = entry.load()
            if not method_cls.missing_for(model):
                names.append(entry.name + (" (upper bound)" if method_cls.upper_bound else ""))
        return names

    def check(self, model: nn.Module) -> None:
        """Raise :class:`MethodRequirementError` if the model cannot be trained by this method."""
        missing = self.missing_for(model)
        if missing:
            working = self.methods_that_can_train(model)
            raise MethodRequirementError(
                f"method {self.name!r} cannot train this model: " + "; ".join(missing)
                + f". Methods that would work with this model: {', '.join(working) or 'none'}.")

    @abc.abstractmethod
    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
        """Process one batch: fill ``.grad`` (or update parameters) and return the batch loss."""

    def state_dict(self) -> dict:
        """What the method keeps between steps, for checkpoints (``pnnlab run --resume``). Default: the
        instance's attributes (generators, CMA-ES state, feedback matrices, a wrapper's inner method and
        buffers...). :mod:`pnnlab.checkpoint` pickles it with every reference to the model (its
        modules, parameters, plants, and ``id()`` keys of them) kept as a reference, so it is restored
        against the rebuilt model. Override both methods for state that pickling cannot carry."""
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict returned by state_dict(), got {type(state).__name__}.")
        vars(self).update(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BackpropThrough(Method):
    """Shared machinery: run the model under one execution and backpropagate the loss."""

    execution: ClassVar[Execution]

    def step(self, model, x, y, loss_fn):
        from ..execution import executing
        with executing(self.execution):
            loss = loss_fn(model(x), y)
        loss.backward()
        return float(loss.detach())
