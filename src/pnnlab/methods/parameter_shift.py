"""The parameter-shift rule: gradients of measured expectation values from shifted circuit runs.

Mitarai, Negoro, Kitagawa & Fujii, "Quantum circuit learning", Phys. Rev. A 98, 032309 (2018),
doi:10.1103/PhysRevA.98.032309; Schuld, Bergholm, Gogolin, Izaac & Killoran, "Evaluating analytic
gradients on quantum hardware", Phys. Rev. A 99, 032331 (2019), doi:10.1103/PhysRevA.99.032331.

For an expectation value f(theta) = <0| U(theta)^dagger O U(theta) |0> in which theta enters one gate
exp(-i theta G) whose generator has the two eigenvalues +-r, f is a sinusoid of period pi/r in theta and

    df/dtheta = r [f(theta + pi / (4 r)) - f(theta - pi / (4 r))],                       (1)

exactly, not as a finite-difference approximation; for a Pauli rotation R_P(theta) = exp(-i theta P/2)
(r = 1/2) the shift is pi/2 and the coefficient 1/2. Each f is measured on the hardware, so with S
shots per circuit (1) is unbiased and its variance falls as 1/S (the difference of two independent
shot averages, each of variance (1 - f^2)/S for a +-1 observable).

In a model the plant's outputs y (batch, k) feed a loss L; with g = dL/dy (from autograd through the
digital layers after the plant) the method forms, for every shiftable angle theta_i,

    dL/dtheta_i = sum_{b, k} g_{bk} * c [y_bk(theta + s e_i) - y_bk(theta - s e_i)]

with the plant's :class:`~pnnlab.plants.capabilities.ShiftRule` (s, c). No twin is used: everything is
measured. Controls without a shift rule get no gradient. The rule gives no gradient with respect to the
*inputs* of the circuit (an encoded feature drives several gates at once), so a parameter-shift layer
must not have trainable layers before it; the method refuses such a model in its backward pass.

Queries per step, per parameter-shift physical layer: 1 (the forward pass of the batch) + 2P (two per
shiftable angle); each query runs ``batch`` circuits with the plant's ``shots`` each, i.e.
``(1 + 2P) * batch * shots`` shots per step. The meter confirms it (tests/test_parameter_shift.py).
Layers on plants without the capability are not allowed (use SPSA or PAT for them).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from ..execution import Execution, MeasuredGradients
from ..layers import physical_layers
from ..plants.capabilities import ParameterShift
from .base import BackpropThrough, NeedsCapability


def parameter_shift_gradients(plant: ParameterShift, x: torch.Tensor, controls: dict,
                              grad_output: torch.Tensor) -> dict[str, torch.Tensor]:
    """dL/d(control) for every control with a shift rule, given dL/d(plant output) ``grad_output``:
    two shifted queries per angle (equation (1) of the module docstring)."""
    g = grad_output.detach()
    out = {}
    for name, rule in plant.shift_rules().items():
        value = controls[name]
        grad = torch.zeros(value.numel(), dtype=torch.float64, device=value.device)
        for i in range(value.numel()):
            plus = plant.shifted(x, controls, control=name, index=i, shift=rule.shift)
            minus = plant.shifted(x, controls, control=name, index=i, shift=-rule.shift)
            # stays a tensor on the data's device (no host round trip per angle)
            grad[i] = rule.coefficient * (g.double() * (plus.double() - minus.double()).to(g.device)).sum()
        out[name] = grad.reshape(value.shape).to(value.dtype)
    return out


class _ShiftedLayer(torch.autograd.Function):
    """Value: the plant's measured output. Gradient: by the parameter-shift rule (2 queries per angle)."""

    @staticmethod
    def forward(ctx, plant, names, x, *control_values):
        controls = dict(zip(names, control_values))
        y = plant(x, controls)
        ctx.plant, ctx.names = plant, names
        ctx.save_for_backward(x.detach(), *[c.detach() for c in control_values])
        return y

    @staticmethod
    def backward(ctx, grad_output):
        plant, names = ctx.plant, ctx.names
        x, *values = ctx.saved_tensors
        if ctx.needs_input_grad[2]:
            raise RuntimeError(f"the parameter-shift rule gives no gradient with respect to the inputs of "
                               f"{plant.describe()} (an encoded feature drives several gates), but a trainable "
                               f"layer before it needs one; put the circuit first, or train with 'pat' or 'spsa'.")
        controls = dict(zip(names, values))
        grads = parameter_shift_gradients(plant, x, controls, grad_output)
        return (None, None, None, *[grads.get(name) for name in names])


class ParameterShiftExecution(MeasuredGradients):
    """Run every physical layer on its plant; under gradient tracking its controls' gradients come from
    the parameter-shift rule. Outside gradient tracking (evaluation) a layer is one ordinary query."""

    label = "parameter shift"
    capability = ParameterShift
    function = _ShiftedLayer


class ParameterShiftRule(BackpropThrough):
    """Gradient estimator: forward on the plant, every angle's gradient from two shifted circuit runs
    (Mitarai 2018; Schuld 2019); digital layers after the circuit by ordinary autograd. Model-free: no twin."""

    name = "parameter_shift"
    summary = ("parameter-shift rule (model-free): each rotation angle's gradient from 2 circuit runs at theta +- pi/2 "
               "with finite shots, exact in expectation (Mitarai 2018, Schuld 2019)")
    requirements = (NeedsCapability(ParameterShift),)
    plant_queries_per_step = ("1 + 2P per parameter-shift physical layer per batch (P shiftable angles), each query "
                              "batch x shots circuit executions")
    execution: ClassVar[Execution] = ParameterShiftExecution()

    @staticmethod
    def queries_per_step(model: nn.Module) -> int:
        """Plant queries of one step on ``model`` (the meter confirms it in the tests)."""
        total = 0
        for layer in physical_layers(model):
            specs = layer.plant.control_specs()
            total += 1 + 2 * sum(math.prod(specs[name].shape) for name in layer.plant.shift_rules())
        return total

    def __repr__(self) -> str:
        return "ParameterShiftRule()"
