"""A diffractive deep network (D2NN) classifier for experiment files: the `d2nn` plant with Lin et
al. (Science 361, 1004 (2018)) geometry scaled to the grid (Lin's Fresnel number kept), followed by a
parameter-free digital read-out, logits = temperature x detector power / total detected power.

The hidden truth is ``truth_scale`` times the benchmark's typical errors (``benchmarks/bench_d2nn_mnist.py``,
all assumed values): lateral misalignment 0.2 mm rms and axial 0.1 mm rms per layer, a fabrication phase
map of 0.2 rad rms (3-pixel correlation) with a 2 % phase-scale error, an 8-bit SLM with 5 % crosstalk;
``truth_scale=0`` is the perfectly aligned design. Only the masks' phases are trainable, so every method
that trains them (``in_silico``, ``pat``, ``ffm``, ``ideal``, ``spsa``, ...) compares on the same parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validation import check_int, check_nonnegative, check_positive
from ..layers import PhysicalLayer
from ..plants.optics.diffractive import (LIN2018, DiffractiveNetwork, FabricationError, FieldMeasurement,
                                         Misalignment, SLMPixels)

__all__ = ["NormalisedDetectors", "build_d2nn_classifier", "lin2018_geometry"]


class NormalisedDetectors(nn.Module):
    """Digital read-out without parameters: logits = temperature x power / total detected power."""

    def __init__(self, temperature: float) -> None:
        super().__init__()
        self.temperature = float(temperature)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.temperature * y / y.sum(1, keepdim=True).clamp_min(1e-12)


def lin2018_geometry(grid: int, n_classes: int = 10, input_shape: tuple[int, int] = (28, 28)) -> dict:
    """Lin 2018's wavelength, pitch and layer count on a ``grid`` x ``grid`` mask; the 3 cm spacing scaled by
    (grid / 200)^2 so the Fresnel number is Lin's."""
    spacing = LIN2018["spacing"] * (grid / LIN2018["grid"]) ** 2
    return dict(input_shape=input_shape, grid=grid, upsample=1, n_layers=LIN2018["n_layers"],
                wavelength=LIN2018["wavelength"], pitch=LIN2018["pitch"], spacing=spacing, n_classes=n_classes,
                detector_size=max(2, grid // 12))


def build_d2nn_classifier(*, in_features: int, n_classes: int, seed: int = 0, grid: int = 48,
                          truth_scale: float = 1.0, temperature: float = 10.0) -> nn.Sequential:
    """D2NN on square images of ``in_features`` pixels (784 for MNIST) with ``n_classes`` detectors."""
    in_features = check_int("in_features", in_features)
    side = math.isqrt(in_features)
    if side * side != in_features:
        raise ValueError(f"build_d2nn_classifier: in_features={in_features} is not a square image; the D2NN "
                         f"encodes inputs as an amplitude image (use e.g. mnist_small, 784 = 28 x 28).")
    grid = check_int("grid", grid, minimum=side)
    k = check_nonnegative("truth_scale", truth_scale)
    temperature = check_positive("temperature", temperature)
    plant = DiffractiveNetwork(**lin2018_geometry(grid, n_classes, (side, side)),
                               misalignment=Misalignment(lateral_rms=0.2e-3 * k, axial_rms=0.1e-3 * k) if k else None,
                               fabrication=FabricationError(phase_rms=0.2 * k, correlation_px=3.0,
                                                            scale_error=0.02 * k) if k else None,
                               slm=SLMPixels(bits=8, crosstalk=0.05 * k) if k else None,
                               field_measurement=FieldMeasurement(frames=4, frame_noise=0.01), seed=seed)
    return nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin(),
                                       initial_controls=plant.initial_controls(torch.Generator().manual_seed(seed))),
                         NormalisedDetectors(temperature))
