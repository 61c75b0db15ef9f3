"""Fully forward mode (FFM): every mask gradient from two passes of light through the hardware itself.

Xue, Zhou, Wang, Wu, Lin, Chen, Xu, Hua, Hu, Ma, Wu, Jiang, Lin, Dai & Fang, "Fully forward mode training
for optical neural networks", Nature 632, 280 (2024), doi:10.1038/s41586-024-07687-4; the free-space
in-situ optical backpropagation it builds on: Zhou, Lin, Wu, Wu, Jiang, Xie & Dai, "In situ optical
backpropagation training of diffractive optical neural networks", Photon. Res. 8, 940 (2020),
doi:10.1364/PRJ.389553.

For a linear optical system the field leaving mask l is ``u_l = t_l a_l`` with ``t_l = A_l exp(i phi_l)``,
``a_l = P_l u_{l-1}`` (free space, including every misalignment), and the output field is
``o = P_{L+1} u_L``. For a real loss L of the detected features, write ``g = dL/do*`` (Wirtinger; for an
intensity detector integrating ``|o|^2`` over region c, ``g = dL/dy_c o`` there). Backpropagation gives
``dL/du_l* = P^H ...``; taking the complex conjugate, the *error field* ``e_l = conj(dL/du_l*)`` obeys

    e_L = P_{L+1}^T conj(g),     e_{l-1} = P_l^T (t_l e_l)                                     (1)

i.e. ``conj(g)`` displayed at the output plane and sent through the same masks towards the input: by
reciprocity the optics applies exactly the transposes ``P^T`` (Zhou 2020), and a spatially symmetric
system performs the same operation as a forward propagation (Xue 2024's "fully forward" pass). With the
data field ``u_l`` and the error field ``e_l`` both measured at the pixels of mask l,

    dL/dphi_l = -2 Im(e_l u_l),     dL/dA_l = 2 Re(e_l u_l) / A_l                                (2)

summed over the batch, elementwise over pixels. Nothing here reads a model: the misalignment, the
axial errors and the fabrication map are in the measured fields. What (2) cannot see is a commanded
phase that is not the imprinted one: SLM crosstalk and a phase-scale error make the true gradient
``J^T dL/dphi_imprinted`` with an unknown Jacobian ``J``; FFM uses ``J = 1`` (the commanded phase), so
those two non-idealities bias it (tests/test_fully_forward.py measures the cosine similarity).

Per batch (the "recalibration" of every step): the error field is rescaled per sample to the power of the
measured output field before it is displayed (the modulator's and the cameras' dynamic range) and the
gradient scaled back; the error source is recomputed from the *measured* output field of the same batch.
Simplification: the holographic reference phase is assumed stable between the two passes of a step (Xue
2024 calibrate it; here it is the phase origin of both passes).

Queries per step: 2 passes per forward-symmetric physical layer per batch, each ``plant.frames_per_pass``
metered queries (1 with single-shot field measurement, 4 with four-step phase-shifting holography).
Digital layers around the physical ones are differentiated by autograd on the measured outputs, and the
input gradient (from the error field at the input plane) chains layers.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..execution import Execution, MeasuredGradients
from ..plants.capabilities import AmplitudeModulated, ForwardSymmetric, PhaseModulated
from .base import BackpropThrough, Requirement


def fully_forward_gradients(plant: ForwardSymmetric, x: torch.Tensor, controls: dict, data, grad_output: torch.Tensor):
    """Gradients of the loss for every control and the input, given the measured data pass ``data`` and
    dL/d(output features): one error pass (``plant.frames_per_pass`` queries), equations (1)-(2)."""
    source = plant.error_source(data, grad_output.detach())
    dims = tuple(range(1, source.ndim))
    data_norm = torch.linalg.vector_norm(data.output_field, dim=dims)
    source_norm = torch.linalg.vector_norm(source, dim=dims)
    scale = torch.where(source_norm > 0, data_norm.clamp_min(1e-12) / source_norm.clamp_min(1e-30),
                        torch.ones_like(source_norm))
    shape = (-1,) + (1,) * (source.ndim - 1)
    error = plant.error_pass(source * scale.reshape(shape).to(source.dtype), controls)
    modulation = plant.modulation()
    out = {}
    for name, value in controls.items():
        product = error.fields[name] * data.fields[name]
        per = (1,) * (product.ndim - 1)
        product = product / scale.reshape(-1, *per).to(product.dtype)
        kind = modulation[name]
        if isinstance(kind, PhaseModulated):
            grad = -2.0 * product.imag.sum(0)
        elif isinstance(kind, AmplitudeModulated):
            grad = 2.0 * product.real.sum(0) / value.detach().clamp_min(1e-6).to(product.device, product.real.dtype)
        else:
            raise TypeError(f"{type(plant).__name__}.modulation()[{name!r}] must be PhaseModulated() or "
                            f"AmplitudeModulated(), got {kind!r}.")
        out[name] = grad.to(value.device, value.dtype)  # (the plant's fields live on the plant's device)
    grad_x = plant.input_gradient(x, error) / scale.unsqueeze(1).to(x.dtype)
    out["input"] = grad_x.to(x.device, x.dtype)
    return out


class _FullyForwardLayer(torch.autograd.Function):
    """Value: the plant's measured output (data pass). Gradient: from one error pass, never a model."""

    @staticmethod
    def forward(ctx, plant, names, x, *control_values):
        controls = dict(zip(names, control_values))
        data = plant.data_pass(x, controls)
        ctx.plant, ctx.names, ctx.data = plant, names, data
        ctx.save_for_backward(x.detach(), *[c.detach() for c in control_values])
        return data.output

    @staticmethod
    def backward(ctx, grad_output):
        x, *values = ctx.saved_tensors
        controls = dict(zip(ctx.names, values))
        grads = fully_forward_gradients(ctx.plant, x, controls, ctx.data, grad_output)
        return (None, None, grads["input"], *[grads[name] for name in ctx.names])


class NeedsForwardSymmetric(Requirement):
    """Every physical layer can run its error pass through its own optics and measure fields."""

    def missing(self, layer):
        if isinstance(layer.plant, ForwardSymmetric):
            return None
        return f"a plant with the ForwardSymmetric capability ({ForwardSymmetric.offers})"


class FullyForwardExecution(MeasuredGradients):
    """Run every forward-symmetric physical layer on its plant with FFM gradients; outside gradient
    tracking (evaluation) a layer is one ordinary plant query."""

    label = "fully forward"
    capability = ForwardSymmetric
    function = _FullyForwardLayer


class FullyForward(BackpropThrough):
    """Fully forward mode training (Xue 2024; Zhou 2020): data pass and error pass through the same
    optics, gradients from the fields measured at every mask. Model-free with respect to the physics."""

    name = "ffm"
    summary = ("fully forward mode (Xue 2024): data and error fields sent through the same free-space optics, "
               "every mask gradient from the two measured fields (model-free w.r.t. the physics)")
    requirements = (NeedsForwardSymmetric(),)
    plant_queries_per_step = ("2 passes per forward-symmetric physical layer per batch (data, error), each "
                              "frames_per_pass queries: 2 with single-shot field measurement, 8 with four-step "
                              "phase-shifting holography")
    execution: ClassVar[Execution] = FullyForwardExecution()

    def __repr__(self) -> str:
        return "FullyForward()"
