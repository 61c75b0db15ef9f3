"""Quantum circuits: a batched statevector / density-matrix simulator and the parameterised-circuit plant."""

from .circuit import (AngleEncoding, Ansatz, ArcsinEncoding, CircuitErrors, CNOTRing, CZRing, IsingEvolution,
                      QuantumCircuitPlant, QuantumCircuitTwin)

__all__ = ["AngleEncoding", "Ansatz", "ArcsinEncoding", "CircuitErrors", "CNOTRing", "CZRing", "IsingEvolution",
           "QuantumCircuitPlant", "QuantumCircuitTwin"]
