"""Equilibrium propagation (EP): gradients from two (or three) relaxations of an energy-based plant.

References: Scellier & Bengio, Front. Comput. Neurosci. 11, 24 (2017), doi:10.3389/fncom.2017.00024
(the method, positive nudging); Laborieux et al., Front. Neurosci. 15, 633674 (2021),
doi:10.3389/fnins.2021.633674 (symmetric / centred nudging); Scellier, Ernoult, Kendall & Kumar,
NeurIPS 2023, doi:10.48550/arXiv.2305.14809 (positive, negative and centred variants compared);
Kendall et al., arXiv:2006.01981 (2020) (EP on nonlinear resistive networks).

Algorithm (per physical layer, per batch)
-----------------------------------------
1. *Free phase*: the plant relaxes to s_0 = argmin E(s; x, theta). The measured output y feeds the
   digital rest of the model; autograd gives the loss gradient g_i = dL/dy_i at the output of the
   physical layer (and the ordinary gradients of any digital parameters).
2. *Nudged phases*: the plant relaxes again with a force on its outputs, f_i = -beta u B g_i
   (u the plant's ``force_unit``, B the batch size, so B g_i is the per-sample loss gradient), i.e.
   to the minimum of E - f^T y = E + beta u B g^T y: the loss linearised at the free state.
3. *Local rule*: with M(beta) = dE/dtheta measured at the state nudged by beta (for a conductance
   1/2 dV^2, for a Hopfield coupling -s_i s_j), averaged over the batch,

       positive:  grad ~= (M(+beta) - M(0))     / (beta u)
       negative:  grad ~= (M(0)     - M(-beta)) / (beta u)
       centred:   grad ~= (M(+beta) - M(-beta)) / (2 beta u)

   All three converge to dL/dtheta as beta -> 0 (Scellier & Bengio 2017, Theorem 1); the one-sided
   estimates have an O(beta) bias, the centred one an O(beta^2) bias (Laborieux et al. 2021).
4. The estimate is written into ``.grad`` of the layer's raw parameters (by the chain rule through
   the control parametrisation), so any ``torch.optim`` optimizer applies it. On a memristive plant
   the optimizer's new conductances become programming pulses at the next query (see
   :mod:`pnnlab.plants.electronics.memristor`): the update is never an exact float write.

Only what the plant measures is used: outputs, the *measured* (noisy) node voltages (local
measurements, through ``plant.energy_gradients``) and the plant's response to injected currents. No
twin and no hidden truth. The nudge ``beta u B |dL/dy|`` must stay well inside the plant's operating
range (a resistive network warns when nudged nodes leave its read range).

Simplification: the nudge linearises the loss at the free state (a fixed current injection). The
estimate's limit beta -> 0 is the same; for MSE the exact nudge would be a conductance to the target.
A physical layer whose *input* needs a gradient (a trainable layer before it) is not supported.
"""

from __future__ import annotations

import abc
from typing import Callable, ClassVar

import torch

from .._validation import check_positive
from ..execution import Execution, executing
from ..plants.capabilities import EnergyBased, OutputForce
from .base import Method, NeedsCapability

__all__ = ["CentredNudging", "EquilibriumPropagation", "NegativeNudging", "Nudging", "PositiveNudging"]


class Nudging(abc.ABC):
    """Which two nudge strengths the estimate contrasts: ``(beta_a, beta_b)`` with
    grad ~= (M(beta_a) - M(beta_b)) / (beta_a - beta_b)."""

    label: ClassVar[str] = ""
    relaxations: ClassVar[int] = 2

    @abc.abstractmethod
    def betas(self, beta: float) -> tuple[float, float]: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PositiveNudging(Nudging):
    """Free state and a state nudged towards lower loss (Scellier & Bengio 2017); O(beta) bias."""

    label = "positive"

    def betas(self, beta):
        return beta, 0.0


class NegativeNudging(Nudging):
    """Free state and a state nudged towards higher loss; O(beta) bias of the opposite sign."""

    label = "negative"

    def betas(self, beta):
        return 0.0, -beta


class CentredNudging(Nudging):
    """States nudged by +beta and -beta (Laborieux et al. 2021); O(beta^2) bias, one relaxation more."""

    label = "centred"
    relaxations = 3

    def betas(self, beta):
        return beta, -beta


class FreePhase(Execution):
    """Execution used by contrastive methods: each physical layer relaxes freely on its plant; the
    state is recorded and the output is returned as a leaf that collects dL/dy."""

    label = "free phase"

    def __init__(self) -> None:
        self.records: list[dict] = []

    def run(self, layer, x):
        plant = layer.plant
        if not isinstance(plant, EnergyBased):
            raise TypeError(f"{plant.describe()} is not EnergyBased; contrastive methods need relax().")
        if x.requires_grad:
            raise NotImplementedError(
                "this physical layer's input depends on trainable parameters (a trainable digital block or "
                "another physical layer before it); equilibrium propagation and coupled learning here only "
                "train models whose physical layers receive fixed inputs. Put trainable digital blocks after "
                "the physical layer, or train with 'pat'.")
        controls = {k: v.detach() for k, v in layer.control_values().items()}
        state = plant.relax(x.detach(), controls)
        y = state.output.clone().requires_grad_(True)
        self.records.append({"layer": layer, "x": x.detach(), "controls": controls, "state": state, "y": y})
        return y


def free_phase(model, x, y, loss_fn):
    """Run the free phase, backpropagate through the digital part; return (loss, records)."""
    execution = FreePhase()
    with executing(execution):
        loss = loss_fn(model(x), y)
    loss.backward()
    for record in execution.records:
        out = record["y"]
        g = out.grad if out.grad is not None else torch.zeros_like(out)
        record["output_gradient"] = g * g.shape[0]  # dL/dy per sample (the loss is a batch mean)
    return loss, execution.records


def write_gradients(layer, estimate: dict[str, torch.Tensor]) -> None:
    """Accumulate physical-control gradients dL/dG into ``.grad`` of the layer's raw parameters."""
    values = layer.control_values()
    names = [n for n in estimate if values[n].requires_grad]
    if names:
        torch.autograd.backward([values[n] for n in names],
                                [estimate[n].to(values[n].dtype).reshape(values[n].shape) for n in names])


class EquilibriumPropagation(Method):
    """Equilibrium propagation with positive, negative or centred nudging (module docstring)."""

    name = "equilibrium_propagation"
    summary = "equilibrium propagation: gradients from free and nudged relaxations of an energy-based plant"
    requirements = (NeedsCapability(EnergyBased),)
    plant_queries_per_step = ("per physical layer: 1 free relaxation + 1 nudged (positive/negative nudging) "
                              "or 2 nudged (centred)")

    def __init__(self, *, beta: float = 0.1, nudging: Nudging | None = None) -> None:
        self.beta = check_positive("beta", beta)
        nudging = CentredNudging() if nudging is None else nudging
        if not isinstance(nudging, Nudging):
            raise TypeError(f"nudging must be PositiveNudging(), NegativeNudging() or CentredNudging(), got "
                            f"{type(nudging).__name__}.")
        self.nudging = nudging

    def step(self, model, x, y, loss_fn: Callable) -> float:
        loss, records = free_phase(model, x, y, loss_fn)
        for record in records:
            layer, state, per_sample = record["layer"], record["state"], record["output_gradient"]
            plant = layer.plant
            unit = float(plant.force_unit)
            measured = {}
            for beta in self.nudging.betas(self.beta):
                if beta == 0.0:
                    measured[beta] = plant.energy_gradients(state)
                else:
                    nudged = plant.relax(record["x"], record["controls"],
                                         nudge=OutputForce(-beta * unit * per_sample), initial=state)
                    measured[beta] = plant.energy_gradients(nudged)
            b_a, b_b = self.nudging.betas(self.beta)
            estimate = {k: (measured[b_a][k] - measured[b_b][k]) / ((b_a - b_b) * unit) for k in measured[b_a]}
            write_gradients(layer, estimate)
        return float(loss.detach())

    def __repr__(self) -> str:
        return f"EquilibriumPropagation(beta={self.beta}, nudging={self.nudging!r})"
