"""Calibrated twins: a nominal twin whose chosen physical constants become ``nn.Parameter`` s fitted
to plant measurements (by :func:`pnnlab.twins.fit.fit_twin`).

:class:`CalibratedTwin` is general: it wraps any :class:`Twin` whose constants are attributes read at
forward time (floats, tensors or buffers, addressed by dotted paths such as ``"coefficient"`` or
``"dispersion.gdd"``). The user names which constants to fit (:class:`Constant`); every other constant
keeps its design value. Before each forward pass the current values are written into the wrapped
twin, so gradients flow to the parameters.

:class:`SHGCalibratableTwin` is the SHG design physics (Wright et al., Nature 601, 549 (2022),
doi:10.1038/s41586-021-04223-6; equations in :mod:`pnnlab.plants.optics.shg`) with its constants read
at forward time: residual dispersion (GDD, TOD), the phase-stroke scale, per-pixel amplitude gains and a
detector saturation level ``L`` (``y -> L tanh(y / L)``, the saturating-detector law documented for the
SHG plant; a large ``L`` is a linear detector) and the Fourier-plane spot size ``resolution_pixels``
(the plant's extra blur adds in quadrature to the design spot). At the design values it equals
:class:`~pnnlab.plants.optics.shg_twin.SHGTwin`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn

from .._validation import check_positive
from .base import Twin

__all__ = ["CalibratedTwin", "Constant", "SHGCalibratableTwin"]


@dataclass(frozen=True)
class Constant:
    """One physical constant to fit: ``path`` (dotted attribute path inside the wrapped twin).

    ``positive=True`` fits it in log space (value = initial * exp(raw)); otherwise value =
    initial + scale * raw, with ``scale`` (same units as the constant) defaulting to |initial| (or 1
    when the initial value is 0): pass the size of the expected correction, e.g. ``scale=100.0`` for a
    dispersion in fs^2, so that one learning rate suits every constant.
    """

    path: str
    positive: bool = False
    scale: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path or any(not p.isidentifier() for p in self.path.split(".")):
            raise ValueError(f"Constant.path must be a dotted attribute path such as 'coefficient', got {self.path!r}.")
        if self.scale is not None:
            check_positive("Constant.scale", self.scale)


def _resolve(root, path: str):
    *parents, leaf = path.split(".")
    owner = root
    for part in parents:
        owner = getattr(owner, part)
    return owner, leaf


def _get(owner, leaf):
    if isinstance(owner, nn.Module) and leaf in owner._buffers:
        return owner._buffers[leaf]
    return getattr(owner, leaf)


def _set(owner, leaf, value: torch.Tensor) -> None:
    if isinstance(owner, nn.Module) and leaf in owner._buffers:
        owner._buffers[leaf] = value
    else:
        object.__setattr__(owner, leaf, value)


class CalibratedTwin(Twin):
    """A copy of ``twin`` whose ``constants`` (paths or :class:`Constant` s) are fitted parameters.

    >>> twin = CalibratedTwin(plant.nominal_twin(), constants=[Constant("coefficient", positive=True)])
    >>> twin, report = fit_twin(twin, (x, controls, y), epochs=200, lr=0.05)
    >>> twin.values()["coefficient"]

    The wrapped twin is deep-copied (the original is untouched). Each constant must be a real number or
    a floating-point or complex tensor (any shape; e.g. a fibre's transmission matrix ``"tm"``), read by the twin's forward pass (a constant baked into a
    precomputed quantity at construction would not be fitted: use a twin that reads it at forward time,
    such as :class:`SHGCalibratableTwin`).
    """

    def __init__(self, twin: Twin, *, constants: Sequence[str | Constant]) -> None:
        if not isinstance(twin, Twin):
            raise TypeError(f"twin must be a pnnlab Twin, got {type(twin).__name__}; pass e.g. plant.nominal_twin().")
        specs = [c if isinstance(c, Constant) else Constant(c) for c in constants]
        if not specs:
            raise ValueError("constants is empty; name at least one constant of the twin to fit, e.g. ['coefficient'].")
        if len({s.path for s in specs}) != len(specs):
            raise ValueError(f"constants names a path twice: {[s.path for s in specs]}.")
        super().__init__(in_features=twin.in_features, out_features=twin.out_features)
        self.base = copy.deepcopy(twin)
        for p in self.base.parameters():
            p.requires_grad_(False)  # only the named constants are fitted
        self.specs = tuple(specs)
        self.raw = nn.ParameterDict()
        self._initial: dict[str, torch.Tensor] = {}
        for spec in specs:
            try:
                owner, leaf = _resolve(self.base, spec.path)
                value = _get(owner, leaf)
            except AttributeError as error:
                raise ValueError(f"the twin {type(twin).__name__} has no constant {spec.path!r} ({error}); "
                                 f"name an attribute its forward pass reads.") from None
            if isinstance(value, float):
                initial = torch.tensor(float(value), dtype=torch.float64)
            elif isinstance(value, torch.Tensor) and (value.is_floating_point() or value.is_complex()):
                initial = value.detach().clone()
            else:
                raise TypeError(f"constant {spec.path!r} of {type(twin).__name__} is a {type(value).__name__}; "
                                f"only real numbers and floating-point or complex tensors can be fitted.")
            if spec.positive and initial.is_complex():
                raise ValueError(f"constant {spec.path!r} is complex and cannot be fitted as positive; drop "
                                 f"positive=True (a complex constant such as a transmission matrix is fitted "
                                 f"as initial + scale * raw, raw complex).")
            if spec.positive and bool((initial <= 0).any()):
                raise ValueError(f"constant {spec.path!r} is fitted as positive but its initial value "
                                 f"{initial.tolist()} is not > 0; drop positive=True or start from a positive value.")
            key = spec.path.replace(".", "__")
            self._initial[spec.path] = initial
            self.raw[key] = nn.Parameter(torch.zeros_like(initial))

    def _value(self, spec: Constant) -> torch.Tensor:
        raw = self.raw[spec.path.replace(".", "__")]
        initial = self._initial[spec.path].to(raw.device)
        if spec.positive:
            return initial * torch.exp(raw)
        scale = spec.scale if spec.scale is not None else (
            initial.abs().clamp_min(1e-30) if bool((initial != 0).all()) else torch.ones_like(initial))
        return initial + scale * raw

    def values(self) -> dict[str, torch.Tensor]:
        """The current (fitted) values of the constants, detached."""
        return {s.path: self._value(s).detach().clone() for s in self.specs}

    def forward(self, x, controls):
        for spec in self.specs:
            owner, leaf = _resolve(self.base, spec.path)
            _set(owner, leaf, self._value(spec))
        return self.base(x, controls)


class SHGCalibratableTwin(Twin):
    """SHG design physics whose constants are buffers read at forward time (see the module docstring):
    ``group_delay_dispersion_fs2``, ``third_order_dispersion_fs3`` (design 0), ``phase_scale`` (design 1),
    ``pixel_gains`` (one per shaper pixel, design 1; transmission clipped at 1 as in the plant),
    ``resolution_pixels`` (spot standard deviation, in pixels; design: the layout's) and
    ``saturation_level`` (design: ``inf``, a linear detector; give a finite start such as 1.0 to fit it,
    in units of P_ref). Layout arguments as for :class:`~pnnlab.plants.optics.shg.SHGPlant`; build one
    from a plant's public layout with :meth:`from_layout`.
    """

    def __init__(self, *, layout: Mapping, saturation_level: float = math.inf) -> None:
        from ..plants.optics.shg_physics import SpectralPhase, _check_layout, _SHGPhysics
        layout = _check_layout(**layout)
        super().__init__(in_features=layout["n_inputs"], out_features=layout["n_outputs"])
        self.layout = dict(layout)
        self._physics = _SHGPhysics(**layout, dispersion=SpectralPhase(), gains=None, phase_scale=1.0,
                                    blur_pixels=0.0, saturation=None)
        k = self._physics.n_pixels * layout["points_per_pixel"]
        nu = layout["shaper_bandwidth_THz"] * 1e12 * ((torch.arange(k, dtype=torch.float64) + 0.5) / k - 0.5)
        self.register_buffer("omega_fs", 2 * math.pi * nu * 1e-15)  # rad per fs
        self.register_buffer("envelope", torch.exp(-2 * math.log(2) * (nu / (layout["laser_fwhm_THz"] * 1e12)) ** 2))
        u = (torch.arange(k, dtype=torch.float64) + 0.5) / layout["points_per_pixel"]
        self.register_buffer("pixel_offset", u[:, None] - torch.arange(self._physics.n_pixels, dtype=torch.float64))
        self.register_buffer("resolution_pixels", torch.tensor(float(layout["resolution_pixels"]), dtype=torch.float64))
        self.register_buffer("group_delay_dispersion_fs2", torch.tensor(0.0, dtype=torch.float64))
        self.register_buffer("third_order_dispersion_fs3", torch.tensor(0.0, dtype=torch.float64))
        self.register_buffer("phase_scale", torch.tensor(1.0, dtype=torch.float64))
        self.register_buffer("pixel_gains", torch.ones(self._physics.n_pixels, dtype=torch.float64))
        level = float(saturation_level)
        if not level > 0:
            raise ValueError(f"saturation_level must be > 0 (math.inf for a linear detector), got {saturation_level!r}.")
        self.register_buffer("saturation_level", torch.tensor(level, dtype=torch.float64))

    @classmethod
    def from_layout(cls, plant, *, saturation_level: float = math.inf) -> "SHGCalibratableTwin":
        """From an :class:`SHGPlant`'s public layout (design values; reads none of its hidden truth)."""
        return cls(layout=plant.layout, saturation_level=saturation_level)

    def forward(self, x, controls):
        p = self._physics
        batch = x.shape[0]
        amplitude = controls["amplitude"].to(torch.float64)
        phase = controls["phase"].to(torch.float64)
        a = torch.empty(batch, p.n_pixels, dtype=torch.float64)
        a = a.index_copy(1, p.input_pixels, x.to(torch.float64))
        a = a.index_copy(1, p.control_pixels, amplitude.expand(batch, -1))
        a = (a * self.pixel_gains).clamp_max(1.0)
        pixels = torch.polar(a, (self.phase_scale * phase).expand(batch, -1))
        w = self.omega_fs
        phi_d = 0.5 * self.group_delay_dispersion_fs2 * w ** 2 + self.third_order_dispersion_fs3 * w ** 3 / 6.0
        # shaper response of grid point k to pixel p: a rectangle convolved with the Gaussian spot
        spot = math.sqrt(2.0) * self.resolution_pixels.clamp_min(1e-6)
        d = self.pixel_offset
        response = 0.5 * (torch.erf(d / spot) - torch.erf((d - 1.0) / spot))  # (K, P)
        field = torch.polar(self.envelope, phi_d)  # (K,)
        transfer = (response.to(torch.complex128) * field[:, None]).T
        y = p._bin_power(pixels.to(torch.complex128) @ transfer) / p.reference_power
        level = self.saturation_level
        if torch.isfinite(level):
            y = level * torch.tanh(y / level)
        return y.to(x.dtype)
