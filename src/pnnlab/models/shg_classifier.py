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
own hidden truth when the mismatch is on, and the plant's nominal twin as its twin.
:func:`build_shg_digital_baseline` is the same digital parts with each SHG layer replaced by a fixed
pass-through of the same output size.
"""

from __future__ import annotations

from dataclasses import fields

import torch
from torch import nn

from .._validation import check_int, check_positive
from ..layers import ChannelAffine, PhysicalLayer
from ..plants.optics.shg import (DetectorNoise, DetectorSaturation, SHGMismatch, SHGPlant, ShaperError,
                                 SpectralPhase)

__all__ = ["BinNormalise", "LogRatio", "PassThrough", "RECOMMENDED_TRAINING", "SigmoidEncoding",
           "build_shg_classifier", "build_shg_digital_baseline", "mismatch_from", "noise_from"]

#: Adam settings used by ``pnnlab demo`` and benchmarks/bench_pat_vowels.py (vowels, 7 classes).
#: (about 8-12 s per run on one CPU thread; measured PAT ~94 %, in-silico ~60 %, ideal ~94 %).
RECOMMENDED_TRAINING = {"epochs": 300, "lr": 0.005, "batch_size": 16}

#: detector noise used when ``noise=True`` (units of P_ref). Assumed: the exposure is set for the
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


class PassThrough(nn.Module):
    """Fixed, non-trainable stand-in for a physical layer of ``out_features`` outputs: the mean of
    ``out_features`` contiguous groups of the inputs (adaptive average pooling, or repetition when
    there are fewer inputs than outputs)."""

    def __init__(self, out_features: int) -> None:
        super().__init__()
        self.out_features = check_int("out_features", out_features)

    def forward(self, x):
        return nn.functional.adaptive_avg_pool1d(x.unsqueeze(1), self.out_features).squeeze(1)


def _from_dict(cls, value, name: str):
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict of {cls.__name__} fields, got {type(value).__name__}.")
    accepted = [f.name for f in fields(cls)]
    unknown = [k for k in value if k not in accepted]
    if unknown:
        raise ValueError(f"{name} has unknown key(s) {unknown}; accepted keys: {', '.join(accepted)}.")
    return cls(**value)


def mismatch_from(value) -> SHGMismatch | None:
    """True: :meth:`SHGMismatch.typical`; False/None: none; a dict with optional keys ``dispersion``,
    ``shaper`` (dicts of :class:`SpectralPhase` / :class:`ShaperError` fields) and ``detector``
    (a dict of :class:`DetectorSaturation` fields, or a number: the saturation level); or an SHGMismatch."""
    if value is None or value is False:
        return None
    if value is True:
        return SHGMismatch.typical()
    if isinstance(value, SHGMismatch):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"mismatch must be True (the typical recipe), False (ideal plant), a dict or an "
                        f"SHGMismatch, got {type(value).__name__}.")
    unknown = [k for k in value if k not in ("dispersion", "shaper", "detector")]
    if unknown:
        raise ValueError(f"mismatch has unknown key(s) {unknown}; accepted keys: dispersion, shaper, detector "
                         f"(e.g. {{'dispersion': {{'group_delay_dispersion_fs2': 1000.0}}}}).")
    detector = value.get("detector")
    if isinstance(detector, (int, float)) and not isinstance(detector, bool):
        detector = DetectorSaturation(level=float(detector))
    elif detector is not None:
        detector = _from_dict(DetectorSaturation, detector, "mismatch['detector']")
    return SHGMismatch(dispersion=_from_dict(SpectralPhase, value.get("dispersion", {}), "mismatch['dispersion']"),
                       shaper=_from_dict(ShaperError, value.get("shaper", {}), "mismatch['shaper']"),
                       detector=detector)


def noise_from(value) -> DetectorNoise | None:
    """True: the typical detector noise (read 1e-3, shot 1e-2 in units of P_ref); False/None: none;
    a dict of :class:`DetectorNoise` fields; or a DetectorNoise."""
    if value is None or value is False:
        return None
    if value is True:
        return TYPICAL_NOISE
    return _from_dict(DetectorNoise, value, "noise")


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
                         mismatch: bool | dict = True, noise: bool | dict = True, seed: int = 0,
                         control_pixels_per_input: int = 2, points_per_pixel: int = 4,
                         resolution_pixels: float = 0.3, detector_span: float = 0.5,
                         input_scale: float = 1.0, readout_scale: float = 4.0) -> nn.Sequential:
    """SHG layers on the plant, read out from ``n_classes`` fixed spectral bins (see the module docstring).

    in_features, n_classes: task size (12 formants and 7 vowels for the vowel task).
    hidden_bins: bins of each hidden SHG layer (None: a single SHG layer).
    mismatch: True for :meth:`SHGMismatch.typical` on every plant (each plant draws its own per-pixel
        gain errors from its seed), False for ideal plants, or a dict (see :func:`mismatch_from`).
    noise: True for the typical detector noise, False for none, or a dict of DetectorNoise fields.
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


def build_shg_digital_baseline(*, in_features: int, n_classes: int, hidden_bins: int | list[int] | None = None,
                               input_scale: float = 1.0, readout_scale: float = 4.0,
                               **_ignored) -> nn.Sequential:
    """The digital parts of :func:`build_shg_classifier` alone: the same fixed encoding, normalisations
    and trainable per-class scale and offset, with each SHG layer replaced by a fixed
    :class:`PassThrough` of the same output size. Extra keyword arguments of the physical model
    (mismatch, noise, seed, layout) are accepted and ignored."""
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    widths = _widths(in_features, n_classes, hidden_bins)
    modules: list[nn.Module] = [SigmoidEncoding(input_scale=input_scale)]
    for index, n_out in enumerate(widths[1:]):
        modules.append(PassThrough(n_out))
        modules.append(BinNormalise() if index < len(widths) - 2 else LogRatio())
    modules.append(ChannelAffine(n_classes, scale=readout_scale))
    return nn.Sequential(*modules)
