"""SHG physical neural network: the SHG-PNN of Wright et al., Nature 601, 549 (2022),
doi:10.1038/s41586-021-04223-6, where the spectrum of a pulse-shaped femtosecond pulse carries the data
and the trainable parameters and its second-harmonic spectrum, binned, is the output.

The physics does the computing::

    x --(fixed encoding a = sigmoid(x / input_scale), pixel amplitudes in [0, 1])-->
      SHG layer 1 (plant 1: n_in input pixels -> hidden bins)
      --(fixed per-sample normalisation: z-score over the bins, then sigmoid)-->  ... -->
      SHG layer L (n_classes bins)
      --(fixed per-sample read-out: log(bin power / mean bin power), a dB-like spectrum)-->
      ChannelAffine -> logits

The trainable parameters are the plants' controls (control-pixel amplitudes and every pixel's spectral
phase) and the per-class scale and offset of the read-out. Each SHG layer has its own plant, with its
own hidden truth when a mismatch recipe is given, and the plant's nominal twin as its twin.

Controls for a referee: :func:`build_shg_random_features` keeps every digital part and the trainable
read-out but replaces each SHG layer by a frozen random map of the same width in the same nonlinearity
class (a random complex quadratic form of the amplitudes, detected in power);
:func:`pnnlab.models.digital_baselines.build_matched_mlp` is a digital network with as many trainable
parameters as the physical model.

Recipes are objects: ``mismatch`` is an :class:`SHGMismatch` or None, ``noise`` a :class:`DetectorNoise`
or None. An experiment file, which cannot hold Python objects, names a preset instead
(``mismatch = "typical"``, ``noise = "typical"``; see :data:`MISMATCH_PRESETS`, :data:`NOISE_PRESETS`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import devices
from .._validation import check_int, check_positive
from ..layers import ChannelAffine, PhysicalLayer
from ..plants.optics.shg import DetectorNoise, SHGMismatch, SHGPlant

__all__ = ["BinNormalise", "LogRatio", "MISMATCH_PRESETS", "NOISE_PRESETS", "RECOMMENDED_TRAINING",
           "RandomQuadraticPower", "SigmoidEncoding", "build_shg_classifier", "build_shg_random_features",
           "mismatch_from", "noise_from"]

#: Adam settings used by ``pnnlab demo`` (vowels, 7 classes; about 8-12 s per run on one CPU thread).
#: benchmarks/bench_pat_vowels.py uses the epochs and batch size and tunes the learning rate per method
#: on validation (see its TUNED_LR and docs/substrates/shg.md for the measured figures).
RECOMMENDED_TRAINING = {"epochs": 300, "lr": 0.005, "batch_size": 16}

#: the detector noise of the ``"typical"`` preset (units of P_ref). Assumed: the exposure is set for the
#: operating level of trained networks (bins of about 3e-4 to 1e-3 P_ref), with P_ref worth 1e8
#: photoelectrons summed over a bin, so shot-like noise is 1e-4 sqrt(y) (0.5 % of a 4e-4 bin), and
#: read noise (summed over the binned detector pixels, with dark and ADC noise) is about 1000
#: electrons, 1e-5 P_ref (a few % of a typical bin).
TYPICAL_NOISE = DetectorNoise(read_noise=1e-5, shot_noise=1e-4)


class SigmoidEncoding(nn.Module):
    """Fixed (untrained) encoding of standardised features into pixel amplitudes in (0, 1):
    a = sigmoid(x / input_scale)."""

    def __init__(self, *, input_scale: float = 1.0) -> None:
        super().__init__()
        self.input_scale = check_positive("input_scale", input_scale)

    def forward(self, x):
        return torch.sigmoid(x / self.input_scale)

    def extra_repr(self) -> str:
        return f"input_scale={self.input_scale:.4g}"


class BinNormalise(nn.Module):
    """Fixed per-sample normalisation between SHG layers: z-score the bins of each sample, then a
    sigmoid, so the next shaper receives amplitudes in (0, 1) whatever the overall SH power."""

    def forward(self, y):
        z = (y - y.mean(dim=1, keepdim=True)) / (y.std(dim=1, keepdim=True) + 1e-6)
        return torch.sigmoid(z)


class LogRatio(nn.Module):
    """Fixed per-sample read-out of the final bins: log(y_j / mean_k y_k), the spectrum in
    (natural-log) decibels relative to its mean, so the spectrum's shape, not its overall brightness,
    carries the class. Bins below ``floor`` times the mean (possible with read noise) are clipped
    there."""

    def __init__(self, *, floor: float = 1e-3) -> None:
        super().__init__()
        self.floor = check_positive("floor", floor)

    def forward(self, y):
        mean = y.mean(dim=1, keepdim=True).clamp_min(1e-12)
        return torch.log(torch.maximum(y, self.floor * mean) / mean)


class RandomQuadraticPower(nn.Module):
    """Frozen random stand-in for an SHG layer of ``out_features`` bins, in the same nonlinearity
    class: y_j = |a^T Q_j a|^2, a random complex symmetric quadratic form of the input amplitudes
    (the second-harmonic field is quadratic in the fundamental field) detected in power. The Q_j have
    i.i.d. circular complex Gaussian entries of variance 1 / in_features^2, drawn once from ``seed``;
    nothing here is trainable."""

    def __init__(self, in_features: int, out_features: int, *, seed: int = 0) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.out_features = check_int("out_features", out_features)
        gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        shape = (out_features, in_features, in_features)
        q = torch.complex(devices.randn(shape, generator=gen, device="cpu"),  # a buffer: moves with .to
                          devices.randn(shape, generator=gen, device="cpu"))
        q = 0.5 * (q + q.transpose(1, 2)) / (math.sqrt(2.0) * in_features)
        self.register_buffer("forms", q)

    def forward(self, a):
        ac = a.to(self.forms.dtype)
        field = torch.einsum("bi,jik,bk->bj", ac, self.forms, ac)
        return field.abs().square().to(a.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features} (frozen)"


def _preset(value, presets: dict, name: str, kind: type, example: str):
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, str):
        if value not in presets:
            raise ValueError(f"{name}={value!r} is not a preset; the presets are {sorted(presets)} (or pass an "
                             f"{kind.__name__} object, or None for none).")
        return presets[value]()
    hint = (" (booleans are no longer accepted: True was the typical recipe)" if isinstance(value, bool) else "")
    raise TypeError(f"{name} must be an {kind.__name__}, a preset name {sorted(presets)} or None, got "
                    f"{type(value).__name__}{hint}; write {name}={example}.")


#: preset names an experiment file can give for ``mismatch`` (explicit map to recipe objects)
MISMATCH_PRESETS = {"typical": SHGMismatch.typical}
#: preset names an experiment file can give for ``noise``
NOISE_PRESETS = {"typical": lambda: TYPICAL_NOISE}


def mismatch_from(value) -> SHGMismatch | None:
    """An :class:`SHGMismatch` or None as given, or the recipe of a preset name
    (:data:`MISMATCH_PRESETS`: ``"typical"`` is :meth:`SHGMismatch.typical`)."""
    return _preset(value, MISMATCH_PRESETS, "mismatch", SHGMismatch, "SHGMismatch.typical() or 'typical'")


def noise_from(value) -> DetectorNoise | None:
    """A :class:`DetectorNoise` or None as given, or a preset name (:data:`NOISE_PRESETS`:
    ``"typical"`` is :data:`TYPICAL_NOISE`, read noise 1e-5 and shot noise 1e-4 in units of P_ref)."""
    return _preset(value, NOISE_PRESETS, "noise", DetectorNoise,
                   "DetectorNoise(read_noise=1e-5, shot_noise=1e-4) or 'typical'")


def _widths(in_features: int, n_classes: int, hidden_bins) -> list[int]:
    if hidden_bins is None:
        hidden = []
    elif isinstance(hidden_bins, int) and not isinstance(hidden_bins, bool):
        hidden = [hidden_bins]
    elif isinstance(hidden_bins, (list, tuple)):
        hidden = list(hidden_bins)
    else:
        raise TypeError(f"hidden_bins must be an int, a list of ints or None, got {type(hidden_bins).__name__}; "
                        f"e.g. hidden_bins=[12] for one hidden SHG layer of 12 bins.")
    for i, h in enumerate(hidden):
        check_int(f"hidden_bins[{i}]", h)
    return [in_features, *hidden, n_classes]


def build_shg_classifier(*, in_features: int, n_classes: int, hidden_bins: int | list[int] | None = None,
                         mismatch: SHGMismatch | str | None = None, noise: DetectorNoise | str | None = None,
                         seed: int = 0,
                         control_pixels_per_input: int = 2, points_per_pixel: int = 4,
                         resolution_pixels: float = 0.3, detector_span: float = 0.5,
                         input_scale: float = 1.0, readout_scale: float = 4.0) -> nn.Sequential:
    """SHG layers on the plant, read out from ``n_classes`` fixed spectral bins (see the module docstring).

    in_features, n_classes: task size (12 formants and 7 vowels for the vowel task).
    hidden_bins: bins of each hidden SHG layer (None: a single SHG layer).
    mismatch: the hidden truth of every plant, an :class:`SHGMismatch` (each plant draws its own
        per-pixel gain errors from its seed), a preset name (``"typical"``) or None for ideal plants.
    noise: detector noise of every plant, a :class:`DetectorNoise`, ``"typical"`` (:data:`TYPICAL_NOISE`)
        or None for none.
    seed: seeds the plants' hidden truth and noise and the initial controls.
    control_pixels_per_input, points_per_pixel, resolution_pixels, detector_span: shaper and
        spectrometer layout, passed to every :class:`SHGPlant`.
    input_scale: the fixed encoding is sigmoid(x / input_scale).
    readout_scale: initial per-class scale of the read-out.
    """
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    recipe = mismatch_from(mismatch)
    detector_noise = noise_from(noise)
    widths = _widths(in_features, n_classes, hidden_bins)
    init = torch.Generator().manual_seed(10_000 + seed)
    modules: list[nn.Module] = [SigmoidEncoding(input_scale=input_scale)]
    for index, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        plant = SHGPlant(n_inputs=n_in, n_outputs=n_out, control_pixels_per_input=control_pixels_per_input,
                         points_per_pixel=points_per_pixel, resolution_pixels=resolution_pixels,
                         detector_span=detector_span, mismatch=recipe, noise=detector_noise,
                         seed=1000 * seed + index)
        modules.append(PhysicalLayer(plant, twin=plant.nominal_twin(),
                                     initial_controls=plant.initial_controls(init)))
        modules.append(BinNormalise() if index < len(widths) - 2 else LogRatio())
    modules.append(ChannelAffine(n_classes, scale=readout_scale))
    return nn.Sequential(*modules)


def build_shg_random_features(*, in_features: int, n_classes: int, hidden_bins: int | list[int] | None = None,
                              seed: int = 0, input_scale: float = 1.0, readout_scale: float = 4.0) -> nn.Sequential:
    """The control for :func:`build_shg_classifier`: the same fixed encoding, normalisations and trainable
    per-class read-out, with each SHG layer replaced by a frozen :class:`RandomQuadraticPower` map of the
    same width (the same nonlinearity class, nothing of it trained). Its trainable parameters are the
    read-out's 2 n_classes; ``seed`` draws the random maps."""
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    widths = _widths(in_features, n_classes, hidden_bins)
    modules: list[nn.Module] = [SigmoidEncoding(input_scale=input_scale)]
    for index, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        modules.append(RandomQuadraticPower(n_in, n_out, seed=1000 * seed + index))
        modules.append(BinNormalise() if index < len(widths) - 2 else LogRatio())
    modules.append(ChannelAffine(n_classes, scale=readout_scale))
    return nn.Sequential(*modules)
