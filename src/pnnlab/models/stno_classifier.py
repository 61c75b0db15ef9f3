"""Vowel classifier on coupled spin-torque nano-oscillators, read out from their synchronisation (Romera 2018).

Romera et al., Nature 563, 230 (2018), doi:10.1038/s41586-018-0632-y: the two formants (F1, F2) of a vowel
are mapped linearly onto the frequencies of two microwave sources A and B; each of the four oscillators
can phase-lock to A, to B or to neither; every vowel is assigned a target synchronisation pattern, and the
DC currents are trained until each vowel produces its pattern.

This model, stated (our design; the paper's exact class-to-pattern assignment is not reproduced):

* encoder (fixed, no parameters): ``f_d = centre + half_width * clip(z_d / z_max, -1, 1)`` for the two
  z-scored formants z (the formants are z-scored on the training split, so this is a linear map of the
  formants in Hz onto the drive band, as in the paper, clipped at ``z_max`` standard deviations);
* physics: :class:`~pnnlab.plants.spintronics.STNOArray`, trainable DC currents, measured frequencies;
* code book (fixed, chosen from the training split): class k is assigned an oscillator ``a_k`` that should
  lock to source A and an oscillator ``b_k`` that should lock to source B (its target pattern), by
  :func:`codebook_from_centroids` (a unique pair per class, nearest to the class's centroid in the
  (f_A, f_B) plane on the grid of the oscillators' design tuning centres);
* read-out (fixed, no parameters): ``logit_k = -[(f_{a_k} - f_A)^2 + (f_{b_k} - f_B)^2] / tau^2``, with
  ``tau`` = 1 MHz. A locked oscillator measures exactly its source's frequency, so the predicted class is
  the code whose pattern is (most nearly) realised: a soft, differentiable decoding of the synchronisation
  pattern (physics-aware training backpropagates through it and the twin's frequencies).

The only trainable parameters are the N DC currents (Romera: N = 4).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._validation import check_int, check_positive
from ..layers import PhysicalLayer
from ..plants.spintronics.stno_array import STNOArray, STNOMismatch

__all__ = ["FormantEncoder", "STNOClassifier", "SyncReadout", "build_stno_classifier", "codebook_from_centroids",
           "conformance_sync_rule", "tuning_centres_ghz"]


class FormantEncoder(nn.Module):
    """Fixed linear map of z-scored features onto a drive band, clipped at ``z_max`` (no parameters)."""

    def __init__(self, *, band_ghz: tuple[float, float], z_max: float = 2.5) -> None:
        super().__init__()
        self.centre = 0.5 * (band_ghz[0] + band_ghz[1])
        self.half_width = 0.5 * (band_ghz[1] - band_ghz[0])
        self.z_max = check_positive("z_max", z_max)

    def forward(self, z):
        return self.centre + self.half_width * (z / self.z_max).clamp(-1.0, 1.0)


class SyncReadout(nn.Module):
    """logit_k = -[(f_{a_k} - f_A)^2 + (f_{b_k} - f_B)^2] / tau^2 for a fixed code book (n_classes, 2)."""

    def __init__(self, codebook: torch.Tensor, *, tau_ghz: float = 1e-3) -> None:
        super().__init__()
        self.register_buffer("codebook", torch.as_tensor(codebook, dtype=torch.long).clone())
        self.tau_ghz = check_positive("tau_ghz", tau_ghz)

    def forward(self, frequencies, drives):
        dist = torch.zeros(frequencies.shape[0], self.codebook.shape[0], dtype=frequencies.dtype)
        for d in range(self.codebook.shape[1]):
            dist = dist + (frequencies[:, self.codebook[:, d]] - drives[:, d:d + 1]).square()
        return -dist / self.tau_ghz ** 2


class STNOClassifier(nn.Module):
    """encoder -> STNOArray (trainable DC currents) -> synchronisation read-out (see the module docstring)."""

    def __init__(self, plant: STNOArray, codebook: torch.Tensor, *, features: tuple[int, ...] | None = None,
                 z_max: float = 2.5, tau_ghz: float = 1e-3, initial_current_mA: float | None = None) -> None:
        super().__init__()
        self.features = None if features is None else tuple(int(f) for f in features)
        if self.features is not None and len(self.features) != plant.n_drives:
            raise ValueError(f"features must name {plant.n_drives} columns (one per drive), got {features!r}.")
        if not isinstance(plant, STNOArray):
            raise TypeError(f"plant must be an STNOArray, got {type(plant).__name__}.")
        self.encoder = FormantEncoder(band_ghz=plant.band_ghz, z_max=z_max)
        low, high = plant.current_range_mA
        current = 0.5 * (low + high) if initial_current_mA is None else float(initial_current_mA)
        self.physical = PhysicalLayer(plant, twin=plant.nominal_twin(),
                                      initial_controls={"current": torch.full((plant.n_oscillators,), current)})
        self.readout = SyncReadout(codebook, tau_ghz=tau_ghz)

    def drives(self, x):
        """Drive frequencies (GHz) for a batch of feature vectors."""
        return self.encoder(x if self.features is None else x[:, list(self.features)])

    def forward(self, x):
        drives = self.drives(x)
        return self.readout(self.physical(drives), drives)


def tuning_centres_ghz(plant: STNOArray) -> torch.Tensor:
    """Design free-running frequency of every oscillator at the middle of the current range."""
    low, high = plant.current_range_mA
    return plant.design_frequency_ghz(torch.full((plant.n_oscillators,), 0.5 * (low + high), dtype=torch.float64))


def codebook_from_centroids(centroids_ghz: torch.Tensor, grid_ghz: torch.Tensor) -> torch.Tensor:
    """A unique (oscillator for A, oscillator for B) pair per class: minimum total squared distance of each
    class centroid (n_classes, 2) to the grid point (grid[a], grid[b]) (Hungarian assignment, scipy)."""
    from scipy.optimize import linear_sum_assignment
    c = centroids_ghz.detach().double().numpy()
    g = grid_ghz.detach().double().numpy()
    n = len(g)
    pairs = [(a, b) for a in range(n) for b in range(n)]
    if len(pairs) < len(c):
        raise ValueError(f"{len(c)} classes need at least as many distinct (A, B) oscillator pairs; {n} oscillators "
                         f"give {len(pairs)}; use more oscillators.")
    cost = np.array([[(ci[0] - g[a]) ** 2 + (ci[1] - g[b]) ** 2 for (a, b) in pairs] for ci in c])
    rows, cols = linear_sum_assignment(cost)
    code = np.zeros((len(c), 2), dtype=np.int64)
    code[rows] = np.array([pairs[j] for j in cols])
    return torch.as_tensor(code)


def build_stno_classifier(*, in_features: int, n_classes: int, seed: int = 0, n_oscillators: int = 4,
                          mismatch: STNOMismatch | None = None, x_train: torch.Tensor | None = None,
                          y_train: torch.Tensor | None = None, features: tuple[int, int] = (0, 1),
                          z_max: float = 2.5, **plant_kwargs) -> nn.Module:
    """The Romera-style classifier on ``features`` (default the first two columns: F1, F2 at steady state
    for the vowels loader). With ``x_train``/``y_train`` the code book comes from the training class
    centroids; without, classes are placed on the diagonal of the oscillator grid (for smoke tests)."""
    check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    plant = STNOArray(n_oscillators=n_oscillators, mismatch=mismatch, seed=seed, **plant_kwargs)
    grid = tuning_centres_ghz(plant)
    encoder = FormantEncoder(band_ghz=plant.band_ghz, z_max=z_max)
    if x_train is not None and y_train is not None:
        drives = encoder(x_train[:, list(features)].double())
        centroids = torch.stack([drives[y_train == k].mean(dim=0) for k in range(n_classes)])
    else:
        t = torch.linspace(float(grid.min()), float(grid.max()), n_classes, dtype=torch.float64)
        centroids = torch.stack([t, t.flip(0)], dim=1)
    return STNOClassifier(plant, codebook_from_centroids(centroids, grid), features=features, z_max=z_max)


def conformance_sync_rule():
    """A tiny (model, x, y) for the conformance check of the synchronisation rule."""
    plant = STNOArray(n_oscillators=2, transient_ns=40.0, window_ns=40.0, step_ns=2.0)
    model = STNOClassifier(plant, torch.tensor([[0, 1], [1, 0], [0, 0]]))
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    return model, x, torch.tensor([0, 1, 2, 0, 1, 2])
