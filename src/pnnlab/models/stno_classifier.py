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
  source where their locking bands overlap, and a source may lock none), one distinct pattern per class; or
  (``decoder="lookup"``, :func:`design_lookup_decoder`) a table in which every lock pattern the design produces
  on the training split decodes to the majority class of its training vowels, so a class may own several;
* read-out (fixed, no parameters), :class:`SyncReadout`: with the lock score ``s_id = exp(-((f_i - f_d) /
  tau)^2)`` (1 for an oscillator locked to source d: it then measures f_d exactly), the class logit is the
  log-likelihood of T_k under independent locks, ``sum_id T_kid log s_id + (1 - T_kid) log(1 - s_id + eps)``
  (the log-sum-exp over its patterns where a class owns several).
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

__all__ = ["FormantEncoder", "STNOClassifier", "SyncReadout", "build_stno_classifier", "calibrate_currents",
           "conformance_sync_rule", "decode_lookup", "default_drive_bands", "design_codebook", "design_lookup_decoder",
           "patterns_from_pairs", "realisable_patterns", "tuning_centres_ghz"]


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

    ``patterns``: bool (M, N, n_drives), True where oscillator i should lock to source d. ``classes``: the class
    of each pattern (M,); None (default) means one pattern per class, pattern k for class k. Where a class owns
    several patterns (a look-up code, :func:`design_lookup_decoder`) its logit is the log-sum-exp of their
    log-likelihoods (the likelihood of any of them). ``tau_ghz``: width of the lock score (1 MHz); ``floor``:
    eps in log(1 - s + eps) (an unwanted lock costs at most -log(eps))."""

    def __init__(self, patterns: torch.Tensor, *, classes: torch.Tensor | None = None, tau_ghz: float = 1e-3,
                 floor: float = 1e-3) -> None:
        super().__init__()
        patterns = torch.as_tensor(patterns).bool()
        if patterns.dim() != 3:
            raise ValueError(f"patterns must have shape (n_patterns, n_oscillators, n_drives), got {tuple(patterns.shape)}; "
                             f"convert (oscillator for A, oscillator for B) pairs with patterns_from_pairs(...).")
        if classes is None:
            classes = torch.arange(len(patterns))
        classes = torch.as_tensor(classes, dtype=torch.long).flatten()
        if len(classes) != len(patterns) or bool((classes < 0).any()):
            raise ValueError(f"classes must give a non-negative class for each of the {len(patterns)} patterns, got "
                             f"{classes.tolist()}.")
        missing = sorted(set(range(int(classes.max()) + 1)) - set(classes.tolist()))
        if missing:
            raise ValueError(f"classes {missing} own no pattern (classes={classes.tolist()}); every class from 0 to "
                             f"{int(classes.max())} needs at least one, or it can never be predicted.")
        self.register_buffer("patterns", patterns.clone())
        self.register_buffer("classes", classes.clone())
        self.n_classes = int(classes.max()) + 1
        self.one_per_class = bool(torch.equal(classes, torch.arange(len(patterns))))
        self.tau_ghz = check_positive("tau_ghz", tau_ghz)
        self.floor = check_positive("floor", floor)

    def pattern_log_likelihood(self, frequencies, drives):
        """(B, M): log-likelihood of every pattern under independent locks."""
        d2 = ((frequencies.unsqueeze(2) - drives.unsqueeze(1)) / self.tau_ghz).square()    # (B, N, D)
        log_free = torch.log(self.floor - torch.expm1(-d2))                                  # log(1 - s + eps)
        target = self.patterns.to(frequencies.dtype)                                         # (M, N, D)
        return -torch.einsum("bnd,knd->bk", d2, target) + torch.einsum("bnd,knd->bk", log_free, 1.0 - target)

    def _owned(self, ll):
        """(B, K, M) log-likelihoods with -inf where pattern m is not class k's."""
        own = self.classes.to(ll.device).unsqueeze(0) == torch.arange(self.n_classes, device=ll.device).unsqueeze(1)
        return ll.unsqueeze(1).masked_fill(~own, float("-inf"))

    def forward(self, frequencies, drives):
        ll = self.pattern_log_likelihood(frequencies, drives)
        return ll if self.one_per_class else self._owned(ll).logsumexp(dim=2)

    def targets(self, frequencies, drives, y):
        """(B, N, D) target pattern of every sample: its class's pattern, or, where the class owns several, the one
        most likely under this measurement (the nearest, so training moves as few locks as it can)."""
        if self.one_per_class:
            return self.patterns[y.to(self.patterns.device)]
        ll = self._owned(self.pattern_log_likelihood(frequencies, drives))                  # (B, K, M)
        best = ll[torch.arange(len(y)), y.to(ll.device)].argmax(dim=1)
        return self.patterns[best]


class STNOClassifier(nn.Module):
    """encoder -> STNOArray (trainable DC currents) -> synchronisation read-out (see the module docstring)."""

    def __init__(self, plant: STNOArray, patterns: torch.Tensor, *, features: tuple[int, ...] | None = None,
                 z_max: float = 2.5, tau_ghz: float = 1e-3, initial_current_mA: float | None = None,
                 pattern_classes: torch.Tensor | None = None) -> None:
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
            raise ValueError(f"patterns must have shape (n_patterns, {plant.n_oscillators}, {plant.n_drives}), got "
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
        self.readout = SyncReadout(patterns, classes=pattern_classes, tau_ghz=tau_ghz)

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


def _pattern_counts(locks: np.ndarray, y: np.ndarray, n_classes: int):
    """The distinct lock patterns among ``locks`` (n, N, D), as (M, N, D), and how many samples of each class
    produce each one, (n_classes, M)."""
    keys, inverse = np.unique(locks.reshape(len(locks), -1), axis=0, return_inverse=True)
    counts = np.zeros((n_classes, len(keys)))
    np.add.at(counts, (y, inverse.reshape(-1)), 1.0)
    return keys.reshape(-1, *locks.shape[1:]), counts


def _assign(locks: np.ndarray, y: np.ndarray, n_classes: int):
    """Best one-pattern-per-class assignment for sample lock patterns ``locks`` (n, N, D): (hits, patterns)."""
    from scipy.optimize import linear_sum_assignment
    keys, counts = _pattern_counts(locks, y, n_classes)
    usable = keys.sum(axis=2).max(axis=1) <= 1    # no oscillator locked to two sources
    counts[:, ~usable] = -1.0
    if len(keys) < n_classes:
        return -1.0, None
    rows, cols = linear_sum_assignment(-counts)
    if (counts[rows, cols] < 0).any():
        return -1.0, None
    return float(counts[rows, cols].sum()), keys[cols][np.argsort(rows)]


def _design_locks(plant: STNOArray, freq: np.ndarray, drives: np.ndarray) -> np.ndarray:
    """Analytic lock pattern (n, N, D): oscillator i at design frequency ``freq[i]`` locks source d when
    |f_d - f_i| is under its design locking half-width (at the current that gives that frequency)."""
    half = plant.design_locking_half_width_ghz(plant.design_current_mA(torch.as_tensor(freq))).numpy()
    return np.abs(drives[:, None, :] - freq[None, :, None]) < half[None, :, None]


def _reachable_grids(plant: STNOArray, points: int, margin_fraction: float) -> list[np.ndarray]:
    """Per oscillator, ``points`` design frequencies over its tuning range less ``margin_fraction`` of the current
    range at both ends (room left for training to correct the device spread)."""
    low, high = plant.current_range_mA
    margin = margin_fraction * (high - low)
    n = plant.n_oscillators
    ends = [plant.design_frequency_ghz(torch.full((n,), c, dtype=torch.float64)).numpy()
            for c in (low + margin, high - margin)]
    return [np.linspace(ends[0][i], ends[1][i], points) for i in range(n)]


def _coordinate_search(evaluate, freq: np.ndarray, grids: list[np.ndarray], passes: int):
    """Coordinate search of the placement: each pass tries every grid value of every oscillator in turn and
    keeps a change when ``evaluate(freq) -> (score, result)`` improves. Returns (score, result, freq)."""
    best, result = evaluate(freq)
    for _ in range(passes):
        for i in range(len(freq)):
            for value in grids[i]:
                trial = freq.copy()
                trial[i] = value
                score, res = evaluate(trial)
                if score > best:
                    best, result, freq = score, res, trial
    return best, result, freq


def _lookup(locks: np.ndarray, y: np.ndarray, n_classes: int):
    """Look-up decoding of sample lock patterns ``locks`` (n, N, D): every pattern seen in training decodes to
    the class most of its training samples have (ties to the lower class). Returns (hits, (keys, classes)):
    the training samples decoded right, the distinct patterns (M, N, D) and their classes (M,)."""
    keys, counts = _pattern_counts(locks, y, n_classes)
    return float(counts.max(axis=0).sum()), (keys, counts.argmax(axis=0))


def decode_lookup(locks: torch.Tensor, keys: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Class of every sample whose lock pattern ``locks`` (n, N, D) is one of ``keys`` (M, N, D), else -1."""
    match = (locks.unsqueeze(1) == keys.unsqueeze(0)).flatten(2).all(dim=2)        # (n, M)
    out = torch.full((len(locks),), -1, dtype=torch.long)
    hit = match.any(dim=1)
    out[hit] = classes[match[hit].float().argmax(dim=1)]
    return out


def _design(plant: STNOArray, drives_train: torch.Tensor, y_train: torch.Tensor, score, *, grid_points: int,
            sweeps: int, twin_grid_points: int, twin_sweeps: int, margin_fraction: float):
    """The two-step placement search shared by the code-book designs: ``score(locks, y) -> (hits, result)`` on the
    analytic locks, then (``twin_sweeps`` > 0) on the patterns the nominal twin measures. Returns (result, freq)."""
    from ..plants.spintronics.stno_array import synchronisation_pattern
    drives64 = drives_train.detach().double().cpu()
    drives = drives64.numpy()
    y = y_train.detach().cpu().numpy().astype(np.int64)
    twin = plant.nominal_twin().to("cpu")

    def simulated(f):
        with torch.no_grad():
            measured = twin(drives64, {"current": plant.design_current_mA(torch.as_tensor(f))})
        return score(synchronisation_pattern(measured, drives64).numpy(), y)

    freq = np.array([float(f) for f in tuning_centres_ghz(plant)])
    _, result, freq = _coordinate_search(lambda f: score(_design_locks(plant, f, drives), y), freq,
                                         _reachable_grids(plant, grid_points, margin_fraction), sweeps)
    if twin_sweeps > 0:
        _, twin_result, twin_freq = _coordinate_search(simulated, freq, _reachable_grids(plant, twin_grid_points,
                                                                                        margin_fraction), twin_sweeps)
        if twin_result is not None:
            result, freq = twin_result, twin_freq
    return result, freq


def design_lookup_decoder(plant: STNOArray, drives_train: torch.Tensor, y_train: torch.Tensor, n_classes: int, *,
                          grid_points: int = 19, sweeps: int = 3, twin_grid_points: int = 13, twin_sweeps: int = 2,
                          margin_fraction: float = 0.1):
    """A more generous code than :func:`design_codebook`'s one pattern per class: the placement (same two-step
    search, same arguments) that maximises the training vowels decoded right when *every* lock pattern decodes
    to the majority class of its training vowels (a look-up table, so a class may own several patterns).
    Returns (patterns (M, N, D) bool, classes (M,), placement (N,) GHz): pass the first two to
    :class:`STNOClassifier` (``pattern_classes=``) or to :func:`decode_lookup`. Every class the search left without
    a pattern gets one realisable pattern that no training vowel produced (it can still be trained towards)."""
    check_int("n_classes", n_classes, minimum=2)
    (keys, classes), freq = _design(plant, drives_train, y_train, lambda locks, y: _lookup(locks, y, n_classes),
                                    grid_points=grid_points, sweeps=sweeps, twin_grid_points=twin_grid_points,
                                    twin_sweeps=twin_sweeps, margin_fraction=margin_fraction)
    keys, classes = torch.as_tensor(keys, dtype=torch.bool), torch.as_tensor(classes)
    unused = [p for p in realisable_patterns(plant) if not (keys == p).flatten(1).all(dim=1).any()]
    for k in sorted(set(range(n_classes)) - set(classes.tolist())):
        if not unused:
            raise ValueError(f"class {k} has no synchronisation pattern left in this layout; use more oscillators.")
        keys, classes = torch.cat([keys, unused.pop()[None]]), torch.cat([classes, torch.tensor([k])])
    return keys, classes, torch.as_tensor(freq)


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
    check_int("n_classes", n_classes, minimum=2)
    patterns, freq = _design(plant, drives_train, y_train, lambda locks, y: _assign(locks, y, n_classes),
                             grid_points=grid_points, sweeps=sweeps, twin_grid_points=twin_grid_points,
                             twin_sweeps=twin_sweeps, margin_fraction=margin_fraction)
    if patterns is None:
        realisable = realisable_patterns(plant)
        if len(realisable) < n_classes:
            raise ValueError(f"{n_classes} classes need as many distinct synchronisation patterns; this layout has "
                             f"{len(realisable)}; use more oscillators.")
        patterns = torch.stack(realisable[-n_classes:]).numpy()
    patterns = torch.as_tensor(patterns, dtype=torch.bool)
    return (patterns, torch.as_tensor(freq)) if return_frequencies else patterns


def calibrate_currents(plant: STNOArray, frequency_ghz: torch.Tensor, *, points: int = 9,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """The DC currents that put every oscillator's *measured* free-running frequency at ``frequency_ghz`` (N,):
    the experimenter's calibration. The frequencies are measured with the sources off at ``points`` currents
    evenly spread over the current range (all oscillators at once, so ``points`` plant queries,
    :meth:`STNOArray.measure_free_running`) and each oscillator's curve f_i(I), increasing, is inverted by linear
    interpolation (a target outside the measured range goes to the nearest end). It removes what the device
    spread does to the free-running frequencies; the locking bands' widths and the coupling are not measured."""
    points = check_int("points", points, minimum=2)
    low, high = plant.current_range_mA
    grid = torch.linspace(low, high, points, dtype=torch.float64)
    measured = plant.measure_free_running(grid[:, None].expand(points, plant.n_oscillators), generator=generator)
    target = torch.as_tensor(frequency_ghz, dtype=torch.float64).flatten()
    if len(target) != plant.n_oscillators:
        raise ValueError(f"frequency_ghz must give one frequency per oscillator ({plant.n_oscillators}), got "
                         f"{len(target)}.")
    curves = np.maximum.accumulate(measured.cpu().numpy(), axis=0)     # thermal jitter must not fold the curve
    return torch.tensor([np.interp(float(target[i]), curves[:, i], grid.numpy()) for i in range(plant.n_oscillators)],
                        dtype=torch.float64).clamp(low, high)


def build_stno_classifier(*, in_features: int, n_classes: int, seed: int = 0, n_oscillators: int = 4,
                          mismatch: STNOMismatch | None = None, x_train: torch.Tensor | None = None,
                          y_train: torch.Tensor | None = None, features: tuple[int, int] = (0, 1),
                          z_max: float = 2.5, start_from_design: bool = False, decoder: str = "pattern",
                          calibrate: bool = False, **plant_kwargs) -> nn.Module:
    """The Romera-style classifier on ``features`` (default the first two columns: F1, F2 at steady state
    for the vowels loader). Unless ``drive_bands_ghz`` is given (None: one shared band), each source gets its
    own sub-band of the plant's band (:func:`default_drive_bands`). With ``x_train``/``y_train`` the code book
    comes from :func:`design_codebook`; without, from the realisable patterns with the most locks (smoke tests).
    ``start_from_design``: start from the currents that put the design frequencies at the code book's design
    placement (the experimenter's calibration from the design curve f(I)); otherwise from mid-range currents.
    ``calibrate`` (with ``start_from_design``): place the *measured* free-running frequencies there instead
    (:func:`calibrate_currents`, 9 plant queries with the sources off; ``model.calibration_queries`` says how many).
    ``decoder``: "pattern" (default: one target pattern per class, :func:`design_codebook`) or "lookup" (every
    lock pattern the design produces on the training split decodes to its majority class, so a class may own
    several; :func:`design_lookup_decoder`; needs ``x_train``/``y_train``)."""
    check_int("in_features", in_features)
    if decoder not in ("pattern", "lookup"):
        raise ValueError(f"decoder must be 'pattern' (one target pattern per class) or 'lookup' (a table of patterns "
                         f"per class), got {decoder!r}.")
    if calibrate and not start_from_design:
        raise ValueError("calibrate=True needs start_from_design=True (it calibrates the design placement).")
    n_classes = check_int("n_classes", n_classes, minimum=2)
    n_drives = plant_kwargs.get("n_drives", 2)
    if "drive_bands_ghz" not in plant_kwargs and n_oscillators % n_drives == 0:
        plant_kwargs["drive_bands_ghz"] = default_drive_bands(plant_kwargs.get("band_ghz", (0.30, 0.40)), n_drives)
    plant = STNOArray(n_oscillators=n_oscillators, mismatch=mismatch, seed=seed, **plant_kwargs)
    if x_train is not None and y_train is not None:
        encoder = FormantEncoder(band_ghz=plant.band_ghz, z_max=z_max, bands_ghz=plant.drive_bands_ghz)
        drives = encoder(x_train[:, list(features)].double())
        if decoder == "lookup":
            patterns, classes, placement = design_lookup_decoder(plant, drives, y_train, n_classes)
        else:
            patterns, placement = design_codebook(plant, drives, y_train, n_classes, return_frequencies=True)
            classes = None
        if calibrate:
            initial = calibrate_currents(plant, placement)
        else:
            initial = plant.design_current_mA(placement.double()) if start_from_design else None
    else:
        if decoder == "lookup":
            raise ValueError("decoder='lookup' needs x_train and y_train (the table is made on the training split).")
        classes = None
        if start_from_design:
            raise ValueError("start_from_design=True needs x_train and y_train (the design is made on the training split).")
        initial = None
        realisable = sorted(realisable_patterns(plant), key=lambda p: -int(p.sum()))
        if len(realisable) < n_classes:
            raise ValueError(f"{n_classes} classes need as many distinct synchronisation patterns; {n_oscillators} "
                             f"oscillators give {len(realisable)}; use more oscillators.")
        patterns = torch.stack(realisable[:n_classes])
    model = STNOClassifier(plant, patterns, features=features, z_max=z_max, initial_current_mA=initial,
                           pattern_classes=classes)
    model.calibration_queries = plant.meter.queries        # the calibration's queries (0 without calibrate)
    return model


def conformance_sync_rule():
    """A tiny (model, x, y) for the conformance check of the synchronisation rule."""
    plant = STNOArray(n_oscillators=2, transient_ns=40.0, window_ns=40.0, step_ns=2.0)
    model = STNOClassifier(plant, torch.tensor([[0, 1], [1, 0], [0, 0]]))
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    return model, x, torch.tensor([0, 1, 2, 0, 1, 2])
