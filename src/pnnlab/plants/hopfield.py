"""Continuous Hopfield network: the abstract energy-based reference system of equilibrium propagation.

Reference: Scellier & Bengio, "Equilibrium propagation: bridging the gap between energy-based models
and backpropagation", Front. Comput. Neurosci. 11, 24 (2017), doi:10.3389/fncom.2017.00024; the
layered, box-constrained form follows Laborieux et al., Front. Neurosci. 15, 633674 (2021),
doi:10.3389/fnins.2021.633674, and Scellier et al., NeurIPS 2023, doi:10.48550/arXiv.2305.14809.

Energy (input layer s_0 = x clamped, hidden layers s_1..s_L with activities in [0, 1], linear output
layer s_{L+1})

    E(s) = 1/2 sum_{l>=1} |s_l|^2 - sum_{l=0}^{L} s_{l+1}^T W_l s_l - sum_{l=0}^{L} b_l^T s_{l+1}
           - f^T s_{L+1}

with f the force on the outputs (the nudge). Its layered structure makes every other layer
conditionally independent, and each block minimisation is exact:

    s_l = clip(W_{l-1} s_{l-1} + W_l^T s_{l+1} + b_{l-1}, 0, 1)   (hidden layers)
    s_{L+1} = W_L s_L + b_L + f                                       (output layer)

Relaxation alternates odd and even layers (exact block coordinate descent) until every layer lies
within ``tolerance`` of its own block minimiser given its neighbours (the fixed-point residual, which
is zero exactly at a constrained minimum), to tolerance, not exactly; it warns if ``max_sweeps`` run
out first. The clip is the hard-sigmoid activation; with it the states live in a box
and the fixed-point dynamics of Scellier & Bengio become exact minimisation of E on that box.

Local measurements: dE/dW_l = -s_{l+1} s_l^T and dE/db_l = -s_{l+1} (batch means).

This is an abstract reference: no noise, no mismatch, no physical cost (its meter counts queries and
samples only). It has no hidden truth, so ``nominal_twin()`` (design values) and ``true_twin()``
(hidden physics, noise off) are the same model; both names exist so that every simulated plant
offers both with one meaning each. The energy is not convex in general (bilinear couplings), so the relaxed state is a
local minimum reached from the zero state (or the given initial state).
"""

from __future__ import annotations

import warnings

import torch

from .._validation import check_int, check_positive
from ..metering import CostModel
from ..twins.base import Twin
from .base import ControlSpec, Plant
from .capabilities import EnergyBased, Equilibrium, OutputClamp, OutputForce, Simulated

__all__ = ["HopfieldPlant", "HopfieldTwin", "RelaxationNotConverged", "fixed_point_residual", "hopfield_energy",
           "relax_hopfield"]


def _sweep(s, x, W, b, force, clamp):
    s = list(s)
    n = len(W)  # free layers 1..n ; s[l-1] holds layer l
    for parity in (1, 0):
        for l in range(1, n + 1):
            if l % 2 != parity:
                continue
            below = x if l == 1 else s[l - 2]
            drive = below @ W[l - 1].T + b[l - 1]
            if l < n:
                drive = drive + s[l] @ W[l]
                s[l - 1] = drive.clamp(0, 1)
            elif clamp is not None:
                s[l - 1] = clamp
            else:
                s[l - 1] = drive + force if force is not None else drive
    return s


class RelaxationNotConverged(RuntimeWarning):
    """The Hopfield relaxation used all its sweeps before its fixed-point residual met the tolerance."""


def fixed_point_residual(s, x, W, b, force=None, clamp=None):
    """Largest |s_l - argmin_l E(s)| over units and samples: the distance of every layer from its own
    exact block minimiser given its neighbours (zero exactly at a constrained minimum of E; for the
    box-constrained quadratic blocks this is the projected-gradient residual)."""
    n = len(W)
    worst = 0.0
    for l in range(1, n + 1):
        if l == n and clamp is not None:
            continue
        below = x if l == 1 else s[l - 2]
        drive = below @ W[l - 1].T + b[l - 1]
        if l < n:
            target = (drive + s[l] @ W[l]).clamp(0, 1)
        else:
            target = drive + force if force is not None else drive
        worst = max(worst, float((s[l - 1] - target).abs().max()))
    return worst


def relax_hopfield(x, W, b, *, force=None, clamp=None, init=None, tolerance=1e-7, max_sweeps=1000):
    """Relaxed state (list of layers 1..L+1) by exact block coordinate descent, and sweeps used.

    Stops when the fixed-point residual (:func:`fixed_point_residual`, checked after each sweep) is
    below ``tolerance``; warns (:class:`RelaxationNotConverged`) with the residual if ``max_sweeps``
    run out first."""
    s = [torch.zeros(x.shape[0], w.shape[0], dtype=x.dtype, device=x.device) for w in W] if init is None else list(init)
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):
        s = _sweep(s, x, W, b, force, clamp)
        if fixed_point_residual(s, x, W, b, force, clamp) < tolerance:
            return s, sweeps
    residual = fixed_point_residual(s, x, W, b, force, clamp)
    warnings.warn(f"Hopfield relaxation not converged in max_sweeps={max_sweeps} sweeps: fixed-point residual "
                  f"{residual:.3g} >= tolerance={tolerance:g}; raise max_sweeps or loosen the tolerance.",
                  RelaxationNotConverged, stacklevel=2)
    return s, sweeps


def hopfield_energy(s, x, W, b, force=None):
    """E(s) per sample (batch,)."""
    E = 0.5 * sum((layer ** 2).sum(1) for layer in s)
    layers = [x] + list(s)
    for l in range(len(W)):
        E = E - ((layers[l] @ W[l].T) * layers[l + 1]).sum(1) - layers[l + 1] @ b[l]
    if force is not None:
        E = E - (force * s[-1]).sum(1)
    return E


class HopfieldTwin(Twin):
    """Differentiable relaxation: settle without autograd, then ``backward_sweeps`` sweeps with
    autograd from the detached fixed point (the truncated implicit gradient)."""

    def __init__(self, *, sizes, tolerance, max_sweeps, backward_sweeps=40, dtype=torch.float32):
        super().__init__(in_features=sizes[0], out_features=sizes[-1])
        self.sizes, self.tolerance, self.max_sweeps = tuple(sizes), tolerance, max_sweeps
        self.backward_sweeps = check_int("backward_sweeps", backward_sweeps)
        self.dtype = dtype

    def forward(self, x, controls):
        n = len(self.sizes) - 1
        W = [controls[f"weight_{l}"].to(self.dtype) for l in range(n)]
        b = [controls[f"bias_{l}"].to(self.dtype) for l in range(n)]
        xd = x.to(self.dtype)
        with torch.no_grad():
            s, _ = relax_hopfield(xd.detach(), [w.detach() for w in W], [v.detach() for v in b],
                                  tolerance=self.tolerance, max_sweeps=self.max_sweeps)
        s = [v.detach() for v in s]
        for _ in range(self.backward_sweeps):
            s = _sweep(s, xd, W, b, None, None)
        return s[-1].to(x.dtype)


class HopfieldPlant(Plant, Simulated, EnergyBased):
    """A layered continuous Hopfield network (module docstring): ``sizes = (in, hidden..., out)``;
    controls ``weight_l`` (sizes[l+1], sizes[l]) and ``bias_l`` (sizes[l+1],), unbounded."""

    summary = "continuous Hopfield network, the abstract energy-based reference (Scellier & Bengio 2017)"

    def __init__(self, *, sizes: tuple[int, ...] = (4, 16, 3), tolerance: float = 1e-6, max_sweeps: int = 1000,
                 dtype: torch.dtype = torch.float32, seed: int | torch.Generator | None = 0) -> None:
        if not isinstance(sizes, (tuple, list)) or len(sizes) < 3:
            raise ValueError(f"sizes must be (in, hidden..., out) with at least one hidden layer, got {sizes!r}.")
        sizes = tuple(check_int(f"sizes[{i}]", s) for i, s in enumerate(sizes))
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
        super().__init__(in_features=sizes[0], out_features=sizes[-1],
                         cost=CostModel(source="abstract reference system: no physical cost"), seed=seed)
        self.sizes = sizes
        self.tolerance = check_positive("tolerance", tolerance)
        self.max_sweeps = check_int("max_sweeps", max_sweeps)
        self.dtype = dtype

    def control_specs(self):
        specs = {}
        for l in range(len(self.sizes) - 1):
            specs[f"weight_{l}"] = ControlSpec((self.sizes[l + 1], self.sizes[l]), description=f"couplings {l}->{l + 1}")
            specs[f"bias_{l}"] = ControlSpec((self.sizes[l + 1],), description=f"biases of layer {l + 1}")
        return specs

    def initial_controls(self, generator=None):
        gen = generator if generator is not None else self._generator
        out = {}
        for l in range(len(self.sizes) - 1):
            fan_in = self.sizes[l]
            bound = 1.0 / fan_in ** 0.5
            out[f"weight_{l}"] = bound * (2 * torch.rand(self.sizes[l + 1], fan_in, generator=gen) - 1)
            out[f"bias_{l}"] = bound * (2 * torch.rand(self.sizes[l + 1], generator=gen) - 1)
        return out

    def describe(self):
        return f"HopfieldPlant(sizes={self.sizes})"

    def _params(self, controls):
        n = len(self.sizes) - 1
        return ([controls[f"weight_{l}"].to(self.dtype) for l in range(n)],
                [controls[f"bias_{l}"].to(self.dtype) for l in range(n)])

    def _relax(self, x, controls, nudge, initial, generator):
        W, b = self._params(controls)
        xd = x.to(self.dtype)
        force = nudge.force.to(self.dtype) if isinstance(nudge, OutputForce) else None
        clamp = nudge.value.to(self.dtype) if isinstance(nudge, OutputClamp) else None
        init = list(initial.nodes) if initial is not None else None
        s, sweeps = relax_hopfield(xd, W, b, force=force, clamp=clamp, init=init, tolerance=self.tolerance,
                                   max_sweeps=self.max_sweeps)
        return Equilibrium(output=s[-1].to(x.dtype), nodes=tuple(s),
                           residual=fixed_point_residual(s, xd, W, b, force, clamp),
                           private={"x": xd, "sweeps": sweeps})

    def _measure(self, x, controls, generator):
        return self._relax(x, controls, None, None, generator).output

    def energy_gradients(self, state):
        layers = [state.private["x"]] + list(state.nodes)
        B = layers[0].shape[0]
        out = {}
        for l in range(len(self.sizes) - 1):
            out[f"weight_{l}"] = -(layers[l + 1].T @ layers[l]) / B
            out[f"bias_{l}"] = -layers[l + 1].mean(0)
        return out

    def true_twin(self, *, backward_sweeps: int = 40):
        """The hidden physics with noise off: this abstract plant has neither, so it is the design
        model (the same as :meth:`nominal_twin`). Diagnostics and the ideal bound only."""
        return self.nominal_twin(backward_sweeps=backward_sweeps)

    def nominal_twin(self, *, backward_sweeps: int = 40):
        """The design model (a relaxation with the requested weights and biases)."""
        return HopfieldTwin(sizes=self.sizes, tolerance=self.tolerance, max_sweeps=self.max_sweeps,
                            backward_sweeps=backward_sweeps, dtype=self.dtype)
