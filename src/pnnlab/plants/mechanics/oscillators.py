"""Coupled nonlinear oscillators: the physical system of the physics-aware-training reference code.

Source: L. G. Wright, T. Onodera, M. M. Stein, T. Wang, D. T. Schachter, Z. Hu & P. L. McMahon,
"Deep physical neural networks trained with backpropagation", Nature 601, 549-555 (2022),
doi:10.1038/s41586-021-04223-6, and its companion code (mcmahon-lab/Physics-Aware-Training,
examples 1 and 2), which trains networks of simulated coupled pendula.

Physics (dimensionless: time in units of 1/omega_0, omega_0 the small-amplitude angular frequency
of one uncoupled oscillator; amplitudes in radians)::

    d^2 q_i / dt^2 = -sin q_i + sum_j J_ij (sin q_j - sin q_i) + e_i,     J = J^T

* the input x sets the initial amplitudes q(0) = x, the oscillators start at rest, dq/dt(0) = 0;
* the trainable controls are the symmetric couplings J and the constant drives e;
* the output is the vector of all amplitudes q(t_end) (t_end = 0.5 in the reference), computed with
  a fixed-step classical Runge-Kutta scheme (RK4, 5 steps in the reference), vectorised over the
  batch. A model reads whichever oscillators it needs (see
  :mod:`pnnlab.models.oscillator_classifier`).

Mismatch recipe (:class:`OscillatorMismatch`, off by default; the values of example 2 of the
reference code are :meth:`OscillatorMismatch.wright2022`). The plant then integrates::

    d^2 q_i / dt^2 = -(1 + dJ_ii) sin(k q_i) + sum_{j != i} (J_ij + dJ_ij) (sin(k q_j) - sin(k q_i)) + e_i,
    q(0) = x + sigma * N(0, 1)

with k = 1 + eta (nonlinearity error), dJ = s * coupling_limit * (C + C^T) / 2, C ~ N(0, 1) drawn
once from the plant's seed (a fixed fabrication error the twin does not know) and sigma the input
noise, drawn afresh on every call. The diagonal of the random matrix is an on-site stiffness error
(-dJ_ii sin q_i, standard deviation s * coupling_limit), as in the reference code: its ``C2Q``
(example 2 notebook, "Example 2 Fashion MNIST classification with PNN and PAT.ipynb") replaces the
diagonal of Q = (C + C^T)/2 by minus its column sums, so ``sin_q @ Q`` is
sum_{j != i} Q_ji (sin q_j - sin q_i) - Q_ii sin q_i, and the experiment ODE adds
``sin_q @ Q_noise`` with ``Q_noise = C2Q(J_noise * randn(N, N))``, ``J_noise = 0.2``.

Two twins (:class:`pnnlab.plants.capabilities.Simulated`): ``nominal_twin()`` integrates the design
equation (ideal pendula, the couplings as set, no noise); ``true_twin()`` integrates this plant's hidden
equation (its extra coupling and on-site error, its nonlinearity error) with the input noise off, for
diagnostics and the ideal bound only.

Simplifications: no damping, no parametric noise on the couplings, no drift; the "real" plant is
integrated with the same RK4 step as the twin, so a mismatch-free, noiseless plant equals its twin
exactly (the gap is only what the recipe puts in). The diagonal J_ii of the *trainable* couplings has
no effect (it multiplies sin q_i - sin q_i = 0); in the reference code the diagonal of the trained
matrix also acts as an on-site stiffness, a trainable degree of freedom this plant does not offer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import devices
from ..._validation import check_finite_float, check_int, check_nonnegative, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Simulated

__all__ = ["CoupledOscillatorPlant", "CoupledOscillatorTrueTwin", "CoupledOscillatorTwin", "OscillatorMismatch",
           "integrate_oscillators", "pendulum_energy"]


# ---------------------------------------------------------------------------------------------
# physics
# ---------------------------------------------------------------------------------------------
def _stiffness(coupling: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
    """K = J - diag(1 + sum_j J_ij), so that the acceleration is a = sin(k q) @ K^T + e; with an extra
    (fabrication) coupling dJ, the off-diagonal part of dJ adds to the couplings and its diagonal acts
    as an on-site stiffness, K = K(J + dJ) - diag(dJ_ii) (the reference code's C2Q convention)."""
    if extra is None:
        return coupling - torch.diag(1.0 + coupling.sum(dim=1))
    total = coupling + extra
    return total - torch.diag(1.0 + total.sum(dim=1) + torch.diagonal(extra))


def integrate_oscillators(q0: torch.Tensor, coupling: torch.Tensor, drive: torch.Tensor, *,
                          t_end: float, n_steps: int, frequency_factor: float = 1.0,
                          p0: torch.Tensor | None = None,
                          extra_coupling: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate d^2q_i/dt^2 = -sin(k q_i) + sum_j J_ij (sin(k q_j) - sin(k q_i)) + e_i with classical RK4.

    ``q0`` (batch, N) initial amplitudes, ``coupling`` (N, N), ``drive`` (N,), ``p0`` initial
    velocities (zero if None), ``frequency_factor`` k (1 for the ideal pendulum), ``extra_coupling``
    a fixed symmetric dJ (None: none) whose off-diagonal adds to J and whose diagonal acts as an
    on-site stiffness -dJ_ii sin(k q_i) (see :func:`_stiffness`). Returns
    ``(q, p)`` at ``t_end`` after ``n_steps`` equal steps. Differentiable; plain tensor operations.

    The second-order system is written in the Runge-Kutta-Nystrom form of RK4 (identical to RK4
    applied to (q, p), with the position stages eliminated)::

        a1 = f(q),  a2 = f(q + h p/2),  a3 = f(q + h p/2 + h^2 a1/4),  a4 = f(q + h p + h^2 a2/2)
        q <- q + h p + h^2 (a1 + a2 + a3) / 6,    p <- p + h (a1 + 2 a2 + 2 a3 + a4) / 6
    """
    h = float(t_end) / int(n_steps)
    stiffness_t = _stiffness(coupling, extra_coupling).transpose(0, 1)
    k = float(frequency_factor)

    def accel(q):
        s = torch.sin(q if k == 1.0 else k * q)
        return torch.addmm(drive, s, stiffness_t)

    q = q0
    p = torch.zeros_like(q0) if p0 is None else p0
    for step in range(int(n_steps)):
        if step == 0 and p0 is None:  # at rest: p = 0 simplifies the first step
            a1 = accel(q)
            a2 = a1
            a3 = accel(q + (h * h / 4) * a1)
            a4 = accel(q + (h * h / 2) * a1)
            q_new = q + (h * h / 6) * (2 * a1 + a3)
            p = (h / 6) * (3 * a1 + 2 * a3 + a4)
            q = q_new
            continue
        a1 = accel(q)
        hp = h * p
        a2 = accel(q + 0.5 * hp)
        a3 = accel(q + 0.5 * hp + (h * h / 4) * a1)
        a4 = accel(q + hp + (h * h / 2) * a2)
        q_new = q + hp + (h * h / 6) * (a1 + a2 + a3)
        p = p + (h / 6) * (a1 + 2 * a2 + 2 * a3 + a4)
        q = q_new
    return q, p


def _integrate_lean(q0: torch.Tensor, stiffness_t: torch.Tensor, drive: torch.Tensor, *, t_end: float,
                    n_steps: int, frequency_factor: float) -> torch.Tensor:
    """The same RK4 scheme as :func:`integrate_oscillators` from rest, written for the plant's forward
    pass under ``no_grad``: in-place updates and fused scaled additions (fewer tensor operations,
    the same arithmetic up to rounding). With k = frequency_factor it integrates u = k q, whose
    equation u'' = -k sin u + k J (sin u_j - sin u_i) + k e needs no multiplication inside sin."""
    h = float(t_end) / int(n_steps)
    hh = h * h
    k = float(frequency_factor)
    if k != 1.0:
        stiffness_t = stiffness_t * k
        drive = drive * k
        u = q0 * k
    else:
        u = q0.clone()
    # first step from rest (p = 0, a2 = a1)
    a1 = torch.addmm(drive, torch.sin(u), stiffness_t)
    a3 = torch.addmm(drive, torch.add(u, a1, alpha=hh / 4).sin_(), stiffness_t)
    a4 = torch.addmm(drive, torch.add(u, a1, alpha=hh / 2).sin_(), stiffness_t)
    u.add_(a1, alpha=hh / 3).add_(a3, alpha=hh / 6)
    p = torch.mul(a1, h / 2).add_(a3, alpha=h / 3).add_(a4, alpha=h / 6)
    for _ in range(int(n_steps) - 1):
        a1 = torch.addmm(drive, torch.sin(u), stiffness_t)
        t = torch.add(u, p, alpha=h / 2)
        a2 = torch.addmm(drive, torch.sin(t), stiffness_t)
        a3 = torch.addmm(drive, t.add_(a1, alpha=hh / 4).sin_(), stiffness_t)
        a4 = torch.addmm(drive, torch.add(u, p, alpha=h).add_(a2, alpha=hh / 2).sin_(), stiffness_t)
        u.add_(p, alpha=h).add_(a1, alpha=hh / 6).add_(a2, alpha=hh / 6).add_(a3, alpha=hh / 6)
        p.add_(a1, alpha=h / 6).add_(a2, alpha=h / 3).add_(a3, alpha=h / 3).add_(a4, alpha=h / 6)
    return u if k == 1.0 else u.div_(k)


def pendulum_energy(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Energy of uncoupled, undriven pendula, sum_i p_i^2/2 + 1 - cos q_i, per batch row
    (conserved by the exact dynamics when J = 0 and e = 0)."""
    return (0.5 * p.square() + 1.0 - torch.cos(q)).sum(dim=-1)


# ---------------------------------------------------------------------------------------------
# mismatch recipe
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OscillatorMismatch:
    """What the simulated hardware does that its nominal twin does not know. Every part is off
    (zero) by default; :meth:`wright2022` gives the recipe of example 2 of the PAT reference code.

    extra_coupling_std:
        a fixed random symmetric matrix dJ = s * coupling_limit * (C + C^T) / 2 with C ~ N(0, 1),
        drawn once from the plant's seed (dimensionless, in units of the plant's coupling limit): its
        off-diagonal adds to the couplings, its diagonal (std s * coupling_limit) is an on-site
        stiffness error -dJ_ii sin q_i, as in the reference code's ``C2Q`` (see the module docstring).
    nonlinearity_error:
        eta: the plant's nonlinearity is sin((1 + eta) q) instead of sin q.
    input_noise_std:
        standard deviation (rad) of Gaussian noise added to the initial amplitudes on every call.
    """

    extra_coupling_std: float = 0.0
    nonlinearity_error: float = 0.0
    input_noise_std: float = 0.0

    def __post_init__(self) -> None:
        check_nonnegative("OscillatorMismatch.extra_coupling_std", self.extra_coupling_std)
        eta = check_finite_float("OscillatorMismatch.nonlinearity_error", self.nonlinearity_error)
        if eta <= -1.0:
            raise ValueError(f"OscillatorMismatch.nonlinearity_error must be > -1 (the plant's nonlinearity is "
                             f"sin((1 + eta) q)), got {eta!r}; typical values are small, e.g. 0.1.")
        check_nonnegative("OscillatorMismatch.input_noise_std", self.input_noise_std)

    @classmethod
    def wright2022(cls) -> "OscillatorMismatch":
        """Extra coupling 0.2 (with its on-site diagonal), eta = 0.1, input noise 0.02: ``J_noise``,
        ``η`` and ``input_noise`` of mcmahon-lab/Physics-Aware-Training, "Example 2 Fashion MNIST
        classification with PNN and PAT.ipynb" (with coupling_limit = 1)."""
        return cls(extra_coupling_std=0.2, nonlinearity_error=0.1, input_noise_std=0.02)

    @property
    def is_off(self) -> bool:
        return not (self.extra_coupling_std or self.nonlinearity_error or self.input_noise_std)


# ---------------------------------------------------------------------------------------------
# twin and plant
# ---------------------------------------------------------------------------------------------
class CoupledOscillatorTwin(Twin):
    """Differentiable model of :class:`CoupledOscillatorPlant` from its design values: ideal
    pendulum nonlinearity, the couplings as set, no noise. Output: all amplitudes q(t_end)."""

    def __init__(self, *, n_oscillators: int, t_end: float = 0.5, n_steps: int = 5) -> None:
        n = check_int("n_oscillators", n_oscillators)
        super().__init__(in_features=n, out_features=n)
        self.t_end = check_positive("t_end", t_end)
        self.n_steps = check_int("n_steps", n_steps)

    def forward(self, x, controls):
        coupling = controls["coupling"].to(x.dtype)
        drive = controls["drive"].to(x.dtype)
        q, _ = integrate_oscillators(x, coupling, drive, t_end=self.t_end, n_steps=self.n_steps)
        return q

    def extra_repr(self) -> str:
        return f"n_oscillators={self.in_features}, t_end={self.t_end}, n_steps={self.n_steps}"


def _default_cost(n_oscillators: int, t_end: float, natural_frequency_hz: float) -> CostModel:
    omega0 = 2 * math.pi * natural_frequency_hz
    evolve = t_end / omega0
    ring_down = 100.0 / omega0  # assumed: ~Q/omega0 with Q = 100 to return to rest between samples
    return CostModel(
        seconds_per_query=1e-3,  # assumed: reprogramming couplings/drives (a DAC update)
        seconds_per_sample=evolve + ring_down,
        joules_per_query=0.0,
        joules_per_sample=n_oscillators * 0.5 * 1.0 * (1e-6) ** 2,
        source=(f"assumed: MEMS-like resonators at {natural_frequency_hz:g} Hz; per sample the evolution "
                f"time t_end/omega0 plus a ring-down of 100/omega0 (quality factor ~100); energy 1/2 k A^2 "
                f"per oscillator with stiffness k = 1 N/m and amplitude A = 1 um; 1 ms to reprogram the "
                f"controls per query. Illustrative orders of magnitude, not a measured device."))


class CoupledOscillatorTrueTwin(CoupledOscillatorTwin):
    """The hidden physics of one :class:`CoupledOscillatorPlant` with its input noise off, as returned by
    :meth:`CoupledOscillatorPlant.true_twin` (diagnostics and the ideal upper bound only)."""

    def __init__(self, *, n_oscillators: int, t_end: float, n_steps: int, extra_coupling: torch.Tensor | None,
                 frequency_factor: float) -> None:
        super().__init__(n_oscillators=n_oscillators, t_end=t_end, n_steps=n_steps)
        self.register_buffer("extra_coupling", None if extra_coupling is None else extra_coupling.clone())
        self.frequency_factor = float(frequency_factor)

    def forward(self, x, controls):
        extra = None if self.extra_coupling is None else self.extra_coupling.to(x.dtype)
        q, _ = integrate_oscillators(x, controls["coupling"].to(x.dtype), controls["drive"].to(x.dtype),
                                     t_end=self.t_end, n_steps=self.n_steps,
                                     frequency_factor=self.frequency_factor, extra_coupling=extra)
        return q


class CoupledOscillatorPlant(Plant, Simulated):
    """A network of ``n_oscillators`` coupled nonlinear pendula (see the module docstring).

    Parameters
    ----------
    n_oscillators:
        number of oscillators N; input and output width.
    t_end:
        read-out time in units of 1/omega_0 (0.5 in the reference code).
    n_steps:
        fixed RK4 steps from 0 to ``t_end`` (5 in the reference code).
    coupling_limit:
        physical range of the couplings, |J_ij| <= coupling_limit (dimensionless, units of omega_0^2).
    drive_limit:
        physical range of the drives, |e_i| <= drive_limit (units of omega_0^2 rad).
    mismatch:
        an :class:`OscillatorMismatch`; None (default) is the ideal, noiseless plant.
    natural_frequency_hz:
        omega_0 / 2 pi, used only by the (assumed) cost model to convert dimensionless time.
    cost:
        override the cost model.
    seed:
        seeds the fixed extra coupling and the per-call input noise.
    """

    summary = "coupled nonlinear pendula (PAT reference system)"

    def __init__(self, *, n_oscillators: int, t_end: float = 0.5, n_steps: int = 5,
                 coupling_limit: float = 1.0, drive_limit: float = 1.0,
                 mismatch: OscillatorMismatch | None = None, natural_frequency_hz: float = 1e4,
                 cost: CostModel | None = None, seed: int | torch.Generator | None = 0) -> None:
        n = check_int("n_oscillators", n_oscillators)
        t_end = check_positive("t_end", t_end)
        natural_frequency_hz = check_positive("natural_frequency_hz", natural_frequency_hz)
        if cost is not None and not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a pnnlab CostModel or None, got {type(cost).__name__}.")
        super().__init__(in_features=n, out_features=n,
                         cost=cost or _default_cost(n, t_end, natural_frequency_hz), seed=seed)
        self.n_oscillators = n
        self.t_end = t_end
        self.n_steps = check_int("n_steps", n_steps)
        self.coupling_limit = check_positive("coupling_limit", coupling_limit)
        self.drive_limit = check_positive("drive_limit", drive_limit)
        if mismatch is None:
            mismatch = OscillatorMismatch()
        if not isinstance(mismatch, OscillatorMismatch):
            raise TypeError(f"mismatch must be an OscillatorMismatch or None, got {type(mismatch).__name__}; "
                            f"write mismatch=OscillatorMismatch.wright2022() for the reference recipe.")
        # hidden truth: no training method may read these
        self._mismatch = mismatch
        self._frequency_factor = 1.0 + mismatch.nonlinearity_error
        self._input_noise_std = mismatch.input_noise_std
        self._specs = {
            "coupling": ControlSpec((n, n), -self.coupling_limit, self.coupling_limit, unit="omega_0^2",
                                    description="symmetric couplings J_ij", symmetric=True),
            "drive": ControlSpec((n,), -self.drive_limit, self.drive_limit, unit="omega_0^2 rad",
                                 description="constant drives e_i"),
        }
        c = torch.randn(n, n, generator=self._generator, dtype=torch.float64)
        self._extra_coupling = (mismatch.extra_coupling_std * self.coupling_limit * 0.5 * (c + c.T))
        self._extra_coupling_f32 = self._extra_coupling.float()

    def control_specs(self):
        return dict(self._specs)  # built once in __init__: every plant call validates against them

    def initial_controls(self, generator=None):
        """Small random symmetric couplings (uniform in +-1/sqrt(N) before symmetrising, like the
        reference code's linear-layer initialisation, clipped to the range) and zero drives."""
        gen = generator if generator is not None else self._generator
        n = self.n_oscillators
        c = (2 * torch.rand(n, n, generator=gen) - 1) / math.sqrt(n)
        coupling = (0.5 * (c + c.T)).clamp(-self.coupling_limit, self.coupling_limit)
        return {"coupling": coupling, "drive": torch.zeros(n)}

    def _measure(self, x, controls, generator):
        coupling = controls["coupling"].to(x.dtype)
        extra = None
        if self._mismatch.extra_coupling_std:
            extra = self._extra_coupling_f32 if x.dtype == torch.float32 else self._extra_coupling.to(x.dtype)
        q0 = x
        if self._input_noise_std:
            q0 = devices.randn_like(x, generator=generator).mul_(self._input_noise_std).add_(x)
        return _integrate_lean(q0, _stiffness(coupling, extra).T, controls["drive"].to(x.dtype), t_end=self.t_end,
                               n_steps=self.n_steps, frequency_factor=self._frequency_factor)

    def nominal_twin(self) -> CoupledOscillatorTwin:
        """The design equation: ideal pendula, the couplings as set, no noise (reads no hidden truth)."""
        return CoupledOscillatorTwin(n_oscillators=self.n_oscillators, t_end=self.t_end, n_steps=self.n_steps)

    def true_twin(self) -> CoupledOscillatorTrueTwin:
        """This plant's hidden equation (extra coupling with its on-site diagonal, nonlinearity error)
        with the input noise off. Diagnostics and the ideal bound only."""
        extra = self._extra_coupling if self._mismatch.extra_coupling_std else None
        return CoupledOscillatorTrueTwin(n_oscillators=self.n_oscillators, t_end=self.t_end, n_steps=self.n_steps,
                                         extra_coupling=extra, frequency_factor=self._frequency_factor)

    def describe(self) -> str:
        return (f"CoupledOscillatorPlant(n_oscillators={self.n_oscillators}, t_end={self.t_end}, "
                f"n_steps={self.n_steps})")
