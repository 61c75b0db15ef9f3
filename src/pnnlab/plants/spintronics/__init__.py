"""Spintronic substrates: spin-torque nano-oscillators (the universal auto-oscillator model)."""

from .auto_oscillator import free_running_power, locking_half_width, simulate_array, simulate_reservoir
from .reservoir import STNOReservoir, STNOReservoirTwin
from .stno_array import STNOArray, STNOArrayTwin, STNOMismatch, synchronisation_pattern

__all__ = ["STNOArray", "STNOArrayTwin", "STNOMismatch", "STNOReservoir", "STNOReservoirTwin", "free_running_power",
           "locking_half_width", "simulate_array", "simulate_reservoir", "synchronisation_pattern"]
