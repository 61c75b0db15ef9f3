"""Vowel classifier on coupled spin-torque nano-oscillators, read out from their synchronisation (Romera 2018).

Romera et al., Nature 563, 230 (2018), doi:10.1038/s41586-018-0632-y: the two formants (F1, F2) of a vowel
are mapped linearly onto the frequencies of two microwave sources A and B; each of the four oscillators
can phase-lock to A, to B or to neither; every vowel is assigned a target synchronisation pattern, and the
DC currents are trained until each vowel produces its pattern.

This model, stated (our design where the paper's details were not available to us; see
docs/substrates/spintronic_oscillators.md):

* encoder (fixed, no parameters): ``f_d = centre_d + half_width_d * clip(z_d / z_max, -1, 1)`` for the two
  z-scored formants z (z-scored on the training split, so a linear map of the formants in Hz onto the drive
  frequencies, as in the paper, clipped at ``z_max`` standard deviations). By default each source has its own
  sub-band of the plant's band (``STNOArray.drive_bands_ghz``; F1 -> A in the lower part, F2 -> B in the upper
  part, as a single linear Hz -> GHz map would place them) and half of the oscillators are tuned into each
  sub-band, so an oscillator competes for one source only;
* physics: :class:`~pnnlab.plants.spintronics.STNOArray`, trainable DC currents, measured frequencies;
* code book (fixed, chosen from the training split by :func:`design_codebook`): every class k gets a target
  synchronisation pattern T_k (which oscillators lock to A, which to B; several oscillators may share a
  source where their locking bands overlap, and a source may lock none), one distinct pattern per class;
* read-out (fixed, no parameters), :class:`SyncReadout`: with the lock score ``s_id = exp(-((f_i - f_d) /
  tau)^2)`` (1 for an oscillator locked to source d: it then measures f_d exactly), the class logit is the
  log-likelihood of T_k under independent locks, ``sum_id T_kid log s_id + (1 - T_kid) log(1 - s_id + eps)``.
  The class whose pattern is exactly realised wins; it is a soft, differentiable decoding of the
  synchronisation pattern (physics-aware training backpropagates through it and the twin's frequencies).

The only trainable parameters are the N DC currents (Romera: N = 4).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from .._validation import check_int, check_positive
from ..layers import PhysicalLayer
from ..plants.spintronics.stno_array import STNOArray, STNOMismatch

__all__ = ["FormantEncoder", "STNOClassifier", "SyncReadout", "build_stno_classifier", "conformance_sync_rule",
           "default_drive_bands", "design_codebook", "patterns_from_pairs", "realisable_patterns",
           "tuning_centres_ghz"]


class FormantEncoder(nn.Module):
    """Fixed linear map of z-scored features onto the drive frequencies, clipped at ``z_max`` (no parameters):
    feature d goes to ``bands_ghz[d]`` (or every feature to ``band_ghz`` when ``bands_ghz`` is None)."""

    def __init__(self, *, band_ghz: tuple[float, float], z_max: float = 2.5, bands_ghz: tuple | None = None) -> None:
        super().__init__()
        bands = [tuple(band_ghz)] if bands_ghz is None else [tuple(b) for b in bands_ghz]
        self.register_buffer("centre", torch.tensor([0.5 * (lo + hi) for lo, hi in bands], dtype=torch.float64))
        self.register_buffer("half_width", torch.tensor([0.5 * (hi - lo) for lo, hi in bands], dtype=torch.float64))
        self.z_max = check_positive("z_max", z_max)

    def forward(self, z):
        centre, half = self.centre.to(z.dtype), self.half_width.to(z.dtype)
        return centre + half * (z / self.z_max).clamp(-1.0, 1.0)


class SyncReadout(nn.Module):
    """Log-likelihood of each class's target synchronisation pattern (see the module docstring).

    ``patterns``: bool (n_classes, N, n_drives), True where oscillator i should lock to source d.
    ``tau_ghz``: width of the lock score (1 MHz); ``floor``: eps in log(1 - s + eps) (an unwanted lock costs
    at most -log(eps))."""

    def __init__(self, patterns: torch.Tensor, *, tau_ghz: float = 1e-3, floor: float = 1e-3) -> None:
        super().__init__()
        patterns = torch.as_tensor(patterns).bool()
        if patterns.dim() != 3:
            raise ValueError(f"patterns must have shape (n_classes, n_oscillators, n_drives), got {tuple(patterns.shape)}; "
                             f"convert (oscillator for A, oscillator for B) pairs with patterns_from_pairs(...).")
        self.register_buffer("patterns", patterns.clone())
        self.tau_ghz = check_positive("tau_ghz", tau_ghz)
        self.floor = check_positive("floor", floor)

    def forward(self, frequencies, drives):
        d2 = ((frequencies.unsqueeze(2) - drives.unsqueeze(1)) / self.tau_ghz).square()    # (B, N, D)
        log_free = torch.log(self.floor - torch.expm1(-d2))                                  # log(1 - s + eps)
        target = self.patterns.to(frequencies.dtype)                                         # (K, N, D)
        return -torch.einsum("bnd,knd->bk", d2, target) + torch.einsum("bnd,knd->bk", log_free, 1.0 - target)


class STNOClassifier(nn.Module):
    """encoder -> STNOArray (trainable DC currents) -> synchronisation read-out (see the module docstring)."""

    def __init__(self, plant: STNOArray, patterns: torch.Tensor, *, features: tuple[int, ...] | None = None,
                 z_max: float = 2.5, tau_ghz: float = 1e-3, initial_current_mA: float | None = None) -> None:
        super().__init__()
        if not isinstance(plant, STNOArray):
            raise TypeError(f"plant must be an STNOArray, got {type(plant).__name__}.")
        self.features = None if features is None else tuple(int(f) for f in features)
        if self.features is not None and len(self.features) != plant.n_drives:
            raise ValueError(f"features must name {plant.n_drives} columns (one per drive), got {features!r}.")
        patterns = torch.as_tensor(patterns)
        if patterns.dim() == 2:
            patterns = patterns_from_pairs(patterns, plant.n_oscillators)
        if tuple(patterns.shape[1:]) != (plant.n_oscillators, plant.n_drives):
            raise ValueError(f"patterns must have shape (n_classes, {plant.n_oscillators}, {plant.n_drives}), got "
                             f"{tuple(patterns.shape)}.")
        self.encoder = FormantEncoder(band_ghz=plant.band_ghz, z_max=z_max, bands_ghz=plant.drive_bands_ghz)
        low, high = plant.current_range_mA
        if initial_current_mA is None:
            current = torch.full((plant.n_oscillators,), 0.5 * (low + high))
        else:
            current = torch.as_tensor(initial_current_mA, dtype=torch.float32).expand(plant.n_oscillators).clone()
            if bool(((current < low) | (current > high)).any()):
                raise ValueError(f"initial_current_mA must lie in current_range_mA={plant.current_range_mA}, got "
                                 f"{current.tolist()}.")
        self.physical = PhysicalLayer(plant, twin=plant.nominal_twin(), initial_controls={"current": current})
        self.readout = SyncReadout(patterns, tau_ghz=tau_ghz)

    def drives(self, x):
        """Drive frequencies (GHz) for a batch of feature vectors."""
        return self.encoder(x if self.features is None else x[:, list(self.features)])

    def forward(self, x):
        drives = self.drives(x)
        return self.readout(self.physical(drives), drives)


def patterns_from_pairs(pairs: torch.Tensor, n_oscillators: int) -> torch.Tensor:
    """Patterns (n_classes, N, D) from one locked oscillator per source per class, ``pairs`` (n_classes, D)."""
    pairs = torch.as_tensor(pairs, dtype=torch.long)
    out = torch.zeros(pairs.shape[0], n_oscillators, pairs.shape[1], dtype=torch.bool)
    for d in range(pairs.shape[1]):
        out[torch.arange(pairs.shape[0]), pairs[:, d], d] = True
    return out


def default_drive_bands(band_ghz: tuple[float, float], n_drives: int, *, guard: float = 0.1) -> tuple:
    """Split ``band_ghz`` into ``n_drives`` equal sub-bands with a guard gap of ``guard`` times a sub-band's
    width between neighbours (so an oscillator at the top of one sub-band is not locked by the next source)."""
    lo, hi = band_ghz
    width = (hi - lo) / n_drives
    gap = guard * width
    return tuple((lo + d * width + (gap / 2 if d > 0 else 0.0), lo + (d + 1) * width - (gap / 2 if d < n_drives - 1 else 0.0))
                 for d in range(n_drives))


def tuning_centres_ghz(plant: STNOArray) -> torch.Tensor:
    """Design free-running frequency of every oscillator at the middle of the current range."""
    low, high = plant.current_range_mA
    return plant.design_frequency_ghz(torch.full((plant.n_oscillators,), 0.5 * (low + high), dtype=torch.float64))


def _groups(plant: STNOArray) -> list[list[int]]:
    """Which oscillators can lock to each source: its sub-band's group, or all of them on a shared band."""
    n, n_drives = plant.n_oscillators, plant.n_drives
    if plant.drive_bands_ghz is None:
        return [list(range(n)) for _ in range(n_drives)]
    per = n // n_drives
    return [list(range(d * per, (d + 1) * per)) for d in range(n_drives)]


def realisable_patterns(plant: STNOArray) -> list[torch.Tensor]:
    """Every target pattern the layout can produce: each source locks a subset of the oscillators that can
    reach it, and no oscillator locks to two sources (a phase-locked oscillator follows one drive)."""
    n, n_drives = plant.n_oscillators, plant.n_drives
    groups = _groups(plant)
    subsets = [[s for r in range(len(g) + 1) for s in itertools.combinations(g, r)] for g in groups]
    out = []
    for choice in itertools.product(*subsets):
        pattern = torch.zeros(n, n_drives, dtype=torch.bool)
        for d, members in enumerate(choice):
            pattern[list(members), d] = True
        if int(pattern.sum(dim=1).max()) <= 1:
            out.append(pattern)
    return out


def _assign(locks: np.ndarray, y: np.ndarray, n_classes: int):
    """Best one-pattern-per-class assignment for sample lock patterns ``locks`` (n, N, D): (hits, patterns)."""
    from scipy.optimize import linear_sum_assignment
    keys, inverse = np.unique(locks.reshape(len(locks), -1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.zeros((n_classes, len(keys)))
    np.add.at(counts, (y, inverse), 1.0)
    shape = locks.shape[1:]
    usable = keys.reshape(-1, *shape).sum(axis=2).max(axis=1) <= 1    # no oscillator locked to two sources
    counts[:, ~usable] = -1.0
    if len(keys) < n_classes:
        return -1.0, None
    rows, cols = linear_sum_assignment(-counts)
    if (counts[rows, cols] < 0).any():
        return -1.0, None
    return float(counts[rows, cols].sum()), keys[cols].reshape(-1, *shape)[np.argsort(rows)]


def design_codebook(plant: STNOArray, drives_train: torch.Tensor, y_train: torch.Tensor, n_classes: int, *,
                    grid_points: int = 19, sweeps: int = 3, twin_grid_points: int = 13, twin_sweeps: int = 2,
                    margin_fraction: float = 0.1, return_frequencies: bool = False):
    """Target patterns (n_classes, N, D), one distinct realisable pattern per class, chosen on the training
    split with the design physics only (the experimenter's design, before any query of the device).

    Step 1 (analytic): each oscillator locks to a source within its design locking half-width
    (``STNOArray.design_locking_half_width_ghz`` at the current that gives its frequency); the oscillators'
    frequencies are placed on a grid of ``grid_points`` over their tuning ranges, less ``margin_fraction`` of
    the current range at both ends (room for training to correct the device spread; coordinate search, ``sweeps``
    passes) to maximise the number of training samples whose design pattern is their class's pattern (Hungarian
    assignment of patterns to classes). Step 2 (nominal twin): the same search from that placement with the
    patterns measured on the nominal twin (``twin_grid_points``, ``twin_sweeps``; 0 skips it), which includes
    what the analytic band misses (mutual pulling of close oscillators, the second source, the amplitude
    response at low currents). Only the patterns are used for training; ``return_frequencies=True`` also
    returns the placement (GHz), which ``build_stno_classifier(start_from_design=True)`` turns into currents."""
    from ..plants.spintronics.stno_array import synchronisation_pattern
    check_int("n_classes", n_classes, minimum=2)
    drives64 = drives_train.detach().double().cpu()
    drives = drives64.numpy()
    y = y_train.detach().cpu().numpy().astype(np.int64)
    low, high = plant.current_range_mA
    margin = margin_fraction * (high - low)      # room left at both ends for training to correct device spread
    n = plant.n_oscillators
    ends = [plant.design_frequency_ghz(torch.full((n,), c, dtype=torch.float64)).numpy()
            for c in (low + margin, high - margin)]

    def analytic(f):
        half = plant.design_locking_half_width_ghz(plant.design_current_mA(torch.as_tensor(f))).numpy()
        locks = np.abs(drives[:, None, :] - f[None, :, None]) < half[None, :, None]   # (n, N, D)
        return _assign(locks, y, n_classes)

    twin = plant.nominal_twin().to("cpu")

    def simulated(f):
        current = plant.design_current_mA(torch.as_tensor(f))
        with torch.no_grad():
            measured = twin(drives64, {"current": current})
        return _assign(synchronisation_pattern(measured, drives64).numpy(), y, n_classes)

    def search(evaluate, freq, points, passes):
        best, patterns = evaluate(freq)
        grids = [np.linspace(ends[0][i], ends[1][i], points) for i in range(n)]      # reachable frequencies
        for _ in range(passes):
            for i in range(n):
                for value in grids[i]:
                    trial = freq.copy()
                    trial[i] = value
                    score, pats = evaluate(trial)
                    if score > best:
                        best, patterns, freq = score, pats, trial
        return best, patterns, freq

    freq = np.array([float(f) for f in tuning_centres_ghz(plant)])
    _, patterns, freq = search(analytic, freq, grid_points, sweeps)
    if twin_sweeps > 0:
        _, twin_patterns, twin_freq = search(simulated, freq, twin_grid_points, twin_sweeps)
        if twin_patterns is not None:
            patterns, freq = twin_patterns, twin_freq
    if patterns is None:
        realisable = realisable_patterns(plant)
        if len(realisable) < n_classes:
            raise ValueError(f"{n_classes} classes need as many distinct synchronisation patterns; this layout has "
                             f"{len(realisable)}; use more oscillators.")
        patterns = torch.stack(realisable[-n_classes:]).numpy()
    patterns = torch.as_tensor(patterns, dtype=torch.bool)
    return (patterns, torch.as_tensor(freq)) if return_frequencies else patterns


def build_stno_classifier(*, in_features: int, n_classes: int, seed: int = 0, n_oscillators: int = 4,
                          mismatch: STNOMismatch | None = None, x_train: torch.Tensor | None = None,
                          y_train: torch.Tensor | None = None, features: tuple[int, int] = (0, 1),
                          z_max: float = 2.5, start_from_design: bool = False, **plant_kwargs) -> nn.Module:
    """The Romera-style classifier on ``features`` (default the first two columns: F1, F2 at steady state
    for the vowels loader). Unless ``drive_bands_ghz`` is given (None: one shared band), each source gets its
    own sub-band of the plant's band (:func:`default_drive_bands`). With ``x_train``/``y_train`` the code book
    comes from :func:`design_codebook`; without, from the realisable patterns with the most locks (smoke tests).
    ``start_from_design``: start from the currents that put the design frequencies at the code book's design
    placement (the experimenter's calibration from the design curve f(I)); otherwise from mid-range currents."""
    check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    n_drives = plant_kwargs.get("n_drives", 2)
    if "drive_bands_ghz" not in plant_kwargs and n_oscillators % n_drives == 0:
        plant_kwargs["drive_bands_ghz"] = default_drive_bands(plant_kwargs.get("band_ghz", (0.30, 0.40)), n_drives)
    plant = STNOArray(n_oscillators=n_oscillators, mismatch=mismatch, seed=seed, **plant_kwargs)
    if x_train is not None and y_train is not None:
        encoder = FormantEncoder(band_ghz=plant.band_ghz, z_max=z_max, bands_ghz=plant.drive_bands_ghz)
        patterns, placement = design_codebook(plant, encoder(x_train[:, list(features)].double()), y_train, n_classes,
                                              return_frequencies=True)
        initial = plant.design_current_mA(placement.double()) if start_from_design else None
    else:
        if start_from_design:
            raise ValueError("start_from_design=True needs x_train and y_train (the design is made on the training split).")
        initial = None
        realisable = sorted(realisable_patterns(plant), key=lambda p: -int(p.sum()))
        if len(realisable) < n_classes:
            raise ValueError(f"{n_classes} classes need as many distinct synchronisation patterns; {n_oscillators} "
                             f"oscillators give {len(realisable)}; use more oscillators.")
        patterns = torch.stack(realisable[:n_classes])
    return STNOClassifier(plant, patterns, features=features, z_max=z_max, initial_current_mA=initial)


def conformance_sync_rule():
    """A tiny (model, x, y) for the conformance check of the synchronisation rule."""
    plant = STNOArray(n_oscillators=2, transient_ns=40.0, window_ns=40.0, step_ns=2.0)
    model = STNOClassifier(plant, torch.tensor([[0, 1], [1, 0], [0, 0]]))
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    return model, x, torch.tensor([0, 1, 2, 0, 1, 2])
