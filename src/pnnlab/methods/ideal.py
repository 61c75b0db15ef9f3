"""The ideal reference: backpropagation through a noiseless, mismatch-free copy of a simulated plant,
trained *and evaluated* on that copy. No hardware reaches it; it is labelled an upper bound
wherever it appears.
"""

from __future__ import annotations

from ..execution import OnIdealTwin
from ..plants.capabilities import Simulated
from .base import BackpropThrough, NeedsCapability


class IdealBackprop(BackpropThrough):
    name = "ideal"
    summary = "upper bound: backpropagation through a noiseless, mismatch-free plant copy"
    requirements = (NeedsCapability(Simulated),)
    plant_queries_per_step = "0 (runs on the ideal copy, not the plant)"
    upper_bound = True
    execution = OnIdealTwin()
    evaluation = OnIdealTwin()
