"""Optional capabilities a plant declares by inheriting from these mixins.

A training method lists what it needs (see :mod:`pnnlab.methods.base`); training checks the model's
plants before the first step. Each capability names the extra hardware operations it provides.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch


class Capability(abc.ABC):
    """Marker base class of all capabilities."""

    #: what the capability offers, for error messages and ``pnnlab list``
    offers: str = ""


class Simulated(Capability):
    """A simulated plant: it can hand out differentiable models of itself. Two names, one meaning each,
    on every plant:

    * ``nominal_twin()`` follows the *design values* (what a researcher would write down before
      measuring the device) and never reads the hidden truth. It is what in-silico training and
      physics-aware training are given by default.
    * ``true_twin()`` is the plant's *hidden physics with its noise switched off*: every fabrication
      error, mismatch, saturation and the drift state at the moment of the call, but no random noise,
      differentiable. It exists for diagnostics (the true gradient, :mod:`pnnlab.diagnostics`) and
      for the *ideal* upper bound (:class:`pnnlab.methods.ideal.IdealBackprop`) only. No training
      method may use it: it is knowledge no real laboratory has.

    Where the plant has no hidden truth apart from noise, the two agree; the conformance suite checks
    that a plant's ``true_twin()`` equals its noiseless output.
    """

    offers = ("nominal_twin() (design values) and true_twin() (hidden physics, noise off): "
              "differentiable models of the plant")

    @abc.abstractmethod
    def nominal_twin(self):
        """A twin built from the design values only."""

    @abc.abstractmethod
    def true_twin(self):
        """The hidden physics with noise switched off (diagnostics and the ideal bound only)."""


@dataclass(frozen=True)
class OutputForce:
    """Nudge an energy-based plant by a force on its outputs: the plant then settles to the minimum
    of ``E(s) - sum_k force_k * y_k(s)``. For a resistive network the force is a current (amperes)
    injected into the output nodes; for a Hopfield network it is an input to the output units.
    ``force`` has shape (batch, out_features)."""

    force: torch.Tensor


@dataclass(frozen=True)
class OutputClamp:
    """Clamp the outputs of an energy-based plant to ``value`` (shape (batch, out_features)) and let
    the rest of the system settle (the clamped state of coupled learning, Stern et al. 2021)."""

    value: torch.Tensor


@dataclass
class Equilibrium:
    """A relaxed (steady) state as the hardware reports it.

    ``output`` is the measured output (batch, out_features); ``nodes`` the measured node quantities
    (voltages, unit activities) in a plant-specific layout; ``power_W`` the power the system
    dissipates in this state, per sample (batch,), where the plant can measure it. ``residual`` is
    the solver's stopping residual where the state is computed to a tolerance (for a resistive
    network the largest Kirchhoff current imbalance over nodes and samples, amperes). ``private`` is
    opaque plant-internal data (for example the exact state used to warm-start the next relaxation):
    methods pass the Equilibrium back to the plant and never read it.
    """

    output: torch.Tensor
    nodes: tuple
    power_W: torch.Tensor | None = None
    residual: float | None = None
    private: Any = field(default=None, repr=False)


class EnergyBased(Capability):
    """The plant relaxes to the minimum of an energy and exposes local measurements
    (for equilibrium propagation and coupled learning).

    Hardware operations (each relaxation is one metered query):

    * ``relax(x, controls, nudge=None, initial=None)`` settles the system with inputs ``x`` and
      returns an :class:`Equilibrium`; ``nudge`` is None (free), an :class:`OutputForce` or an
      :class:`OutputClamp`; ``initial`` is a previous Equilibrium to start from (settling is faster).
    * ``energy_gradients(state)`` returns, for every control, the locally measured derivative of the
      energy with respect to that control, averaged over the batch (for a conductance, half the
      squared voltage drop across it).

    ``force_unit`` converts a dimensionless nudge into the plant's force unit (for a resistive
    network: amperes); methods multiply their nudge by it.
    """

    offers = "relax(x, controls, nudge) -> Equilibrium and energy_gradients(state)"

    #: the plant's natural force unit (for example amperes for a resistive network)
    force_unit: float = 1.0

    def relax(self, x: torch.Tensor, controls: Mapping[str, torch.Tensor], *,
              nudge: OutputForce | OutputClamp | None = None, initial: Equilibrium | None = None,
              generator: torch.Generator | None = None) -> Equilibrium:
        """Settle to equilibrium (one metered query); see the class docstring."""
        from .._validation import check_batch, check_generator
        x = check_batch("x", x, self.in_features).detach()
        controls = self.validate_controls(controls)
        if nudge is not None:
            if not isinstance(nudge, (OutputForce, OutputClamp)):
                raise TypeError(f"nudge must be None, OutputForce(...) or OutputClamp(...), got "
                                f"{type(nudge).__name__}.")
            value = nudge.force if isinstance(nudge, OutputForce) else nudge.value
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != (x.shape[0], self.out_features):
                raise ValueError(f"the nudge must be a tensor of shape {(x.shape[0], self.out_features)} "
                                 f"(batch, out_features), got "
                                 f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}.")
            if not bool(torch.isfinite(value).all()):
                raise ValueError("the nudge contains NaN or infinite values; check beta and the loss.")
        if initial is not None and not isinstance(initial, Equilibrium):
            raise TypeError(f"initial must be an Equilibrium returned by relax(), got {type(initial).__name__}.")
        gen = check_generator("generator", generator) or self._generator
        if self._recorders:  # see pnnlab.recording: every query is reported at the boundary
            def checked(state):
                _check_equilibrium(self, state, x)
                return state
            return self._recorded_query("relax", x, controls, lambda: self._relax(x, controls, nudge, initial, gen),
                                        checked, nudge=nudge, initial=initial,
                                        generator=generator)
        with torch.no_grad():
            state = self._relax(x, controls, nudge, initial, gen)
        self.meter.record(self.cost, x.shape[0])
        _check_equilibrium(self, state, x)
        return state

    @abc.abstractmethod
    def _relax(self, x, controls, nudge, initial, generator) -> Equilibrium:
        """Settle on validated, detached inputs (called under ``torch.no_grad()``)."""

    @abc.abstractmethod
    def energy_gradients(self, state: Equilibrium) -> dict[str, torch.Tensor]:
        """Locally measured dE/d(control) for each control, averaged over the batch."""


def _check_equilibrium(plant, state, x: torch.Tensor) -> None:
    """The boundary check of ``relax``: an Equilibrium whose measured output has the plant's output
    shape and the input's dtype, and whose measured output, nodes and power are finite."""
    owner = f"{type(plant).__name__}._relax"
    if not isinstance(state, Equilibrium):
        raise TypeError(f"{owner} returned {type(state).__name__}, not an Equilibrium.")
    plant.check_measurement(state.output, x, call="_relax")
    for index, node in enumerate(state.nodes):
        if isinstance(node, torch.Tensor) and not bool(torch.isfinite(node).all()):
            raise FloatingPointError(f"{owner} returned NaN or infinite values in its measured nodes[{index}]; "
                                     f"the relaxation failed at the hardware boundary (a diverged solver?).")
    if isinstance(state.power_W, torch.Tensor) and not bool(torch.isfinite(state.power_W).all()):
        raise FloatingPointError(f"{owner} returned NaN or infinite values in power_W; the relaxation "
                                 f"failed at the hardware boundary.")


@dataclass
class FieldPass:
    """What one optical pass through a reciprocal plant reports (see :class:`Reciprocal`).

    ``intensities`` holds, for every control of the plant, the optical power measured at that phase
    shifter, shape ``(batch, *control_shape)`` (a monitor tap beside every shifter, as in Pai et al.
    2023). ``output`` is the measured output features (forward pass only, the same as ``plant(x)``);
    ``port_field`` the complex field leaving the plant at the far end of the pass, measured by coherent
    detection: at the output ports for the forward pass, at the input ports for the adjoint pass
    (``None`` for the interference pass). ``private`` is opaque plant data; methods never read it.
    """

    intensities: dict
    output: torch.Tensor | None = None
    port_field: torch.Tensor | None = None
    private: Any = field(default=None, repr=False)


class Reciprocal(Capability):
    """A linear, reciprocal photonic plant that can also be driven *backwards* and that reports the
    optical power at every phase shifter (for the in-situ adjoint gradients of Hughes, Minkov, Shi &
    Fan, Optica 5, 864 (2018), doi:10.1364/OPTICA.5.000864, demonstrated by Pai et al., Science 380,
    398 (2023), doi:10.1126/science.ade8450; see :mod:`pnnlab.methods.adjoint`).

    Hardware operations, each ONE metered query of ``batch`` samples (the plant's cost model):

    * ``forward_pass(x, controls)``: the ordinary forward pass, also reading the power monitor at
      every phase shifter and the complex output field (coherent detection at the outputs);
    * ``adjoint_pass(adjoint, controls)``: light ``adjoint`` (complex, ``(batch, n_output_ports)``)
      injected into the *output* ports runs backwards through the plant (by reciprocity it sees the
      transpose T^T of the forward transfer matrix); the monitors read its power at every phase
      shifter and the field leaving the input ports is measured coherently;
    * ``interference_pass(x, injected, controls)``: the encoded input ``x`` plus the complex field
      ``injected`` (``(batch, n_input_ports)``, e.g. the time-reversed adjoint field) sent forward
      together; the monitors read the power of their interference at every phase shifter.

    An in-situ gradient therefore costs 3 queries per reciprocal layer per batch. Controller-side
    arithmetic (no query), which only the plant can do because it knows its detection and encoding:

    * ``adjoint_source(forward, grad_output)``: the field to inject at the outputs, conj(dL/dy*)
      for the measured output field y, given dL/d(output features);
    * ``input_gradient(x, adjoint)``: dL/dx for the plant's input encoding, from the field the
      adjoint pass measured at the input ports.

    A plant implements ``_forward_pass``, ``_adjoint_pass``, ``_interference_pass`` (called on
    validated, detached tensors under ``torch.no_grad()``), ``adjoint_source`` and
    ``input_gradient``, plus ``n_input_ports`` / ``n_output_ports``.
    """

    offers = ("forward_pass / adjoint_pass / interference_pass: light sent forwards, backwards from the "
              "outputs and both at once, with the power read at every phase shifter (3 queries per gradient)")

    n_input_ports: int
    n_output_ports: int

    def forward_pass(self, x: torch.Tensor, controls: Mapping[str, torch.Tensor], *,
                     generator: torch.Generator | None = None) -> FieldPass:
        """Forward pass with every monitor read (one metered query)."""
        from .._validation import check_batch, check_generator
        x = check_batch("x", x, self.in_features).detach()
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator

        def check(result):
            _check_field_pass(self, result, x.shape[0], "_forward_pass", self.n_output_ports)
            self.check_measurement(result.output, x, call="_forward_pass")
            return result
        return self._field_query("forward", x, controls, lambda: self._forward_pass(x, controls, gen), check,
                                 generator=generator)

    def adjoint_pass(self, adjoint: torch.Tensor, controls: Mapping[str, torch.Tensor], *,
                     generator: torch.Generator | None = None) -> FieldPass:
        """Light ``adjoint`` sent backwards from the output ports (one metered query)."""
        from .._validation import check_generator
        adjoint = _check_field("adjoint", adjoint, self.n_output_ports)
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator
        record_x = torch.view_as_real(adjoint).reshape(adjoint.shape[0], -1)

        def check(result):
            _check_field_pass(self, result, adjoint.shape[0], "_adjoint_pass", self.n_input_ports)
            return result
        return self._field_query("adjoint", record_x, controls,
                                 lambda: self._adjoint_pass(adjoint, controls, gen), check, generator=generator)

    def interference_pass(self, x: torch.Tensor, injected: torch.Tensor, controls: Mapping[str, torch.Tensor],
                          *, generator: torch.Generator | None = None) -> FieldPass:
        """Input ``x`` and the extra field ``injected`` sent forward together (one metered query)."""
        from .._validation import check_batch, check_generator
        x = check_batch("x", x, self.in_features).detach()
        injected = _check_field("injected", injected, self.n_input_ports)
        if injected.shape[0] != x.shape[0]:
            raise ValueError(f"injected has {injected.shape[0]} samples but x has {x.shape[0]}; pass one "
                             f"injected field per input sample.")
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator

        def check(result):
            _check_field_pass(self, result, x.shape[0], "_interference_pass", None)
            return result
        return self._field_query("interference", x, controls,
                                 lambda: self._interference_pass(x, injected, controls, gen), check,
                                 generator=generator)

    def _field_query(self, kind, x, controls, run, check, generator=None):
        if self._recorders:  # see pnnlab.recording: every query is reported at the boundary
            return self._recorded_query(kind, x, controls, run, check, generator=generator)
        with torch.no_grad():
            result = run()
        self.meter.record(self.cost, x.shape[0])
        return check(result)

    @abc.abstractmethod
    def _forward_pass(self, x, controls, generator) -> FieldPass:
        """Forward pass on validated inputs: output features, output field and monitor powers."""

    @abc.abstractmethod
    def _adjoint_pass(self, adjoint, controls, generator) -> FieldPass:
        """Backward pass from the outputs: monitor powers and the field leaving the input ports."""

    @abc.abstractmethod
    def _interference_pass(self, x, injected, controls, generator) -> FieldPass:
        """Forward pass of encode(x) + injected: monitor powers."""

    @abc.abstractmethod
    def adjoint_source(self, forward: FieldPass, grad_output: torch.Tensor) -> torch.Tensor:
        """The complex field to send backwards from the outputs for dL/d(output features)."""

    @abc.abstractmethod
    def input_gradient(self, x: torch.Tensor, adjoint: FieldPass) -> torch.Tensor:
        """dL/dx (batch, in_features) from the adjoint field measured at the input ports."""


def _check_field(name: str, value, ports: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or not torch.is_complex(value):
        raise TypeError(f"{name} must be a complex tensor of shape (batch, {ports}) (an optical field), got "
                        f"{type(value).__name__}{'' if not isinstance(value, torch.Tensor) else ' ' + str(value.dtype)}.")
    if value.ndim != 2 or value.shape[1] != ports:
        raise ValueError(f"{name} must have shape (batch, {ports}), got {tuple(value.shape)}.")
    if not bool(torch.isfinite(torch.view_as_real(value)).all()):
        raise ValueError(f"{name} contains NaN or infinite values; no laser can emit them.")
    return value.detach()


def _check_field_pass(plant, result, batch: int, call: str, ports: int | None) -> None:
    """The boundary check of a reciprocal pass: every control monitored, finite powers of shape
    (batch, *control_shape), and (where the pass measures one) a finite complex field."""
    owner = f"{type(plant).__name__}.{call}"
    if not isinstance(result, FieldPass):
        raise TypeError(f"{owner} returned {type(result).__name__}, not a FieldPass.")
    specs = plant.control_specs()
    if set(result.intensities) != set(specs):
        raise ValueError(f"{owner} must report a monitor power for every control {sorted(specs)}, got "
                         f"{sorted(result.intensities)}.")
    for name, spec in specs.items():
        value = result.intensities[name]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != (batch, *spec.shape):
            raise ValueError(f"{owner} reported intensities[{name!r}] of shape "
                             f"{tuple(getattr(value, 'shape', ()))}, expected {(batch, *spec.shape)}.")
        if not bool(torch.isfinite(value).all()):
            raise FloatingPointError(f"{owner} returned NaN or infinite monitor powers for {name!r}.")
    if ports is not None:
        if not isinstance(result.port_field, torch.Tensor) or not torch.is_complex(result.port_field) \
                or tuple(result.port_field.shape) != (batch, ports):
            raise ValueError(f"{owner} must return the measured complex field of shape {(batch, ports)}.")
        if not bool(torch.isfinite(torch.view_as_real(result.port_field)).all()):
            raise FloatingPointError(f"{owner} returned a NaN or infinite measured field.")


@dataclass(frozen=True)
class ShiftRule:
    """The two-term parameter-shift rule of a control whose every entry is the angle of one gate
    ``exp(-i theta G)`` with generator eigenvalues ``+-r`` (Schuld, Bergholm, Gogolin, Izaac & Killoran,
    Phys. Rev. A 99, 032331 (2019), doi:10.1103/PhysRevA.99.032331):

        d<O>/d theta = coefficient * (<O>(theta + shift) - <O>(theta - shift)),  shift = pi / (4 r), coefficient = r.

    A Pauli rotation ``R_P(theta) = exp(-i theta P / 2)`` has ``r = 1/2``: shift pi/2, coefficient 1/2
    (Mitarai et al., Phys. Rev. A 98, 032309 (2018)). Exact for exact expectations, unbiased for
    shot-estimated ones."""

    shift: float = math.pi / 2
    coefficient: float = 0.5

    def __post_init__(self) -> None:
        for name in ("shift", "coefficient"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value == 0:
                raise ValueError(f"ShiftRule.{name} must be a finite non-zero number, got {value!r} "
                                 f"(a Pauli rotation has shift=pi/2, coefficient=0.5).")


class ParameterShift(Capability):
    """Quantum-circuit style plants whose expectation values obey the parameter-shift rule (for
    :mod:`pnnlab.methods.parameter_shift`).

    * ``shift_rules()`` names the controls whose every entry is the angle of exactly one Pauli-type
      rotation gate, with their :class:`ShiftRule`. Those controls are unbounded angles (periodic), so a
      shifted angle is always a valid setting.
    * ``shifted(x, controls, control=, index=, shift=)`` evaluates the circuit with entry ``index`` of
      the flattened ``controls[control]`` moved by ``shift``: ONE metered query of ``batch`` circuits, each
      measured with the plant's shots (an ordinary plant call, so it is recorded and replayed the same way).

    A gradient of the controls named by ``shift_rules()`` thus costs 2 queries per angle (2P per
    gradient), each of ``batch x shots`` circuit executions.
    """

    offers = ("shift_rules() (which controls are Pauli-rotation angles, and their shift) and shifted(x, controls, "
              "control, index, shift): 2 shifted evaluations per angle give its exact gradient")

    @abc.abstractmethod
    def shift_rules(self) -> dict[str, ShiftRule]:
        """The shiftable controls by name, each with its rule."""

    def shifted(self, x: torch.Tensor, controls: Mapping[str, torch.Tensor], *, control: str, index: int,
                shift: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """The plant's output with one angle shifted (one metered query); see the class docstring."""
        rules = self.shift_rules()
        if control not in rules:
            raise ValueError(f"control {control!r} has no parameter-shift rule on {type(self).__name__}; the "
                             f"shiftable controls are {sorted(rules)}.")
        specs = self.control_specs()
        if specs[control].bounded or math.isfinite(specs[control].low) or math.isfinite(specs[control].high):
            raise ValueError(f"{type(self).__name__} declares a shift rule for the bounded control {control!r}; "
                             f"shiftable controls must be unbounded angles (give its ControlSpec no range).")
        size = math.prod(specs[control].shape)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            raise ValueError(f"index must be an int in [0, {size}) (a flat position in controls[{control!r}]), "
                             f"got {index!r}.")
        if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not math.isfinite(shift):
            raise ValueError(f"shift must be a finite number of radians, got {shift!r}.")
        if not isinstance(controls, Mapping) or control not in controls \
                or not isinstance(controls[control], torch.Tensor):
            raise TypeError(f"controls must be a dict of tensors containing {control!r}, got {controls!r:.80}.")
        moved = dict(controls)
        value = controls[control].detach().clone().reshape(-1)
        value[index] += shift
        moved[control] = value.reshape(specs[control].shape)
        return self(x, moved, generator=generator)


class Dynamical(Capability):
    """Time-stepped plants driven by a time series whose physical state is read at every input step
    (physical reservoirs: a delay line with virtual nodes, a network of oscillators).

    Hardware operation, ONE metered query:

    * ``trajectory(u, controls)``: drive the plant from rest with the series ``u`` of shape
      ``(batch, T)`` (scalar input, ``input_dim == 1``) or ``(batch, T, input_dim)``, any length
      ``T >= 1``, and return the state read out after every input step, ``(batch, T, n_state)``.

    The meter counts one query of ``batch`` samples, its device time scaled to the length of the
    series: the plant's :class:`~pnnlab.metering.CostModel` is per sample of ``steps`` input steps
    (the length of the flat ``plant(x)`` interface, where ``x`` is ``(batch, steps * input_dim)`` and
    the output is the flattened trajectory ``(batch, steps * n_state)``), so a series of ``T`` steps
    costs ``T / steps`` of a sample (the per-query overhead unchanged). A plant implements
    ``_trajectory(u, controls, generator)`` on validated ``(batch, T, input_dim)`` tensors (called under
    ``torch.no_grad()``) and sets ``input_dim``, ``n_state`` and ``steps``.
    """

    offers = "trajectory(u, controls): the state read out at every step of a driven time series"

    input_dim: int
    n_state: int
    steps: int

    def trajectory(self, u: torch.Tensor, controls: Mapping[str, torch.Tensor], *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """The state after every input step of ``u`` (one metered query); see the class docstring."""
        import dataclasses

        from .._validation import check_generator
        u = _check_series(u, self.input_dim)
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator
        batch, length = u.shape[0], u.shape[1]
        if self._recorders:  # recordings store flat (batch, steps * input_dim) queries
            if length != self.steps:
                raise ValueError(f"a recorded trajectory must have the plant's length steps={self.steps} "
                                 f"(got T={length}); detach the recorder or build the plant with "
                                 f"steps={length}.")
            flat = u.reshape(batch, -1)
            states = self._recorded_query("trajectory", flat, controls,
                                          lambda: self._trajectory(u, controls, gen),
                                          lambda s: _check_states(self, s, u), generator=generator)
            return states
        with torch.no_grad():
            states = self._trajectory(u, controls, gen)
        scale = length / self.steps
        cost = dataclasses.replace(self.cost, seconds_per_sample=self.cost.seconds_per_sample * scale,
                                   joules_per_sample=self.cost.joules_per_sample * scale)
        self.meter.record(cost, batch)  # the query happened, even if its result is unusable
        return _check_states(self, states, u)

    @abc.abstractmethod
    def _trajectory(self, u: torch.Tensor, controls: dict, generator: torch.Generator) -> torch.Tensor:
        """States (batch, T, n_state) for a validated series ``u`` (batch, T, input_dim)."""


def _check_series(u, input_dim: int) -> torch.Tensor:
    """A time series (batch, T) (only for input_dim 1) or (batch, T, input_dim): float, finite."""
    if not isinstance(u, torch.Tensor) or not torch.is_floating_point(u):
        raise TypeError(f"u must be a floating-point tensor of shape (batch, T, {input_dim})"
                        f"{' or (batch, T)' if input_dim == 1 else ''}, got "
                        f"{type(u).__name__}{' ' + str(u.dtype) if isinstance(u, torch.Tensor) else ''}.")
    if u.ndim == 2 and input_dim == 1:
        u = u.unsqueeze(-1)
    if u.ndim != 3 or u.shape[2] != input_dim or u.shape[0] == 0 or u.shape[1] == 0:
        raise ValueError(f"u must have shape (batch, T, {input_dim})"
                         f"{' or (batch, T)' if input_dim == 1 else ''} with batch, T >= 1, got "
                         f"{tuple(u.shape)}.")
    if not bool(torch.isfinite(u).all()):
        raise ValueError(f"u contains {int((~torch.isfinite(u)).sum())} NaN or infinite values; clean the "
                         f"series before sending it to the hardware.")
    return u.detach()


def _check_states(plant, states, u: torch.Tensor) -> torch.Tensor:
    owner = f"{type(plant).__name__}._trajectory"
    shape = (u.shape[0], u.shape[1], plant.n_state)
    if not isinstance(states, torch.Tensor) or tuple(states.shape) != shape:
        raise ValueError(f"{owner} must return states of shape {shape} (batch, T, n_state), got "
                         f"{tuple(getattr(states, 'shape', ())) or type(states).__name__}.")
    if states.dtype != u.dtype:
        raise TypeError(f"{owner} returned dtype {states.dtype} for a series of dtype {u.dtype}.")
    if not bool(torch.isfinite(states).all()):
        raise FloatingPointError(f"{owner} returned NaN or infinite states; the integration failed at the "
                                 f"hardware boundary.")
    return states.detach()


# ---- fully forward mode (free-space optics) ----------------------------------------------------------

@dataclass(frozen=True)
class PhaseModulated:
    """Each entry of the control is a phase ``phi`` (radians) that multiplies the field at its pixel by
    ``exp(i phi)``: dL/dphi = -2 Im(e u) from the data field ``u`` leaving the pixel and the error field ``e``
    arriving at it from the output side (see :mod:`pnnlab.methods.fully_forward`)."""


@dataclass(frozen=True)
class AmplitudeModulated:
    """Each entry of the control is a real amplitude transmission ``A > 0`` that multiplies the field at its
    pixel: dL/dA = 2 Re(e u) / A (same fields as :class:`PhaseModulated`)."""


@dataclass
class PlaneFields:
    """What one pass of light through a :class:`ForwardSymmetric` plant reports.

    ``fields`` holds, for every control, the complex field measured at the pixels it modulates, shape
    ``(batch, *control_shape)``: for the *data* pass the field leaving each pixel (after its modulation),
    for the *error* pass the error field arriving at each pixel from the output side (before it passes the
    pixel). ``output`` is the measured output features (data pass only, the same as ``plant(x)``),
    ``output_field`` the complex field at the output (detector) plane (data pass) and ``input_field`` the
    error field reaching the input plane (error pass), both ``(batch, *field_shape)``. ``private`` is opaque
    plant data; methods never read it.
    """

    fields: dict
    output: torch.Tensor | None = None
    output_field: torch.Tensor | None = None
    input_field: torch.Tensor | None = None
    private: Any = field(default=None, repr=False)


class ForwardSymmetric(Capability):
    """A linear, reciprocal free-space optical system whose error-propagation pass can be run *through
    the same optics* and whose fields are measured at every modulating plane: the fully forward mode
    (FFM) of Xue, Zhou, ..., Dai & Fang, "Fully forward mode training for optical neural networks",
    Nature 632, 280 (2024), doi:10.1038/s41586-024-07687-4, and the in-situ optical backpropagation of
    Zhou, Lin, Wu, ..., Dai, Photon. Res. 8, 940 (2020), doi:10.1364/PRJ.389553.

    Hardware operations, each one *pass* of light of ``batch`` samples that costs ``frames_per_pass``
    metered queries (1 for a single-shot field measurement such as off-axis holography, 4 for
    four-step phase-shifting holography with intensity cameras: 4 exposures per pass):

    * ``data_pass(x, controls)``: the ordinary forward pass; the field is measured at every modulating
      plane (a beam splitter and a camera imaging each plane, registered to its pixels) and at the output
      plane; returns a :class:`PlaneFields` with ``output`` and ``output_field``;
    * ``error_pass(error, controls)``: the error field ``error`` (complex, ``(batch, *field_shape)``,
      displayed by a modulator at the output plane) is sent through the same optics towards the input;
      by reciprocity it sees the transpose of the forward operator, which a spatially symmetric system
      realises as a *forward* propagation (Xue 2024); the field is measured at every modulating plane
      and at the input plane.

    A gradient therefore costs 2 passes per physical layer per batch = ``2 * frames_per_pass`` queries.
    Controller-side arithmetic (no query), which only the plant can do because it knows its detection
    and encoding:

    * ``error_source(data, grad_output)``: the error field to display at the output plane for
      dL/d(output features), conj(dL/d(output field)*) for the measured output field;
    * ``input_gradient(x, error)``: dL/dx for the plant's input encoding, from the error field measured
      at the input plane;
    * ``modulation()``: for every control a :class:`PhaseModulated` or :class:`AmplitudeModulated`.

    A plant implements ``_data_pass`` and ``_error_pass`` (called on validated, detached tensors under
    ``torch.no_grad()``; they record the ``frames_per_pass - 1`` extra exposures on the meter themselves),
    ``error_source``, ``input_gradient``, ``modulation`` and sets ``field_shape`` and ``frames_per_pass``.
    """

    offers = ("data_pass / error_pass: the data and the error field sent through the same optics, the field "
              "measured at every modulating plane (2 passes per gradient, frames_per_pass queries each)")

    field_shape: tuple
    frames_per_pass: int = 1

    def data_pass(self, x: torch.Tensor, controls: Mapping[str, torch.Tensor], *,
                  generator: torch.Generator | None = None) -> PlaneFields:
        """Forward pass with the field measured at every plane (``frames_per_pass`` queries)."""
        from .._validation import check_batch, check_generator
        x = check_batch("x", x, self.in_features).detach()
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator

        def check(result):
            _check_plane_fields(self, result, x.shape[0], "_data_pass", "output_field")
            self.check_measurement(result.output, x, call="_data_pass")
            return result
        return self._field_query("data", x, controls, lambda: self._data_pass(x, controls, gen), check,
                                 generator=generator)

    def error_pass(self, error: torch.Tensor, controls: Mapping[str, torch.Tensor], *,
                   generator: torch.Generator | None = None) -> PlaneFields:
        """The error field sent from the output plane through the optics (``frames_per_pass`` queries)."""
        from .._validation import check_generator
        shape = tuple(self.field_shape)
        if not isinstance(error, torch.Tensor) or not torch.is_complex(error) or error.ndim != 1 + len(shape) \
                or tuple(error.shape[1:]) != shape:
            raise ValueError(f"error must be a complex tensor of shape (batch, {', '.join(map(str, shape))}) (the "
                             f"field displayed at the output plane), got "
                             f"{getattr(error, 'dtype', type(error).__name__)} {tuple(getattr(error, 'shape', ()))}.")
        if not bool(torch.isfinite(torch.view_as_real(error)).all()):
            raise ValueError("error contains NaN or infinite values; no modulator can display them.")
        error = error.detach()
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator
        record_x = torch.view_as_real(error).reshape(error.shape[0], -1)

        def check(result):
            _check_plane_fields(self, result, error.shape[0], "_error_pass", "input_field")
            return result
        return self._field_query("error", record_x, controls, lambda: self._error_pass(error, controls, gen),
                                 check, generator=generator)

    def _field_query(self, kind, x, controls, run, check, generator=None):
        if self._recorders:  # see pnnlab.recording: every query is reported at the boundary
            return self._recorded_query(kind, x, controls, run, check, generator=generator)
        with torch.no_grad():
            result = run()
        self.meter.record(self.cost, x.shape[0])
        return check(result)

    @abc.abstractmethod
    def _data_pass(self, x, controls, generator) -> PlaneFields:
        """Forward pass on validated inputs: output features, output field, field at every plane."""

    @abc.abstractmethod
    def _error_pass(self, error, controls, generator) -> PlaneFields:
        """Error field from the output plane: field at every plane and at the input plane."""

    @abc.abstractmethod
    def error_source(self, data: PlaneFields, grad_output: torch.Tensor) -> torch.Tensor:
        """The complex error field to display at the output plane for dL/d(output features)."""

    @abc.abstractmethod
    def input_gradient(self, x: torch.Tensor, error: PlaneFields) -> torch.Tensor:
        """dL/dx (batch, in_features) from the error field measured at the input plane."""

    @abc.abstractmethod
    def modulation(self) -> dict:
        """For every control, :class:`PhaseModulated` or :class:`AmplitudeModulated`."""


def _check_plane_fields(plant, result, batch: int, call: str, plane: str) -> None:
    """The boundary check of a forward-symmetric pass: a finite complex field for every control, of shape
    (batch, *control_shape), and the finite field at the far plane."""
    owner = f"{type(plant).__name__}.{call}"
    if not isinstance(result, PlaneFields):
        raise TypeError(f"{owner} returned {type(result).__name__}, not PlaneFields.")
    specs = plant.control_specs()
    if set(result.fields) != set(specs):
        raise ValueError(f"{owner} must report the field at the pixels of every control {sorted(specs)}, got "
                         f"{sorted(result.fields)}.")
    for name, spec in specs.items():
        value = result.fields[name]
        if not isinstance(value, torch.Tensor) or not torch.is_complex(value) \
                or tuple(value.shape) != (batch, *spec.shape):
            raise ValueError(f"{owner} reported fields[{name!r}] of shape {tuple(getattr(value, 'shape', ()))}, "
                             f"expected a complex tensor of shape {(batch, *spec.shape)}.")
        if not bool(torch.isfinite(torch.view_as_real(value)).all()):
            raise FloatingPointError(f"{owner} returned NaN or infinite fields for {name!r}.")
    far = getattr(result, plane)
    shape = (batch, *tuple(plant.field_shape))
    if not isinstance(far, torch.Tensor) or not torch.is_complex(far) or tuple(far.shape) != shape:
        raise ValueError(f"{owner} must return the measured complex {plane} of shape {shape}.")
    if not bool(torch.isfinite(torch.view_as_real(far)).all()):
        raise FloatingPointError(f"{owner} returned a NaN or infinite {plane}.")
