"""Two-layer coupled-oscillator classifier: the architecture of example 1 of the physics-aware-training
reference code (Wright et al., Nature 601, 549 (2022), doi:10.1038/s41586-021-04223-6;
mcmahon-lab/Physics-Aware-Training), where 196 oscillators feed a 206-oscillator network whose 10
extra oscillators are read out as class scores.

The physics does the computing::

    x --(fixed encoding q0 = a tanh(x / a))--> layer 1: N oscillators, q(t_end)
      --(pad with n_classes oscillators at rest, q = 0)--> layer 2: N + n_classes oscillators
      --(read the n_classes extra oscillators)--> ChannelAffine (per-class scale and offset) -> logits

The trainable parameters are the plants' controls (couplings and drives) and the per-class scale
and offset of the read-out.

Controls for a referee: :func:`build_oscillator_random_features` keeps the encoding, the padding, the
read-out of the class channels and its trainable per-class scale and offset, with each oscillator
network replaced by a frozen random map of the same width and the same sine nonlinearity (nothing of it
trained); :func:`pnnlab.models.digital_baselines.build_matched_mlp` is a digital network with as many
trainable parameters as the physical model.

``mismatch`` is an :class:`OscillatorMismatch` or None; an experiment file names a preset instead
(``mismatch = "wright2022"``, see :data:`MISMATCH_PRESETS`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import devices
from .._validation import check_int, check_positive
from ..layers import ChannelAffine, PhysicalLayer
from ..plants.mechanics.oscillators import CoupledOscillatorPlant, OscillatorMismatch

__all__ = ["AmplitudeEncoding", "MISMATCH_PRESETS", "PadAtRest", "RandomSineMap", "ReadLast",
           "RECOMMENDED_TRAINING", "build_oscillator_classifier", "build_oscillator_random_features"]

#: Adam settings for digits; benchmarks/bench_pat_oscillators.py uses the epochs and batch size and tunes
#: the learning rate per method on validation (its TUNED_LR).
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


#: preset names an experiment file can give for ``mismatch`` (explicit map to recipe objects)
MISMATCH_PRESETS = {"wright2022": OscillatorMismatch.wright2022}


def _mismatch(value) -> OscillatorMismatch | None:
    if value is None or isinstance(value, OscillatorMismatch):
        return value
    if isinstance(value, str):
        if value not in MISMATCH_PRESETS:
            raise ValueError(f"mismatch={value!r} is not a preset; the presets are {sorted(MISMATCH_PRESETS)} "
                             f"(or pass an OscillatorMismatch, or None for ideal plants).")
        return MISMATCH_PRESETS[value]()
    hint = " (booleans are no longer accepted: True was the reference recipe)" if isinstance(value, bool) else ""
    raise TypeError(f"mismatch must be an OscillatorMismatch, a preset name {sorted(MISMATCH_PRESETS)} or None, "
                    f"got {type(value).__name__}{hint}; write mismatch=OscillatorMismatch.wright2022() or "
                    f"mismatch='wright2022'.")


class RandomSineMap(nn.Module):
    """Frozen random stand-in for an oscillator network, with the same sine nonlinearity: the
    small-time form of the oscillator map started at rest, q(t) ~ q0 + (t^2 / 2) (W sin q0), with a
    fixed random symmetric W of the initial coupling scale (entries uniform in +-1/sqrt(N) before
    symmetrising, drawn once from ``seed``). Nothing here is trainable."""

    def __init__(self, n: int, *, t_end: float = 0.5, seed: int = 0) -> None:
        super().__init__()
        self.n = check_int("n", n)
        self.t_end = check_positive("t_end", t_end)
        gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        c = (2 * devices.rand((n, n), generator=gen, device="cpu") - 1) / math.sqrt(n)  # a buffer: moves with .to
        self.register_buffer("weight", 0.5 * (c + c.T))

    def forward(self, q0):
        return q0 + 0.5 * self.t_end ** 2 * (torch.sin(q0) @ self.weight.T)

    def extra_repr(self) -> str:
        return f"n={self.n}, t_end={self.t_end} (frozen)"


def build_oscillator_classifier(*, in_features: int, n_classes: int,
                                mismatch: OscillatorMismatch | str | None = None,
                                seed: int = 0, t_end: float = 0.5, n_steps: int = 5,
                                coupling_limit: float = 1.0, drive_limit: float = 1.0,
                                amplitude_rad: float = math.pi / 2, readout_scale: float = 8.0) -> nn.Sequential:
    """Two coupled-oscillator layers (``in_features`` then ``in_features + n_classes`` oscillators),
    read out from the ``n_classes`` extra oscillators of layer 2 (see the module docstring).

    mismatch:
        the hidden truth of both plants: an :class:`OscillatorMismatch` (e.g.
        ``OscillatorMismatch.wright2022()``, the PAT reference recipe), a preset name
        (``"wright2022"``) or None for ideal plants.
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


def build_oscillator_random_features(*, in_features: int, n_classes: int, seed: int = 0, t_end: float = 0.5,
                                     amplitude_rad: float = math.pi / 2, readout_scale: float = 8.0) -> nn.Sequential:
    """The control for :func:`build_oscillator_classifier`: the same encoding, padding with class
    channels at rest, read-out of the class channels and trainable per-class scale and offset, with
    each oscillator network replaced by a frozen :class:`RandomSineMap` of the same width (64 then 74
    for digits). Trainable: the read-out's 2 n_classes parameters; ``seed`` draws the random maps."""
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    return nn.Sequential(
        AmplitudeEncoding(amplitude_rad=amplitude_rad),
        RandomSineMap(in_features, t_end=t_end, seed=2 * seed),
        PadAtRest(n_classes),
        RandomSineMap(in_features + n_classes, t_end=t_end, seed=2 * seed + 1),
        ReadLast(n_classes),
        ChannelAffine(n_classes, scale=readout_scale),
    )
