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
    """Test accuracy against training plant queries, one line per method (symlog x axis: in-silico
    training makes no queries)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list, list]] = {}
    with Path(metrics_path).open() as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("kind") != "eval":
                continue
            xs, ys = series.setdefault(record["method"], ([], []))
            xs.append(record["train_queries"])
            ys.append(100 * record["test_accuracy"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=method)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("plant queries during training")
    ax.set_ylabel("test accuracy on the plant (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
