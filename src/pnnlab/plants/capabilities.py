"""Optional capabilities a plant declares by inheriting from these mixins.

A training method lists what it needs (see :mod:`pnnlab.methods.base`); training checks the model's
plants before the first step. Each capability names the extra hardware operations it provides.
"""

from __future__ import annotations

import abc
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
                                        checked, nudge=nudge, initial=initial)
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


class Reciprocal(Capability):
    """The plant can be driven backwards and interfere forward and adjoint fields
    (for in-situ adjoint gradients)."""

    offers = "backward fields and interference measurements"


class ParameterShift(Capability):
    """Quantum-circuit style plants whose expectation values obey the parameter-shift rule."""

    offers = "exact gradients from two shifted evaluations per parameter"


class Dynamical(Capability):
    """Time-stepped plants whose state can be read at intermediate times."""

    offers = "access to the trajectory of the physical state"
