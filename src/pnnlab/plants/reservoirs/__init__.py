"""Physical reservoirs: fixed dynamical systems whose read-out alone is trained."""

from .delay import DelayReservoirPlant, DelayReservoirTwin, NodeError

__all__ = ["DelayReservoirPlant", "DelayReservoirTwin", "NodeError"]
