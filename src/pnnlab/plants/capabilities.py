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
        x = check_batch("x", x, self.in_features).detach().to(self.device)
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
            if value.device != self.device:
                nudge = type(nudge)(value.detach().to(self.device))
        if initial is not None and not isinstance(initial, Equilibrium):
            raise TypeError(f"initial must be an Equilibrium returned by relax(), got {type(initial).__name__}.")
        gen = check_generator("generator", generator) or self._generator
        def checked(state):
            _check_equilibrium(self, state, x)
            return state
        return self._query("relax", x, controls, lambda: self._relax(x, controls, nudge, initial, gen), checked,
                           nudge=nudge, initial=initial, generator=generator)

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
        u = _check_series(u, self.input_dim).to(self.device)
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


# The capabilities of optical plants whose gradients are measured with light live in their own module
# and are re-exported here, so ``from pnnlab.plants.capabilities import Reciprocal`` keeps working.
from .light_passes import (AmplitudeModulated, FieldPass, ForwardSymmetric, PhaseModulated,  # noqa: E402,F401
                           PlaneFields, Reciprocal)
