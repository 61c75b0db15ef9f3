"""Tables and plots of run results."""

from __future__ import annotations

import json
from pathlib import Path

from ..train import History


def format_table(results: list[dict]) -> str:
    """Plain-text table, one row per method: the test accuracy after the final epoch and at the epoch
    chosen on the validation split (with that epoch and its validation accuracy; never the best test
    epoch), where it was measured, trainable parameters, plant queries and wall time. A footer states
    the test-set size and what one test sample is worth."""
    header = (f"{'method':<22} {'test (final)':>12} {'test @ val-chosen epoch':>24} {'val':>6} "
              f"{'measured on':>24} {'params':>7} {'plant queries':>13} {'wall time':>9}")
    lines = [header, "-" * len(header)]
    for r in results:
        label = r["method"] + (" (upper bound)" if r.get("upper_bound") else "")
        chosen = f"{100 * r['selected_test_accuracy']:.1f}% (epoch {r['selected_epoch']})"
        lines.append(f"{label:<22} {100 * r['final_test_accuracy']:>11.1f}% {chosen:>24} "
                     f"{100 * r['selected_val_accuracy']:>5.1f}% {r['evaluated_on']:>24} "
                     f"{r.get('trainable_parameters', 0):>7,d} {r['plant_queries']:>13,d} {r['wall_seconds']:>8.1f}s")
    n_test = results[0].get("test_samples") if results else None
    if n_test:
        lines.append(f"test set: {n_test} samples (one sample = {100 / n_test:.1f} points); 'val' is the "
                     f"validation accuracy at the chosen epoch; one seed, so no spread is shown.")
    return "\n".join(lines)


def plot_accuracy_vs_queries(metrics_path: str | Path, out_path: str | Path) -> None:
    """Two panels: test accuracy against epoch (validation accuracy dotted, with a marker at the epoch
    chosen on it), and test accuracy against the plant queries spent on training. Methods that never
    query the plant (in-silico, the ideal bound) appear on the right as dashed horizontal lines at
    their final accuracy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[str, list]] = {}
    with Path(metrics_path).open() as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("kind") != "eval":
                continue
            s = series.setdefault(record["method"], {"epoch": [], "queries": [], "accuracy": [], "val": [],
                                                     "records": []})
            s["epoch"].append(record["epoch"])
            s["queries"].append(record["train_queries"])
            s["accuracy"].append(100 * record["test_accuracy"])
            s["val"].append(100 * record["val_accuracy"])
            s["records"].append(record)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for index, (method, s) in enumerate(series.items()):
        colour = f"C{index}"
        left.plot(s["epoch"], s["accuracy"], color=colour, label=f"{method} (test)")
        left.plot(s["epoch"], s["val"], color=colour, linestyle=":", label=f"{method} (validation)")
        chosen = History(records=s["records"]).selected
        left.plot([chosen["epoch"]], [100 * chosen["test_accuracy"]], color=colour, marker="o", markersize=8,
                  markeredgecolor="black", zorder=5, linestyle="none")
        if max(s["queries"]) > 0:
            right.plot(s["queries"], s["accuracy"], color=colour, marker=".", markersize=3, label=method)
        else:
            right.axhline(s["accuracy"][-1], color=colour, linestyle="--",
                          label=f"{method} (no plant queries; final)")
    left.set_xlabel("epoch")
    left.set_ylabel("accuracy (%); o = epoch chosen on validation")
    right.set_xscale("log")
    right.set_xlabel("plant queries spent on training")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("accuracy measured on the plant (the ideal bound on the true physics, noise off)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
