"""Hybrid optical-electronic CNN: a 4f correlator as the convolution layer, digital pooling and read-out.

The architecture of Chang et al., Sci. Rep. 8, 12324 (2018), doi:10.1038/s41598-018-30619-y and Miscuglio
et al., Optica 7, 1812 (2020), doi:10.1364/OPTICA.402787 (an optical convolution layer of ``channels``
Fourier-plane filters, intensity detection, then electronic layers)::

    image (H x W amplitudes in [0, 1] on the SLM/DMD)
      --> Correlator4f (channels Fourier masks; camera intensity |u (*) k_c|^2 per channel, (H+pad)^2 pixels)
      --> average pooling pool x pool per channel (digital, no parameters) --> x feature_scale (fixed)
      --> Linear read-out (or a small tanh MLP with ``hidden`` units) --> logits

Trainable: the Fourier masks (the plant's controls) and the digital read-out. The squared modulus of the
camera is the network's nonlinearity, as in both papers.

Baselines of the same shape (:func:`build_digital_cnn`, :func:`build_random_mask_cnn`):

* the digital CNN replaces the optics by ``channels`` real ``kernel_size x kernel_size`` convolutions of the
  zero-padded image followed by the same square, pooling and read-out (the optical mask has far more free
  numbers, ``channels (H+pad)^2`` per modulated quantity; the parameter count column says so);
* the random-mask CNN keeps the optics with a fixed random Fourier mask (frozen controls) and trains only
  the read-out: a fixed random feature map of the same width, realised by the same plant.
"""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int, check_positive
from ..layers import PhysicalLayer
from ..plants.optics.correlator import (AmplitudeModulator, Camera, Correlator4f, FourierMask, MaskDevice,
                                        MaskMisalignment, Zernike)
from ..plants.optics.fourier import centre_pad

__all__ = ["CorrelatorTruth", "IntensityPool", "build_digital_cnn", "build_optical_cnn", "build_random_mask_cnn"]


class CorrelatorTruth:
    """The hidden truth handed to the :class:`Correlator4f` of a model: ``CorrelatorTruth.typical()``
    (the plant's defaults: assumed values, docs/substrates/correlator_4f.md) or ``CorrelatorTruth.ideal()``
    (the design: no aberration, aligned, ideal modulators and camera)."""

    def __init__(self, *, input_modulator: AmplitudeModulator = AmplitudeModulator(),
                 mask_device: MaskDevice = MaskDevice(),
                 misalignment: MaskMisalignment = MaskMisalignment(dy=-1e-6, dx=2e-6),
                 aberration: Zernike = Zernike({4: 0.5, 6: 0.3}),
                 camera: Camera = Camera(signal_electrons=1000.0, full_well_electrons=20000.0,
                                         read_noise_electrons=5.0, bit_depth=12)) -> None:
        self.kwargs = dict(input_modulator=input_modulator, mask_device=mask_device, misalignment=misalignment,
                           aberration=aberration, camera=camera)

    @classmethod
    def typical(cls) -> "CorrelatorTruth":
        return cls()

    @classmethod
    def ideal(cls) -> "CorrelatorTruth":
        return cls(input_modulator=AmplitudeModulator.ideal(), mask_device=MaskDevice.ideal(),
                   misalignment=MaskMisalignment(), aberration=Zernike(), camera=Camera.ideal())


class IntensityPool(nn.Module):
    """``(batch, C * Nr * Nc)`` camera images -> ``pool x pool`` average pooling per channel, flattened,
    times a fixed ``scale``. No trainable parameters."""

    def __init__(self, *, channels: int, grid: tuple[int, int], pool: int, scale: float = 1.0) -> None:
        super().__init__()
        self.channels = check_int("channels", channels)
        self.grid = tuple(grid)
        self.pool = check_int("pool", pool)
        self.scale = check_positive("scale", scale)

    def forward(self, v):
        img = v.reshape(v.shape[0], self.channels, *self.grid)
        return nn.functional.avg_pool2d(img, self.pool, ceil_mode=True).flatten(1) * self.scale

    def features(self) -> int:
        return self.channels * (-(-self.grid[0] // self.pool)) * (-(-self.grid[1] // self.pool))


def _image_shape(in_features, image_shape):
    if image_shape is not None:
        h, w = (check_int("image_shape", s) for s in image_shape)
        if h * w != in_features:
            raise ValueError(f"image_shape {tuple(image_shape)} has {h * w} pixels but in_features={in_features}.")
        return h, w
    side = int(round(in_features ** 0.5))
    if side * side != in_features:
        raise ValueError(f"in_features={in_features} is not a square image; pass image_shape=(rows, cols).")
    return side, side


def _readout(features: int, n_classes: int, hidden: int | None) -> nn.Module:
    if hidden is None:
        return nn.Linear(features, n_classes)
    return nn.Sequential(nn.Linear(features, check_int("hidden", hidden)), nn.Tanh(), nn.Linear(hidden, n_classes))


def build_optical_cnn(*, in_features: int, n_classes: int, image_shape: tuple[int, int] | None = None,
                      channels: int = 8, pad: int = 4, pool: int = 4, hidden: int | None = None,
                      mask: FourierMask = FourierMask(amplitude=True, phase=False),
                      truth: CorrelatorTruth = CorrelatorTruth.typical(), feature_scale: float = 10.0,
                      frozen_mask: bool = False, seed: int = 0) -> nn.Sequential:
    """The hybrid CNN of the module docstring (default: Miscuglio's amplitude-only Fourier filters).
    ``seed`` seeds the plant, the masks' initial values and the read-out; the layer's twin is the
    plant's nominal twin. ``frozen_mask=True`` freezes the masks (random-mask baseline)."""
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    if not isinstance(truth, CorrelatorTruth):
        raise TypeError(f"truth must be a CorrelatorTruth (.typical() or .ideal()), got {type(truth).__name__}.")
    h, w = _image_shape(in_features, image_shape)
    plant = Correlator4f(image_shape=(h, w), channels=channels, pad=pad, mask=mask, seed=seed, **truth.kwargs)
    layer = PhysicalLayer(plant, twin=plant.nominal_twin(),
                          initial_controls=plant.initial_controls(torch.Generator().manual_seed(seed)))
    if frozen_mask:
        for p in layer.parameters():
            p.requires_grad_(False)
    pool_layer = IntensityPool(channels=channels, grid=plant.grid, pool=pool, scale=feature_scale)
    torch.manual_seed(seed)
    return nn.Sequential(layer, pool_layer, _readout(pool_layer.features(), n_classes, hidden))


def build_random_mask_cnn(**kwargs) -> nn.Sequential:
    """:func:`build_optical_cnn` with a fixed random Fourier mask: only the read-out is trained."""
    return build_optical_cnn(frozen_mask=True, **kwargs)


class DigitalConv(nn.Module):
    """Zero pad the image to ``(H + pad)^2`` (centred, as on the correlator's grid), ``channels`` real
    ``kernel_size`` convolutions ('same' size, no bias), squared: the digital stand-in of the optics."""

    def __init__(self, *, image_shape, channels: int, pad: int, kernel_size: int) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.grid = (self.image_shape[0] + pad, self.image_shape[1] + pad)
        k = check_int("kernel_size", kernel_size)
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd ('same' convolution), got {k}.")
        self.conv = nn.Conv2d(1, check_int("channels", channels), k, padding=k // 2, bias=False)

    def forward(self, x):
        img = centre_pad(x.reshape(x.shape[0], 1, *self.image_shape), self.grid)
        return self.conv(img).square().flatten(1)


def build_digital_cnn(*, in_features: int, n_classes: int, image_shape: tuple[int, int] | None = None,
                      channels: int = 8, pad: int = 4, pool: int = 4, kernel_size: int = 5, hidden: int | None = None,
                      feature_scale: float = 10.0, seed: int = 0) -> nn.Sequential:
    """The same network with a digital convolution (same kernel count, ``kernel_size`` x ``kernel_size``
    real kernels, the same square nonlinearity, pooling and read-out) in place of the optics."""
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    h, w = _image_shape(in_features, image_shape)
    torch.manual_seed(seed)
    conv = DigitalConv(image_shape=(h, w), channels=channels, pad=pad, kernel_size=kernel_size)
    pool_layer = IntensityPool(channels=channels, grid=conv.grid, pool=pool, scale=feature_scale)
    return nn.Sequential(conv, pool_layer, _readout(pool_layer.features(), n_classes, hidden))
