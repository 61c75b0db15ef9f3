"""In-situ adjoint gradients measured with light (model-free with respect to the physics).

Hughes, Minkov, Shi & Fan, "Training of photonic neural networks through in situ backpropagation and
gradient measurement", Optica 5, 864 (2018), doi:10.1364/OPTICA.5.000864; demonstrated on a 3-layer
silicon-photonic network by Pai et al., "Experimentally realized in situ backpropagation for deep
learning in photonic neural networks", Science 380, 398 (2023), doi:10.1126/science.ade8450.

For a linear reciprocal layer y = T x (complex fields) and a real loss L, let g = dL/dy* (the
gradient PyTorch would give for the complex output field). A phase shifter at waveguide k multiplies
the field there by exp(i phi); with b_k the forward field just after it and a_k the *adjoint* field
found there when the field delta = conj(g) is sent backwards from the outputs (by reciprocity it
propagates through T^T),

    dL/dphi = Re(i b_k a_k) = -Im(b_k a_k)                                            (1)

(the same expression as the authors' neuroptica code, ``-imag(A_phi * A_phi_adj)``). Hughes' insight
is that (1) needs no phase measurement inside the chip. Three passes, each one query:

1. forward: send x, read the power |b_k|^2 at every shifter and the output field y;
2. adjoint: send delta backwards from the outputs, read |a_k|^2 at every shifter and the field
   a_in leaving the input ports (coherent detection);
3. interference: send x together with x_TR = -i conj(a_in) (the time-reversed adjoint, phase-shifted
   by -pi/2); if the mesh is lossless (unitary), x_TR produces the field -i conj(a_k) at shifter k, so
   the monitor reads I_k = |b_k - i conj(a_k)|^2 = |b_k|^2 + |a_k|^2 + 2 Re(i b_k a_k), and

    dL/dphi = (I_k - |b_k|^2 - |a_k|^2) / 2.                                            (2)

The input gradient dL/dx = conj(a_in) (mapped through the plant's input encoding) comes with pass 2,
so layers chain: digital (or electro-optic) nonlinearities between layers are differentiated by
ordinary autograd, in the controller, on the *measured* fields; no twin is ever differentiated.
Per sample the adjoint field is rescaled to the forward output power before it is sent (a real
controller uses the detectors' dynamic range the same way) and the result scaled back.

What (2) measures is the derivative with respect to the phase *at each shifter*. It equals the true
hardware gradient when the mesh is lossless and each commanded phase is the phase applied (no
thermal crosstalk between heaters). Loss breaks the time reversal of step 3: x_TR no longer
recreates conj(a_k) inside the mesh but, for a uniform loss, a^(2k) conj(a_k) after k lossy columns
(field transmission a per column). Then (2) returns a^(2k) dL/dphi plus the *offset*
(a^(4k) - 1)|a_k|^2 / 2, which does not cancel over the batch and dominates. ``passes=4`` adds one
query that sends x_TR alone and uses its measured power instead of |a_k|^2: the offset vanishes and
only the scale a^(2k) remains. Both are measured and tabulated in docs/methods/adjoint.md.

Electro-optic activations on the chip (:class:`~pnnlab.plants.photonics.activation.ChannelWise`
plants, e.g. Williamson 2020's) are not reciprocal; their Jacobian is *measured*, model-free, by
dithering every channel at once: central differences along Re and Im of the input (4 queries) and
along the bias controls (2 queries), step ``dither`` (relative error O(dither^2) plus noise/dither).

Queries per step: 3 per reciprocal physical layer per batch (forward, adjoint, interference), and 7
per channel-wise activation plant (forward + 6 dithered); the meter confirms it (tests/test_adjoint.py).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..execution import Execution
from ..plants.capabilities import Reciprocal
from ..plants.photonics.activation import ChannelWise
from .base import BackpropThrough, Requirement


class _InSituLayer(torch.autograd.Function):
    """Value: the plant's measured output (forward pass with monitors). Gradient: from the adjoint and
    interference passes (2 more queries), never from a model."""

    @staticmethod
    def forward(ctx, plant, names, passes, x, *control_values):
        controls = dict(zip(names, control_values))
        forward = plant.forward_pass(x, controls)
        ctx.plant, ctx.names, ctx.forward_result, ctx.passes = plant, names, forward, passes
        ctx.save_for_backward(x.detach(), *[c.detach() for c in control_values])
        return forward.output

    @staticmethod
    def backward(ctx, grad_output):
        plant, names, forward = ctx.plant, ctx.names, ctx.forward_result
        x, *values = ctx.saved_tensors
        controls = dict(zip(names, values))
        grads = in_situ_gradients(plant, x, controls, forward, grad_output, passes=ctx.passes)
        return (None, None, None, grads["input"], *[grads[name] for name in names])


def in_situ_gradients(plant: Reciprocal, x: torch.Tensor, controls: dict, forward, grad_output: torch.Tensor,
                      *, passes: int = 3):
    """Gradients of a loss with respect to the controls and the input of a reciprocal plant, given the
    forward pass already measured (``forward``, a FieldPass) and dL/d(output features): two more
    queries (adjoint and interference passes), equations (1)-(2) of the module docstring; with
    ``passes=4`` a third one sends the time-reversed field alone and its measured power replaces the
    adjoint power in (2). Returns a dict: one entry per control (summed over the batch, as the loss
    is) and ``"input"`` (per sample)."""
    delta = plant.adjoint_source(forward, grad_output.detach())
    # per-sample scale: send the adjoint at the forward output power (the detectors' dynamic range)
    forward_norm = torch.linalg.vector_norm(forward.port_field, dim=1)
    delta_norm = torch.linalg.vector_norm(delta, dim=1)
    scale = torch.where(delta_norm > 0, forward_norm.clamp_min(1e-12) / delta_norm.clamp_min(1e-30),
                        torch.ones_like(delta_norm))
    adjoint = plant.adjoint_pass(delta * scale.unsqueeze(1).to(delta.dtype), controls)
    injected = -1j * adjoint.port_field.conj()
    interference = plant.interference_pass(x, injected, controls)
    reference = adjoint if passes == 3 else plant.interference_pass(torch.zeros_like(x), injected, controls)
    out = {}
    shape = (-1,) + (1,) * 8
    for name in controls:
        i_fwd, i_adj, i_int = (forward.intensities[name], reference.intensities[name],
                               interference.intensities[name])
        per_sample = 0.5 * (i_int - i_fwd - i_adj)
        per_sample = per_sample / scale.reshape(shape[:per_sample.ndim]).to(per_sample.dtype)
        out[name] = per_sample.sum(0).to(controls[name].dtype)
    grad_x = plant.input_gradient(x, adjoint) / scale.unsqueeze(1).to(x.dtype)
    out["input"] = grad_x.to(x.dtype)
    return out


class _DitheredLayer(torch.autograd.Function):
    """Value: the plant's output. Gradient: the channel-wise Jacobian measured by central differences
    with every channel dithered at once (4 queries for the input, 2 for the controls)."""

    @staticmethod
    def forward(ctx, plant, names, step, x, *control_values):
        controls = dict(zip(names, control_values))
        y = plant(x, controls)
        ctx.plant, ctx.names, ctx.step = plant, names, step
        ctx.save_for_backward(x.detach(), *[c.detach() for c in control_values])
        return y

    @staticmethod
    def backward(ctx, grad_output):
        plant, names, h = ctx.plant, ctx.names, ctx.step
        x, *values = ctx.saved_tensors
        controls = dict(zip(names, values))
        n = plant.n_channels
        g = grad_output.detach()
        grad_x = torch.zeros_like(x)
        for part in (0, 1):  # dither Re (features :n) then Im (features n:) of every channel
            dx = torch.zeros_like(x)
            dx[:, part * n:(part + 1) * n] = h
            jac = (plant(x + dx, controls) - plant(x - dx, controls)) / (2 * h)  # (batch, 2n): d out / d in_part
            grad_x[:, part * n:(part + 1) * n] = g[:, :n] * jac[:, :n] + g[:, n:] * jac[:, n:]
        grads = []
        for name in names:
            value = controls[name]
            spec = plant.control_specs()[name]
            up, down = dict(controls), dict(controls)
            if spec.periodic:  # the plant wraps a dithered phase itself: no edge to clamp at
                up[name], down[name] = value + h, value - h
            else:
                up[name] = (value + h).clamp(max=spec.high)
                down[name] = (value - h).clamp(min=spec.low)
            width = (up[name] - down[name]).clamp_min(1e-12)
            jac = (plant(x, up) - plant(x, down)) / width.repeat(2)
            grads.append((g * jac).sum(0).reshape(2, n).sum(0).to(value.dtype))
        return (None, None, None, grad_x, *grads)


class NeedsReciprocalOrChannelWise(Requirement):
    """Every physical layer is reciprocal (gradients by light) or a channel-wise activation (Jacobian
    by dithering)."""

    def missing(self, layer):
        if isinstance(layer.plant, (Reciprocal, ChannelWise)):
            return None
        return (f"a plant with the Reciprocal capability ({Reciprocal.offers}) or a ChannelWise activation "
                f"({ChannelWise.offers})")


class InSituAdjoint(Execution):
    """Run every reciprocal physical layer on its plant, with gradients measured by the three-pass
    adjoint scheme (see the module docstring). Outside gradient tracking (evaluation) a layer is one
    ordinary plant query."""

    label = "in-situ adjoint"

    def __init__(self, *, dither: float = 1e-3, passes: int = 3) -> None:
        from .._validation import check_positive
        self.dither = check_positive("dither", dither)
        if passes not in (3, 4) or isinstance(passes, bool):
            raise ValueError(f"passes must be 3 (forward, adjoint, interference: Hughes 2018) or 4 (adds the "
                             f"time-reversed field alone, which removes the loss-induced offset), got {passes!r}.")
        self.passes = passes

    def run(self, layer, x):
        plant = layer.plant
        controls = layer.control_values()
        if not torch.is_grad_enabled():
            return plant(x, controls)
        names = tuple(controls)
        if isinstance(plant, Reciprocal):
            return _InSituLayer.apply(plant, names, self.passes, x, *[controls[n] for n in names])
        if isinstance(plant, ChannelWise):
            return _DitheredLayer.apply(plant, names, self.dither, x, *[controls[n] for n in names])
        raise TypeError(f"the in-situ adjoint execution needs a Reciprocal or ChannelWise plant, got "
                        f"{plant.describe()}.")


class AdjointInSitu(BackpropThrough):
    """In-situ backpropagation with gradients measured by light (Hughes 2018; Pai 2023). Model-free
    with respect to the physics: no twin is used or differentiated; digital layers between the
    physical ones are differentiated by autograd on the measured fields."""

    name = "adjoint"
    summary = ("in-situ adjoint (model-free w.r.t. the physics): every phase gradient from forward, adjoint and "
               "interference passes of light through a reciprocal plant (Hughes 2018, Pai 2023)")
    requirements = (NeedsReciprocalOrChannelWise(),)
    plant_queries_per_step = ("3 per reciprocal physical layer per batch (forward, adjoint from the outputs, "
                              "interference of the input with the time-reversed adjoint; 4 with passes=4); 7 per "
                              "channel-wise activation plant (forward and 6 dithered)")
    execution: ClassVar[Execution] = InSituAdjoint()

    def __init__(self, *, dither: float = 1e-3, passes: int = 3) -> None:
        self.execution = InSituAdjoint(dither=dither, passes=passes)

    def __repr__(self) -> str:
        return f"AdjointInSitu(dither={self.execution.dither}, passes={self.execution.passes})"
