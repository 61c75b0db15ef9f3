"""Coupled learning: the local contrastive rule of self-learning physical networks.

References: Stern, Hexner, Rocks & Liu, "Supervised learning in physical networks: from machine
learning to learning machines", Phys. Rev. X 11, 021045 (2021), doi:10.1103/PhysRevX.11.021045;
Dillavou, Stern, Liu & Durian, Phys. Rev. Applied 18, 014040 (2022),
doi:10.1103/PhysRevApplied.18.014040 (the experimental resistor network).

Algorithm (per physical layer, per batch)
-----------------------------------------
1. *Free state*: the network settles with its outputs free; output y_F.
2. *Clamped state*: the outputs are held at y_C = y_F + eta (y* - y_F), a step ``eta`` (0 < eta <= 1)
   of the way to the desired output, and the rest of the network settles. With a general loss the
   desired direction is the per-sample negative loss gradient, y_C = y_F - eta B dL/dy (for the MSE
   loss 1/2 |y - y*|^2 this is exactly Stern's y_F + eta (y* - y_F)).
3. *Local rule* (Stern et al. eq. 6): each edge changes by
   dG = -(alpha / eta) d/dG [E_C - E_F] = -(alpha / (2 eta)) (dV_C^2 - dV_F^2).
   Here the method writes ``(M_C - M_F) / eta`` (M = locally measured dE/dG, batch mean) into
   ``.grad`` and the optimizer supplies alpha; on a memristive plant the new conductances become
   programming pulses at the next query.

Scale: (M_C - M_F) grows linearly with eta, so the 1/eta makes the estimate independent of small eta;
it is then the loss gradient times the network's output stiffness (a conductance, siemens), not the
gradient itself: use an optimizer that is insensitive to the scale (Adam) or fold it into the
learning rate. The clamp step eta B |dL/dy| is in volts for a loss on volts; keep it well inside the
plant's read range (a resistive network warns when clamped nodes leave it).

Unlike equilibrium propagation's force, the clamp is a hard constraint: the estimate is a descent
direction of the loss with a positive-definite output metric (the network's output stiffness), equal
to the gradient only up to that metric, and is exact only as eta -> 0 for linear networks
(Stern et al. 2021). It needs two relaxations per batch.
"""

from __future__ import annotations

from typing import Callable


from ..plants.capabilities import EnergyBased, OutputClamp
from .base import Method, NeedsCapability
from .equilibrium_propagation import free_phase, write_gradients

__all__ = ["CoupledLearning"]


class CoupledLearning(Method):
    """Coupled learning (Stern et al. 2021) with clamping ratio ``eta`` (module docstring)."""

    name = "coupled_learning"
    summary = "coupled learning: local contrastive rule from free and clamped states (Stern et al. 2021)"
    requirements = (NeedsCapability(EnergyBased),)
    plant_queries_per_step = "per physical layer: 1 free relaxation + 1 clamped relaxation"

    def __init__(self, *, eta: float = 0.1) -> None:
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 < float(eta) <= 1.0:
            raise ValueError(f"eta must be a number in (0, 1] (the fraction of the way the outputs are clamped "
                             f"towards the target), got {eta!r}; Stern et al. use small values such as 0.1 to 0.5.")
        self.eta = float(eta)

    def step(self, model, x, y, loss_fn: Callable) -> float:
        loss, records = free_phase(model, x, y, loss_fn)
        for record in records:
            layer, state = record["layer"], record["state"]
            plant = layer.plant
            target = state.output - self.eta * record["output_gradient"]
            clamped = plant.relax(record["x"], record["controls"], nudge=OutputClamp(target), initial=state)
            m_free, m_clamped = plant.energy_gradients(state), plant.energy_gradients(clamped)
            write_gradients(layer, {k: (m_clamped[k] - m_free[k]) / self.eta for k in m_free})
        return float(loss.detach())

    def __repr__(self) -> str:
        return f"CoupledLearning(eta={self.eta})"
