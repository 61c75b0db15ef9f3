"""The ideal reference: backpropagation through the plant's true physics with noise off
(``plant.true_twin()``: every fabrication error and mismatch, no noise), trained *and evaluated* on
that noiseless copy. No hardware reaches it, because no laboratory knows its device's true physics;
it is labelled an upper bound wherever it appears. It bounds what gradient-based training of this
model on this plant can reach without noise, not what any method can reach in general.
"""

from __future__ import annotations

from ..execution import OnTrueTwin
from ..plants.capabilities import Simulated
from .base import BackpropThrough, NeedsCapability


class IdealBackprop(BackpropThrough):
    name = "ideal"
    summary = "upper bound: backpropagation through the plant's true physics with noise off"
    requirements = (NeedsCapability(Simulated),)
    plant_queries_per_step = "0 (runs on the noiseless true physics, not the plant)"
    upper_bound = True
    execution = OnTrueTwin()
    evaluation = OnTrueTwin()
