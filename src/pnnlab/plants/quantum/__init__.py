"""Quantum circuits: a batched statevector / density-matrix simulator and the parameterised-circuit plant."""

from .circuit import (ANSATZ_PRESETS, ERROR_PRESETS, AngleEncoding, Ansatz, ArcsinEncoding, CircuitErrors, CNOTRing,
                      CZRing, IsingEvolution, QuantumCircuitPlant, QuantumCircuitTwin, ansatz_from, errors_from)

__all__ = ["ANSATZ_PRESETS", "ERROR_PRESETS", "AngleEncoding", "Ansatz", "ArcsinEncoding", "CircuitErrors", "CNOTRing",
           "CZRing", "IsingEvolution", "QuantumCircuitPlant", "QuantumCircuitTwin", "ansatz_from", "errors_from"]
