"""The physical block and small digital glue.

:class:`PhysicalLayer` owns a plant, optionally a twin, and the plant's controls as trainable
``nn.Parameter`` s mapped into their physical range with ``torch.nn.utils.parametrize`` (a sigmoid
for a bounded setting, a wrap for a periodic one such as a phase).
How it computes (plant, twin, physics-aware) is chosen by the current execution, see
:mod:`pnnlab.execution`.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from ._validation import check_int
from .execution import current_execution
from .plants.base import ControlSpec, Plant
from .plants.capabilities import Simulated
from .twins.base import Twin


class Bounded(nn.Module):
    """Maps an unconstrained parameter into [low, high] with a sigmoid (and back, for initialisation)."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = float(low), float(high)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.low + (self.high - self.low) * torch.sigmoid(raw)

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        p = ((value - self.low) / (self.high - self.low)).clamp(1e-6, 1 - 1e-6)
        return torch.logit(p)


class Periodic(nn.Module):
    """Maps an unconstrained parameter onto one period [low, high) of a periodic setting (a phase):
    ``low + remainder(raw - low, high - low)``. The gradient is 1 everywhere (the remainder's jumps are
    where the hardware's response is continuous), so a trajectory wraps through 2 pi instead of
    slowing down at the range's edges as :class:`Bounded`'s sigmoid does."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = float(low), float(high)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.low + torch.remainder(raw - self.low, self.high - self.low)

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return self.forward(value)


class LowerBounded(nn.Module):
    """Maps an unconstrained parameter into [low, inf) with a softplus."""

    def __init__(self, low: float) -> None:
        super().__init__()
        self.low = float(low)

    def forward(self, raw):
        return self.low + nn.functional.softplus(raw)

    def right_inverse(self, value):
        return torch.log(torch.expm1((value - self.low).clamp_min(1e-6)))


class UpperBounded(nn.Module):
    """Maps an unconstrained parameter into (-inf, high] with a softplus."""

    def __init__(self, high: float) -> None:
        super().__init__()
        self.high = float(high)

    def forward(self, raw):
        return self.high - nn.functional.softplus(raw)

    def right_inverse(self, value):
        return torch.log(torch.expm1((self.high - value).clamp_min(1e-6)))


class Symmetric(nn.Module):
    """Maps a square parameter to its symmetric part (J + J^T) / 2."""

    def forward(self, raw):
        return 0.5 * (raw + raw.transpose(-1, -2))

    def right_inverse(self, value):
        return value


def _range_map(spec: ControlSpec) -> nn.Module | None:
    import math
    lo, hi = math.isfinite(spec.low), math.isfinite(spec.high)
    if spec.periodic:
        return Periodic(spec.low, spec.high)
    if lo and hi:
        return Bounded(spec.low, spec.high)
    if lo:
        return LowerBounded(spec.low)
    if hi:
        return UpperBounded(spec.high)
    return None


class PhysicalLayer(nn.Module):
    """A trainable physical block.

    Parameters
    ----------
    plant:
        the hardware (simulated or real).
    twin:
        optional differentiable model of the plant. It is kept *outside* the module tree so that a
        task optimizer never trains the twin's own constants.
    initial_controls:
        physical starting values; defaults to ``plant.initial_controls()``.
    """

    def __init__(self, plant: Plant, *, twin: Twin | None = None,
                 initial_controls: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        if not isinstance(plant, Plant):
            raise TypeError(f"plant must be a pnnlab Plant, got {type(plant).__name__}; wrap your "
                            f"instrument in a subclass of pnnlab.Plant.")
        if twin is not None and not isinstance(twin, Twin):
            raise TypeError(f"twin must be a pnnlab Twin or None, got {type(twin).__name__}.")
        if twin is not None and (twin.in_features, twin.out_features) != (plant.in_features, plant.out_features):
            raise ValueError(f"twin maps {twin.in_features}->{twin.out_features} features but the plant maps "
                             f"{plant.in_features}->{plant.out_features}; build the twin for this plant.")
        self.plant = plant
        object.__setattr__(self, "_twin", twin)
        specs = plant.control_specs()
        init = dict(initial_controls) if initial_controls is not None else plant.initial_controls()
        init = plant.validate_controls(init)
        self.controls = nn.Module()
        for name, spec in specs.items():
            setattr(self.controls, name, nn.Parameter(init[name].clone().float()))
            if spec.symmetric:
                parametrize.register_parametrization(self.controls, name, Symmetric())
            range_map = _range_map(spec)
            if range_map is not None:
                parametrize.register_parametrization(self.controls, name, range_map)
        self.in_features = plant.in_features
        self.out_features = plant.out_features

    @property
    def twin(self) -> Twin | None:
        return self._twin

    def set_twin(self, twin: Twin | None) -> None:
        """Replace the twin (for example with a calibrated or learned one)."""
        if twin is not None and not isinstance(twin, Twin):
            raise TypeError(f"twin must be a pnnlab Twin or None, got {type(twin).__name__}.")
        object.__setattr__(self, "_twin", twin)

    def require_twin(self) -> Twin:
        if self._twin is None:
            raise RuntimeError(f"This PhysicalLayer on {self.plant.describe()} has no twin, but the current "
                               f"execution needs one; pass twin=... (for a simulated plant, "
                               f"plant.nominal_twin()) or train with a method that needs no twin.")
        return self._twin

    def true_twin(self) -> Twin:
        """The plant's hidden physics with noise off *now* (``plant.true_twin()``, asked afresh on every
        call, since the truth of a drifting or reprogrammed plant changes). For diagnostics and the
        ideal bound only."""
        if not isinstance(self.plant, Simulated):
            raise RuntimeError(f"{self.plant.describe()} is not a simulated plant, so its true physics is "
                               f"unknown; the true gradient and the ideal bound need a simulated plant.")
        return self.plant.true_twin()

    def control_values(self) -> dict[str, torch.Tensor]:
        """Current physical control values (differentiable with respect to the raw parameters)."""
        return {name: getattr(self.controls, name) for name in self.plant.control_specs()}

    def control_parameters(self) -> dict[str, nn.Parameter]:
        """The raw (unconstrained) parameters behind the controls, by control name."""
        out = {}
        for name in self.plant.control_specs():
            if parametrize.is_parametrized(self.controls, name):
                out[name] = self.controls.parametrizations[name].original
            else:
                out[name] = getattr(self.controls, name)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return current_execution().run(self, x)

    def _apply(self, fn, recurse=True):
        """``model.to(device)`` (and ``.cuda()``, ``.cpu()``) also moves the plant and the twin, which live
        outside the module tree; a dtype change (``.double()``) applies to the twin as to the controls."""
        super()._apply(fn, recurse)
        probe = fn(torch.empty(0, device=self.plant.device))  # a dtype-only change keeps the device
        if probe.device != self.plant.device:
            self.plant.to(probe.device)
        if self._twin is not None:
            self._twin._apply(fn, recurse)
        return self

    def extra_repr(self) -> str:
        return f"plant={self.plant.describe()}, twin={'yes' if self._twin is not None else 'none'}"


class ChannelAffine(nn.Module):
    """Digital per-channel scale and offset, y = a * x + b (the only digital trainable part
    allowed around a plant's read-out in the physics-does-the-computing benchmarks)."""

    def __init__(self, features: int, *, scale: float = 1.0, offset: float = 0.0) -> None:
        super().__init__()
        features = check_int("features", features)
        self.scale = nn.Parameter(torch.full((features,), float(scale)))
        self.offset = nn.Parameter(torch.full((features,), float(offset)))

    def forward(self, x):
        return x * self.scale + self.offset


def physical_layers(model: nn.Module) -> list[PhysicalLayer]:
    """All PhysicalLayer s of ``model`` (in module order)."""
    return [m for m in model.modules() if isinstance(m, PhysicalLayer)]


def plants_of(model: nn.Module) -> list[Plant]:
    return [layer.plant for layer in physical_layers(model)]
