"""Steady state of a layered nonlinear resistive network: the solver (block coordinate descent to a
Kirchhoff-current-law tolerance), the co-content it minimises, the KCL residual, the dissipated
power and the local measurements dE/dG. Shared by :class:`~.resistive_network.ResistiveNetworkPlant`
(hidden physics) and :class:`~.resistive_twin.ResistiveNetworkTwin` (differentiable model); the
circuit and its operating regime are described in :mod:`.resistive_network`.

References: Scellier, "A fast algorithm to simulate nonlinear resistive networks", ICML 2024,
doi:10.48550/arXiv.2402.11674 (closed-form block coordinate descent); Kendall et al.,
arXiv:2006.01981 (2020) (the layered circuit and its co-content).

Physics
-------
Diodes are piecewise linear: off below their threshold, conductance ``g_d`` above it (the ideal diode
of Scellier 2024 is the limit g_d -> inf). Kirchhoff's current law at every free node is the
stationarity condition of the network's *co-content*

    E(V) = 1/2 sum_edges G_ij (V_i - V_j)^2 + sum_diodes 1/2 g_d relu(theta - V)^2
           (+ 1/2 g_d relu(V - theta_high)^2) - sum_outputs I_k V_k,

(I_k currents injected into output nodes, the nudge), a convex piecewise-quadratic function of the
free node voltages. Its minimum is found by *block coordinate descent* with each block minimised in
closed form (Scellier 2024): the free
layers form a bipartite chain, so all nodes of every other layer are conditionally independent and
each node's 1-D problem is solved in closed form,

    V_k = S_k / T_k,  S_k = sum_j G_kj V_j + I_k,  T_k = sum_j G_kj;
    if V_k < theta:  V_k = (S_k + g_d theta) / (T_k + g_d)   (diode conducting),

alternating odd and even layers. Each sweep lowers E, and E is convex, so the iteration converges to
the unique steady state. **Stopping rule**: the Kirchhoff residual r_k (net current into node k) is
computed at every sweep; the solver stops when |r_k| <= tolerance_V x T_k at every free node (the
imbalance is below the current a ``tolerance_V`` error would drive through the node's devices). After
a sweep the layers updated last have zero residual by construction, so the check costs nothing extra.
Why not the per-sweep change: it is the size of the step, not the imbalance of the currents. In this
sweep order r_k / T_k of a node updated first is a conductance-weighted average of its neighbours'
changes in the half-sweep before, so the KCL rule is met no later than a rule "largest change of a
sweep below tolerance_V" would be, and earlier by that averaging when a node is tied mostly to its
sources (tested: the solver stops at the first sweep whose residual meets the tolerance, while the
per-sweep change there is still well above it). :func:`kcl_residual_V` is the tested quantity.
If ``max_sweeps`` pass first, a :class:`SteadyStateNotReached` warning reports the residual. The
solution is therefore a steady state *to tolerance*, not an exact one; every :class:`Equilibrium`
carries its residual (amperes, largest over nodes and samples).

Local measurements (for equilibrium propagation and coupled learning): dE/dG_ij = 1/2 (V_i - V_j)^2,
the squared voltage drop across each conductance, averaged over the batch, computed from the
*measured* (noisy) node voltages.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

__all__ = ["DiodeLayer", "SteadyState", "SteadyStateNotReached", "co_content", "dissipated_power",
           "kcl_residual", "kcl_residual_V", "settle"]


class SteadyStateNotReached(RuntimeWarning):
    """The steady-state solver used all its sweeps before the KCL residual met the tolerance."""


@dataclass
class DiodeLayer:
    """Diodes of one hidden layer: thresholds (volts, per node; None = no such diode) and
    on-conductance (siemens, per node)."""

    low_V: torch.Tensor | None
    high_V: torch.Tensor | None
    conductance_S: torch.Tensor


@dataclass
class SteadyState:
    """Result of :func:`settle`: free-layer voltages, sweeps used, the largest KCL residual over
    free nodes and samples (amperes) and the same normalised by each node's total conductance
    (volts), and whether the tolerance was met."""

    V: list
    sweeps: int
    residual_A: float
    residual_V: float
    converged: bool


# ---- the physics, shared by plant and twin ---------------------------------------------------------

def _prev_ext(V, l, sources, bias_pair):
    if l == 0:
        return sources
    return torch.cat([V[l - 1], bias_pair], dim=1)


def _drive(V, l, sources, G, force, bias_pair):
    """S_k = sum_j G_kj V_j (+ injected current) for every node of layer l."""
    L = len(G) - 1
    S = _prev_ext(V, l, sources, bias_pair) @ G[l].T
    if l < L:
        S = S + V[l + 1] @ G[l + 1][:, :V[l].shape[1]]
    elif force is not None:
        S = S + force
    return S


def _solve_node(S, T, d):
    v = S / T
    if d is not None:
        if d.low_V is not None:
            v = torch.where(v < d.low_V, (S + d.conductance_S * d.low_V) / (T + d.conductance_S), v)
        if d.high_V is not None:
            v = torch.where(v > d.high_V, (S + d.conductance_S * d.high_V) / (T + d.conductance_S), v)
    return v


def _node_residual(S, T, v, d):
    """Net current into each node given its drive S (amperes)."""
    current = S - T * v
    if d is not None:
        if d.low_V is not None:
            current = current + d.conductance_S * torch.relu(d.low_V - v)
        if d.high_V is not None:
            current = current - d.conductance_S * torch.relu(v - d.high_V)
    return current


def _sweep(V, sources, G, T, diodes, force, clamp, bias_pair):
    """One red-black block-coordinate sweep; returns the new list of free-layer voltages."""
    V = list(V)
    L = len(G) - 1
    for parity in (0, 1):
        for l in range(parity, L + 1, 2):
            if l == L and clamp is not None:
                V[l] = clamp
                continue
            S = _drive(V, l, sources, G, force, bias_pair)
            V[l] = _solve_node(S, T[l], diodes[l] if l < L else None)
    return V


def _totals(G):
    """T_k: total conductance at every free node of every layer (diodes excluded)."""
    L = len(G) - 1
    T = []
    for l in range(L + 1):
        t = G[l].sum(dim=1)
        if l < L:
            t = t + G[l + 1][:, :G[l].shape[0]].sum(dim=0)
        T.append(t)
    return T


def _bias_pair(bias_V, B, dtype, device):
    return torch.tensor([bias_V, -bias_V], dtype=dtype, device=device).expand(B, 2)


def _worst_residual(drives, V, T, diodes):
    """(largest |r_k| in amperes, largest |r_k| / T_k in volts) over the layers in ``drives``
    (layer index -> drive S of that layer) and over the batch."""
    L = len(T) - 1
    worst_A = worst_V = 0.0
    for l, S in drives.items():
        r = _node_residual(S, T[l], V[l], diodes[l] if l < L else None).abs()
        if r.numel():
            worst_A = max(worst_A, float(r.max()))
            worst_V = max(worst_V, float((r / T[l].clamp_min(1e-300)).max()))
    return worst_A, worst_V


def kcl_residual_V(V, sources, G, diodes, *, bias_V, force=None, clamped=False) -> tuple[float, float]:
    """The quantity the stopping rule tests: (largest |r_k| in amperes, largest |r_k| / T_k in volts)
    over every free node and sample of the state ``V`` (the output layer excluded when ``clamped``).
    :func:`settle` stops as soon as the second value is <= ``tolerance_V``."""
    bias_pair = _bias_pair(bias_V, sources.shape[0], sources.dtype, sources.device)
    T = _totals(G)
    L = len(G) - 1
    layers = [l for l in range(L + 1) if not (clamped and l == L)]
    return _worst_residual({l: _drive(V, l, sources, G, force, bias_pair) for l in layers}, V, T, diodes)


def settle(sources, G, diodes, *, bias_V, force=None, clamp=None, init=None, tolerance_V=1e-6,
           max_sweeps=1000) -> SteadyState:
    """Steady state of the network by block coordinate descent (closed-form blocks, no autograd), to the
    KCL tolerance of the module docstring; warns (:class:`SteadyStateNotReached`) if ``max_sweeps``
    run out first.

    ``sources`` (batch, n_sources) already holds the input and bias source voltages of layer 0;
    ``G`` the conductance matrices.
    """
    B = sources.shape[0]
    bias_pair = _bias_pair(bias_V, B, sources.dtype, sources.device)
    T = _totals(G)
    L = len(G) - 1
    if init is None:
        V = [torch.zeros(B, g.shape[0], dtype=sources.dtype, device=sources.device) for g in G]
    else:
        V = [v.to(sources.dtype) for v in init]
    if clamp is not None:
        V[-1] = clamp
    free = [l for l in range(L + 1) if not (l == L and clamp is not None)]
    first = [l for l in free if l % 2 == 0]
    second = [l for l in free if l % 2 == 1]

    def check(drives):
        return _worst_residual(drives, V, T, diodes)

    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):
        drives = {l: _drive(V, l, sources, G, force, bias_pair) for l in first}
        if sweeps > 1:  # the second half-sweep layers are exact given the first; check the first
            res_A, res_V = check(drives)
            if res_V <= tolerance_V:
                return SteadyState(V, sweeps - 1, res_A, res_V, True)
        for l in first:
            V[l] = _solve_node(drives[l], T[l], diodes[l] if l < L else None)
        for l in second:
            V[l] = _solve_node(_drive(V, l, sources, G, force, bias_pair), T[l], diodes[l] if l < L else None)
    res_A, res_V = check({l: _drive(V, l, sources, G, force, bias_pair) for l in free})
    if res_V <= tolerance_V:
        return SteadyState(V, sweeps, res_A, res_V, True)
    warnings.warn(f"resistive network steady state not reached in max_sweeps={max_sweeps} sweeps: largest KCL "
                  f"residual {res_A:.3g} A ({res_V:.3g} V times the node conductance) > tolerance_V="
                  f"{tolerance_V:g}; raise max_sweeps or loosen tolerance_V.", SteadyStateNotReached, stacklevel=3)
    return SteadyState(V, sweeps, res_A, res_V, False)


def _edge_terms(V, sources, G, bias_pair):
    """Per-sample sum_edges G (dV)^2 (batch,)."""
    total = 0.0
    for l, g in enumerate(G):
        a, b = V[l], _prev_ext(V, l, sources, bias_pair)
        # sum_kj G_kj (a_k - b_j)^2 = a^2 . rowsum + b^2 . colsum - 2 a^T G b
        total = total + (a ** 2) @ g.sum(1) + (b ** 2) @ g.sum(0) - 2 * ((a @ g) * b).sum(1)
    return total


def _diode_terms(V, diodes):
    total = 0.0
    for l, d in enumerate(diodes):
        v = V[l]
        if d.low_V is not None:
            total = total + (d.conductance_S * torch.relu(d.low_V - v) ** 2).sum(1)
        if d.high_V is not None:
            total = total + (d.conductance_S * torch.relu(v - d.high_V) ** 2).sum(1)
    return total


def co_content(V, sources, G, diodes, *, bias_V, force=None):
    """The network's energy E(V) per sample (batch,), see the module docstring."""
    bias_pair = _bias_pair(bias_V, sources.shape[0], sources.dtype, sources.device)
    E = 0.5 * _edge_terms(V, sources, G, bias_pair) + 0.5 * _diode_terms(V, diodes)
    if force is not None:
        E = E - (force * V[-1]).sum(1)
    return E


def dissipated_power(V, sources, G, diodes, *, bias_V):
    """Power dissipated in the resistors and conducting diodes, per sample (watts)."""
    bias_pair = _bias_pair(bias_V, sources.shape[0], sources.dtype, sources.device)
    return _edge_terms(V, sources, G, bias_pair) + _diode_terms(V, diodes)


def kcl_residual(V, sources, G, diodes, *, bias_V, force=None):
    """Net current into every free node (amperes), per layer: zero at the steady state."""
    bias_pair = _bias_pair(bias_V, sources.shape[0], sources.dtype, sources.device)
    T = _totals(G)
    L = len(G) - 1
    return [_node_residual(_drive(V, l, sources, G, force, bias_pair), T[l], V[l], diodes[l] if l < L else None)
            for l in range(L + 1)]


def _edge_gradients(V, sources, bias_pair):
    """Batch mean of 1/2 (V_k - V_j)^2 for every conductance G_kj, and the FLOPs it took
    (the a^T b products dominate: 2 n m B per layer)."""
    out, flops = [], 0.0
    B = sources.shape[0]
    for l in range(len(V)):
        a, b = V[l], _prev_ext(V, l, sources, bias_pair)
        out.append(0.5 * ((a ** 2).mean(0)[:, None] + (b ** 2).mean(0)[None, :] - 2 * (a.T @ b) / B))
        n, m = a.shape[1], b.shape[1]
        flops += 2.0 * n * m * B + 2.0 * (n + m) * B + 4.0 * n * m
    return out, flops

