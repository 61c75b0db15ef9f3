"""Tolerance analysis of MZI meshes: how well a mesh with fabrication errors realises a target unitary.

Fidelity (the normalised overlap used across the field, e.g. Fang et al., Opt. Express 27, 14009
(2019), doi:10.1364/OE.27.014009; Bandyopadhyay, Hamerly & Englund, Optica 8, 1247 (2021),
doi:10.1364/OPTICA.434369):

    F(U, V) = |tr(U^H V)|^2 / (N tr(V^H V)),

1 iff V is proportional to U (insensitive to a uniform loss).

First-order prediction for an UNCORRECTED mesh (phases of the ideal decomposition, couplers with
independent angle errors a ~ N(0, sigma^2)), derived here: a coupler with error a is
B(pi/4 + a) = B(pi/4) exp(i a sigma_x); to first order the realised mesh is V = U exp(i H) with
H = sum_k a_k W_k sigma_x^(k) W_k^H (one term per coupler, W_k unitary), so
1 - F ~ tr(H^2)/N - (tr H / N)^2 and, the a_k being independent with zero mean and tr sigma_x = 0,

    E[1 - F] ~ (1/N) * (number of couplers) * 2 sigma^2 = 2 (N - 1) sigma^2

for both layouts (N(N-1) couplers): linear in N and in sigma^2, independent of the target. Correction
(here: re-optimising all phases against the known errors, as a calibrated chip allows) removes most of
this error; what remains comes from states an imperfect MZI cannot reach, chiefly the full cross state
(|T21|^2 <= cos^2(a1 + a2)), cf. Hamerly, Bandyopadhyay & Englund, Nat. Commun. 13, 6831 (2022),
doi:10.1038/s41467-022-34308-3, "for conventional MZI meshes, correction reduces errors by a quadratic
factor".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..._validation import check_int, check_nonnegative, check_positive
from .decompose import decompose, random_unitary
from .mesh_engine import MeshEngine, MeshLayout, Rectangular, mzi_transfer


def fidelity(target: torch.Tensor, realised: torch.Tensor) -> torch.Tensor:
    """F = |tr(U^H V)|^2 / (N tr(V^H V)) (a differentiable 0-d tensor)."""
    if target.shape != realised.shape or target.ndim != 2 or target.shape[0] != target.shape[1]:
        raise ValueError(f"target and realised must be square matrices of one shape, got {tuple(target.shape)} "
                         f"and {tuple(realised.shape)}.")
    n = target.shape[0]
    overlap = (target.conj() * realised.to(target.dtype)).sum()
    norm = realised.abs().square().sum()
    return overlap.abs().square() / (n * norm)


def predicted_infidelity(n_ports: int, coupler_error_std_rad: float) -> float:
    """First-order E[1 - F] = 2 (N - 1) sigma^2 of an uncorrected mesh (module docstring)."""
    return 2.0 * (check_int("n_ports", n_ports, minimum=2) - 1) * check_nonnegative("coupler_error_std_rad",
                                                                                      coupler_error_std_rad) ** 2


@dataclass(frozen=True)
class Reoptimise:
    """Correction by re-optimising every phase (theta, phi, psi) against the chip's known coupler
    errors, starting from the ideal decomposition: ``steps`` L-BFGS iterations on 1 - F (a calibrated
    chip; the errors are assumed measured, as in Bandyopadhyay 2021's setting)."""

    steps: int = 60

    def __post_init__(self) -> None:
        check_int("Reoptimise.steps", self.steps)


@dataclass(frozen=True)
class LocalCorrection:
    """Local error correction after Bandyopadhyay, Hamerly & Englund, Optica 8, 1247 (2021),
    doi:10.1364/OPTICA.434369: every MZI's two phases are re-solved *on their own*, given only that
    MZI's measured coupler errors, so that the imperfect MZI reproduces the ideal MZI's 2x2 matrix up to
    a phase on each of its two outputs; those leftover output phases are pushed forward (into the
    external phase of the next MZI on each waveguide, and finally into the output screen psi), as the
    paper does. One small least-squares problem per MZI (``steps`` L-BFGS iterations from the ideal
    phases; the MZIs of one column are solved together since they are independent), no global
    optimisation, no model of the rest of the mesh. What an imperfect MZI cannot reach (chiefly the
    full cross state, |T21|^2 <= cos^2(a1 + a2)) stays an error; a global optimum (:class:`Reoptimise`)
    could trade it against the other MZIs' settings, but its finite L-BFGS run from the ideal phases
    ends higher than the local solution on most Haar targets (docs/substrates/mzi_mesh.md)."""

    steps: int = 50

    def __post_init__(self) -> None:
        check_int("LocalCorrection.steps", self.steps)


def local_correction(layout: MeshLayout, theta, phi, psi, coupler_errors, *, steps: int = 50
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Phases ``(theta', phi', psi')`` for a lossless mesh of this ``layout`` whose MZIs have
    ``coupler_errors`` ``(n_mzis, 2)`` (rad) that reproduce the ideal mesh programmed at
    ``(theta, phi, psi)``, by the local correction of :class:`LocalCorrection`; float64.

    Derivation: with ``P`` the phases the corrected mesh has accumulated on each waveguide so far
    (realised = diag(e^{iP}) ideal), the next MZI on modes (m, m+1) must realise
    diag(Q) T(theta, phi) diag(e^{-iP_m}, e^{-iP_m+1}) = diag(Q) e^{-iP_m+1} T(theta, phi - P_m + P_m+1),
    since the external phase acts on the top input. The imperfect MZI's phases are fitted to
    T(theta, phi - P_m + P_m+1) up to free output phases alpha (the fit minimises
    sum_rows |row|^2 + |target row|^2 - 2 |<target row, row>|), and Q = e^{i(alpha + P_m+1)}. At the
    end psi' = psi - P. Runs on the device of ``theta`` (a tensor; the CPU for other inputs)."""
    n_m = layout.n_mzis
    device = theta.device if isinstance(theta, torch.Tensor) else torch.device("cpu")
    theta = torch.as_tensor(theta, dtype=torch.float64, device=device)
    phi = torch.as_tensor(phi, dtype=torch.float64, device=device)
    psi = torch.as_tensor(psi, dtype=torch.float64, device=device)
    errors = torch.as_tensor(coupler_errors, dtype=torch.float64, device=device)
    if theta.shape != (n_m,) or phi.shape != (n_m,) or psi.shape != (layout.n_ports,) or errors.shape != (n_m, 2):
        raise ValueError(f"theta, phi must be ({n_m},), psi ({layout.n_ports},) and coupler_errors ({n_m}, 2) for "
                         f"{layout!r}, got {tuple(theta.shape)}, {tuple(phi.shape)}, {tuple(psi.shape)}, "
                         f"{tuple(errors.shape)}.")
    steps = check_int("steps", steps)
    pending = torch.zeros(layout.n_ports, dtype=torch.float64, device=device)
    new_theta, new_phi = theta.clone(), phi.clone()
    for column in range(layout.n_columns):
        idx = torch.nonzero(layout.mzi_column == column).flatten()
        top = layout.mzi_top[idx].to(device)
        idx = idx.to(device)
        target_phi = phi[idx] - pending[top] + pending[top + 1]
        target = mzi_transfer(theta[idx], target_phi, dtype=torch.complex128)
        err = errors[idx]
        params = [theta[idx].clone().requires_grad_(True), target_phi.clone().requires_grad_(True)]
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=steps, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-14, tolerance_change=1e-16)

        def closure():
            opt.zero_grad()
            T = mzi_transfer(params[0], params[1], coupler_errors=err, dtype=torch.complex128)
            overlap = (target.conj() * T).sum(-1)  # (k, 2): one per output row
            loss = (T.abs().square().sum(-1) + target.abs().square().sum(-1) - 2 * overlap.abs()).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            T = mzi_transfer(params[0], params[1], coupler_errors=err, dtype=torch.complex128)
            alpha = torch.angle((target.conj() * T).sum(-1))  # (k, 2)
            base = pending[top + 1].clone()
            pending[top] = alpha[:, 0] + base
            pending[top + 1] = alpha[:, 1] + base
        new_theta[idx], new_phi[idx] = params[0].detach(), params[1].detach()
    two_pi = 2.0 * math.pi
    return (torch.remainder(new_theta, two_pi), torch.remainder(new_phi, two_pi), torch.remainder(psi - pending, two_pi))


@dataclass
class ToleranceResult:
    """Monte Carlo infidelities ``1 - F`` (one per trial), their mean and standard error, and the
    first-order prediction of the uncorrected mesh."""

    n_ports: int
    coupler_error_std_rad: float
    infidelities: torch.Tensor
    corrected: bool
    predicted_uncorrected: float

    @property
    def mean(self) -> float:
        return float(self.infidelities.mean())

    @property
    def stderr(self) -> float:
        k = self.infidelities.numel()
        return float(self.infidelities.std() / math.sqrt(k)) if k > 1 else float("nan")


def realised_matrix(layout: MeshLayout, theta, phi, psi, coupler_errors) -> torch.Tensor:
    """The matrix a lossless mesh with these coupler errors ((n_mzis, 2) rad) realises (complex128)."""
    engine = MeshEngine(layout, dtype=torch.complex128)
    return engine.matrix(mzi_transfer(theta, phi, coupler_errors=coupler_errors, dtype=torch.complex128), psi)


def _reoptimise(layout, target, phases, errors, steps):
    engine = MeshEngine(layout, dtype=torch.complex128)
    params = [phases.theta.clone().requires_grad_(True), phases.phi.clone().requires_grad_(True),
              phases.psi.clone().requires_grad_(True)]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=steps, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-14, tolerance_change=1e-16)

    def closure():
        opt.zero_grad()
        V = engine.matrix(mzi_transfer(params[0], params[1], coupler_errors=errors, dtype=torch.complex128), params[2])
        loss = 1.0 - fidelity(target, V)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        V = engine.matrix(mzi_transfer(params[0], params[1], coupler_errors=errors, dtype=torch.complex128), params[2])
        return float(1.0 - fidelity(target, V))


def tolerance_analysis(*, n_ports: int, coupler_error_std_rad: float, layout: type[MeshLayout] = Rectangular,
                       trials: int = 20, correction: Reoptimise | LocalCorrection | None = None,
                       seed: int = 0) -> ToleranceResult:
    """Monte Carlo of the infidelity 1 - F of a mesh with coupler errors ~ N(0, sigma^2).

    Every trial draws a Haar-random target U, programs the ideal decomposition's phases (uncorrected)
    or re-optimises them against the drawn errors (``correction=Reoptimise(...)``: all phases globally;
    ``correction=LocalCorrection(...)``: each MZI's phases alone, Bandyopadhyay 2021), and computes F of
    the realised matrix against U. Returns a :class:`ToleranceResult` with the first-order prediction
    2 (N - 1) sigma^2 beside it."""
    n = check_int("n_ports", n_ports, minimum=2)
    sigma = check_nonnegative("coupler_error_std_rad", coupler_error_std_rad)
    trials = check_int("trials", trials)
    if correction is not None and not isinstance(correction, (Reoptimise, LocalCorrection)):
        raise TypeError(f"correction must be None (uncorrected), Reoptimise(...) or LocalCorrection(...), got "
                        f"{type(correction).__name__}.")
    lay = layout(n) if isinstance(layout, type) else layout
    if not isinstance(lay, MeshLayout) or lay.n_ports != n:
        raise ValueError(f"layout must be a MeshLayout class (Rectangular, Triangular) or an instance with "
                         f"{n} ports, got {layout!r}.")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(trials):
        U = random_unitary(n, generator=gen)
        errors = sigma * torch.randn(lay.n_mzis, 2, generator=gen, dtype=torch.float64)
        phases = decompose(U, layout=lay)
        if correction is None:
            V = realised_matrix(lay, phases.theta, phases.phi, phases.psi, errors)
            out.append(float(1.0 - fidelity(U, V)))
        elif isinstance(correction, LocalCorrection):
            theta, phi, psi = local_correction(lay, phases.theta, phases.phi, phases.psi, errors, steps=correction.steps)
            out.append(float(1.0 - fidelity(U, realised_matrix(lay, theta, phi, psi, errors))))
        else:
            out.append(_reoptimise(lay, U, phases, errors, correction.steps))
    return ToleranceResult(n_ports=n, coupler_error_std_rad=sigma,
                           infidelities=torch.tensor(out, dtype=torch.float64).clamp_min(0.0),
                           corrected=correction is not None, predicted_uncorrected=predicted_infidelity(n, sigma))
