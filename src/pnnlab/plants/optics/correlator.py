"""Optical 4f correlator: the convolution layer of a hybrid optical-electronic CNN.

An image is displayed as an amplitude pattern on a spatial light modulator or digital micromirror device
(SLM/DMD) in the front focal plane of lens 1; lens 1 forms its Fourier transform on a programmable
Fourier-plane mask (amplitude and/or phase); lens 2 transforms again onto a camera, which records the
intensity. This is the VanderLugt / 4f correlator (Goodman, *Introduction to Fourier Optics*, 3rd ed.,
sec. 8.3) used as the optical convolution layer of hybrid CNNs by Chang, Sitzmann, Dun, Heidrich &
Wetzstein, "Hybrid optical-electronic convolutional neural networks with optimized diffractive optics for
image classification", Sci. Rep. 8, 12324 (2018), doi:10.1038/s41598-018-30619-y, and Miscuglio, Hu, Li,
Sorger et al., "Massively parallel amplitude-only Fourier neural network", Optica 7, 1812 (2020),
doi:10.1364/OPTICA.402787 (DMD in the Fourier plane, amplitude-only filters, 98 % on MNIST, 54 % on
CIFAR-10 in a hybrid CNN; 10 kHz frame rate). Equations and typical values: docs/substrates/correlator_4f.md;
the lens transform and Zernike terms: :mod:`pnnlab.plants.optics.fourier`.

Physics of one query (vectorised over batch and channels; ``H x W`` image, ``N = H + pad`` rows and
``W + pad`` columns on the padded grid):

1. Input modulator: pixel values ``x`` (clamped to [0, 1]) quantised to ``levels`` grey levels, with an
   amplitude floor from the finite intensity contrast ratio ``CR``: ``a = t0 + (1 - t0) q(x)``,
   ``t0 = CR^(-1/2)`` (the "off" state leaks ``1 / CR`` of the intensity). Placed centred on the padded
   grid (zero outside the modulator: the padding is dark).
2. Lens 1: ``U = -i (dx / du) F[u]`` at the Fourier-plane pitch ``du = lambda f / (N dx)``.
3. Fourier-plane mask, channel ``c``: ``t_c = A_c exp(i phi_c)`` (``A`` in [0, 1], ``phi`` in
   [0, 2 pi); an amplitude-only mask has ``phi = 0``, a phase-only one ``A = 1``), realised by the mask
   device with its own contrast floor and grey levels, laterally misaligned by ``(dy, dx)`` metres
   (sampled by linear interpolation of the complex transmission at the shifted positions, opaque outside
   the device), times the pupil ``exp(i sum_j a_j Z_j)`` of the lens aberrations (Noll Zernike terms,
   lumped into the Fourier plane; defocus = an axial error of the camera).
   The ``C`` channels are a channel batch: the masks are displayed one after the other (the cost model
   charges ``C`` frames per sample), not tiled on one mask as in Chang 2018.
4. Lens 2 and the camera: ``I_c = |R F[t_c U]|^2`` (``R`` = :func:`~.fourier.rotate_180`: the camera is
   read in the frame that undoes the 4f inversion), in units of the intensity of a fully-on input pixel
   imaged through an all-pass mask. The camera (:class:`~pnnlab.plants.optics.fibre.Camera`) adds shot
   and read noise, saturates and digitises. Output: ``(batch, C * N_rows * N_cols)``, channel-major.

Ideal correlator (every non-ideality off): ``I_c = |u (*) k_c|^2`` with ``k_c = F^-1[t_c] / sqrt(N_r N_c)``
scaled as in the tests, a *circular* convolution over the padded grid (centred: the kernel's origin is
the axis pixel). For a kernel supported on a ``K x K`` window with ``K <= pad + 1`` it equals the *linear*
convolution of the image (tested against ``torch.nn.functional.conv2d``).

Simplifications: scalar, paraxial, monochromatic, fully coherent; the mask pixel pitch equals the
Fourier-plane sample pitch (by design; ``focal_length=None`` chooses ``f = N dx^2 / lambda`` so that both
equal the input pitch); pixel fill factor 1; no DMD diffraction orders or blaze; the aberrations are one
pupil phase; misalignment is a lateral shift only (no rotation or axial mask error); static truth.

Nominal twin: the aligned, aberration-free design with ideal modulators and a noiseless linear camera.
True twin: the hidden truth with the camera noise off (quantisation and ADC rounding pass gradients
straight through); diagnostics and the ``ideal`` bound only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import devices
from ..._validation import check_finite_float, check_int, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Simulated
from .fibre import Camera, _straight_through
from .fourier import LensFourierTransform, Zernike, centre_pad, fourier_pitch, rotate_180

TWO_PI = 2.0 * math.pi

__all__ = ["AmplitudeModulator", "Camera", "Correlator4f", "Correlator4fTwin", "FourierMask", "MaskDevice",
           "MaskMisalignment", "Zernike", "correlator_cost"]


def _quantise(value: torch.Tensor, levels: int | None) -> torch.Tensor:
    """``levels`` equally spaced values over [0, 1] (0 and 1 included); straight-through gradient."""
    if levels is None:
        return value
    step = 1.0 / (levels - 1)
    return _straight_through(value, torch.round(value / step) * step)


def _quantise_phase(phi: torch.Tensor, levels: int | None) -> torch.Tensor:
    """``levels`` phase values k 2 pi / levels over one period (2 pi is 0); straight-through gradient."""
    if levels is None:
        return phi
    step = TWO_PI / levels
    return _straight_through(phi, torch.remainder(torch.round(phi / step), levels) * step)


def _floor(contrast_ratio: float | None) -> float:
    return 0.0 if contrast_ratio is None else contrast_ratio ** -0.5


@dataclass(frozen=True)
class AmplitudeModulator:
    """Input SLM/DMD displaying amplitudes in [0, 1]. ``contrast_ratio``: on/off *intensity* ratio
    (None = infinite); ``levels``: grey levels over [0, 1] (None = continuous; 2 = a binary DMD frame).
    Defaults ASSUMED: 1000:1 (DMD data sheets quote of order 1000:1), 8 bits."""

    contrast_ratio: float | None = 1000.0
    levels: int | None = 256

    def __post_init__(self) -> None:
        if self.contrast_ratio is not None and check_positive("contrast_ratio", self.contrast_ratio) <= 1.0:
            raise ValueError(f"contrast_ratio is the on/off intensity ratio and must exceed 1, got "
                             f"{self.contrast_ratio}; typical 100-2000, None for an ideal modulator.")
        if self.levels is not None:
            check_int("levels", self.levels, minimum=2)

    @classmethod
    def ideal(cls) -> "AmplitudeModulator":
        return cls(contrast_ratio=None, levels=None)

    def amplitude(self, value: torch.Tensor) -> torch.Tensor:
        t0 = _floor(self.contrast_ratio)
        q = _quantise(value.clamp(0.0, 1.0), self.levels)
        return t0 + (1.0 - t0) * q if t0 else q


@dataclass(frozen=True)
class FourierMask:
    """Which Fourier-plane modulation the design uses: ``amplitude`` (a DMD or amplitude SLM, Miscuglio
    2020), ``phase`` (a phase SLM or phase plate, Chang 2018), or both (a complex mask)."""

    amplitude: bool = True
    phase: bool = True

    def __post_init__(self) -> None:
        for name in ("amplitude", "phase"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"FourierMask.{name} must be True or False, got {getattr(self, name)!r}.")
        if not (self.amplitude or self.phase):
            raise ValueError("FourierMask needs amplitude=True or phase=True (a mask that modulates nothing "
                             "has no controls).")


@dataclass(frozen=True)
class MaskDevice:
    """The Fourier-plane device's non-idealities: amplitude contrast ratio (None = infinite), amplitude
    grey levels and phase levels over 2 pi (None = continuous). Defaults ASSUMED (8-bit, 1000:1)."""

    contrast_ratio: float | None = 1000.0
    amplitude_levels: int | None = 256
    phase_levels: int | None = 256

    def __post_init__(self) -> None:
        AmplitudeModulator(contrast_ratio=self.contrast_ratio, levels=self.amplitude_levels)  # same checks
        if self.phase_levels is not None:
            check_int("phase_levels", self.phase_levels, minimum=2)

    @classmethod
    def ideal(cls) -> "MaskDevice":
        return cls(contrast_ratio=None, amplitude_levels=None, phase_levels=None)

    def transmission(self, mask: FourierMask, controls) -> torch.Tensor:
        """Complex transmission (C, Nr, Nc) the device realises for the requested controls."""
        if mask.amplitude:
            amp = AmplitudeModulator(contrast_ratio=self.contrast_ratio, levels=self.amplitude_levels).amplitude(
                controls["amplitude"])
        else:
            amp = None
        if mask.phase:
            phi = _quantise_phase(torch.remainder(controls["phase"], TWO_PI), self.phase_levels)
            ones = torch.ones_like(phi) if amp is None else amp
            return torch.polar(ones, phi)
        return torch.complex(amp, torch.zeros_like(amp))


@dataclass(frozen=True)
class MaskMisalignment:
    """Lateral offset (metres) of the Fourier-plane mask from the optical axis: ``dy`` along rows, ``dx``
    along columns. The mask pixel that should sit at sample ``n`` sits at ``n + d / du``."""

    dy: float = 0.0
    dx: float = 0.0

    def __post_init__(self) -> None:
        check_finite_float("MaskMisalignment.dy", self.dy)
        check_finite_float("MaskMisalignment.dx", self.dx)


def _shift_axis(t: torch.Tensor, s: float, dim: int) -> torch.Tensor:
    """``out[n] = t(n - s)`` by linear interpolation, zero outside (an opaque surround)."""
    if s == 0.0:
        return t
    k = math.floor(s)
    a = s - k
    n = t.shape[dim]

    def rolled(shift):
        if abs(shift) >= n:
            return torch.zeros_like(t)
        out = torch.roll(t, shifts=shift, dims=dim)
        idx = torch.arange(n, device=t.device)
        keep = (idx >= shift) if shift >= 0 else (idx < n + shift)
        shape = [1] * t.ndim
        shape[dim] = n
        return out * keep.view(shape).to(out.real.dtype)

    out = rolled(k) * (1.0 - a)
    if a:
        out = out + a * rolled(k + 1)
    return out


def correlator_cost(channels: int) -> CostModel:
    """ASSUMED cost: each channel's mask is one frame of a 10 kHz device (Miscuglio 2020 report 10 kHz DMD
    operation), shown once per query, and every sample is one input frame per channel; a 10 mW laser."""
    frame = 1e-4
    return CostModel(seconds_per_query=channels * frame, seconds_per_sample=channels * frame,
                     joules_per_sample=channels * frame * 10e-3,
                     source="Miscuglio et al., Optica 7, 1812 (2020): 10 kHz DMD frames; one mask frame per channel "
                            "per query and one input frame per channel per sample and a 10 mW laser assumed")


class _Optics:
    """The 4f geometry: padded grid, the two lens transforms, the pupil of the aberrations."""

    def __init__(self, *, image_shape, pad, wavelength, pixel_pitch, focal_length):
        h, w = image_shape
        self.image_shape = (h, w)
        self.grid = (h + pad, w + pad)
        self.pixel_pitch = pixel_pitch
        self.wavelength = wavelength
        self.focal_length = focal_length
        self.lens1 = LensFourierTransform(shape=self.image_shape, pitch=pixel_pitch, wavelength=wavelength,
                                          focal_length=focal_length, padded_shape=self.grid)
        self.mask_pitch = self.lens1.output_pitch  # (rows, cols)
        self.lens2 = LensFourierTransform(shape=self.grid, pitch=math.sqrt(self.mask_pitch[0] * self.mask_pitch[1]),
                                          wavelength=wavelength, focal_length=focal_length)

    def intensity(self, amplitude_image: torch.Tensor, transmission: torch.Tensor) -> torch.Tensor:
        """``amplitude_image`` (batch, H, W) real, ``transmission`` (C, Nr, Nc) complex ->
        (batch, C, Nr, Nc) camera-plane intensity."""
        u = amplitude_image.to(torch.complex64).unsqueeze(1)
        field = self.lens1(u) * transmission
        out = rotate_180(self.lens2(field))
        return out.real.square() + out.imag.square()


def _effective_transmission(optics: _Optics, mask: FourierMask, device: MaskDevice, misalignment: MaskMisalignment,
                            pupil: torch.Tensor | None, controls) -> torch.Tensor:
    t = device.transmission(mask, controls)
    sy = misalignment.dy / optics.mask_pitch[0]
    sx = misalignment.dx / optics.mask_pitch[1]
    t = _shift_axis(_shift_axis(t, sy, -2), sx, -1)
    if pupil is not None:
        t = t * pupil
    return t


def _camera_intensity(optics: _Optics, mask: FourierMask, input_modulator: AmplitudeModulator,
                      mask_device: MaskDevice, misalignment: MaskMisalignment, pupil: torch.Tensor | None,
                      x: torch.Tensor, controls) -> torch.Tensor:
    """Noise-free camera-plane intensity (batch, C, Nr, Nc) before the camera's response."""
    h, w = optics.image_shape
    a = input_modulator.amplitude(x).reshape(x.shape[0], h, w)
    t = _effective_transmission(optics, mask, mask_device, misalignment, pupil, controls)
    return optics.intensity(a, t)


class Correlator4fTwin(Twin):
    """Differentiable 4f correlator with the given truth (``camera=None``: noiseless linear camera;
    otherwise the camera's deterministic response, saturation and ADC with straight-through gradients).
    The aberration pupil is a buffer on ``device`` (None: the CPU), moved with ``.to``."""

    def __init__(self, *, optics: _Optics, channels: int, mask: FourierMask, input_modulator: AmplitudeModulator,
                 mask_device: MaskDevice, misalignment: MaskMisalignment, aberration: Zernike,
                 camera: Camera | None, device=None) -> None:
        nr, nc = optics.grid
        super().__init__(in_features=optics.image_shape[0] * optics.image_shape[1], out_features=channels * nr * nc)
        self.optics = optics
        self.channels = channels
        self.mask = mask
        self.input_modulator = input_modulator
        self.mask_device = mask_device
        self.misalignment = misalignment
        self.aberration = aberration
        self.camera = camera
        device = torch.device("cpu") if device is None else devices.as_device(device)
        pupil = None if aberration.is_zero else aberration.pupil(optics.grid, device="cpu").to(device)
        self.register_buffer("pupil", pupil)  # made on the CPU: the same numbers as the plant's on any device

    def intensity(self, x: torch.Tensor, controls) -> torch.Tensor:
        """Noise-free camera-plane intensity (batch, C, Nr, Nc) before the camera's response."""
        return _camera_intensity(self.optics, self.mask, self.input_modulator, self.mask_device, self.misalignment,
                                 self.pupil, x, controls)

    def forward(self, x, controls):
        i = self.intensity(x, controls).reshape(x.shape[0], -1).to(x.dtype)
        return i if self.camera is None else self.camera.response(i)


class Correlator4f(Plant, Simulated):
    """SLM/DMD image -> lens -> programmable Fourier mask (``channels`` of them) -> lens -> camera.

    Parameters
    ----------
    image_shape:
        (H, W) input pixels; inputs are ``(batch, H * W)`` amplitudes in [0, 1] (row-major; clamped).
    channels:
        number of Fourier masks (output channels, a channel batch).
    pad:
        zero rows/columns added around the image (the padded grid is ``(H + pad, W + pad)``): the optical
        convolution is circular over that grid, linear for kernels within ``(pad + 1) x (pad + 1)``.
    mask:
        :class:`FourierMask` (amplitude and/or phase controls).
    wavelength, pixel_pitch, focal_length:
        metres. ``focal_length=None`` chooses ``f = N dx^2 / lambda`` so the Fourier-plane pitch (the mask's
        pixel pitch) equals ``pixel_pitch``.
    input_modulator, mask_device, misalignment, aberration, camera:
        the hidden truth (``AmplitudeModulator.ideal()``, ``MaskDevice.ideal()``, ``MaskMisalignment()``,
        ``Zernike()``, ``Camera.ideal()`` switch each off).
    """

    summary = ("optical 4f correlator: amplitude SLM/DMD input, programmable Fourier mask per channel, camera; hidden "
               "aberrations (Zernike), mask misalignment, finite contrast and bit depth, camera noise")

    def __init__(self, *, image_shape: tuple[int, int] = (28, 28), channels: int = 4, pad: int = 4,
                 mask: FourierMask = FourierMask(), wavelength: float = 532e-9, pixel_pitch: float = 8e-6,
                 focal_length: float | None = None,
                 input_modulator: AmplitudeModulator = AmplitudeModulator(),
                 mask_device: MaskDevice = MaskDevice(),
                 misalignment: MaskMisalignment = MaskMisalignment(dy=-1e-6, dx=2e-6),
                 aberration: Zernike = Zernike({4: 0.5, 6: 0.3}),
                 camera: Camera = Camera(signal_electrons=1000.0, full_well_electrons=20000.0,
                                         read_noise_electrons=5.0, bit_depth=12),
                 cost: CostModel | None = None, seed: int = 0) -> None:
        if not (isinstance(image_shape, (tuple, list)) and len(image_shape) == 2):
            raise ValueError(f"image_shape must be (rows, cols), got {image_shape!r}.")
        h, w = (check_int("image_shape", s) for s in image_shape)
        channels = check_int("channels", channels)
        pad = check_int("pad", pad, minimum=0)
        for name, value, kind in (("mask", mask, FourierMask), ("input_modulator", input_modulator, AmplitudeModulator),
                                  ("mask_device", mask_device, MaskDevice), ("misalignment", misalignment, MaskMisalignment),
                                  ("aberration", aberration, Zernike), ("camera", camera, Camera)):
            if not isinstance(value, kind):
                raise TypeError(f"{name} must be a pnnlab {kind.__name__}(...), got {type(value).__name__}.")
        wavelength = check_positive("wavelength", wavelength)
        pixel_pitch = check_positive("pixel_pitch", pixel_pitch)
        n_geo = math.sqrt((h + pad) * (w + pad))
        focal_length = (n_geo * pixel_pitch ** 2 / wavelength if focal_length is None
                        else check_positive("focal_length", focal_length))
        if cost is None:
            cost = correlator_cost(channels)
        if not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a pnnlab CostModel or None, got {type(cost).__name__}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        nr, nc = h + pad, w + pad
        super().__init__(in_features=h * w, out_features=channels * nr * nc, cost=cost, seed=seed)
        self.image_shape = (h, w)
        self.channels = channels
        self.pad = pad
        self.mask = mask
        self.optics = _Optics(image_shape=(h, w), pad=pad, wavelength=wavelength, pixel_pitch=pixel_pitch,
                              focal_length=focal_length)
        # hidden truth: never read by training methods
        self._input_modulator = input_modulator
        self._mask_device = mask_device
        self._misalignment = misalignment
        self._aberration = aberration
        self._camera = camera
        self._pupil = None if aberration.is_zero else aberration.pupil(self.optics.grid, device="cpu")  # moved by .to

    @property
    def grid(self) -> tuple[int, int]:
        """The padded grid (rows, cols): the shape of each channel's mask and camera image."""
        return self.optics.grid

    @property
    def mask_pitch(self) -> tuple[float, float]:
        """Fourier-plane sample pitch (rows, cols), metres: lambda f / (N dx)."""
        return self.optics.mask_pitch

    def control_specs(self):
        shape = (self.channels, *self.grid)
        specs = {}
        if self.mask.amplitude:
            specs["amplitude"] = ControlSpec(shape, 0.0, 1.0, description="Fourier-mask amplitude transmission per channel")
        if self.mask.phase:
            specs["phase"] = ControlSpec(shape, 0.0, TWO_PI, unit="rad", periodic=True,
                                         description="Fourier-mask phase per channel")
        return specs

    def initial_controls(self, generator=None):
        gen = generator if generator is not None else self._generator
        shape = (self.channels, *self.grid)
        out = {}
        if self.mask.amplitude:
            out["amplitude"] = 0.1 + 0.8 * devices.rand(shape, generator=gen, device=self.device)
        if self.mask.phase:
            out["phase"] = TWO_PI * (0.1 + 0.8 * devices.rand(shape, generator=gen, device=self.device))
        return out

    def example_inputs(self, batch, generator=None):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return devices.rand((batch, self.in_features), generator=gen, device=self.device)

    def _twin(self, *, truth: bool) -> Correlator4fTwin:
        if truth:
            return Correlator4fTwin(optics=self.optics, channels=self.channels, mask=self.mask,
                                    input_modulator=self._input_modulator, mask_device=self._mask_device,
                                    misalignment=self._misalignment, aberration=self._aberration, camera=self._camera,
                                    device=self.device)
        return Correlator4fTwin(optics=self.optics, channels=self.channels, mask=self.mask,
                                input_modulator=AmplitudeModulator.ideal(), mask_device=MaskDevice.ideal(),
                                misalignment=MaskMisalignment(), aberration=Zernike(), camera=None, device=self.device)

    def _measure(self, x, controls, generator):
        intensity = _camera_intensity(self.optics, self.mask, self._input_modulator, self._mask_device,
                                      self._misalignment, self._pupil, x, controls).reshape(x.shape[0], -1)
        return self._camera.measure(intensity, generator).to(x.dtype)

    def nominal_twin(self) -> Correlator4fTwin:
        """The aligned, aberration-free design: ideal modulators (continuous, infinite contrast), no
        misalignment, no aberration, a noiseless linear camera."""
        return self._twin(truth=False)

    def true_twin(self) -> Correlator4fTwin:
        """The hidden truth (modulator contrast and bit depth, mask misalignment, aberrations, camera
        saturation and ADC) with the camera noise off. Diagnostics and the ideal bound only."""
        return self._twin(truth=True)

    def describe(self):
        return (f"Correlator4f(image_shape={self.image_shape}, channels={self.channels}, pad={self.pad}, "
                f"mask=FourierMask(amplitude={self.mask.amplitude}, phase={self.mask.phase}))")
