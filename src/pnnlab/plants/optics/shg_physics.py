"""The SHG physics shared by :class:`~pnnlab.plants.optics.shg.SHGPlant` (with its hidden truth) and
its twins (:mod:`pnnlab.plants.optics.shg_twin`, design values): the pulse shaper's transfer onto a fine
frequency grid, the thin-crystal second harmonic as the self-convolution of the spectrum
(Boyd, *Nonlinear Optics*; Weiner, *Ultrafast Optics*, ch. 9), the binned spectrometer, and the two
physical laws this forward map applies, the residual spectral phase (:class:`SpectralPhase`) and the
saturating detector (:class:`DetectorSaturation`). Equations and simplifications: the docstring of
:mod:`pnnlab.plants.optics.shg`, after Wright et al., "Deep physical neural networks trained with
backpropagation", Nature 601, 549-555 (2022), doi:10.1038/s41586-021-04223-6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..._validation import check_finite_float, check_int, check_nonnegative, check_positive

__all__ = ["DetectorSaturation", "SpectralPhase", "second_harmonic_field"]

_FS = 1e-15


@dataclass(frozen=True)
class SpectralPhase:
    """Unknown residual spectral phase phi_d(Omega) = GDD Omega^2 / 2 + TOD Omega^3 / 6 (dispersion).

    ``group_delay_dispersion_fs2`` in fs^2 (fused silica adds about 36 fs^2 per mm at 800 nm),
    ``third_order_dispersion_fs3`` in fs^3 (about 27 fs^3 per mm of fused silica at 800 nm).
    """

    group_delay_dispersion_fs2: float = 0.0
    third_order_dispersion_fs3: float = 0.0

    def __post_init__(self) -> None:
        check_finite_float("SpectralPhase.group_delay_dispersion_fs2", self.group_delay_dispersion_fs2)
        check_finite_float("SpectralPhase.third_order_dispersion_fs3", self.third_order_dispersion_fs3)

    @property
    def active(self) -> bool:
        return self.group_delay_dispersion_fs2 != 0.0 or self.third_order_dispersion_fs3 != 0.0


@dataclass(frozen=True)
class DetectorSaturation:
    """Saturating detector: y_measured = level * tanh(y / level), ``level`` in units of the output
    normalisation P_ref (1.0 = the brightest bin of the transform-limited full pulse)."""

    level: float = 1.0

    def __post_init__(self) -> None:
        check_positive("DetectorSaturation.level", self.level)

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return self.level * torch.tanh(y / self.level)


def second_harmonic_field(field_spectrum: torch.Tensor) -> torch.Tensor:
    """E_SH[W] = sum_k E[k] E[W - k]: the self-convolution of a complex spectrum on a uniform grid
    (last axis, length K), returned on the sum-frequency grid of length 2K - 1. Computed as the
    square of the (zero-padded) time-domain field."""
    k = int(field_spectrum.shape[-1])  # a plain int also under torch.jit.trace (the edge export)
    n = 1 << (2 * k - 2).bit_length()  # power of two >= 2K - 1
    spectrum = torch.fft.fft(field_spectrum, n=n, dim=-1)
    return torch.fft.ifft(spectrum * spectrum, dim=-1)[..., : 2 * k - 1]


def _pixel_response(n_pixels: int, points_per_pixel: int, blur_pixels: float) -> torch.Tensor:
    """R[k, p]: response of grid point k to pixel p (rectangle convolved with a Gaussian), (K, P)."""
    u = (torch.arange(n_pixels * points_per_pixel, dtype=torch.float64, device=_CPU) + 0.5) / points_per_pixel
    p = torch.arange(n_pixels, dtype=torch.float64, device=_CPU)
    d = u[:, None] - p[None, :]
    if blur_pixels == 0.0:
        return ((d >= 0) & (d < 1)).to(torch.float64)
    s = math.sqrt(2.0) * blur_pixels
    return 0.5 * (torch.erf(d / s) - torch.erf((d - 1.0) / s))


_CPU = torch.device("cpu")


class _SHGPhysics:
    """Precomputed grids and the forward map for one set of physical constants (float64 inside).

    The grids are built on the CPU (design constants, the same numbers everywhere) and copied to the device
    of the data on first use there (:meth:`_on`, one copy per device), so the plant, its twins and a model
    moved with ``model.to(device)`` all compute where their inputs are."""

    def __init__(self, *, n_inputs: int, n_outputs: int, control_pixels_per_input: int,
                 points_per_pixel: int, shaper_bandwidth_THz: float, laser_fwhm_THz: float,
                 resolution_pixels: float, detector_span: float, dispersion: SpectralPhase,
                 gains: torch.Tensor | None, phase_scale: float, blur_pixels: float,
                 saturation: DetectorSaturation | None, reference_power: float | None = None) -> None:
        r = control_pixels_per_input
        self.n_pixels = n_inputs * (1 + r)
        index = torch.arange(self.n_pixels, device=_CPU)
        self.input_pixels = index[index % (1 + r) == 0]
        self.control_pixels = index[index % (1 + r) != 0]
        k = self.n_pixels * points_per_pixel
        nu = shaper_bandwidth_THz * 1e12 * ((torch.arange(k, dtype=torch.float64, device=_CPU) + 0.5) / k - 0.5)  # Hz
        omega = 2 * math.pi * nu  # rad/s
        envelope = torch.exp(-2 * math.log(2) * (nu / (laser_fwhm_THz * 1e12)) ** 2)
        phase = (0.5 * dispersion.group_delay_dispersion_fs2 * _FS ** 2 * omega ** 2
                 + dispersion.third_order_dispersion_fs3 * _FS ** 3 * omega ** 3 / 6.0)
        blur = math.sqrt(resolution_pixels ** 2 + blur_pixels ** 2)
        response = _pixel_response(self.n_pixels, points_per_pixel, blur)
        # (P, K) complex matrix: pixel pattern -> fundamental field on the grid
        self.transfer = (response * (envelope * torch.exp(1j * phase))[:, None]).T.to(torch.complex128)
        self.gains = None if gains is None else gains.to(_CPU)
        self.phase_scale = phase_scale
        self.saturation = saturation
        # detector bins over the central fraction of the SH band (length 2K - 1, centre K - 1)
        n_sh = 2 * k - 1
        centre, half = k - 1, detector_span * (k - 1)
        edges = torch.linspace(centre - half, centre + half, n_outputs + 1, dtype=torch.float64, device=_CPU)
        w = torch.arange(n_sh, dtype=torch.float64, device=_CPU)
        # fractional overlap of the unit cell [w - 1/2, w + 1/2] with each bin
        lo = torch.maximum(w[:, None] - 0.5, edges[None, :-1])
        hi = torch.minimum(w[:, None] + 0.5, edges[None, 1:])
        self.bins = (hi - lo).clamp_min(0.0)  # (2K - 1, N)
        self._copies: dict[torch.device, dict[str, torch.Tensor | None]] = {}
        if reference_power is None:
            full = torch.ones(1, self.n_pixels, dtype=torch.complex128, device=_CPU)
            ideal = self.transfer_free(full)
            reference_power = float(self._bin_power(ideal).max())
        self.reference_power = reference_power

    def _on(self, device: torch.device) -> dict[str, torch.Tensor | None]:
        """The grids on ``device`` (the CPU originals, or a cached copy)."""
        if device == _CPU:
            return {"transfer": self.transfer, "bins": self.bins, "input_pixels": self.input_pixels,
                    "control_pixels": self.control_pixels, "gains": self.gains}
        if device not in self._copies:
            self._copies[device] = {name: None if t is None else t.to(device) for name, t in self._on(_CPU).items()}
        return self._copies[device]

    def transfer_free(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels @ self._on(pixels.device)["transfer"]

    def _bin_power(self, field_spectrum: torch.Tensor) -> torch.Tensor:
        sh = second_harmonic_field(field_spectrum)
        return (sh.real ** 2 + sh.imag ** 2) @ self._on(field_spectrum.device)["bins"]

    def forward(self, x: torch.Tensor, amplitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """x (B, n_inputs) in [0, 1], amplitude (n_control,) in [0, 1], phase (P,) rad -> (B, N), on x's device."""
        batch = x.shape[0]
        grids = self._on(x.device)
        a = torch.empty(batch, self.n_pixels, dtype=torch.float64, device=x.device)
        a = a.index_copy(1, grids["input_pixels"], x.to(torch.float64))
        a = a.index_copy(1, grids["control_pixels"], amplitude.to(torch.float64).expand(batch, -1))
        if grids["gains"] is not None:
            a = (a * grids["gains"]).clamp_max(1.0)  # passive pixels: transmission <= 1
        phi = self.phase_scale * phase.to(torch.float64)
        pixels = torch.polar(a, phi.expand(batch, -1))
        y = self._bin_power(pixels @ grids["transfer"]) / self.reference_power
        if self.saturation is not None:
            y = self.saturation(y)
        return y.to(x.dtype)


def _check_layout(n_inputs, n_outputs, control_pixels_per_input, points_per_pixel, shaper_bandwidth_THz,
                  laser_fwhm_THz, resolution_pixels, detector_span) -> dict:
    detector_span = check_positive("detector_span", detector_span)
    if detector_span > 1.0:
        raise ValueError(f"detector_span must be in (0, 1] (the fraction of the second-harmonic band the "
                         f"spectrometer bins cover), got {detector_span!r}; pass e.g. detector_span=0.5.")
    return dict(n_inputs=check_int("n_inputs", n_inputs), n_outputs=check_int("n_outputs", n_outputs),
                control_pixels_per_input=check_int("control_pixels_per_input", control_pixels_per_input),
                points_per_pixel=check_int("points_per_pixel", points_per_pixel),
                shaper_bandwidth_THz=check_positive("shaper_bandwidth_THz", shaper_bandwidth_THz),
                laser_fwhm_THz=check_positive("laser_fwhm_THz", laser_fwhm_THz),
                resolution_pixels=check_nonnegative("resolution_pixels", resolution_pixels),
                detector_span=detector_span)
