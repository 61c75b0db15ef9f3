"""Mechanical substrates: coupled nonlinear oscillators."""

from .oscillators import CoupledOscillatorPlant, CoupledOscillatorTwin, OscillatorMismatch

__all__ = ["CoupledOscillatorPlant", "CoupledOscillatorTwin", "OscillatorMismatch"]
