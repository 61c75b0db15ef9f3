"""Diagnostics that compare methods: gradient fidelity and friends."""
from .gradient_fidelity import FidelityTracker, compare_gradients, estimate_gradients, true_gradients

__all__ = ["FidelityTracker", "compare_gradients", "estimate_gradients", "true_gradients"]
