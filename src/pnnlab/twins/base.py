"""Twins: differentiable models ``twin(x, controls) -> y`` of a plant.

* a *nominal* twin follows the design values of its substrate;
* a *calibrated* twin has physical constants (``nn.Parameter`` s) fitted to plant measurements;
* a *learned* twin is a neural surrogate trained on recorded plant queries
  (:class:`pnnlab.twins.learned.LearnedTwin`).

A twin may disagree with its plant; that gap is the central problem of the field and is never
hidden: benchmarks measure accuracy on the plant, and :func:`twin_gap` reports the disagreement.
"""

from __future__ import annotations

import abc
from typing import Mapping

import torch
from torch import nn


class Twin(nn.Module, abc.ABC):
    """Base class of differentiable plant models. Subclasses implement :meth:`forward`."""

    def __init__(self, *, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, controls: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable prediction of the plant's output for inputs ``x`` and physical controls."""


def twin_gap(plant, twin: Twin, x: torch.Tensor, controls: Mapping[str, torch.Tensor]) -> float:
    """Relative disagreement ||plant - twin|| / ||plant|| on one batch (queries the plant once)."""
    y_plant = plant(x, controls)
    with torch.no_grad():
        y_twin = twin(x, {k: v.detach() for k, v in controls.items()})
    return float(torch.linalg.vector_norm(y_plant - y_twin) / torch.linalg.vector_norm(y_plant).clamp_min(1e-12))
