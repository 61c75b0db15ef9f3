"""Design values of a resistive network and its differentiable twin: the nominal design
(``ResistiveNetworkPlant.nominal_twin()``) or the plant's hidden truth with noise off
(``true_twin()``, diagnostics and the ideal bound only). The circuit is described in
:mod:`.resistive_network`, the solver in :mod:`.steady_state`.
"""

from __future__ import annotations

import torch

from ..._validation import check_int
from ...twins.base import Twin
from .steady_state import DiodeLayer, _bias_pair, _sweep, _totals, settle

__all__ = ["ResistiveNetworkTwin"]


class _Design:
    """Design values shared by plant and twin."""

    def __init__(self, *, in_features, hidden, out_features, read_range_V, input_full_scale, bias_V,
                 diode_low_V, diode_high_V, diode_on_conductance_S, dtype):
        self.in_features, self.hidden, self.out_features = in_features, hidden, out_features
        self.read_range_V, self.input_full_scale, self.bias_V = read_range_V, input_full_scale, bias_V
        self.diode_low_V, self.diode_high_V = diode_low_V, diode_high_V
        self.diode_on_conductance_S = diode_on_conductance_S
        self.dtype = dtype

    def shapes(self):
        sizes = list(self.hidden) + [2 * self.out_features]
        shapes = [(sizes[0], 2 * self.in_features + 2)]
        for l in range(1, len(sizes)):
            shapes.append((sizes[l], sizes[l - 1] + 2))
        return shapes

    def input_voltages(self, x):
        """The DAC encoding: read_range_V * clip(x / input_full_scale, -1, 1)."""
        return self.read_range_V * (x.to(self.dtype) / self.input_full_scale).clamp(-1.0, 1.0)

    def sources(self, x):
        v = self.input_voltages(x)
        bias = _bias_pair(self.bias_V, x.shape[0], self.dtype, x.device)
        return torch.cat([v, -v, bias], dim=1)

    def nominal_diodes(self, device=None):
        """The design diodes of every hidden layer, as tensors on ``device`` (default: the CPU)."""
        def full(n, value):
            return torch.full((n,), value, dtype=self.dtype, device=device or torch.device("cpu"))

        out = []
        for n in self.hidden:
            low = None if self.diode_low_V is None else full(n, self.diode_low_V)
            high = None if self.diode_high_V is None else full(n, self.diode_high_V)
            out.append(DiodeLayer(low, high, full(n, self.diode_on_conductance_S)))
        return out

    def read_out(self, V_out):
        k = self.out_features
        return V_out[:, :k] - V_out[:, k:]

    def nodes_for(self, value):
        """Differential output value y -> (+y/2, -y/2) node offsets."""
        return torch.cat([0.5 * value, -0.5 * value], dim=1)


class _NominalPhysics:
    """Design values: conductances as requested, diodes at their design thresholds."""

    def __init__(self, design):
        self.design = design

    def conductances(self, controls):
        return [controls[f"conductance_{l}"].to(self.design.dtype) for l in range(len(self.design.shapes()))]

    def diodes(self, device):
        return self.design.nominal_diodes(device)


class _TruePhysics:
    """The plant's hidden truth, noise off, read at call time (see ResistiveNetworkPlant.true_twin)."""

    def __init__(self, plant):
        self.plant = plant

    def conductances(self, controls):
        return self.plant._true_conductances(controls)

    def diodes(self, device):
        # the plant's own diode draws, on the plant's device (where its conductances are too)
        return self.plant._diodes


class ResistiveNetworkTwin(Twin):
    """Differentiable model of a resistive network: the design (``nominal_twin()``) or the plant's
    hidden truth with noise off (``true_twin()``). The forward pass settles without autograd (to the
    solver tolerance), then runs ``backward_sweeps`` block-coordinate sweeps *with* autograd starting
    from the detached steady state: the gradient is the implicit-function gradient truncated after
    that many terms of its Neumann series (the error shrinks geometrically with the sweep
    contraction factor)."""

    def __init__(self, design: _Design, *, tolerance_V: float, max_sweeps: int, backward_sweeps: int = 40,
                 physics=None) -> None:
        super().__init__(in_features=design.in_features, out_features=design.out_features)
        self.design = design
        self.physics = _NominalPhysics(design) if physics is None else physics
        self.tolerance_V, self.max_sweeps = tolerance_V, max_sweeps
        self.backward_sweeps = check_int("backward_sweeps", backward_sweeps, minimum=0)

    def node_voltages(self, x, controls):
        d = self.design
        G = self.physics.conductances(controls)
        sources = d.sources(x)
        diodes = self.physics.diodes(x.device)
        with torch.no_grad():
            state = settle(sources.detach(), [g.detach() for g in G], diodes, bias_V=d.bias_V,
                           tolerance_V=self.tolerance_V, max_sweeps=self.max_sweeps)
        bias_pair = _bias_pair(d.bias_V, x.shape[0], d.dtype, x.device)
        T = _totals(G)
        V = [v.detach() for v in state.V]
        for _ in range(self.backward_sweeps):
            V = _sweep(V, sources, G, T, diodes, None, None, bias_pair)
        return V

    def forward(self, x, controls):
        V = self.node_voltages(x, controls)
        return self.design.read_out(V[-1]).to(x.dtype)
