"""Two-layer coupled-oscillator classifier: the architecture of example 1 of the physics-aware-training
reference code (Wright et al., Nature 601, 549 (2022), doi:10.1038/s41586-021-04223-6;
mcmahon-lab/Physics-Aware-Training), where 196 oscillators feed a 206-oscillator network whose 10
extra oscillators are read out as class scores.

The physics does the computing::

    x --(fixed encoding q0 = a tanh(x / a))--> layer 1: N oscillators, q(t_end)
      --(pad with n_classes oscillators at rest, q = 0)--> layer 2: N + n_classes oscillators
      --(read the n_classes extra oscillators)--> ChannelAffine (per-class scale and offset) -> logits

The trainable parameters are the plants' controls (couplings and drives) and the per-class scale
and offset of the read-out. :func:`build_oscillator_digital_baseline` is the same digital parts
with the two oscillator networks replaced by wires.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validation import check_int, check_positive
from ..layers import ChannelAffine, PhysicalLayer
from ..plants.mechanics.oscillators import CoupledOscillatorPlant, OscillatorMismatch

__all__ = ["AmplitudeEncoding", "PadAtRest", "ReadLast", "RECOMMENDED_TRAINING",
           "build_oscillator_classifier", "build_oscillator_digital_baseline"]

#: Adam settings used by the digits benchmark (benchmarks/bench_pat_oscillators.py).
RECOMMENDED_TRAINING = {"epochs": 30, "lr": 0.02, "batch_size": 32}


class AmplitudeEncoding(nn.Module):
    """Fixed (untrained) encoding of features into initial amplitudes, q0 = a tanh(x / a): linear for
    small x, saturating at +-a so that amplitudes stay where sin q is monotonic (a = pi/2 rad)."""

    def __init__(self, *, amplitude_rad: float = math.pi / 2) -> None:
        super().__init__()
        self.amplitude_rad = check_positive("amplitude_rad", amplitude_rad)

    def forward(self, x):
        return self.amplitude_rad * torch.tanh(x / self.amplitude_rad)

    def extra_repr(self) -> str:
        return f"amplitude_rad={self.amplitude_rad:.4g}"


class PadAtRest(nn.Module):
    """Append ``extra`` oscillators whose initial amplitude is zero (they start at rest)."""

    def __init__(self, extra: int) -> None:
        super().__init__()
        self.extra = check_int("extra", extra)

    def forward(self, x):
        return torch.cat([x, x.new_zeros(x.shape[0], self.extra)], dim=1)


class ReadLast(nn.Module):
    """Read the last ``count`` outputs (the class oscillators)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = check_int("count", count)

    def forward(self, x):
        return x[:, -self.count:]


def _mismatch(value) -> OscillatorMismatch | None:
    if isinstance(value, bool):
        return OscillatorMismatch.wright2022() if value else None
    if isinstance(value, OscillatorMismatch):
        return value
    if isinstance(value, dict):
        try:
            return OscillatorMismatch(**value)
        except TypeError as error:
            raise ValueError(f"mismatch={value!r} has an unknown key; accepted keys: extra_coupling_std, "
                             f"nonlinearity_error, input_noise_std.") from error
    raise TypeError(f"mismatch must be True (the PAT reference recipe), False (ideal plant), a dict of "
                    f"OscillatorMismatch fields or an OscillatorMismatch, got {type(value).__name__}.")


def build_oscillator_classifier(*, in_features: int, n_classes: int, mismatch: bool | dict = True,
                                seed: int = 0, t_end: float = 0.5, n_steps: int = 5,
                                coupling_limit: float = 1.0, drive_limit: float = 1.0,
                                amplitude_rad: float = math.pi / 2, readout_scale: float = 8.0) -> nn.Sequential:
    """Two coupled-oscillator layers (``in_features`` then ``in_features + n_classes`` oscillators),
    read out from the ``n_classes`` extra oscillators of layer 2 (see the module docstring).

    mismatch:
        True: the PAT reference recipe (extra coupling 0.2, eta = 0.1, input noise 0.02) on both
        plants; False: ideal plants; a dict: :class:`OscillatorMismatch` fields.
    seed:
        seeds the plants (their fixed extra couplings and noise) and the initial couplings.
    readout_scale:
        initial per-class scale of the read-out (the class oscillators move by about
        t_end^2 / 2 times their acceleration, so scores are small before scaling).
    """
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    check_int("seed", seed, minimum=0)
    recipe = _mismatch(mismatch)
    common = dict(t_end=t_end, n_steps=n_steps, coupling_limit=coupling_limit, drive_limit=drive_limit,
                  mismatch=recipe)
    plant1 = CoupledOscillatorPlant(n_oscillators=in_features, seed=2 * seed, **common)
    plant2 = CoupledOscillatorPlant(n_oscillators=in_features + n_classes, seed=2 * seed + 1, **common)
    init = torch.Generator().manual_seed(10_000 + seed)
    return nn.Sequential(
        AmplitudeEncoding(amplitude_rad=amplitude_rad),
        PhysicalLayer(plant1, twin=plant1.nominal_twin(), initial_controls=plant1.initial_controls(init)),
        PadAtRest(n_classes),
        PhysicalLayer(plant2, twin=plant2.nominal_twin(), initial_controls=plant2.initial_controls(init)),
        ReadLast(n_classes),
        ChannelAffine(n_classes, scale=readout_scale),
    )


def build_oscillator_digital_baseline(*, in_features: int, n_classes: int, amplitude_rad: float = math.pi / 2,
                                      readout_scale: float = 8.0, seed: int = 0,
                                      mismatch: bool | dict = True) -> nn.Sequential:
    """The digital parts of :func:`build_oscillator_classifier` alone (encoding, padding, read-out
    of the class channels, per-class scale and offset), with each oscillator network replaced by a
    wire. The class channels are the padded zeros, so only the offsets can learn: this baseline sits
    at the majority-class rate by construction and shows that the accuracy comes from the physics.
    ``seed`` and ``mismatch`` are accepted so that an experiment can swap the two builders; they have
    nothing to act on here (no plant, deterministic initialisation)."""
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    check_int("seed", seed, minimum=0)
    _mismatch(mismatch)
    return nn.Sequential(
        AmplitudeEncoding(amplitude_rad=amplitude_rad),
        PadAtRest(n_classes),
        ReadLast(n_classes),
        ChannelAffine(n_classes, scale=readout_scale),
    )
