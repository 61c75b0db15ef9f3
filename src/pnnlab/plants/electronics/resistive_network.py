"""Nonlinear resistive network (deep resistive network, DRN): trainable conductances, diodes and
voltage sources, solved exactly at steady state.

References: Kendall, Pantone, Manickavasagam, Bengio & Scellier, "Training end-to-end analog neural
networks with equilibrium propagation", arXiv:2006.01981 (2020), doi:10.48550/arXiv.2006.01981;
Scellier, "A fast algorithm to simulate nonlinear resistive networks", ICML 2024,
doi:10.48550/arXiv.2402.11674.

Circuit
-------
Layered. The input layer is a set of voltage sources: each feature x_i drives two sources
``+A x_i`` and ``-A x_i`` (A = ``input_amplitude_V``) so that a pair of positive conductances acts
as one signed weight (a differential pair), plus two bias sources ``+V_b`` and ``-V_b``. Every hidden
layer l has n_l free nodes; each hidden node is tied by trainable conductances to every node of the
layer below (and to the bias sources) and to every node of the layer above. Each hidden node also has
a diode to a source at ``diode_low_V`` (it conducts when the node voltage falls below it) and,
optionally, a diode to ``diode_high_V``: the nonlinearity. The output layer has 2 x ``out_features``
free nodes read as differences ``y_k = V_{k+} - V_{k-}`` (a differential read-out).

Physics
-------
Diodes are piecewise linear: off below their threshold, conductance ``g_d`` above it (the ideal diode
of Scellier 2024 is the limit g_d -> inf). Kirchhoff's current law at every free node is the
stationarity condition of the network's *co-content*

    E(V) = 1/2 sum_edges G_ij (V_i - V_j)^2 + sum_diodes 1/2 g_d relu(theta - V)^2
           (+ 1/2 g_d relu(V - theta_high)^2) - sum_outputs I_k V_k,

(I_k currents injected into output nodes, the nudge), a convex piecewise-quadratic function of the
free node voltages. Its minimum is found by *exact block coordinate descent* (Scellier 2024): the free
layers form a bipartite chain, so all nodes of every other layer are conditionally independent and
each node's 1-D problem is solved in closed form,

    V_k = S_k / T_k,  S_k = sum_j G_kj V_j + I_k,  T_k = sum_j G_kj;
    if V_k < theta:  V_k = (S_k + g_d theta) / (T_k + g_d)   (diode conducting),

alternating odd and even layers until no node moves by more than ``tolerance_V``. Each sweep
lowers E, and E is convex, so it converges to the unique steady state (the KCL residual is tested in
tests/test_resistive_network.py). Everything is vectorised over the batch.

Local measurements (for equilibrium propagation and coupled learning): dE/dG_ij = 1/2 (V_i - V_j)^2,
the squared voltage drop across each conductance, averaged over the batch.

Hidden truth (never read by methods): device-to-device conductance variation (static,
multiplicative), or, with a ``device``, a full memristor array per conductance matrix
(:mod:`pnnlab.plants.electronics.memristor`: pulsed programming, drift, read noise, stuck devices);
diode threshold and on-conductance spread; read noise on measured node voltages.

Energy and time: every relaxation dissipates P = sum_edges G (dV)^2 + sum_diodes g_d (overdrive)^2
(measured per sample, added to the meter as P x t_settle). The settling time is the RC estimate
``t = ln(1/precision) C_node / min_k T_k`` with an assumed node capacitance (``node_capacitance_F``,
10 fF by default: assumed, the order of magnitude of an on-chip node with ~100 devices and its
wiring). Programming pulses add their energy (device ``pulse_energy_J``) when conductances change.

Simplifications: ideal voltage sources and wires (no line resistance, no sneak paths beyond the
circuit drawn), piecewise-linear diodes instead of the Shockley law, no amplifiers between layers
(so very deep networks attenuate, as Kendall et al. discuss), the measured voltage drop of a device
is the difference of two noisy node-voltage reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..._validation import check_int, check_nonnegative, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import EnergyBased, Equilibrium, OutputClamp, OutputForce, Simulated
from .memristor import MemristorArray, MemristorDevice, program_arrays

__all__ = ["ResistiveMismatch", "ResistiveNetworkPlant", "ResistiveNetworkTwin", "DiodeLayer",
           "co_content", "kcl_residual", "settle"]


@dataclass(frozen=True)
class ResistiveMismatch:
    """Hidden fabrication errors and noise of a resistive network (all 0: an ideal network).

    ``conductance_variation``: relative std of a static per-device gain on every conductance (used
    when no memristor ``device`` is given; a device brings its own non-idealities).
    ``diode_threshold_spread_V``: std of each diode's threshold around the design value (volts).
    ``diode_conductance_spread``: relative (log-normal) spread of the diodes' on-conductance.
    ``read_noise_V``: std of the Gaussian error of every node-voltage read (volts).
    """

    conductance_variation: float = 0.0
    diode_threshold_spread_V: float = 0.0
    diode_conductance_spread: float = 0.0
    read_noise_V: float = 0.0

    def __post_init__(self) -> None:
        for name in ("conductance_variation", "diode_threshold_spread_V", "diode_conductance_spread",
                     "read_noise_V"):
            check_nonnegative(f"ResistiveMismatch.{name}", getattr(self, name))


#: a typical mismatch: 5 % conductance variation, 20 mV diode threshold spread, 10 % diode
#: on-conductance spread, 1 mV voltage read noise (assumed values, typical of analog test chips).
TYPICAL_MISMATCH = ResistiveMismatch(conductance_variation=0.05, diode_threshold_spread_V=0.02,
                                     diode_conductance_spread=0.1, read_noise_V=1e-3)


@dataclass
class DiodeLayer:
    """Diodes of one hidden layer: thresholds (volts, per node; None = no such diode) and
    on-conductance (siemens, per node)."""

    low_V: torch.Tensor | None
    high_V: torch.Tensor | None
    conductance_S: torch.Tensor


# ---- the physics, shared by plant and twin ---------------------------------------------------------

def _prev_ext(V, l, sources, bias_pair):
    if l == 0:
        return sources
    return torch.cat([V[l - 1], bias_pair], dim=1)


def _sweep(V, sources, G, T, diodes, force, clamp, bias_pair):
    """One red-black block-coordinate sweep; returns the new list of free-layer voltages."""
    V = list(V)
    L = len(G) - 1
    for parity in (0, 1):
        for l in range(parity, L + 1, 2):
            if l == L and clamp is not None:
                V[l] = clamp
                continue
            S = _prev_ext(V, l, sources, bias_pair) @ G[l].T
            if l < L:
                n_l = V[l].shape[1]
                S = S + V[l + 1] @ G[l + 1][:, :n_l]
            elif force is not None:
                S = S + force
            v = S / T[l]
            if l < L:
                d = diodes[l]
                if d.low_V is not None:
                    v = torch.where(v < d.low_V, (S + d.conductance_S * d.low_V) / (T[l] + d.conductance_S), v)
                if d.high_V is not None:
                    v = torch.where(v > d.high_V, (S + d.conductance_S * d.high_V) / (T[l] + d.conductance_S), v)
            V[l] = v
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


def settle(sources, G, diodes, *, bias_V, force=None, clamp=None, init=None, tolerance_V=1e-6,
           max_sweeps=1000):
    """Steady state of the network by exact block coordinate descent (no autograd needed).

    ``sources`` (batch, n_sources) already holds the input and bias source voltages of layer 0;
    ``G`` the conductance matrices; returns (list of free-layer voltages, sweeps used).
    """
    B = sources.shape[0]
    bias_pair = torch.tensor([bias_V, -bias_V], dtype=sources.dtype).expand(B, 2)
    T = _totals(G)
    if init is None:
        V = [torch.zeros(B, g.shape[0], dtype=sources.dtype) for g in G]
    else:
        V = [v.to(sources.dtype) for v in init]
    if clamp is not None:
        V[-1] = clamp
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):
        new = _sweep(V, sources, G, T, diodes, force, clamp, bias_pair)
        change = max(float((a - b).abs().max()) for a, b in zip(new, V))
        V = new
        if change < tolerance_V:
            break
    return V, sweeps


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
    B = sources.shape[0]
    bias_pair = torch.tensor([bias_V, -bias_V], dtype=sources.dtype).expand(B, 2)
    E = 0.5 * _edge_terms(V, sources, G, bias_pair) + 0.5 * _diode_terms(V, diodes)
    if force is not None:
        E = E - (force * V[-1]).sum(1)
    return E


def dissipated_power(V, sources, G, diodes, *, bias_V):
    """Power dissipated in the resistors and conducting diodes, per sample (watts)."""
    B = sources.shape[0]
    bias_pair = torch.tensor([bias_V, -bias_V], dtype=sources.dtype).expand(B, 2)
    return _edge_terms(V, sources, G, bias_pair) + _diode_terms(V, diodes)


def kcl_residual(V, sources, G, diodes, *, bias_V, force=None):
    """Net current into every free node (amperes), per layer: zero at the steady state."""
    B = sources.shape[0]
    bias_pair = torch.tensor([bias_V, -bias_V], dtype=sources.dtype).expand(B, 2)
    T = _totals(G)
    L = len(G) - 1
    out = []
    for l in range(L + 1):
        S = _prev_ext(V, l, sources, bias_pair) @ G[l].T
        if l < L:
            S = S + V[l + 1] @ G[l + 1][:, :V[l].shape[1]]
        elif force is not None:
            S = S + force
        current = S - T[l] * V[l]
        if l < L:
            d = diodes[l]
            if d.low_V is not None:
                current = current + d.conductance_S * torch.relu(d.low_V - V[l])
            if d.high_V is not None:
                current = current - d.conductance_S * torch.relu(V[l] - d.high_V)
        out.append(current)
    return out


def _edge_gradients(V, sources, bias_pair):
    """Batch mean of 1/2 (V_k - V_j)^2 for every conductance G_kj."""
    out = []
    B = sources.shape[0]
    for l in range(len(V)):
        a, b = V[l], _prev_ext(V, l, sources, bias_pair)
        out.append(0.5 * ((a ** 2).mean(0)[:, None] + (b ** 2).mean(0)[None, :] - 2 * (a.T @ b) / B))
    return out


class _Design:
    """Design values shared by plant and twin."""

    def __init__(self, *, in_features, hidden, out_features, input_amplitude_V, bias_V, diode_low_V,
                 diode_high_V, diode_on_conductance_S, dtype):
        self.in_features, self.hidden, self.out_features = in_features, hidden, out_features
        self.input_amplitude_V, self.bias_V = input_amplitude_V, bias_V
        self.diode_low_V, self.diode_high_V = diode_low_V, diode_high_V
        self.diode_on_conductance_S = diode_on_conductance_S
        self.dtype = dtype

    def shapes(self):
        sizes = list(self.hidden) + [2 * self.out_features]
        shapes = [(sizes[0], 2 * self.in_features + 2)]
        for l in range(1, len(sizes)):
            shapes.append((sizes[l], sizes[l - 1] + 2))
        return shapes

    def sources(self, x):
        x = x.to(self.dtype)
        B = x.shape[0]
        bias = torch.tensor([self.bias_V, -self.bias_V], dtype=self.dtype).expand(B, 2)
        A = self.input_amplitude_V
        return torch.cat([A * x, -A * x, bias], dim=1)

    def nominal_diodes(self):
        out = []
        for n in self.hidden:
            low = None if self.diode_low_V is None else torch.full((n,), self.diode_low_V, dtype=self.dtype)
            high = None if self.diode_high_V is None else torch.full((n,), self.diode_high_V, dtype=self.dtype)
            out.append(DiodeLayer(low, high, torch.full((n,), self.diode_on_conductance_S, dtype=self.dtype)))
        return out

    def read_out(self, V_out):
        k = self.out_features
        return V_out[:, :k] - V_out[:, k:]

    def nodes_for(self, value):
        """Differential output value y -> (+y/2, -y/2) node offsets."""
        return torch.cat([0.5 * value, -0.5 * value], dim=1)


class ResistiveNetworkTwin(Twin):
    """Differentiable model of the design (no mismatch). The forward pass settles without autograd,
    then runs ``backward_sweeps`` block-coordinate sweeps *with* autograd starting from the detached
    steady state: the gradient is the implicit-function gradient truncated after that many terms of
    its Neumann series (the error shrinks geometrically with the sweep contraction factor)."""

    def __init__(self, design: _Design, *, tolerance_V: float, max_sweeps: int, backward_sweeps: int = 40) -> None:
        super().__init__(in_features=design.in_features, out_features=design.out_features)
        self.design = design
        self.tolerance_V, self.max_sweeps = tolerance_V, max_sweeps
        self.backward_sweeps = check_int("backward_sweeps", backward_sweeps)

    def node_voltages(self, x, controls):
        d = self.design
        names = [f"conductance_{l}" for l in range(len(d.shapes()))]
        G = [controls[n].to(d.dtype) for n in names]
        sources = d.sources(x)
        diodes = d.nominal_diodes()
        with torch.no_grad():
            V, _ = settle(sources.detach(), [g.detach() for g in G], diodes, bias_V=d.bias_V,
                          tolerance_V=self.tolerance_V, max_sweeps=self.max_sweeps)
        B = x.shape[0]
        bias_pair = torch.tensor([d.bias_V, -d.bias_V], dtype=d.dtype).expand(B, 2)
        T = _totals(G)
        V = [v.detach() for v in V]
        for _ in range(self.backward_sweeps):
            V = _sweep(V, sources, G, T, diodes, None, None, bias_pair)
        return V

    def forward(self, x, controls):
        V = self.node_voltages(x, controls)
        return self.design.read_out(V[-1]).to(x.dtype)


class ResistiveNetworkPlant(Plant, Simulated, EnergyBased):
    """A layered nonlinear resistive network (see the module docstring for the circuit and physics).

    Parameters (SI units)
    ---------------------
    in_features, out_features: features in; differential outputs (2 output nodes each).
    hidden: hidden-layer node counts, e.g. ``(64,)``.
    conductance_range_S: (G_min, G_max) of every trainable conductance; with a ``device`` the
        device's own range is used.
    input_amplitude_V, bias_V: source voltages are +-A x_i and +-V_b.
    diode_low_V, diode_high_V: diode thresholds of every hidden node (None: no such diode).
    diode_on_conductance_S: conductance of a conducting diode.
    device: a :class:`MemristorDevice`: the conductances are memristors, programmed with pulses
        (every change of the requested controls becomes pulses; see :meth:`program`).
    mismatch: hidden :class:`ResistiveMismatch` (fabrication errors, read noise).
    tolerance_V, max_sweeps: stopping rule of the steady-state solver.
    node_capacitance_F, settling_precision: RC settling-time estimate (assumed capacitance).
    dtype: floating type of the physics (float64 for gradient checks).
    """

    summary = "nonlinear resistive network (conductances, diodes, sources) solved exactly at steady state"

    def __init__(self, *, in_features: int, out_features: int, hidden: tuple[int, ...] = (32,),
                 conductance_range_S: tuple[float, float] = (1e-6, 1e-4), input_amplitude_V: float = 1.0,
                 bias_V: float = 1.0, diode_low_V: float | None = 0.0, diode_high_V: float | None = None,
                 diode_on_conductance_S: float = 1e-2, device: MemristorDevice | None = None,
                 mismatch: ResistiveMismatch | None = None, tolerance_V: float = 1e-6,
                 max_sweeps: int = 2000, node_capacitance_F: float = 1e-14,
                 settling_precision: float = 1e-3, dtype: torch.dtype = torch.float32,
                 seed: int | torch.Generator | None = 0) -> None:
        in_features = check_int("in_features", in_features)
        out_features = check_int("out_features", out_features)
        if isinstance(hidden, int) or not isinstance(hidden, (tuple, list)) or not hidden:
            raise TypeError(f"hidden must be a non-empty tuple of layer sizes such as (64,), got {hidden!r}.")
        hidden = tuple(check_int(f"hidden[{i}]", h) for i, h in enumerate(hidden))
        if device is not None and not isinstance(device, MemristorDevice):
            raise TypeError(f"device must be a MemristorDevice (e.g. pnnlab.plants.electronics.TAOX_YI_2023) "
                            f"or None, got {type(device).__name__}.")
        if mismatch is not None and not isinstance(mismatch, ResistiveMismatch):
            raise TypeError(f"mismatch must be a ResistiveMismatch or None, got {type(mismatch).__name__}.")
        if device is not None:
            conductance_range_S = (device.g_min_S, device.g_max_S)
        lo = check_positive("conductance_range_S[0]", conductance_range_S[0])
        hi = check_positive("conductance_range_S[1]", conductance_range_S[1])
        if not lo < hi:
            raise ValueError(f"conductance_range_S must be (G_min, G_max) with G_min < G_max, got {conductance_range_S}.")
        if diode_low_V is None and diode_high_V is None:
            raise ValueError("diode_low_V and diode_high_V are both None: the network would be linear; "
                             "give at least one diode threshold, e.g. diode_low_V=0.0.")
        if diode_low_V is not None and diode_high_V is not None and not diode_low_V < diode_high_V:
            raise ValueError(f"diode_low_V must be below diode_high_V, got {diode_low_V} and {diode_high_V}.")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
        self.tolerance_V = check_positive("tolerance_V", tolerance_V)
        self.max_sweeps = check_int("max_sweeps", max_sweeps)
        self.node_capacitance_F = check_positive("node_capacitance_F", node_capacitance_F)
        self.settling_precision = check_positive("settling_precision", settling_precision)
        super().__init__(in_features=in_features, out_features=out_features,
                         cost=CostModel(source="per relaxation: dissipated power x RC settling time "
                                               "(node capacitance assumed); programming pulses: device "
                                               "pulse energy. Added directly to the meter."),
                         seed=seed)
        self.conductance_range_S = (lo, hi)
        self.design = _Design(in_features=in_features, hidden=hidden, out_features=out_features,
                              input_amplitude_V=check_positive("input_amplitude_V", input_amplitude_V),
                              bias_V=check_nonnegative("bias_V", bias_V), diode_low_V=diode_low_V,
                              diode_high_V=diode_high_V,
                              diode_on_conductance_S=check_positive("diode_on_conductance_S",
                                                                    diode_on_conductance_S),
                              dtype=dtype)
        self.device = device
        # a unit force moves an output node by about one volt
        self.force_unit = float((hidden[-1] + 2) * 0.5 * (lo + hi))
        # ---- hidden truth ----
        m = mismatch or ResistiveMismatch()
        self._mismatch = m
        g = self._generator
        self._shapes = self.design.shapes()
        if device is None:
            self._gain = [(1 + m.conductance_variation * torch.randn(s, generator=g, dtype=dtype)).clamp_min(0.05)
                          for s in self._shapes]
            self._arrays = None
        else:
            self._gain = None
            self._arrays = [MemristorArray(s, device, generator=g, dtype=dtype) for s in self._shapes]
        diodes = []
        for n in hidden:
            low = None if diode_low_V is None else diode_low_V + m.diode_threshold_spread_V * torch.randn(n, generator=g, dtype=dtype)
            high = None if diode_high_V is None else diode_high_V + m.diode_threshold_spread_V * torch.randn(n, generator=g, dtype=dtype)
            cond = diode_on_conductance_S * torch.exp(m.diode_conductance_spread * torch.randn(n, generator=g, dtype=dtype))
            diodes.append(DiodeLayer(low, high, cond))
        self._diodes = diodes

    # ---- description -----------------------------------------------------------------------------
    @property
    def hidden(self) -> tuple[int, ...]:
        return self.design.hidden

    @property
    def n_conductances(self) -> int:
        return sum(a * b for a, b in self._shapes)

    def control_specs(self):
        lo, hi = self.conductance_range_S
        return {f"conductance_{l}": ControlSpec(shape, lo, hi, "S",
                                                f"conductances into layer {l + 1} "
                                                f"({'output' if l == len(self._shapes) - 1 else 'hidden'})")
                for l, shape in enumerate(self._shapes)}

    def describe(self):
        dev = f", device={self.device.name!r}" if self.device is not None else ""
        return (f"ResistiveNetworkPlant({self.in_features} -> {self.hidden} -> {self.out_features}, "
                f"{self.n_conductances} conductances{dev})")

    # ---- hidden physics --------------------------------------------------------------------------
    def program(self, controls) -> dict:
        """Send programming pulses so that the memristors approach the requested conductances
        (no-op without a device). Called automatically by every query; returns the pulse counts of
        this round."""
        controls = self.validate_controls(controls)
        return self._program(controls)

    def _program(self, controls):
        if self._arrays is None:
            return {"pulses": 0, "energy_J": 0.0, "seconds": 0.0}
        return program_arrays(((array, controls[f"conductance_{l}"]) for l, array in enumerate(self._arrays)),
                              self._generator, self.meter)

    def wait(self, seconds: float) -> None:
        """Let time pass (memristor drift)."""
        if self._arrays is not None:
            for array in self._arrays:
                array.advance(seconds)

    @property
    def pulses(self) -> int:
        """Programming pulses sent so far (what a pulse counter on the chip would show)."""
        return 0 if self._arrays is None else sum(a.pulses for a in self._arrays)

    def _actual(self, controls, generator):
        self._program(controls)
        if self._arrays is None:
            return [controls[f"conductance_{l}"].to(self.design.dtype) * self._gain[l] for l in range(len(self._shapes))]
        return [a.read(generator).clamp_min(0) for a in self._arrays]

    def _settle(self, x, controls, force, clamp_y, initial, generator):
        d = self.design
        G = self._actual(controls, generator)
        sources = d.sources(x)
        init = initial.private["V"] if initial is not None else None
        clamp = None
        if clamp_y is not None:
            if initial is None:
                free, _ = settle(sources, G, self._diodes, bias_V=d.bias_V, tolerance_V=self.tolerance_V,
                                 max_sweeps=self.max_sweeps)
                base = free[-1]
            else:
                base = initial.private["V"][-1]
            k = d.out_features
            common = 0.5 * (base[:, :k] + base[:, k:])
            clamp = torch.cat([common, common], dim=1) + d.nodes_for(clamp_y.to(d.dtype))
        force_nodes = None if force is None else d.nodes_for(2 * force.to(d.dtype))
        V, sweeps = settle(sources, G, self._diodes, bias_V=d.bias_V, force=force_nodes, clamp=clamp,
                           init=init, tolerance_V=self.tolerance_V, max_sweeps=self.max_sweeps)
        return V, G, sources, sweeps

    def _measured(self, V, generator):
        sigma = self._mismatch.read_noise_V
        if not sigma:
            return list(V)
        return [v + sigma * torch.randn(v.shape, generator=generator, dtype=v.dtype) for v in V]

    def _account(self, V, G, sources):
        d = self.design
        power = dissipated_power(V, sources, G, self._diodes, bias_V=d.bias_V)
        T = _totals(G)
        t_settle = math.log(1 / self.settling_precision) * self.node_capacitance_F / float(min(t.min() for t in T).clamp_min(1e-30))
        self.meter.charge(seconds=t_settle * V[0].shape[0], joules=float(power.sum()) * t_settle)
        return power, t_settle

    def _measure(self, x, controls, generator):
        V, G, sources, _ = self._settle(x, controls, None, None, None, generator)
        self._account(V, G, sources)
        V = self._measured(V, generator)
        return self.design.read_out(V[-1]).to(x.dtype)

    def _relax(self, x, controls, nudge, initial, generator):
        force = nudge.force if isinstance(nudge, OutputForce) else None
        clamp = nudge.value if isinstance(nudge, OutputClamp) else None
        V, G, sources, sweeps = self._settle(x, controls, force, clamp, initial, generator)
        power, t_settle = self._account(V, G, sources)
        measured = self._measured(V, generator)
        if clamp is not None:
            measured[-1] = V[-1]  # clamped nodes sit at the applied voltages
        return Equilibrium(output=self.design.read_out(measured[-1]).to(x.dtype), nodes=tuple(measured),
                           power_W=power, private={"V": V, "sources": sources, "sweeps": sweeps,
                                                  "settling_time_s": t_settle})

    def energy_gradients(self, state):
        d = self.design
        sources = state.private["sources"]
        B = sources.shape[0]
        bias_pair = torch.tensor([d.bias_V, -d.bias_V], dtype=d.dtype).expand(B, 2)
        grads = _edge_gradients(list(state.nodes), sources, bias_pair)
        return {f"conductance_{l}": g for l, g in enumerate(grads)}

    # ---- twins -------------------------------------------------------------------------------
    def nominal_twin(self, *, backward_sweeps: int = 40):
        return ResistiveNetworkTwin(self.design, tolerance_V=self.tolerance_V, max_sweeps=self.max_sweeps,
                                    backward_sweeps=backward_sweeps)

    def true_twin(self):
        return self.nominal_twin()
