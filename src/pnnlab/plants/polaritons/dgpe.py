"""Split-step integration of the driven-dissipative Gross-Pitaevskii equation with an exciton reservoir.

Model (Wouters & Carusotto, "Excitations in a nonequilibrium Bose-Einstein condensate of exciton
polaritons", Phys. Rev. Lett. 99, 140402 (2007), doi:10.1103/PhysRevLett.99.140402), in physical units
(time ps, length um, energy meV, densities um^-d on a d = 1 or 2 dimensional grid)::

    i hbar dpsi/dt = [ -hbar^2/(2m) lap + V(x) + g_c |psi|^2 + g_R n_R
                       + i hbar/2 (R n_R - gamma_c - gamma_abs(x)) ] psi
    dn_R/dt        = P(x) - (gamma_R + R |psi|^2) n_R

psi the condensate field (|psi|^2 polaritons per um^d), n_R the incoherent exciton reservoir, P the
non-resonant pump rate (excitons per um^d per ps), V a static potential (disorder), gamma_abs an
absorbing layer at the edges of the grid (0 inside; it stands in for the polaritons that leave the
field of view and stops the periodic FFT domain from folding them back).

Homogeneous steady states (P uniform, V = 0, gamma_abs = 0), read off the equations: below the
threshold P_th = gamma_c gamma_R / R the condensate decays and n_R -> P / gamma_R; above it the gain
clamps, n_R -> gamma_c / R, and |psi|^2 -> (P - P_th) / gamma_c (tests/test_polaritons.py checks both).

Scheme (vectorised over a leading batch dimension): Strang splitting per step h,
``L(h/2) K(h) L(h/2)``, with K the exact kinetic step in Fourier space
(psi_k <- psi_k exp(-i hbar k^2 h / 2m), one FFT pair) and L the local part (potential, interactions,
gain and loss, reservoir) advanced by an exponential midpoint rule: predictor to tau/2 with the start
values, then the full sub-step with the midpoint rates. The reservoir is advanced exactly for a frozen
|psi|^2 (n_R relaxes exponentially to P / (gamma_R + R |psi|^2)). Second order in h overall (tested).
With gain, loss and the reservoir switched off the local step multiplies psi by a pure phase and K is
unitary, so the norm sum |psi|^2 dx is conserved to rounding, with or without the g_c |psi|^2 term.

Simplifications: scalar (one spin component) mean field, no reservoir diffusion, no energy relaxation
term, no stochastic (truncated-Wigner) noise during the evolution; the pump is continuous-wave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..._validation import check_positive, check_nonnegative

#: reduced Planck constant in meV ps (CODATA: 6.582119569e-13 meV s)
HBAR_MEV_PS = 0.6582119569
#: hbar^2 / (2 m_e) in meV um^2 (3.80998 eV Angstrom^2 for the free electron, CODATA)
HBAR2_OVER_2ME_MEV_UM2 = 3.80998212e-5


@dataclass(frozen=True)
class PolaritonParameters:
    """Material constants of the microcavity (units: ps, um, meV).

    mass_ratio:
        polariton effective mass in units of the free-electron mass (5e-5).
    gamma_c:
        polariton decay rate, 1/ps (0.2: a 5 ps lifetime).
    gamma_r:
        reservoir decay rate, 1/ps.
    r:
        stimulated scattering rate from the reservoir into the condensate, um^d / ps.
    g_c, g_r:
        polariton-polariton and polariton-reservoir interaction constants, meV um^d.

    :meth:`gaas` gives the values used by default; their sources are in its docstring.
    """

    mass_ratio: float = 5e-5
    gamma_c: float = 0.2
    gamma_r: float = 0.3
    r: float = 0.01
    g_c: float = 3.5e-3
    g_r: float = 7e-3

    def __post_init__(self) -> None:
        for name in ("mass_ratio", "gamma_c", "gamma_r", "r"):
            check_positive(f"PolaritonParameters.{name}", getattr(self, name))
        for name in ("g_c", "g_r"):
            check_nonnegative(f"PolaritonParameters.{name}", getattr(self, name))

    @classmethod
    def gaas(cls) -> "PolaritonParameters":
        """Typical GaAs-microcavity values of the order used in driven-dissipative GPE modelling
        (Wouters & Carusotto 2007 use the model with parameters of this kind; Berloff et al., Nat. Mater.
        16, 1120 (2017) simulate lattices with the same equations). ASSUMED round numbers, not copied
        from one table: m = 5e-5 m_e, lifetime 5 ps (gamma_c = 0.2/ps), gamma_r = 1.5 gamma_c (a fast
        reservoir, so a lattice settles within tens of ps), R = 0.01 um^2/ps, g_c = 3.5 ueV um^2,
        g_R = 2 g_c. Threshold P_th = gamma_c gamma_r / R = 6 /(um^2 ps)."""
        return cls()

    @property
    def kinetic_um2_per_ps(self) -> float:
        """hbar / (2 m) in um^2 / ps: psi_k picks up the phase -hbar k^2 t / 2m."""
        return HBAR2_OVER_2ME_MEV_UM2 / self.mass_ratio / HBAR_MEV_PS

    @property
    def threshold(self) -> float:
        """P_th = gamma_c gamma_R / R (per um^d per ps): the homogeneous condensation threshold."""
        return self.gamma_c * self.gamma_r / self.r


def kinetic_phase(shape: tuple[int, ...], step_um: float, params: PolaritonParameters, dt_ps: float,
                  dtype=torch.complex64, device=None) -> torch.Tensor:
    """exp(-i hbar k^2 dt / 2m) on the FFT grid of ``shape`` (1D or 2D), on ``device`` (default CPU)."""
    device = torch.device("cpu") if device is None else device
    ks = [2 * math.pi * torch.fft.fftfreq(n, d=step_um, dtype=torch.float64, device=device) for n in shape]
    if len(ks) == 1:
        k2 = ks[0] ** 2
    else:
        k2 = ks[0][:, None] ** 2 + ks[1][None, :] ** 2
    return torch.polar(torch.ones_like(k2), -params.kinetic_um2_per_ps * k2 * dt_ps).to(dtype)


def _local_step(psi, n_r, tau, *, pump, potential_rad, loss, params: PolaritonParameters):
    """Advance the local part (everything but the kinetic term) by tau with the exponential midpoint rule."""
    def rates(n, density):
        # d psi / dt = psi * (gain_re + i phase_rate)
        gain = 0.5 * (params.r * n - loss)
        phase = -(params.g_c * density + params.g_r * n) / HBAR_MEV_PS
        if potential_rad is not None:
            phase = phase - potential_rad
        return gain, phase

    def relax(n, density, t):
        gamma = params.gamma_r + params.r * density
        n_eq = pump / gamma
        return n_eq + (n - n_eq) * torch.exp(-gamma * t)

    density0 = psi.real.square() + psi.imag.square()
    gain, phase = rates(n_r, density0)
    psi_h = psi * torch.polar(torch.exp(0.5 * tau * gain), 0.5 * tau * phase)
    n_h = relax(n_r, density0, 0.5 * tau)
    density_h = psi_h.real.square() + psi_h.imag.square()
    gain, phase = rates(n_h, density_h)
    psi = psi * torch.polar(torch.exp(tau * gain), tau * phase)
    n_r = relax(n_r, density_h, tau)
    return psi, n_r


def evolve(psi: torch.Tensor, n_r: torch.Tensor, *, pump: torch.Tensor, params: PolaritonParameters,
           kinetic: torch.Tensor, dt_ps: float, steps: int, potential_meV: torch.Tensor | None = None,
           loss: torch.Tensor | float | None = None, dims: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate ``steps`` Strang steps of ``dt_ps`` from (psi, n_r) (batch, *grid).

    ``pump`` (batch or 1, *grid), ``kinetic`` from :func:`kinetic_phase` with the same dt, ``potential_meV``
    (*grid) or None, ``loss`` gamma_c + gamma_abs(x) (a float or a (*grid) tensor; None: gamma_c).
    Differentiable (plain tensor operations). Returns (psi, n_r) at t = steps * dt_ps."""
    loss = params.gamma_c if loss is None else loss
    potential_rad = None if potential_meV is None else potential_meV / HBAR_MEV_PS
    fft_dims = tuple(range(-dims, 0))
    half = 0.5 * dt_ps
    for _ in range(int(steps)):
        psi, n_r = _local_step(psi, n_r, half, pump=pump, potential_rad=potential_rad, loss=loss, params=params)
        psi = torch.fft.ifftn(torch.fft.fftn(psi, dim=fft_dims) * kinetic, dim=fft_dims)
        psi, n_r = _local_step(psi, n_r, half, pump=pump, potential_rad=potential_rad, loss=loss, params=params)
    return psi, n_r
