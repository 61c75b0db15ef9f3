"""Accuracy against training cost (plant queries and metered device time), one curve per method, for
the photonic benchmarks' ``--plot PATH`` (bench_photonic_vowels.py, bench_photonic_digits.py). Not a
benchmark itself.

Each curve is the mean over seeds of the test accuracy *on the plant* (the method's evaluation) at every
evaluation of training, against the mean training plant queries / device seconds metered up to it.
Rows that never query the plant while training (in-silico, the ideal bound, digital rows) are drawn as
horizontal lines at their final accuracy. The figure shows cost, not a model choice: nothing is
selected from it.
"""

from __future__ import annotations

import statistics


def plot_cost_curves(rows: dict[str, list[dict]], path: str, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), sharey=True)
    colours = plt.get_cmap("tab10").colors
    for index, (name, results) in enumerate(rows.items()):
        colour = colours[index % len(colours)]
        curves = [r.get("curve") for r in results]
        if not all(curves):
            continue  # scikit-learn ceilings: no training curve
        n = min(len(c) for c in curves)
        queries = [statistics.fmean(c[i][0] for c in curves) for i in range(n)]
        seconds = [statistics.fmean(c[i][1] for c in curves) for i in range(n)]
        acc = [100 * statistics.fmean(c[i][2] for c in curves) for i in range(n)]
        for ax, x in zip(axes, (queries, seconds)):
            if x[-1] <= 0:  # no plant use during training
                ax.axhline(acc[-1], color=colour, linestyle="--", linewidth=1, label=f"{name} (0 training queries)")
            else:
                ax.plot(x, acc, color=colour, marker="o", markersize=3, label=name)
    axes[0].set_xlabel("training plant queries (all physical layers)")
    axes[1].set_xlabel("training device time, metered (s)")
    axes[0].set_ylabel("test accuracy on the plant (%), mean over seeds")
    for ax in axes:
        ax.set_xscale("log")  # zero-cost rows are horizontal lines, so every plotted x is positive
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot: {path}")
