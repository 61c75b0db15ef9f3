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
    #: True for reference methods no hardware can reach (the ideal, mismatch-free copy)
    upper_bound: ClassVar[bool] = False
    #: where accuracy is measured after training; always the plant, except for the ideal bound
    evaluation: ClassVar[Execution] = OnPlant()

    @classmethod
    def missing_for(cls, model: nn.Module) -> list[str]:
        layers = physical_layers(model)
        out = []
        for index, layer in enumerate(layers):
            for requirement in cls.requirements:
                what = requirement.missing(layer)
                if what is not None:
                    out.append(f"physical layer {index} ({layer.plant.describe()}) lacks {what}")
        return out

    def check(self, model: nn.Module) -> None:
        """Raise :class:`MethodRequirementError` if the model cannot be trained by this method."""
        missing = self.missing_for(model)
        if missing:
            from ..registry import METHODS
            working = [entry.name for entry in METHODS.entries()
                       if not entry.load().missing_for(model)]
            raise MethodRequirementError(
                f"method {self.name!r} cannot train this model: " + "; ".join(missing)
                + f". Methods that would work with this model: {', '.join(working) or 'none'}.")

    @abc.abstractmethod
    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
        """Process one batch: fill ``.grad`` (or update parameters) and return the batch loss."""

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
