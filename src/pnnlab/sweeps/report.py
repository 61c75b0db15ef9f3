"""The sweep's table (mean +- std over seeds per configuration and method) and its plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .plan import SweepPlan

__all__ = ["aggregate", "write_report", "format_markdown"]


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _label(overrides: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in overrides.items()) or "(base spec)"


def aggregate(records: list[dict]) -> list[dict]:
    """One row per (configuration, method): seeds, and mean +- std (sample std, ddof=1) of the test
    accuracy at the validation-chosen epoch, after the final epoch, the validation accuracy at the chosen
    epoch, plant queries and wall time. The row with the best mean validation accuracy of each method
    is marked ``chosen_on_validation``; test figures never choose anything."""
    groups: dict[tuple[int, str], list[tuple[dict, dict]]] = {}
    for record in records:
        for result in record["results"]:
            groups.setdefault((record["config_id"], result["method"]), []).append((record, result))
    rows = []
    for (config_id, method), items in sorted(groups.items()):
        results = [r for _, r in items]
        row = {"config_id": config_id, "method": method, "overrides": items[0][0]["overrides"],
               "seeds": sorted(rec["seed"] for rec, _ in items), "test_samples": results[0]["test_samples"],
               "trainable_parameters": results[0]["trainable_parameters"]}
        for key in ("selected_test_accuracy", "final_test_accuracy", "selected_val_accuracy", "plant_queries",
                    "wall_seconds"):
            row[key], row[f"{key}_std"] = _mean_std([r[key] for r in results])
        rows.append(row)
    for method in {r["method"] for r in rows}:
        mine = [r for r in rows if r["method"] == method]
        best = max(mine, key=lambda r: r["selected_val_accuracy"])
        for r in mine:
            r["chosen_on_validation"] = r is best
            gap = best["selected_test_accuracy"] - r["selected_test_accuracy"]
            r["test_gap_to_chosen"] = gap
            r["within_one_std_of_chosen"] = abs(gap) <= max(best["selected_test_accuracy_std"],
                                                            r["selected_test_accuracy_std"])
    return rows


def format_markdown(rows: list[dict], plan: SweepPlan) -> str:
    lines = [f"# Sweep {plan.name!r}", "",
             f"Search: {plan.search}; seeds {plan.seeds} (each seed also draws the data split); mean ± std "
             f"(sample std) over seeds. Test accuracy is read at the epoch chosen on validation; the configuration "
             f"marked * has the best mean validation accuracy of its method (chosen on validation, never on test).",
             "", "| config | method | settings | seeds | params | test @ val-chosen % | test final % | val % | "
             "plant queries | wall s | Δ test vs * | within 1 std of * |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        star = "*" if r["chosen_on_validation"] else ""
        lines.append(
            f"| {r['config_id']}{star} | {r['method']} | {_label(r['overrides'])} | {len(r['seeds'])} | "
            f"{r['trainable_parameters']} | {100 * r['selected_test_accuracy']:.1f} ± "
            f"{100 * r['selected_test_accuracy_std']:.1f} | {100 * r['final_test_accuracy']:.1f} ± "
            f"{100 * r['final_test_accuracy_std']:.1f} | {100 * r['selected_val_accuracy']:.1f} ± "
            f"{100 * r['selected_val_accuracy_std']:.1f} | {r['plant_queries']:.0f} | {r['wall_seconds']:.1f} | "
            f"{-100 * r['test_gap_to_chosen']:+.1f} | {'yes' if r['within_one_std_of_chosen'] else 'no'} |")
    if rows:
        n = rows[0]["test_samples"]
        lines += ["", f"Test set: {n} samples per seed; one test sample = {100 / n:.2f} points."]
    return "\n".join(lines) + "\n"


def _curves(records: list[dict]) -> dict[tuple[int, str], list[tuple[np.ndarray, np.ndarray]]]:
    curves: dict[tuple[int, str], list] = {}
    for record in records:
        path = Path(record["folder"]) / "metrics.jsonl"
        if not path.is_file():
            continue
        evals: dict[str, list[tuple[float, float]]] = {}
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r.get("kind") == "eval":
                evals.setdefault(r["method"], []).append((r.get("train_queries", 0), r["test_accuracy"]))
        for method, points in evals.items():
            q, acc = map(np.asarray, zip(*points))
            curves.setdefault((record["config_id"], method), []).append((q.astype(float), acc.astype(float)))
    return curves


def _plot(folder: Path, rows: list[dict], records: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = _curves(records)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels = {(r["config_id"], r["method"]): f"{r['config_id']}: {r['method']} {_label(r['overrides'])}"
              for r in rows}
    for key, runs in sorted(curves.items()):
        top = max(q[-1] for q, _ in runs)
        if top <= 0:  # no plant queries (a twin-only or digital method): x is the evaluation index
            grid = np.arange(min(len(q) for q, _ in runs), dtype=float)
            ys = np.stack([acc[:len(grid)] for _, acc in runs])
        else:
            grid = np.unique(np.concatenate([q for q, _ in runs]))
            ys = np.stack([np.interp(grid, q, acc) for q, acc in runs])
        mean, std = ys.mean(0), ys.std(0, ddof=1) if len(ys) > 1 else np.zeros(len(grid))
        line, = ax.plot(grid, 100 * mean, label=labels.get(key, str(key))[:70])
        ax.fill_between(grid, 100 * (mean - std), 100 * (mean + std), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("plant queries during training (evaluation index where a method makes none)")
    ax.set_ylabel("test accuracy % (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(folder / "accuracy_vs_queries.png", dpi=120)
    plt.close(fig)


def write_report(folder: Path, plan: SweepPlan, records: list[dict]) -> str:
    """Write ``table.md``, ``results.json`` and ``accuracy_vs_queries.png``; return the table."""
    rows = aggregate(records)
    table = format_markdown(rows, plan)
    (folder / "table.md").write_text(table)
    (folder / "results.json").write_text(json.dumps({"plan": plan.name, "rows": rows}, indent=2, default=str))
    if records:
        _plot(folder, rows, records)
    return table

