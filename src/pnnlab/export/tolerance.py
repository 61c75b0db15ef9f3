"""Tolerance of a trained network to programming error: accuracy against the size of the error.

``tolerance_analysis(run_dir, sizes=...)`` rebuilds the trained model of a completed run and, for every
error size s and Monte Carlo draw, programs every control of every physical layer with an independent
Gaussian error of standard deviation s times the control's range (for a periodic control, s times its
period, wrapped; for a one-sided or unbounded range, s times the largest trained magnitude of that
control), clipped into the range, and measures the test accuracy:

- ``on="true_twin"`` (default): on the plant's hidden physics with noise off, so the curve shows the
  programming error alone (the plant's own fabrication errors stay as they were trained on);
- ``on="plant"``: on the simulated plant itself (its measurement noise included; the queries are
  metered on the rebuilt plant, not on the run's).

Draw d of size s uses the generator seeded ``seed + 1000 * d`` for every size, so the curves are
paired across sizes. Returns the rows and writes ``tolerance.csv`` and ``tolerance.png`` beside the
export. Fabrication errors (each knob of a plant's own hidden-truth model scaled, the hidden truth
re-drawn) are the other half of the tolerance analysis: :func:`pnnlab.export.fabrication.fabrication_tolerance`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch

from ..execution import Execution
from ..train import evaluate
from .hardware import _physical_layers, load_trained_model

__all__ = ["tolerance_analysis"]


class _Programmed(Execution):
    """Runs every physical layer with perturbed control values (true twin or plant)."""

    label = "programming error"

    def __init__(self, perturbed: dict, on: str, generator: torch.Generator | None = None) -> None:
        self.perturbed, self.on, self.generator = perturbed, on, generator

    def run(self, layer, x):
        controls = self.perturbed[id(layer)]
        if self.on == "true_twin":
            return layer.true_twin()(x, controls)
        return layer.plant(x, controls, generator=self.generator)

    def with_generator(self, generator):
        return _Programmed(self.perturbed, self.on, generator)


def _scale(spec, value: torch.Tensor) -> float:
    if spec.periodic or (math.isfinite(spec.low) and math.isfinite(spec.high)):
        return spec.high - spec.low
    return float(value.abs().max()) or 1.0


def _perturb(layers, size: float, generator: torch.Generator) -> dict:
    perturbed = {}
    for _, layer in layers:
        specs, values = layer.plant.control_specs(), layer.control_values()
        out = {}
        for name, spec in specs.items():
            value = values[name].detach()
            noisy = value + size * _scale(spec, value) * torch.randn(value.shape, generator=generator,
                                                                     dtype=value.dtype)
            if spec.periodic:
                noisy = spec.low + torch.remainder(noisy - spec.low, spec.high - spec.low)
            else:
                noisy = noisy.clamp(spec.low, spec.high)
            if spec.symmetric:
                noisy = 0.5 * (noisy + noisy.T)
            out[name] = noisy
        perturbed[id(layer)] = out
    return perturbed


def tolerance_analysis(run_dir: str | Path, *, method: str | None = None,
                       sizes: tuple[float, ...] = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05), draws: int = 5,
                       on: str = "true_twin", seed: int = 0, out: str | Path | None = None) -> list[dict]:
    """Test accuracy against programming-error size (fraction of each control's range), mean and
    sample std over ``draws`` Monte Carlo draws; writes ``tolerance.csv`` / ``tolerance.png`` into
    ``out`` (default ``RUN_DIR/export/<method>``)."""
    if on not in ("true_twin", "plant"):
        raise ValueError(f"on must be 'true_twin' (hidden physics, noise off) or 'plant', got {on!r}.")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}.")
    sizes = tuple(float(s) for s in sizes)
    if not sizes or any(not math.isfinite(s) or s < 0 for s in sizes):
        raise ValueError(f"sizes must be finite fractions >= 0 of each control's range, got {sizes!r}.")
    model, method, _, data = load_trained_model(run_dir, method)
    layers = _physical_layers(model)
    if not layers:
        raise ValueError(f"run {str(run_dir)!r} ({method}) has no physical layer: nothing to program.")
    x, y = data.split("test")
    rows = []
    for size in sizes:
        accuracies = []
        for d in range(draws if size > 0 else 1):
            generator = torch.Generator().manual_seed(seed + 1000 * d)
            execution = _Programmed(_perturb(layers, size, generator), on)
            accuracies.append(evaluate(model, x, y, execution=execution,
                                       generator=torch.Generator().manual_seed(seed))["accuracy"])
        a = np.asarray(accuracies)
        rows.append({"size": size, "draws": len(a), "accuracy_mean": float(a.mean()),
                     "accuracy_std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "test_samples": len(y)})
    folder = write_rows(run_dir, method, out, "tolerance.csv", rows)
    _plot(folder / "tolerance.png", rows, method, on)
    return rows


def write_rows(run_dir, method: str, out, filename: str, rows: list[dict]) -> Path:
    """Write ``rows`` (dicts with the same keys) as CSV ``filename`` into ``out`` (default
    ``RUN_DIR/export/<method>``, created); returns the folder."""
    folder = Path(out) if out is not None else Path(run_dir) / "export" / method
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / filename).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def _plot(path: Path, rows: list[dict], method: str, on: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = np.array([r["size"] for r in rows])
    m = 100 * np.array([r["accuracy_mean"] for r in rows])
    e = 100 * np.array([r["accuracy_std"] for r in rows])
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.errorbar(100 * s, m, yerr=e, marker="o", capsize=3)
    ax.set_xlabel("programming error (std, % of each control's range)")
    ax.set_ylabel("test accuracy % (mean ± std over draws)")
    ax.set_title(f"{method}: tolerance on the {'true physics (noise off)' if on == 'true_twin' else 'plant'}",
                 fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
