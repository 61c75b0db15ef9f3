"""Tables and plots of run results."""

from __future__ import annotations

import json
from pathlib import Path


def format_table(results: list[dict]) -> str:
    """Plain-text table: method, test accuracy (and where it was measured), plant queries, wall time."""
    header = f"{'method':<22} {'test accuracy':>14} {'measured on':>13} {'plant queries':>14} {'wall time':>10}"
    lines = [header, "-" * len(header)]
    for r in results:
        label = r["method"] + (" (upper bound)" if r.get("upper_bound") else "")
        lines.append(f"{label:<22} {100 * r['test_accuracy']:>13.1f}% {r['evaluated_on']:>13} "
                     f"{r['plant_queries']:>14,d} {r['wall_seconds']:>9.1f}s")
    return "\n".join(lines)


def plot_accuracy_vs_queries(metrics_path: str | Path, out_path: str | Path) -> None:
    """Two panels: test accuracy against epoch, and against the plant queries spent on training.
    Methods that never query the plant (in-silico, the ideal bound) appear on the right as dashed
    horizontal lines at their final accuracy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[str, list]] = {}
    with Path(metrics_path).open() as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("kind") != "eval":
                continue
            s = series.setdefault(record["method"], {"epoch": [], "queries": [], "accuracy": []})
            s["epoch"].append(record["epoch"])
            s["queries"].append(record["train_queries"])
            s["accuracy"].append(100 * record["test_accuracy"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for index, (method, s) in enumerate(series.items()):
        colour = f"C{index}"
        left.plot(s["epoch"], s["accuracy"], color=colour, label=method)
        if max(s["queries"]) > 0:
            right.plot(s["queries"], s["accuracy"], color=colour, marker=".", markersize=3, label=method)
        else:
            right.axhline(s["accuracy"][-1], color=colour, linestyle="--",
                          label=f"{method} (no plant queries; final)")
    left.set_xlabel("epoch")
    left.set_ylabel("test accuracy (%)")
    right.set_xscale("log")
    right.set_xlabel("plant queries spent on training")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("test accuracy measured on the plant (the ideal bound on its mismatch-free copy)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
