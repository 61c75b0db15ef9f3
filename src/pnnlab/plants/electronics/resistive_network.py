"""Nonlinear resistive network (deep resistive network, DRN): trainable conductances, diodes and
voltage sources, solved at steady state to a stated Kirchhoff-current-law tolerance.

References: Kendall, Pantone, Manickavasagam, Bengio & Scellier, "Training end-to-end analog neural
networks with equilibrium propagation", arXiv:2006.01981 (2020), doi:10.48550/arXiv.2006.01981;
Scellier, "A fast algorithm to simulate nonlinear resistive networks", ICML 2024,
doi:10.48550/arXiv.2402.11674.

Circuit
-------
Layered. The input layer is a set of voltage sources: each feature x_i drives two sources
``+v_i`` and ``-v_i`` so that a pair of positive conductances acts as one signed weight (a
differential pair), plus two bias sources ``+V_b`` and ``-V_b``. Every hidden layer l has n_l free
nodes; each hidden node is tied by trainable conductances to every node of the layer below (and to
the bias sources) and to every node of the layer above. Each hidden node also has a diode to a
source at ``diode_low_V`` (it conducts when the node voltage falls below it) and, optionally, a diode
to ``diode_high_V``: the nonlinearity. The output layer has 2 x ``out_features`` free nodes read as
differences ``y_k = V_{k+} - V_{k-}`` (a differential read-out).

Operating regime and input encoding
-----------------------------------
Memristive devices are read at a few hundred millivolts so that reading does not disturb their
state. The default ``read_range_V`` of 0.2 V (the same value as the crossbar plant's
``read_voltage_V``) is the read amplitude we recall for the in-situ trained 128 x 64 Ta/HfO2 array of
Li et al., "Efficient and self-adaptive in-situ learning in multilayer memristor neural networks",
Nat. Commun. 9, 2385 (2018), doi:10.1038/s41467-018-04484-2. The paper, its array size and its
hafnium-oxide devices were checked against its journal page; the 0.2 V figure itself is
**recalled, not verified** (it was not in the parts of the paper available to us). Every
source stays within +-``read_range_V``: a feature is encoded by a DAC of that full scale,

    v_i = read_range_V * clip(x_i / input_full_scale, -1, 1),

(standardised features: ``input_full_scale = 3`` maps +-3 standard deviations onto the full scale and
saturates beyond, as a real DAC does), the bias sources are +-``bias_V`` with |bias_V| <=
read_range_V, and the diode thresholds lie inside the range. The network is passive, so by the
maximum principle every free node of a free relaxation lies within the range of its sources (tested);
nudged or clamped states that leave the range raise a warning.

Physics
-------
The steady state (Kirchhoff's current law at every free node, the minimum of the network's
co-content) is computed by :mod:`pnnlab.plants.electronics.steady_state` (closed-form block
coordinate descent, Scellier 2024) to a stated KCL tolerance: the solution is a steady state *to
tolerance*, and every :class:`Equilibrium` carries its residual. Local measurements (for
equilibrium propagation and coupled learning): dE/dG_ij = 1/2 (V_i - V_j)^2 from the *measured*
(noisy) node voltages, averaged over the batch.

Hidden truth (never read by methods): device-to-device conductance variation (static,
multiplicative), or, with a ``device``, a full memristor array per conductance matrix
(:mod:`pnnlab.plants.electronics.memristor`: pulsed programming, drift, read noise, stuck devices);
diode threshold and on-conductance spread; read noise on measured node voltages. ``true_twin()`` is
this truth with the read noise off (diagnostics and the ideal bound only).

Device clock: the plant keeps its own clock (``elapsed_seconds``), advanced by the device time of every
relaxation (RC settling plus ADC sampling, per sample, as charged to the meter), of every programming
round, and by idle time (:meth:`ResistiveNetworkPlant.advance_time`, alias ``wait``); every memristor
array follows it, so RRAM relaxation and drift act during training queries and idle periods alike.
Conductances are programmed and read at the same instant; the query's time passes afterwards.
Resetting the meter does not reset the clock.

Energy and time (:mod:`pnnlab.plants.electronics.circuit_costs`): every relaxation records its
steady-state power, its RC settling time (node capacitance growing with the number of attached
devices, the conductances actually used, ln(V_range / tolerance) time constants), the capacitive
energy of charging its nodes and source lines, one ADC conversion per node read and one DAC
conversion per driven input; the meter is charged with the ``circuit`` constants (``NOMINAL`` by
default). Programming pulses add the device's pulse energy.

Simplifications: ideal voltage sources and wires (no line resistance, no sneak paths beyond the
circuit drawn), piecewise-linear diodes instead of the Shockley law, no amplifiers between layers
(so very deep networks attenuate, as Kendall et al. discuss), the measured voltage drop of a device
is the difference of two noisy node-voltage reads, node charging energy counted from 0 V for a
free relaxation (not from the previous sample's state).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from ... import devices
from ..._validation import check_int, check_nonnegative, check_positive
from ...metering import CostModel
from ..base import ControlSpec, Plant, load_object_state, object_state
from ..capabilities import EnergyBased, Equilibrium, OutputClamp, OutputForce, Simulated
from .circuit_costs import NOMINAL, CircuitConstants, CircuitLedger, settling_time_constants
from .memristor import MemristorArray, MemristorDevice, program_arrays
from .resistive_accounting import node_degrees, record_relaxation
from .resistive_twin import ResistiveNetworkTwin, _Design, _TruePhysics
from .steady_state import (DiodeLayer, SteadyState, SteadyStateNotReached, _bias_pair, _edge_gradients, _totals,
                           co_content, dissipated_power, kcl_residual, kcl_residual_V, settle)

__all__ = ["DiodeLayer", "ResistiveMismatch", "ResistiveNetworkPlant", "ResistiveNetworkTwin", "SteadyState",
           "SteadyStateNotReached", "TYPICAL_MISMATCH", "co_content", "kcl_residual", "settle"]


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


#: a typical mismatch: 5 % conductance variation, 10 mV diode threshold spread, 10 % diode
#: on-conductance spread, 0.5 mV voltage read noise (assumed values, scaled to the 0.2 V read range).
TYPICAL_MISMATCH = ResistiveMismatch(conductance_variation=0.05, diode_threshold_spread_V=0.01,
                                     diode_conductance_spread=0.1, read_noise_V=5e-4)


class ResistiveNetworkPlant(Plant, Simulated, EnergyBased):
    """A layered nonlinear resistive network (see the module docstring for the circuit and physics).

    Parameters (SI units)
    ---------------------
    in_features, out_features: features in; differential outputs (2 output nodes each).
    hidden: hidden-layer node counts, e.g. ``(64,)``.
    conductance_range_S: (G_min, G_max) of every trainable conductance; with a ``device`` the
        device's own range is used.
    read_range_V: every source voltage stays within +-read_range_V (default 0.2 V: Li et al. 2018's
        read amplitude, recalled, not verified; module docstring).
    input_full_scale: the feature value mapped to +read_range_V (features beyond it saturate).
    bias_V: bias sources +-V_b (|V_b| <= read_range_V; default read_range_V).
    diode_low_V, diode_high_V: diode thresholds of every hidden node (None: no such diode), inside the
        read range.
    diode_on_conductance_S: conductance of a conducting diode.
    device: a :class:`MemristorDevice`: the conductances are memristors, programmed with pulses
        (every change of the requested controls becomes pulses; see :meth:`program`).
    mismatch: hidden :class:`ResistiveMismatch` (fabrication errors, read noise).
    tolerance_V, max_sweeps: stopping rule of the steady-state solver (KCL residual, module docstring).
    circuit: :class:`~pnnlab.plants.electronics.circuit_costs.CircuitConstants` charged to the meter.
    dtype: floating type of the physics (float64 for gradient checks).
    """

    summary = ("nonlinear resistive network (conductances, diodes, sources, 0.2 V read range) solved at "
               "steady state to a KCL tolerance")

    def __init__(self, *, in_features: int, out_features: int, hidden: tuple[int, ...] = (32,),
                 conductance_range_S: tuple[float, float] = (1e-6, 1e-4), read_range_V: float = 0.2,
                 input_full_scale: float = 3.0, bias_V: float | None = None,
                 diode_low_V: float | None = 0.0, diode_high_V: float | None = None,
                 diode_on_conductance_S: float = 1e-2, device: MemristorDevice | None = None,
                 mismatch: ResistiveMismatch | None = None, tolerance_V: float = 1e-6,
                 max_sweeps: int = 2000, circuit: CircuitConstants = NOMINAL,
                 dtype: torch.dtype = torch.float32, seed: int | torch.Generator | None = 0) -> None:
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
        if not isinstance(circuit, CircuitConstants):
            raise TypeError(f"circuit must be a CircuitConstants (e.g. pnnlab.plants.electronics.circuit_costs."
                            f"NOMINAL), got {type(circuit).__name__}.")
        if device is not None:
            conductance_range_S = (device.g_min_S, device.g_max_S)
        lo = check_positive("conductance_range_S[0]", conductance_range_S[0])
        hi = check_positive("conductance_range_S[1]", conductance_range_S[1])
        if not lo < hi:
            raise ValueError(f"conductance_range_S must be (G_min, G_max) with G_min < G_max, got {conductance_range_S}.")
        read_range_V = check_positive("read_range_V", read_range_V)
        bias_V = read_range_V if bias_V is None else check_nonnegative("bias_V", bias_V)
        if bias_V > read_range_V:
            raise ValueError(f"bias_V={bias_V} exceeds read_range_V={read_range_V}: every source must stay "
                             f"within the read range; pass bias_V <= read_range_V.")
        if diode_low_V is None and diode_high_V is None:
            raise ValueError("diode_low_V and diode_high_V are both None: the network would be linear; "
                             "give at least one diode threshold, e.g. diode_low_V=0.0.")
        if diode_low_V is not None and diode_high_V is not None and not diode_low_V < diode_high_V:
            raise ValueError(f"diode_low_V must be below diode_high_V, got {diode_low_V} and {diode_high_V}.")
        for name, value in (("diode_low_V", diode_low_V), ("diode_high_V", diode_high_V)):
            if value is not None and not -read_range_V <= value <= read_range_V:
                raise ValueError(f"{name}={value} lies outside the read range +-{read_range_V} V, where no node "
                                 f"can reach it; pass a threshold within +-read_range_V (or raise read_range_V).")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
        self.tolerance_V = check_positive("tolerance_V", tolerance_V)
        self.max_sweeps = check_int("max_sweeps", max_sweeps)
        self.circuit = circuit
        super().__init__(in_features=in_features, out_features=out_features,
                         cost=CostModel(source="per relaxation: static dissipation over the RC settling and "
                                               "ADC sampling time, node charging C dV^2, ADC and DAC conversions "
                                               f"({circuit.label} circuit constants, see circuit_costs); "
                                               "programming pulses: device pulse energy. Added to the meter."),
                         seed=seed)
        self.conductance_range_S = (lo, hi)
        self.design = _Design(in_features=in_features, hidden=hidden, out_features=out_features,
                              read_range_V=read_range_V,
                              input_full_scale=check_positive("input_full_scale", input_full_scale),
                              bias_V=bias_V, diode_low_V=diode_low_V, diode_high_V=diode_high_V,
                              diode_on_conductance_S=check_positive("diode_on_conductance_S",
                                                                    diode_on_conductance_S),
                              dtype=dtype)
        self.device_model = device  # the memristor model (Plant.device is the torch device)
        self.ledger = CircuitLedger()
        self._elapsed_s = 0.0
        # a unit force moves an output node by about the read range
        self.force_unit = float((hidden[-1] + 2) * 0.5 * (lo + hi) * read_range_V)
        self._n_tau = settling_time_constants(read_range_V, self.tolerance_V)
        # ---- hidden truth ----
        m = mismatch or ResistiveMismatch()
        self._mismatch = m
        g = self._generator
        self._shapes = self.design.shapes()

        def normal(shape):  # fabrication draws, made where the generator is (the CPU); moved with to()
            return devices.randn(shape, generator=g, device=g.device, dtype=dtype)

        if device is None:
            self._gain = [(1 + m.conductance_variation * normal(s)).clamp_min(0.05) for s in self._shapes]
            self._arrays = None
        else:
            self._gain = None
            self._arrays = [MemristorArray(s, device, generator=g, dtype=dtype) for s in self._shapes]
        diodes = []
        for n in hidden:
            low = None if diode_low_V is None else diode_low_V + m.diode_threshold_spread_V * normal(n)
            high = None if diode_high_V is None else diode_high_V + m.diode_threshold_spread_V * normal(n)
            cond = diode_on_conductance_S * torch.exp(m.diode_conductance_spread * normal(n))
            diodes.append(DiodeLayer(low, high, cond))
        self._diodes = diodes
        self._degrees = node_degrees(self._shapes, self.design)

    # ---- description -----------------------------------------------------------------------------
    @property
    def hidden(self) -> tuple[int, ...]:
        return self.design.hidden

    @property
    def read_range_V(self) -> float:
        return self.design.read_range_V

    @property
    def n_conductances(self) -> int:
        return sum(a * b for a, b in self._shapes)

    @property
    def equivalent_weights(self) -> int:
        """Weights of the same network in digital form: a differential pair of conductances (to +-x, to
        the +-bias pair, or into a differential output pair) is one weight."""
        sizes = list(self.hidden)
        n = sizes[0] * (self.in_features + 1)
        for l in range(1, len(sizes)):
            n += sizes[l] * (sizes[l - 1] + 1)
        return n + self.out_features * (sizes[-1] + 1)

    def control_specs(self):
        lo, hi = self.conductance_range_S
        return {f"conductance_{l}": ControlSpec(shape, lo, hi, "S",
                                                f"conductances into layer {l + 1} "
                                                f"({'output' if l == len(self._shapes) - 1 else 'hidden'})")
                for l, shape in enumerate(self._shapes)}

    def describe(self):
        dev = f", device={self.device_model.name!r}" if self.device_model is not None else ""
        return (f"ResistiveNetworkPlant({self.in_features} -> {self.hidden} -> {self.out_features}, "
                f"{self.n_conductances} conductances, +-{self.read_range_V:g} V{dev})")

    # ---- hidden physics --------------------------------------------------------------------------
    def program(self, controls) -> dict:
        """Send programming pulses so that the memristors approach the requested conductances
        (no-op without a device). Called automatically by every query; returns the pulse counts of
        this round."""
        controls = self.validate_controls(controls)
        stats = self._program(controls)
        self.advance_time(stats["seconds"])
        return stats

    def _program(self, controls):
        if self._arrays is None:
            return {"pulses": 0, "energy_J": 0.0, "seconds": 0.0}
        # programming noise is device state: each array draws it from its own generator
        return program_arrays(((array, controls[f"conductance_{l}"]) for l, array in enumerate(self._arrays)),
                              None, self.meter)

    # ---- device time -----------------------------------------------------------------------------
    @property
    def elapsed_seconds(self) -> float:
        """The network's own clock: device seconds of every relaxation (settling and ADC sampling, per
        sample), of every programming round, and idle time from :meth:`advance_time`. The memristors'
        relaxation and drift follow it; resetting the meter does not reset it."""
        return self._elapsed_s

    def advance_time(self, seconds: float) -> None:
        """Let ``seconds`` pass with the network idle (the memristors keep relaxing and drifting)."""
        seconds = check_nonnegative("seconds", seconds)
        self._elapsed_s += seconds
        if self._arrays is not None:
            for array in self._arrays:
                array.advance(seconds)

    def wait(self, seconds: float) -> None:
        """Same as :meth:`advance_time` (kept for existing code)."""
        self.advance_time(seconds)

    @property
    def pulses(self) -> int:
        """Programming pulses sent so far (what a pulse counter on the chip would show)."""
        return 0 if self._arrays is None else sum(a.pulses for a in self._arrays)

    def state_dict(self) -> dict:
        """Generators and the clock (the default) plus the circuit ledger and, with memristors, every
        array's device state (conductance states, relaxation draws, clocks, counters, own generators)."""
        arrays = [] if self._arrays is None else [object_state(a, tensors=True) for a in self._arrays]
        return super().state_dict() | {"ledger": object_state(self.ledger), "arrays": arrays}

    def load_state_dict(self, state) -> None:
        state = dict(state)
        ledger, arrays = state.pop("ledger"), state.pop("arrays")
        super().load_state_dict(state)
        load_object_state(self.ledger, ledger)
        for array, saved in zip(self._arrays or [], arrays, strict=True):
            load_object_state(array, saved)
            array.to(self.device)  # a saved tensor that replaced one (no copy in place) lands here

    def _actual(self, controls, generator):
        """Program towards ``controls``, then read the conductances the relaxation sees (programmed
        and read at the same instant of the device clock); returns them and the programming seconds."""
        seconds = self._program(controls)["seconds"]
        if self._arrays is None:
            return ([controls[f"conductance_{l}"].to(self.design.dtype) * self._gain[l]
                     for l in range(len(self._shapes))], seconds)
        # multiplicative read noise could make a conductance negative only for a > 1/read_noise sigma
        # draw; a conductance stays >= 0 (the per-device bounds hold the programmed state, not the read)
        return [a.read(generator).clamp_min(0) for a in self._arrays], seconds

    def _true_conductances(self, controls):
        """Differentiable true conductances for the requested ``controls``, noise off, device state now.

        Without a device: requested x the hidden static gain. With memristors: what each array would
        hold right after programming towards the request now, with its programming noise off
        (:meth:`MemristorArray.programmed_conductance`: every past pulse's real effect, drift and
        relaxation to date, the soft-bounded response to the pending pulses, stuck devices, each
        device's own bounds)."""
        dtype = self.design.dtype
        if self._arrays is None:
            return [controls[f"conductance_{l}"].to(dtype) * self._gain[l] for l in range(len(self._shapes))]
        return [array.programmed_conductance(controls[f"conductance_{l}"].to(dtype)).to(dtype)
                for l, array in enumerate(self._arrays)]

    def _settle(self, x, controls, force, clamp_y, initial, generator):
        d = self.design
        # relax() validates but does not move its inputs: compute where the plant's state is
        where = self.device
        x = x.to(where)
        force = None if force is None else force.to(where)
        clamp_y = None if clamp_y is None else clamp_y.to(where)
        G, program_s = self._actual(controls, generator)
        sources = d.sources(x)
        init = initial.private["V"] if initial is not None else None
        clamp = None
        if clamp_y is not None:
            if initial is None:
                base = settle(sources, G, self._diodes, bias_V=d.bias_V, tolerance_V=self.tolerance_V,
                              max_sweeps=self.max_sweeps).V[-1]
            else:
                base = initial.private["V"][-1]
            k = d.out_features
            common = 0.5 * (base[:, :k] + base[:, k:])
            clamp = torch.cat([common, common], dim=1) + d.nodes_for(clamp_y.to(d.dtype))
        force_nodes = None if force is None else d.nodes_for(2 * force.to(d.dtype))
        state = settle(sources, G, self._diodes, bias_V=d.bias_V, force=force_nodes, clamp=clamp,
                       init=init, tolerance_V=self.tolerance_V, max_sweeps=self.max_sweeps)
        return state, G, sources, init, program_s

    def _measured(self, V, generator):
        sigma = self._mismatch.read_noise_V
        if not sigma:
            return list(V)
        return [v + sigma * devices.randn(v.shape, generator=generator, device=v.device, dtype=v.dtype) for v in V]

    def _check_range(self, V, what):
        limit = self.read_range_V * (1 + 1e-6) + self.tolerance_V
        worst = max(float(v.abs().max()) for v in V)
        if worst > limit:
            warnings.warn(f"a {what} drove resistive-network nodes outside the read range of "
                          f"+-{self.read_range_V:g} V (up to {worst:.3g} V; the devices would be disturbed); "
                          f"use a smaller nudge (beta or eta).",
                          RuntimeWarning, stacklevel=4)
        return worst

    def _account(self, state, G, sources, init, *, adc_reads, dac_drives):
        """Record this relaxation in the ledger and charge the meter (module docstring); returns the
        power per sample, the settling time and the device seconds of the relaxation."""
        power = dissipated_power(state.V, sources, G, self._diodes, bias_V=self.design.bias_V)
        t_settle, hold_s = record_relaxation(self.ledger, self.meter, self.circuit, n_tau=self._n_tau,
                                             degrees=self._degrees, power=power, G=G, V=state.V, sources=sources,
                                             init=init, adc_reads=adc_reads, dac_drives=dac_drives)
        return power, t_settle, hold_s

    def _measure(self, x, controls, generator):
        state, G, sources, init, program_s = self._settle(x, controls, None, None, None, generator)
        # inference: one differential ADC conversion per output, one DAC per input feature
        _, _, hold_s = self._account(state, G, sources, init, adc_reads=self.out_features,
                                     dac_drives=self.in_features)
        self.advance_time(program_s + hold_s)  # the programming round's and the samples' time passes
        V = self._measured(state.V, generator)
        return self.design.read_out(V[-1]).to(x.dtype)

    def _relax(self, x, controls, nudge, initial, generator):
        force = nudge.force if isinstance(nudge, OutputForce) else None
        clamp = nudge.value if isinstance(nudge, OutputClamp) else None
        state, G, sources, init, program_s = self._settle(x, controls, force, clamp, initial, generator)
        n_hidden = sum(self.hidden)
        n_out = 2 * self.out_features
        adc = n_hidden + (0 if clamp is not None else n_out)  # every free node is read
        dac = self.in_features + (n_out if nudge is not None else 0)
        power, t_settle, hold_s = self._account(state, G, sources, init, adc_reads=adc, dac_drives=dac)
        self.advance_time(program_s + hold_s)
        if nudge is not None:
            self._check_range(state.V, "clamp" if clamp is not None else "nudge")
        measured = self._measured(state.V, generator)
        if clamp is not None:
            measured[-1] = state.V[-1]  # clamped nodes sit at the applied voltages
        return Equilibrium(output=self.design.read_out(measured[-1]).to(x.dtype), nodes=tuple(measured),
                           power_W=power, residual=state.residual_A,
                           private={"V": state.V, "sources": sources, "sweeps": state.sweeps,
                                    "settling_time_s": t_settle, "converged": state.converged})

    def energy_gradients(self, state):
        """Batch mean of 1/2 dV^2 per conductance from the *measured* node voltages (digital work in
        the controller: its FLOPs go to ``ledger.local_rule_flops``)."""
        d = self.design
        sources = state.private["sources"]
        bias_pair = _bias_pair(d.bias_V, sources.shape[0], d.dtype, sources.device)
        grads, flops = _edge_gradients(list(state.nodes), sources, bias_pair)
        self.ledger.local_rule_flops += flops
        return {f"conductance_{l}": g for l, g in enumerate(grads)}

    # ---- twins -------------------------------------------------------------------------------
    def nominal_twin(self, *, backward_sweeps: int = 40):
        """Design values only: requested conductances, design diode thresholds and conductances."""
        return ResistiveNetworkTwin(self.design, tolerance_V=self.tolerance_V, max_sweeps=self.max_sweeps,
                                    backward_sweeps=backward_sweeps)

    def true_twin(self, *, backward_sweeps: int = 40):
        """The hidden truth with read noise off: conductance variation (or the memristor arrays' state
        at call time, :meth:`_true_conductances`), the real diode thresholds and conductances.
        Diagnostics and the ideal bound only."""
        return ResistiveNetworkTwin(self.design, tolerance_V=self.tolerance_V, max_sweeps=self.max_sweeps,
                                    backward_sweeps=backward_sweeps, physics=_TruePhysics(self))
