"""Diagnostics that compare methods: gradient fidelity against the true gradient (backprop through
the plant's true physics, noise off) and friends."""
from .gradient_fidelity import (FidelityTracker, compare_gradients, estimate_gradients, gradient_fidelity,
                                true_gradients)

__all__ = ["FidelityTracker", "compare_gradients", "estimate_gradients", "gradient_fidelity", "true_gradients"]
