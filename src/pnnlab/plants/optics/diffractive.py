"""Diffractive deep neural network (D2NN): phase masks in free space, class detectors at the end.

Lin, Rivenson, Yardimci, Veli, Luo, Jarrahi & Ozcan, "All-optical machine learning using diffractive deep
neural networks", Science 361, 1004 (2018), doi:10.1126/science.aat8084: 0.4 THz light (lambda = 0.75 mm),
400 um pixels, 200 x 200 neurons per layer, 5 layers 3 cm apart, 10 square detector regions on the
output plane; 91.75 % numerical accuracy on full MNIST, about 88 % measured with 3D-printed layers.
Equations, defaults and what each non-ideality means: docs/substrates/d2nn.md.

Physics of one query (vectorised over the batch, all in metres, :mod:`.propagation` for free space):

1. encoding: the input image x (batch, h*w) is the *amplitude* of the field on the input plane: each
   input pixel is repeated over ``upsample x upsample`` grid pixels at amplitude ``x / upsample`` (so an
   input pixel of value 1 carries unit power whatever the upsampling), centred on the ``grid x grid``
   window; the rest of the plane is dark.
2. L masks: the field reaching mask l (its own pixel frame) is multiplied by ``t_l = A_l exp(i phi_l)``
   (``A_l = 1`` for phase-only masks; ``complex_modulation=True`` adds amplitude controls in (0, 1]). Light
   outside the ``grid x grid`` mask aperture is blocked.
3. free space between planes: band-limited angular spectrum with a 2x zero-padded window
   (:class:`~.propagation.AngularSpectrum`), distances ``spacing`` (input -> mask 1 -> ... -> mask L ->
   detector).
4. detection: the intensity ``|E|^2`` on the output plane integrated over ``n_classes`` square detector
   regions (laid out in rows, 3-4-3 for 10 classes as in Lin 2018, Fig. 2), then the detector's shot and
   read noise and ADC (:class:`~.fibre.Camera`, in units of the power of one unit input pixel).

Hidden truth (each off in ``DiffractiveNetwork.ideal``; device state drawn from the plant's own seed):

* :class:`Misalignment`: a lateral shift (dy, dx) and an axial shift dz of every mask. The lateral shift
  is applied *exactly* by the Fourier shift theorem, folded into the transfer functions of the free space
  before and after the mask (a phase ramp ``exp(-i 2 pi f . (delta_{l-1} - delta_l))``), so it is
  sub-pixel and costs nothing; the axial shift changes the two distances on either side of the mask.
* :class:`FabricationError`: the phase a mask imprints is ``(1 + scale_error) phi + map`` with a smooth
  random map (Gaussian-filtered white noise, rms ``phase_rms``, correlation length ``correlation_px``),
  a 3D-printed layer's thickness error or an SLM's uncalibrated phase response.
* :class:`SLMPixels`: the commanded phase is quantised to ``2**bits`` levels over 2 pi (straight-through
  gradient in the true twin) and the fringing field smooths it with the nearest-neighbour kernel
  ``(1 - 4c) phi_ij + c (phi_{i+-1,j} + phi_{i,j+-1})`` (edges replicated); a wrap from 2 pi to 0
  smears as in a real liquid-crystal SLM.
* detector noise: shot noise, read noise, saturation and ``bit_depth`` bits (:class:`~.fibre.Camera`).

``nominal_twin()`` is the perfectly aligned design (no misalignment, no fabrication error, continuous
phases, no crosstalk, linear noiseless detector). ``true_twin()`` is the hidden truth with the detector
noise off (quantisation and ADC with straight-through gradients).

Fully forward mode: the plant is :class:`~pnnlab.plants.capabilities.ForwardSymmetric`. A data pass
measures the field leaving every mask pixel (in the mask's own frame, as a camera registered to the mask
would) and the output field; an error pass sends an error field from the detector plane back through the
masks (by reciprocity the transpose of the forward operator: the transfer functions at ``-f``) and
measures the field arriving at every mask from the output side and at the input plane. Fields are
measured by :class:`FieldMeasurement` (``frames=4``: four-step phase-shifting holography with a plane
reference wave, per-frame camera noise; ``frames=1``: single-shot field measurement).

Simplifications: scalar field, one wavelength, thin masks (no thickness diffraction inside a layer), no
reflections between layers, no absorption in the phase layers, static (not drifting) errors, detector
regions integrate intensity exactly over whole grid pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import devices
from ..._validation import check_int, check_nonnegative, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import AmplitudeModulated, ForwardSymmetric, PhaseModulated, PlaneFields, Simulated
from .fibre import Camera, _straight_through
from .propagation import AngularSpectrum, shift_ramp

TWO_PI = 2.0 * math.pi

#: ASSUMED (no single cited instrument): a reconfigurable D2NN built from liquid-crystal SLMs (as the FFM
#: experiments of Xue 2024 are) shows one input per 60 Hz frame; 1 ms of camera read-out per query; a
#: 10 mW source on for the frame.
D2NN_COST = CostModel(seconds_per_query=1e-3, seconds_per_sample=1.0 / 60.0,
                      joules_per_query=0.0, joules_per_sample=0.010 / 60.0,
                      source="assumed: 60 Hz SLM frame per sample, 1 ms camera read-out per query, 10 mW source")

#: Lin et al. 2018 (Science 361, 1004): 0.4 THz, 400 um pixels, 3 cm layer spacing, 200 x 200 neurons.
LIN2018 = {"wavelength": 0.75e-3, "pitch": 0.4e-3, "spacing": 0.03, "grid": 200, "n_layers": 5}


@dataclass(frozen=True)
class Misalignment:
    """Lateral (dy, dx) and axial (dz) displacement of every mask, metres. Either drawn (Gaussian, rms
    ``lateral_rms`` per axis and ``axial_rms``) from the plant's own seed, or given explicitly: ``lateral``
    a tuple of L (dy, dx) pairs, ``axial`` a tuple of L values (an explicit value overrides the draw)."""

    lateral_rms: float = 0.0
    axial_rms: float = 0.0
    lateral: tuple | None = None
    axial: tuple | None = None

    def __post_init__(self) -> None:
        check_nonnegative("Misalignment.lateral_rms", self.lateral_rms)
        check_nonnegative("Misalignment.axial_rms", self.axial_rms)
        if self.lateral is not None and not all(len(p) == 2 for p in self.lateral):
            raise ValueError(f"Misalignment.lateral must be a tuple of (dy, dx) pairs in metres, one per mask, "
                             f"got {self.lateral!r}.")

    def draw(self, n_layers: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        lateral = self.lateral_rms * devices.randn((n_layers, 2), generator=g, device="cpu", dtype=torch.float64)
        axial = self.axial_rms * devices.randn((n_layers,), generator=g, device="cpu", dtype=torch.float64)
        if self.lateral is not None:
            if len(self.lateral) != n_layers:
                raise ValueError(f"Misalignment.lateral has {len(self.lateral)} pairs for {n_layers} masks; give "
                                 f"one (dy, dx) per mask.")
            lateral = torch.tensor(self.lateral, dtype=torch.float64, device="cpu")
        if self.axial is not None:
            if len(self.axial) != n_layers:
                raise ValueError(f"Misalignment.axial has {len(self.axial)} values for {n_layers} masks.")
            axial = torch.tensor(self.axial, dtype=torch.float64, device="cpu")
        return lateral, axial


@dataclass(frozen=True)
class FabricationError:
    """Phase actually imprinted = ``(1 + scale_error) * phi + map``: ``map`` a smooth random field per mask
    (white noise filtered by a Gaussian of ``correlation_px`` pixels, scaled to rms ``phase_rms`` rad)."""

    phase_rms: float = 0.2
    correlation_px: float = 3.0
    scale_error: float = 0.0

    def __post_init__(self) -> None:
        check_nonnegative("FabricationError.phase_rms", self.phase_rms)
        check_positive("FabricationError.correlation_px", self.correlation_px)
        if not -0.5 < self.scale_error < 0.5:
            raise ValueError(f"FabricationError.scale_error must be in (-0.5, 0.5) (a relative phase-scale error), "
                             f"got {self.scale_error!r}.")

    def draw(self, n_layers: int, grid: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        noise = devices.randn((n_layers, grid, grid), generator=g, device="cpu", dtype=torch.float64)
        f = torch.fft.fftfreq(grid, dtype=torch.float64, device="cpu")
        fy, fx = torch.meshgrid(f, f, indexing="ij")
        kernel = torch.exp(-2.0 * (math.pi * self.correlation_px) ** 2 * (fx ** 2 + fy ** 2))
        smooth = torch.fft.ifft2(torch.fft.fft2(noise) * kernel).real
        rms = smooth.square().mean(dim=(-2, -1), keepdim=True).sqrt().clamp_min(1e-30)
        return self.phase_rms * smooth / rms


@dataclass(frozen=True)
class SLMPixels:
    """Phase quantisation to ``2**bits`` levels (``None``: continuous) and nearest-neighbour fringing
    crosstalk ``crosstalk`` in [0, 0.2)."""

    bits: int | None = 8
    crosstalk: float = 0.05

    def __post_init__(self) -> None:
        if self.bits is not None:
            check_int("SLMPixels.bits", self.bits, minimum=1)
        c = check_nonnegative("SLMPixels.crosstalk", self.crosstalk)
        if c >= 0.2:
            raise ValueError(f"SLMPixels.crosstalk must be in [0, 0.2) (a pixel keeps most of its own phase), got {c}.")

    def display(self, phi: torch.Tensor) -> torch.Tensor:
        """Phases (..., N, N) in [0, 2 pi) as the pixels imprint them."""
        if self.bits is not None:
            levels = 2 ** self.bits
            step = TWO_PI / levels
            phi = _straight_through(phi, torch.remainder(torch.round(phi / step), levels) * step)
        c = self.crosstalk
        if c:
            up = torch.cat([phi[..., :1, :], phi[..., :-1, :]], dim=-2)
            down = torch.cat([phi[..., 1:, :], phi[..., -1:, :]], dim=-2)
            left = torch.cat([phi[..., :1], phi[..., :-1]], dim=-1)
            right = torch.cat([phi[..., 1:], phi[..., -1:]], dim=-1)
            phi = (1.0 - 4.0 * c) * phi + c * (up + down + left + right)
        return phi


@dataclass(frozen=True)
class FieldMeasurement:
    """How the fields of the fully forward mode passes are measured. ``frames=4``: four-step phase-shifting
    holography, ``I_k = |E + R exp(i k pi/2)|^2`` with a plane reference wave ``R`` of ``reference`` times
    the rms field amplitude, ``E = sum_k I_k exp(i k pi/2) / (4 conj(R))``; ``frames=1``: a single-shot
    field measurement (off-axis holography). ``frame_noise``: rms Gaussian noise of each intensity frame
    relative to the mean frame intensity (0 = exact)."""

    frames: int = 4
    frame_noise: float = 0.0
    reference: float = 2.0

    def __post_init__(self) -> None:
        if self.frames not in (1, 4) or isinstance(self.frames, bool):
            raise ValueError(f"FieldMeasurement.frames must be 1 (single-shot) or 4 (phase-shifting holography), "
                             f"got {self.frames!r}.")
        check_nonnegative("FieldMeasurement.frame_noise", self.frame_noise)
        check_positive("FieldMeasurement.reference", self.reference)

    def measure(self, field: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The measured field, per sample over its last dimensions (..., N, N) with batch first."""
        dims = tuple(range(1, field.ndim))
        rms = field.abs().square().mean(dim=dims, keepdim=True).sqrt().clamp_min(1e-30)
        r = self.reference * rms  # real, positive: the reference phase is the phase origin
        if self.frames == 1:
            if not self.frame_noise:
                return field
            noise = torch.complex(devices.randn(field.shape, generator=generator, device=field.device, dtype=rms.dtype),
                                  devices.randn(field.shape, generator=generator, device=field.device, dtype=rms.dtype))
            return field + self.frame_noise * (r ** 2 + rms ** 2) / (2 * r) * noise.to(field.dtype)
        total = torch.zeros_like(field)
        mean_intensity = (r ** 2 + rms ** 2)
        for k in range(4):
            shift = complex(math.cos(k * math.pi / 2), math.sin(k * math.pi / 2))
            frame = (field + r * shift).abs().square()
            if self.frame_noise:
                frame = frame + self.frame_noise * mean_intensity * devices.randn(
                    frame.shape, generator=generator, device=frame.device, dtype=frame.dtype)
            total = total + frame.to(field.dtype) * shift
        return total / (4.0 * r)


def detector_masks(grid: int, n_classes: int, size: int) -> torch.Tensor:
    """Boolean (n_classes, grid, grid) square detector regions of ``size`` pixels, in rows (3-4-3 for 10
    classes, as Lin 2018's Fig. 2), spread over the central part of the output plane."""
    rows = max(1, round(math.sqrt(n_classes)))
    base, extra = divmod(n_classes, rows)
    counts = [base + (1 if abs(r - (rows - 1) / 2) < extra / 2 else 0) for r in range(rows)]
    while sum(counts) < n_classes:  # (rounding of the symmetric rule)
        counts[len(counts) // 2] += 1
    while sum(counts) > n_classes:
        counts[0] -= 1
    span = grid * 0.7
    masks = torch.zeros(n_classes, grid, grid, dtype=torch.bool, device="cpu")
    k = 0
    for r, count in enumerate(counts):
        cy = grid / 2 + (r - (rows - 1) / 2) * span / rows
        for c in range(count):
            cx = grid / 2 + (c - (count - 1) / 2) * span / max(counts)
            y0, x0 = int(round(cy - size / 2)), int(round(cx - size / 2))
            if y0 < 0 or x0 < 0 or y0 + size > grid or x0 + size > grid:
                raise ValueError(f"detector_size={size} does not fit {n_classes} detectors on a {grid}-pixel grid; "
                                 f"use a smaller detector_size or a larger grid.")
            masks[k, y0:y0 + size, x0:x0 + size] = True
            k += 1
    if int(masks.sum()) != n_classes * size * size:
        raise ValueError(f"detector_size={size} makes the {n_classes} detector regions overlap on a {grid}-pixel "
                         f"grid; use a smaller detector_size.")
    return masks


class DiffractiveOptics:
    """The free-space optics of one D2NN (no autograd boundary; used by the plant and by its twins):
    transfer functions between planes (forward and transposed), mask transmission, encoding, detection.

    ``distances``: L + 1 distances (metres); ``shifts``: (L, 2) lateral mask displacements (metres).

    Devices: its tensors (detector regions, fabrication map) live on one device; :meth:`to` returns a
    copy on another (the plant's :meth:`~pnnlab.Plant.to` and a twin's ``.to`` use it). The transfer
    functions are computed on the device of the field they propagate and cached per (dtype, device),
    in a cache the copies share (same geometry, same transfer functions)."""

    _device_state = True

    def __init__(self, *, grid: int, pitch: float, wavelength: float, distances, shifts: torch.Tensor,
                 input_shape: tuple[int, int], upsample: int, regions: torch.Tensor,
                 slm: SLMPixels | None, fabrication_map: torch.Tensor | None, phase_scale: float) -> None:
        self.grid, self.pitch, self.wavelength = grid, pitch, wavelength
        self.distances = tuple(float(d) for d in distances)
        self.shifts = shifts.to(torch.float64)
        self.input_shape, self.upsample = input_shape, upsample
        self.regions = regions
        self.slm = slm
        self.fabrication_map = fabrication_map
        self.phase_scale = float(phase_scale)
        self.n_layers = len(self.distances) - 1
        self._cache: dict = {}
        zero = torch.zeros(1, 2, dtype=torch.float64, device=self.shifts.device)
        offsets = torch.cat([zero, self.shifts, zero], dim=0).tolist()  # planes 0 (input), 1..L, L+1 (detector)
        self._props = [AngularSpectrum(shape=(grid, grid), pitch=pitch, wavelength=wavelength, distance=d)
                       for d in self.distances]
        # delta_{l-1} - delta_l per gap, metres (Python floats: they only enter the phase ramps)
        self._ramps = [(offsets[i][0] - offsets[i + 1][0], offsets[i][1] - offsets[i + 1][1])
                       for i in range(len(self.distances))]

    @property
    def device(self) -> torch.device:
        """The device of the detector regions and the fabrication map."""
        return self.regions.device

    def to(self, device) -> "DiffractiveOptics":
        """This optics with its tensors on ``device`` (``self`` if they are there already; else a copy
        sharing the transfer-function cache, which is keyed on the device)."""
        device = devices.as_device(device)
        if device == self.device:
            return self
        out = object.__new__(DiffractiveOptics)
        out.__dict__.update(self.__dict__)
        out.shifts = self.shifts.to(device)
        out.regions = self.regions.to(device)
        out.fabrication_map = None if self.fabrication_map is None else self.fabrication_map.to(device)
        return out

    def transfers(self, dtype: torch.dtype, device=None):
        """Forward and transposed transfer functions (lists of L + 1, padded grid, FFT order) on ``device``
        (None: the CPU), cached per (dtype, device)."""
        device = torch.device("cpu") if device is None else torch.device(device)
        key = (dtype, device)
        if key not in self._cache:
            forward, transposed = [], []
            for prop, (dy, dx) in zip(self._props, self._ramps):
                h = prop.transfer(torch.complex128, device)
                if dy or dx:
                    h = h * shift_ramp(prop, dy, dx, device)
                # transpose of a convolution: the kernel reflected, i.e. the transfer function at -f
                t = torch.roll(torch.flip(h, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))
                forward.append(h.to(dtype))
                transposed.append(t.to(dtype))
            self._cache[key] = (forward, transposed)
        return self._cache[key]

    def propagate(self, u: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
        return self._props[0].apply(u, transfer)

    def phases(self, phase: torch.Tensor) -> torch.Tensor:
        """Imprinted phases (L, N, N) for commanded phases (wrapped into [0, 2 pi))."""
        phi = torch.remainder(phase, TWO_PI)
        if self.slm is not None:
            phi = self.slm.display(phi)
        if self.phase_scale != 1.0:
            phi = self.phase_scale * phi
        if self.fabrication_map is not None:
            phi = phi + self.fabrication_map.to(phi.dtype)
        return phi

    def transmission(self, controls, dtype: torch.dtype) -> torch.Tensor:
        phi = self.phases(controls["phase"])
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        amp = controls["amplitude"].to(real) if "amplitude" in controls else torch.ones_like(phi, dtype=real)
        return torch.polar(amp, phi.to(real))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_shape
        s = self.upsample
        img = x.reshape(x.shape[0], h, w)
        img = img.repeat_interleave(s, dim=1).repeat_interleave(s, dim=2) / s
        y0, x0 = (self.grid - h * s) // 2, (self.grid - w * s) // 2
        out = torch.nn.functional.pad(img, (x0, self.grid - x0 - w * s, y0, self.grid - y0 - h * s))
        return out.to(torch.complex128 if x.dtype == torch.float64 else torch.complex64)

    def decode_gradient(self, g: torch.Tensor) -> torch.Tensor:
        """Adjoint of ``encode`` for a real gradient on the input plane (batch, N, N) -> (batch, h*w)."""
        h, w = self.input_shape
        s = self.upsample
        y0, x0 = (self.grid - h * s) // 2, (self.grid - w * s) // 2
        block = g[:, y0:y0 + h * s, x0:x0 + w * s].reshape(g.shape[0], h, s, w, s).sum(dim=(2, 4)) / s
        return block.reshape(g.shape[0], h * w)

    def forward_fields(self, x: torch.Tensor, t: torch.Tensor):
        """Fields leaving every mask (batch, L, N, N) and the output field (batch, N, N)."""
        forward, _ = self.transfers(t.dtype, x.device)
        u = self.encode(x)
        leaving = []
        for layer in range(self.n_layers):
            u = self.propagate(u, forward[layer]) * t[layer]
            leaving.append(u)
        out = self.propagate(u, forward[-1])
        return torch.stack(leaving, dim=1), out

    def reverse_fields(self, e: torch.Tensor, t: torch.Tensor):
        """An error field ``e`` at the detector plane sent back through the masks (transposed operator):
        the field arriving at every mask from the output side (batch, L, N, N) and at the input plane."""
        _, transposed = self.transfers(t.dtype, e.device)
        arriving = [None] * self.n_layers
        v = e
        for layer in reversed(range(self.n_layers)):
            v = self.propagate(v, transposed[layer + 1])
            arriving[layer] = v
            v = v * t[layer]
        return torch.stack(arriving, dim=1), self.propagate(v, transposed[0])

    def detect(self, out: torch.Tensor) -> torch.Tensor:
        intensity = out.abs().square()
        regions = self.regions.to(intensity.dtype)
        return intensity.flatten(1) @ regions.flatten(1).T


class DiffractiveTwin(Twin):
    """Differentiable D2NN model: given optics, detector response (no noise) or a linear detector."""

    def __init__(self, *, optics: DiffractiveOptics, in_features: int, out_features: int,
                 camera: Camera | None = None) -> None:
        super().__init__(in_features=in_features, out_features=out_features)
        self.optics = optics
        self.camera = camera

    def _apply(self, fn, recurse=True):
        """``twin.to(device)`` (and a model's ``.to`` through its PhysicalLayer) also moves the optics: a
        copy on the new device, so the plant it came from keeps its own."""
        super()._apply(fn, recurse)
        device = fn(torch.empty(0, device=self.optics.device)).device
        if device != self.optics.device:
            self.optics = self.optics.to(device)
        return self

    def forward(self, x, controls):
        dtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
        t = self.optics.transmission(controls, dtype)
        _, out = self.optics.forward_fields(x, t)
        y = self.optics.detect(out)
        if self.camera is not None:
            y = self.camera.response(y)
        return y.to(x.dtype)


class DiffractiveNetwork(Plant, Simulated, ForwardSymmetric):
    """D2NN: amplitude-encoded input, L phase (optionally amplitude+phase) masks, class detectors.

    Parameters (lengths in metres)
    ----------
    input_shape:
        (h, w) of the input image; ``in_features = h * w`` amplitudes.
    grid:
        mask size in pixels (``grid x grid`` neurons per layer).
    upsample:
        grid pixels per input pixel along each axis (``h * upsample <= grid``).
    n_layers:
        number of masks L.
    wavelength, pitch:
        light wavelength and mask pixel pitch (Lin 2018: 0.75 mm, 0.4 mm).
    spacing:
        one distance for every gap (input -> mask 1 -> ... -> mask L -> detector) or a tuple of L + 1.
    n_classes, detector_size:
        detector regions (out_features) and their side in pixels.
    complex_modulation:
        also train an amplitude transmission in [0.01, 1] per pixel (control ``"amplitude"``).
    misalignment, fabrication, slm, camera:
        the hidden truth (:class:`Misalignment`, :class:`FabricationError`, :class:`SLMPixels`, a
        :class:`~.fibre.Camera`); ``None`` / ``Camera.ideal()`` switch them off.
    field_measurement:
        :class:`FieldMeasurement` of the fully forward mode passes (frames per pass, their noise).
    """

    summary = ("diffractive deep network (Lin 2018): amplitude input, L phase masks in free space (band-limited "
               "angular spectrum), class detectors; misalignment, fabrication, SLM and detector errors")

    def __init__(self, *, input_shape: tuple[int, int] = (28, 28), grid: int = 100, upsample: int = 3,
                 n_layers: int = 5, wavelength: float = 0.75e-3, pitch: float = 0.4e-3,
                 spacing: float | tuple = 7.5e-3, n_classes: int = 10, detector_size: int = 8,
                 complex_modulation: bool = False,
                 misalignment: Misalignment | None = Misalignment(lateral_rms=0.2e-3, axial_rms=0.5e-3),
                 fabrication: FabricationError | None = FabricationError(),
                 slm: SLMPixels | None = None,
                 camera: Camera = Camera(signal_electrons=1000.0, full_well_electrons=1e5,
                                         read_noise_electrons=20.0, bit_depth=12),
                 field_measurement: FieldMeasurement = FieldMeasurement(),
                 cost: CostModel = D2NN_COST, seed: int = 0) -> None:
        if not (isinstance(input_shape, tuple) and len(input_shape) == 2):
            raise ValueError(f"input_shape must be a tuple (h, w), got {input_shape!r}.")
        h, w = check_int("input_shape[0]", input_shape[0]), check_int("input_shape[1]", input_shape[1])
        grid = check_int("grid", grid, minimum=2)
        upsample = check_int("upsample", upsample)
        if max(h, w) * upsample > grid:
            raise ValueError(f"the upsampled input ({h * upsample} x {w * upsample} pixels) does not fit the "
                             f"{grid}-pixel grid; lower upsample or raise grid to >= {max(h, w) * upsample}.")
        n_layers = check_int("n_layers", n_layers)
        check_positive("wavelength", wavelength)
        check_positive("pitch", pitch)
        if isinstance(spacing, (int, float)) and not isinstance(spacing, bool):
            distances = (float(check_positive("spacing", spacing)),) * (n_layers + 1)
        else:
            distances = tuple(float(check_positive(f"spacing[{i}]", d)) for i, d in enumerate(spacing))
            if len(distances) != n_layers + 1:
                raise ValueError(f"spacing must be one distance or n_layers + 1 = {n_layers + 1} distances (input "
                                 f"-> mask 1 -> ... -> detector), got {len(distances)}.")
        n_classes = check_int("n_classes", n_classes)
        detector_size = check_int("detector_size", detector_size)
        if not isinstance(complex_modulation, bool):
            raise TypeError(f"complex_modulation must be True or False, got {complex_modulation!r}.")
        for name, value, kind in (("misalignment", misalignment, Misalignment),
                                  ("fabrication", fabrication, FabricationError), ("slm", slm, SLMPixels)):
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"{name} must be a pnnlab {kind.__name__}(...) or None, got {type(value).__name__}.")
        if not isinstance(camera, Camera):
            raise TypeError(f"camera must be a pnnlab Camera(...) (Camera.ideal() for none), got {type(camera).__name__}.")
        if not isinstance(field_measurement, FieldMeasurement):
            raise TypeError(f"field_measurement must be a FieldMeasurement(...), got {type(field_measurement).__name__}.")
        if not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a pnnlab CostModel, got {type(cost).__name__}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        super().__init__(in_features=h * w, out_features=n_classes, cost=cost, seed=seed)
        self.input_shape, self.grid, self.upsample, self.n_layers = (h, w), grid, upsample, n_layers
        self.wavelength, self.pitch, self.distances = float(wavelength), float(pitch), distances
        self.n_classes, self.detector_size, self.complex_modulation = n_classes, detector_size, complex_modulation
        self.misalignment, self.fabrication, self.slm, self.camera = misalignment, fabrication, slm, camera
        self.field_measurement = field_measurement
        self.frames_per_pass = field_measurement.frames
        self.field_shape = (grid, grid)
        self._regions = detector_masks(grid, n_classes, detector_size)
        # ---- hidden truth: drawn once from the plant's own seed, never read by training methods ----
        truth_seed = 7_919 * (seed + 1)
        if misalignment is not None:
            lateral, axial = misalignment.draw(n_layers, truth_seed)
        else:
            lateral = torch.zeros(n_layers, 2, dtype=torch.float64, device="cpu")
            axial = torch.zeros(n_layers, dtype=torch.float64, device="cpu")
        self._lateral, self._axial = lateral, axial
        z = torch.tensor([0.0, *distances], dtype=torch.float64, device="cpu").cumsum(0)  # planes 0..L+1
        z_true = z.clone()
        z_true[1:n_layers + 1] += axial
        true_distances = tuple(float(d) for d in (z_true[1:] - z_true[:-1]))
        if min(true_distances) <= 0:
            raise ValueError(f"the axial misalignment reorders the planes (distances {true_distances}); lower "
                             f"Misalignment.axial_rms.")
        self._fab_map = fabrication.draw(n_layers, grid, truth_seed + 1) if fabrication is not None else None
        scale = 1.0 + (fabrication.scale_error if fabrication is not None else 0.0)
        common = dict(grid=grid, pitch=self.pitch, wavelength=self.wavelength, input_shape=(h, w),
                      upsample=upsample, regions=self._regions)
        self._true_optics = DiffractiveOptics(distances=true_distances, shifts=lateral, slm=slm,
                                              fabrication_map=self._fab_map, phase_scale=scale, **common)
        self._nominal_optics = DiffractiveOptics(distances=distances, shifts=torch.zeros(n_layers, 2, device="cpu"), slm=None,
                                                 fabrication_map=None, phase_scale=1.0, **common)

    @classmethod
    def ideal(cls, **kwargs) -> "DiffractiveNetwork":
        """The same network with every hidden error off: aligned, exact masks, continuous phases, no
        crosstalk, a noiseless linear detector, exact field measurement."""
        base = dict(misalignment=None, fabrication=None, slm=None, camera=Camera.ideal(),
                    field_measurement=FieldMeasurement(frames=1, frame_noise=0.0))
        return cls(**(base | kwargs))

    # ---- plant interface ------------------------------------------------------------------
    def control_specs(self):
        shape = (self.n_layers, self.grid, self.grid)
        specs = {"phase": ControlSpec(shape, 0.0, TWO_PI, unit="rad", periodic=True,
                                      description="phase of every mask pixel (layer, row, column)")}
        if self.complex_modulation:
            specs["amplitude"] = ControlSpec(shape, 0.01, 1.0, description="amplitude transmission of every pixel")
        return specs

    def initial_controls(self, generator=None):
        gen = generator if generator is not None else self._generator
        shape = (self.n_layers, self.grid, self.grid)
        out = {"phase": TWO_PI * devices.rand(shape, generator=gen, device=self.device)}
        if self.complex_modulation:
            out["amplitude"] = torch.full(shape, 0.9, device=self.device)
        return out

    def example_inputs(self, batch, generator=None):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return devices.rand((batch, self.in_features), generator=gen, device=self.device)

    def _dtype(self, x):
        return torch.complex128 if x.dtype == torch.float64 else torch.complex64

    def _measure(self, x, controls, generator):
        t = self._true_optics.transmission(controls, self._dtype(x))
        _, out = self._true_optics.forward_fields(x, t)
        y = self._true_optics.detect(out)
        return self.camera.measure(y, generator).to(x.dtype)

    def nominal_twin(self) -> DiffractiveTwin:
        """The perfectly aligned design: nominal distances, no shifts, exact continuous masks, linear
        noiseless detector."""
        return DiffractiveTwin(optics=self._nominal_optics, in_features=self.in_features,
                               out_features=self.out_features)

    def true_twin(self) -> DiffractiveTwin:
        """Hidden truth with the detector noise off (misalignment, fabrication, SLM quantisation and
        crosstalk, detector saturation and ADC with straight-through gradients). Diagnostics and the ideal
        bound only."""
        return DiffractiveTwin(optics=self._true_optics, in_features=self.in_features,
                               out_features=self.out_features, camera=self.camera)

    def describe(self):
        return (f"DiffractiveNetwork(input_shape={self.input_shape}, grid={self.grid}, n_layers={self.n_layers}, "
                f"n_classes={self.n_classes}, pitch={self.pitch}, wavelength={self.wavelength}, "
                f"spacing={self.distances[0]})")

    # ---- ForwardSymmetric (fully forward mode) ----------------------------------------------
    def modulation(self):
        out = {"phase": PhaseModulated()}
        if self.complex_modulation:
            out["amplitude"] = AmplitudeModulated()
        return out

    def _extra_frames(self, batch: int) -> None:
        for _ in range(self.frames_per_pass - 1):  # the other exposures of a phase-shifting pass
            self.meter.record(self.cost, batch)

    def _data_pass(self, x, controls, generator):
        t = self._true_optics.transmission(controls, self._dtype(x))
        leaving, out = self._true_optics.forward_fields(x, t)
        y = self.camera.measure(self._true_optics.detect(out), generator).to(x.dtype)
        fm = self.field_measurement
        fields = {"phase": fm.measure(leaving, generator)}
        if self.complex_modulation:
            fields["amplitude"] = fields["phase"]
        self._extra_frames(x.shape[0])
        return PlaneFields(fields=fields, output=y, output_field=fm.measure(out, generator))

    def _error_pass(self, error, controls, generator):
        t = self._true_optics.transmission(controls, error.dtype)
        arriving, at_input = self._true_optics.reverse_fields(error, t)
        fm = self.field_measurement
        fields = {"phase": fm.measure(arriving, generator)}
        if self.complex_modulation:
            fields["amplitude"] = fields["phase"]
        self._extra_frames(error.shape[0])
        return PlaneFields(fields=fields, input_field=fm.measure(at_input, generator))

    def error_source(self, data: PlaneFields, grad_output: torch.Tensor) -> torch.Tensor:
        """``e = conj(dL/do*)`` on the output plane: ``dL/dy_c conj(o)`` inside detector region c (the
        detectors integrate ``|o|^2``, whose Wirtinger derivative is ``o``), zero elsewhere."""
        o = data.output_field
        weights = grad_output.to(o.device, o.real.dtype) @ self._regions.to(o.device, o.real.dtype).flatten(1)
        return weights.reshape(o.shape).to(o.dtype) * o.conj()

    def input_gradient(self, x: torch.Tensor, error: PlaneFields) -> torch.Tensor:
        """dL/dx = 2 Re(e_0) mapped through the amplitude encoding (adjoint of the upsampling)."""
        return self._nominal_optics.decode_gradient(2.0 * error.input_field.real).to(x.dtype)
