"""Toy plants for examples and tests of the methods."""

from .power_law import PowerLawPlant, PowerLawTwin

__all__ = ["PowerLawPlant", "PowerLawTwin"]
