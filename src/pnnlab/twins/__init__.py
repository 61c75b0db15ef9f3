"""Differentiable models of plants. See :mod:`pnnlab.twins.base`."""

from .base import Twin, twin_gap

__all__ = ["Twin", "twin_gap"]
