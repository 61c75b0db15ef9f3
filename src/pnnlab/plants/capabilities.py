"""Optional capabilities a plant declares by inheriting from these mixins.

A training method lists what it needs (see :mod:`pnnlab.methods.base`); training checks the model's
plants before the first step. Each capability names the extra hardware operations it provides.
"""

from __future__ import annotations

import abc


class Capability(abc.ABC):
    """Marker base class of all capabilities."""

    #: what the capability offers, for error messages and ``pnnlab list``
    offers: str = ""


class Simulated(Capability):
    """A simulated plant: it can hand out differentiable models of itself.

    ``nominal_twin()`` follows the design values (what a researcher would write down) and never
    reads the hidden truth. ``ideal_twin()`` is the noiseless, mismatch-free physics, used only by
    the *ideal* reference method, which is an upper bound no real hardware reaches.
    """

    offers = "nominal_twin() and ideal_twin(): differentiable models of the designed physics"

    @abc.abstractmethod
    def nominal_twin(self):
        """A twin built from the design values only."""

    def ideal_twin(self):
        """The noiseless, mismatch-free physics. For the substrates shipped here it equals the
        nominal twin; a plant whose design values are themselves uncertain may override it."""
        return self.nominal_twin()


class EnergyBased(Capability):
    """The plant relaxes to the minimum of an energy and exposes local measurements
    (for equilibrium propagation and coupled learning)."""

    offers = "relax(x, controls, nudge) -> state and local_measurements(state)"


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
