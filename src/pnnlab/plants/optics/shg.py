"""Broadband second-harmonic generation (SHG) of a pulse-shaped ultrafast pulse: the SHG-PNN of
Wright, Onodera, Stein, Wang, Xie, Hu, Wang & McMahon, "Deep physical neural networks trained with
backpropagation", Nature 601, 549-555 (2022), doi:10.1038/s41586-021-04223-6.

Physics implemented (all vectorised over the batch)
---------------------------------------------------
A pulse shaper with ``P`` pixels writes the data and the trainable settings into the spectrum of a
femtosecond pulse. Pixel ``p`` has a complex transmission ``m_p = a_p exp(i phi_p)``: the amplitude
``a_p`` of an *input pixel* is an input feature (in [0, 1]); the amplitude of a *control pixel* and the
phase of every pixel are trainable controls. The pixels are laid out interleaved,
``[x_0, c, c, x_1, c, c, ...]`` (``control_pixels_per_input`` control pixels after each input pixel), so
that every input pixel has control pixels at every spectral distance and mixes with them in the crystal.

The shaper has finite resolution: its complex transfer function on a fine frequency grid
``Omega_k`` (``points_per_pixel`` grid points per pixel) is the pixel pattern smoothed by the Gaussian
spot of the Fourier plane (standard deviation ``resolution_pixels``):

    H(Omega_k) = sum_p m_p R_kp,   R_kp = [erf((u_k - p) / (sqrt2 s)) - erf((u_k - p - 1) / (sqrt2 s))] / 2

(a rectangular pixel convolved with a Gaussian; ``u_k`` is the grid position in pixel units). The
fundamental spectral field is

    E(Omega) = A_0(Omega) H(Omega) exp(i phi_d(Omega)),     A_0 = exp(-2 ln2 (Omega / 2 pi)^2 / FWHM^2)

(Gaussian laser spectrum of intensity full width ``laser_fwhm_THz``; ``phi_d`` is the spectral phase
the optics add, zero by design). In the undepleted-pump, perfectly phase-matched (thin-crystal) limit
the second-harmonic field is the square of the time-domain field, i.e. the self-convolution of the
spectrum (Boyd, *Nonlinear Optics*; Weiner, *Ultrafast Optics*, ch. 9):

    E_SH(2 omega_0 + W) = sum_Omega E(Omega) E(W - Omega),

computed with zero-padded FFTs. A spectrometer integrates the SH power spectrum ``|E_SH(W)|^2`` over
``n_outputs`` equal, contiguous bins covering the central fraction ``detector_span`` of the SH band:

    y_j = sum_{W in bin j} |E_SH(W)|^2 / P_ref,

normalised by ``P_ref``, the largest bin power of the transform-limited, fully transmitted pulse (so
outputs are of order 0.01-1).

Hidden truth (the plant's, never the nominal twin's): an :class:`SHGMismatch` recipe with an unknown
spectral phase ``phi_d = GDD Omega^2 / 2 + TOD Omega^3 / 6`` (residual dispersion of lenses, windows and
the crystal), a shaper transfer error (per-pixel amplitude-gain error, clipped so that a passive pixel
never transmits more than 1; phase-stroke calibration error; extra blur/crosstalk of the Fourier-plane
spot) and a saturating detector ``y -> L tanh(y / L)``; and :class:`DetectorNoise` (read noise,
shot-like noise with variance proportional to the signal). All are off by default.

Two twins (:class:`pnnlab.plants.capabilities.Simulated`): ``nominal_twin()`` is the design physics
(no dispersion, ideal shaper of nominal resolution, linear noiseless detector) and never reads the
truth; ``true_twin()`` is this plant's hidden physics (its dispersion, its drawn per-pixel gains, its
phase-stroke error, blur and saturation) with the detector noise off: for diagnostics and the ideal
bound only.

Code layout: this module holds the hidden-truth recipe (:class:`ShaperError`, :class:`SHGMismatch`,
:class:`DetectorNoise`) and the plant; the forward map and the laws it applies (:class:`SpectralPhase`,
:class:`DetectorSaturation`, :func:`second_harmonic_field`) are in :mod:`pnnlab.plants.optics.shg_physics`,
the twins (:class:`SHGTwin`, :class:`SHGTrueTwin`) in :mod:`pnnlab.plants.optics.shg_twin`; all are
re-exported here.

Simplifications: pixels are linear in frequency (a real shaper is linear in position, close to
linear in wavelength); the crystal is thin (no phase-matching envelope, no group-velocity mismatch, no
pump depletion); the SH field is computed up to a constant prefactor (chi^(2), crystal length), absorbed
in ``P_ref``; polarisation and spatial effects are ignored; the spectrometer bins are ideal rectangles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ... import devices
from ..._validation import check_finite_float, check_nonnegative, check_positive
from ...metering import CostModel
from ..base import ControlSpec, Plant
from ..capabilities import Simulated
from .shg_physics import DetectorSaturation, SpectralPhase, _check_layout, _SHGPhysics, second_harmonic_field
from .shg_twin import SHGTrueTwin, SHGTwin

__all__ = ["DetectorNoise", "DetectorSaturation", "SHGMismatch", "SHGPlant", "SHGTrueTwin", "SHGTwin", "ShaperError",
           "SpectralPhase", "second_harmonic_field"]


# ---------------------------------------------------------------------------------------------
# The hidden truth: mismatch recipe and detector noise (frozen dataclasses, all off by default;
# SpectralPhase and DetectorSaturation, which the forward map applies, are in shg_physics.py)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShaperError:
    """Pulse-shaper transfer error.

    ``gain_error_std``: relative standard deviation of a per-pixel amplitude-gain (calibration) error,
    g_p ~ N(0, std), drawn once per plant from its seed: a_true = min(a (1 + g_p), 1), with 1 + g_p
    floored at 0.1. The shaper is passive, so no pixel transmits more than the full field (a_true <= 1);
    a pixel whose gain is high saturates at full transmission.
    ``phase_scale_error``: relative error of the phase stroke (phi_true = (1 + e) phi), e.g. a
    liquid-crystal calibration made at another wavelength or temperature.
    ``extra_blur_pixels``: additional Gaussian blur of the Fourier-plane spot, in pixel widths (the true
    resolution is sqrt(s_nominal^2 + s_extra^2)): pixel crosstalk the design did not account for.
    """

    gain_error_std: float = 0.0
    phase_scale_error: float = 0.0
    extra_blur_pixels: float = 0.0

    def __post_init__(self) -> None:
        check_nonnegative("ShaperError.gain_error_std", self.gain_error_std)
        value = check_finite_float("ShaperError.phase_scale_error", self.phase_scale_error)
        if value <= -1.0:
            raise ValueError(f"ShaperError.phase_scale_error must be > -1 (phi_true = (1 + e) phi), got "
                             f"{value!r}; use a small relative error such as 0.05.")
        check_nonnegative("ShaperError.extra_blur_pixels", self.extra_blur_pixels)

    @property
    def active(self) -> bool:
        return bool(self.gain_error_std or self.phase_scale_error or self.extra_blur_pixels)


@dataclass(frozen=True)
class SHGMismatch:
    """What the true SHG plant has and the nominal twin lacks. Every part is off by default;
    :meth:`typical` is the recipe used by the vowel benchmark."""

    dispersion: SpectralPhase = field(default_factory=SpectralPhase)
    shaper: ShaperError = field(default_factory=ShaperError)
    detector: DetectorSaturation | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.dispersion, SpectralPhase):
            raise TypeError(f"SHGMismatch.dispersion must be a SpectralPhase, got "
                            f"{type(self.dispersion).__name__}; write SpectralPhase(group_delay_dispersion_fs2=...).")
        if not isinstance(self.shaper, ShaperError):
            raise TypeError(f"SHGMismatch.shaper must be a ShaperError, got {type(self.shaper).__name__}; "
                            f"write ShaperError(gain_error_std=...).")
        if self.detector is not None and not isinstance(self.detector, DetectorSaturation):
            raise TypeError(f"SHGMismatch.detector must be a DetectorSaturation or None, got "
                            f"{type(self.detector).__name__}; write DetectorSaturation(level=...).")

    @classmethod
    def typical(cls) -> "SHGMismatch":
        """The recipe of the vowel benchmark: realistic, and harmful enough that in-silico training
        clearly suffers. 350 fs^2 of unknown group-delay dispersion (about 1 cm of fused silica that the
        design ignored) and 5000 fs^3 of third-order dispersion (a slightly mis-set compressor), 10 %
        per-pixel gain errors, a 5 % phase-stroke error, 0.3 pixel of extra spot blur, and a detector
        saturating at 0.05 P_ref (well above the operating level of trained networks, about 1e-3 P_ref:
        with a saturation level close to it, a twin with a linear detector lets physics-aware training
        drive the outputs into saturation; see docs/substrates/shg.md)."""
        return cls(dispersion=SpectralPhase(group_delay_dispersion_fs2=350.0, third_order_dispersion_fs3=5000.0),
                   shaper=ShaperError(gain_error_std=0.10, phase_scale_error=0.05, extra_blur_pixels=0.3),
                   detector=DetectorSaturation(level=0.05))

    @property
    def active(self) -> bool:
        return self.dispersion.active or self.shaper.active or self.detector is not None


@dataclass(frozen=True)
class DetectorNoise:
    """Spectrometer noise, in units of P_ref: Gaussian read noise of standard deviation ``read_noise``
    plus shot-like noise of standard deviation ``shot_noise * sqrt(y)`` (variance proportional to the
    signal). Both 0 (off) by default."""

    read_noise: float = 0.0
    shot_noise: float = 0.0

    def __post_init__(self) -> None:
        check_nonnegative("DetectorNoise.read_noise", self.read_noise)
        check_nonnegative("DetectorNoise.shot_noise", self.shot_noise)

    @property
    def active(self) -> bool:
        return bool(self.read_noise or self.shot_noise)

    def sample(self, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if not self.active:
            return y
        var = self.read_noise ** 2 + self.shot_noise ** 2 * y.clamp_min(0.0)
        return y + var.sqrt() * devices.randn_like(y, generator=generator)  # drawn on the generator's device


# ---------------------------------------------------------------------------------------------
# Plant (its twins are in shg_twin.py, the shared physics in shg_physics.py)
# ---------------------------------------------------------------------------------------------


class SHGPlant(Plant, Simulated):
    """Broadband SHG of a pulse-shaped femtosecond pulse, read out by a binned spectrometer
    (the SHG-PNN of Wright et al., Nature 601, 549 (2022), doi:10.1038/s41586-021-04223-6).

    Inputs: ``n_inputs`` pixel amplitudes in [0, 1] (the model's fixed encoding maps features there).
    Controls: ``amplitude`` of the ``n_inputs * control_pixels_per_input`` control pixels, in [0, 1],
    and ``phase`` of every pixel, in [-phase_range_rad, phase_range_rad].
    Outputs: ``n_outputs`` binned second-harmonic powers in units of P_ref (see the module docstring
    for the equations, the pixel layout and the simplifications).

    Parameters
    ----------
    shaper_bandwidth_THz: spectral span of the shaper pixels (20 THz is about 43 nm at 800 nm).
    laser_fwhm_THz: intensity FWHM of the Gaussian laser spectrum (30 THz is a ~15 fs pulse).
    resolution_pixels: standard deviation of the Fourier-plane spot, in pixel widths.
    detector_span: fraction of the SH band, around its centre, that the spectrometer bins cover.
    phase_range_rad: phase stroke of the shaper, +/- this value (a 4 pi liquid-crystal stroke by default).
    mismatch: the hidden truth (:class:`SHGMismatch`), or the preset name ``"typical"``
        (:meth:`SHGMismatch.typical`); None or ``SHGMismatch()`` for the design physics.
    noise: detector noise (:class:`DetectorNoise`), or ``"typical"`` (read noise 1e-5, shot noise 1e-4
        in units of P_ref, :data:`pnnlab.models.shg_classifier.TYPICAL_NOISE`); None for a noiseless detector.
    cost: device time and energy per query (default: the assumed constants of :meth:`default_cost`).
    seed: seeds the per-pixel gain errors and the detector noise.
    """

    summary = "broadband second-harmonic generation of a pulse-shaped ultrafast pulse (SHG-PNN, Wright et al. 2022)"

    def __init__(self, *, n_inputs: int, n_outputs: int, control_pixels_per_input: int = 2,
                 points_per_pixel: int = 4, shaper_bandwidth_THz: float = 20.0,
                 laser_fwhm_THz: float = 30.0, resolution_pixels: float = 0.3,
                 detector_span: float = 0.5, phase_range_rad: float = 2 * math.pi,
                 mismatch: SHGMismatch | str | None = None, noise: DetectorNoise | str | None = None,
                 cost: CostModel | None = None, seed: int | torch.Generator | None = 0) -> None:
        layout = _check_layout(n_inputs, n_outputs, control_pixels_per_input, points_per_pixel,
                               shaper_bandwidth_THz, laser_fwhm_THz, resolution_pixels, detector_span)
        if isinstance(mismatch, str) or isinstance(noise, str):
            # preset names ("typical"), so that `pnnlab serve --plant shg --plant-args '{"mismatch": "typical"}'`
            # and experiment files can build the plant; the presets live with the classifier that uses them
            from ...models.shg_classifier import mismatch_from, noise_from
            mismatch, noise = mismatch_from(mismatch), noise_from(noise)
        if mismatch is None:
            mismatch = SHGMismatch()
        if not isinstance(mismatch, SHGMismatch):
            raise TypeError(f"mismatch must be an SHGMismatch or None, got {type(mismatch).__name__}; write "
                            f"mismatch=SHGMismatch.typical() or SHGMismatch(dispersion=SpectralPhase(...)).")
        if noise is None:
            noise = DetectorNoise()
        if not isinstance(noise, DetectorNoise):
            raise TypeError(f"noise must be a DetectorNoise or None, got {type(noise).__name__}; write "
                            f"noise=DetectorNoise(read_noise=0.002, shot_noise=0.01).")
        if cost is not None and not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a pnnlab CostModel or None, got {type(cost).__name__}.")
        super().__init__(in_features=layout["n_inputs"], out_features=layout["n_outputs"],
                         cost=cost if cost is not None else self.default_cost(), seed=seed)
        self.layout = layout
        self.phase_range_rad = check_positive("phase_range_rad", phase_range_rad)
        n_pixels = layout["n_inputs"] * (1 + layout["control_pixels_per_input"])
        self.n_pixels = n_pixels
        # ---- hidden truth: private, read by nothing but _measure ----
        self._mismatch = mismatch
        self._noise = noise
        gains = None
        if mismatch.shaper.gain_error_std:
            draw = devices.randn((n_pixels,), generator=self._generator, device="cpu", dtype=torch.float64)
            gains = (1.0 + mismatch.shaper.gain_error_std * draw).clamp_min(0.1)
        # the output normalisation P_ref is a design quantity: take it from the nominal physics
        reference = _SHGPhysics(**layout, dispersion=SpectralPhase(), gains=None, phase_scale=1.0,
                                blur_pixels=0.0, saturation=None).reference_power
        self._physics = _SHGPhysics(**layout, dispersion=mismatch.dispersion, gains=gains,
                                    phase_scale=1.0 + mismatch.shaper.phase_scale_error,
                                    blur_pixels=mismatch.shaper.extra_blur_pixels,
                                    saturation=mismatch.detector, reference_power=reference)

    @staticmethod
    def default_cost() -> CostModel:
        """Per sample, one shaper frame and one spectrometer exposure. Assumed constants: a 1 kHz
        shaper refresh (a DMD- or acousto-optic-class shaper; liquid-crystal SLMs take 10-100 ms),
        1 ms spectrometer exposure, and 100 mW average laser power (a typical Ti:sapphire or fibre
        oscillator) during the 2 ms per sample, 0.2 mJ per sample."""
        return CostModel(seconds_per_query=0.0, seconds_per_sample=2e-3, joules_per_query=0.0,
                         joules_per_sample=0.1 * 2e-3,
                         source="assumed: 1 kHz shaper refresh + 1 ms exposure per sample, 100 mW laser")

    def control_specs(self) -> dict[str, ControlSpec]:
        n_control = self.in_features * self.layout["control_pixels_per_input"]
        return {
            "amplitude": ControlSpec((n_control,), 0.0, 1.0, unit="",
                                     description="amplitude transmission of the control pixels"),
            "phase": ControlSpec((self.n_pixels,), -self.phase_range_rad, self.phase_range_rad, unit="rad",
                                 description="spectral phase of every shaper pixel (input and control)"),
        }

    def initial_controls(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Control amplitudes uniform in [0.25, 0.75]; small random phases (std 0.5 rad)."""
        gen = generator if generator is not None else self._generator
        specs = self.control_specs()
        amplitude = 0.25 + 0.5 * torch.rand(specs["amplitude"].shape, generator=gen)
        phase = (0.5 * torch.randn(specs["phase"].shape, generator=gen)).clamp(
            -0.9 * self.phase_range_rad, 0.9 * self.phase_range_rad)
        return {"amplitude": amplitude, "phase": phase}

    def example_inputs(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return torch.rand(batch, self.in_features, generator=gen)

    def _measure(self, x, controls, generator):
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"x holds pixel amplitudes and must lie in [0, 1], got values in [{lo:.4g}, "
                             f"{hi:.4g}]; encode the features first (e.g. torch.sigmoid(x)).")
        y = self._physics.forward(x.clamp(0.0, 1.0), controls["amplitude"], controls["phase"])
        return self._noise.sample(y, generator)

    def nominal_twin(self) -> SHGTwin:
        """The design physics (reads nothing of the hidden truth)."""
        return SHGTwin(**self.layout)

    def true_twin(self) -> SHGTrueTwin:
        """This plant's hidden physics (dispersion, its per-pixel gains, phase-stroke error, blur,
        saturation) with the detector noise off. Diagnostics and the ideal bound only."""
        return SHGTrueTwin(physics=self._physics, in_features=self.in_features, out_features=self.out_features)

    def describe(self) -> str:
        return (f"SHGPlant(n_inputs={self.in_features}, n_outputs={self.out_features}, "
                f"pixels={self.n_pixels})")
