"""Shared reporting for the physics-aware-training classification benchmarks (bench_pat_vowels.py,
bench_pat_oscillators.py): one run's figures, the digital ceilings tuned on validation, and the table
(mean +- std over seeds of the final test accuracy and of the test accuracy at the epoch selected on
validation, trainable parameter counts, plant queries, wall time), with the flags a referee needs
(differences within one standard deviation or within one test sample). Not a benchmark itself."""

from __future__ import annotations

import statistics
import time
import warnings

import pnnlab
from pnnlab.models.digital_baselines import trainable_parameter_count


def run_torch(model, method, data, *, seed: int, epochs: int, lr: float, batch_size: int,
              evaluate_every: int, twin_check: bool = False) -> dict:
    """Train ``model`` with ``method``; report the final and the validation-selected evaluation."""
    params = trainable_parameter_count(model)
    start = time.perf_counter()
    history = pnnlab.train(model, method, data, seed=seed, epochs=epochs, lr=lr, batch_size=batch_size,
                           evaluate_every=evaluate_every)
    wall = time.perf_counter() - start
    final, selected = history.final, history.selected
    where = final.get("evaluated_on", "?") if pnnlab.physical_layers(model) else "digital"
    out = {"final": final["test_accuracy"], "selected": selected["test_accuracy"],
           "val": selected["val_accuracy"], "epoch": selected["epoch"], "params": params,
           "queries": final.get("train_queries", 0), "evaluated_on": where,
           "wall": wall,
           # accuracy against training cost at every evaluation (for the photonic benchmarks' --plot)
           "curve": [(e.get("train_queries", 0), e.get("train_device_seconds", 0.0), e["test_accuracy"])
                     for e in history.evaluations()]}
    if twin_check:  # what the twin promised: the trained model evaluated on its nominal twin
        out["twin"] = pnnlab.evaluate(model, data.x_test, data.y_test, execution=pnnlab.OnTwin())["accuracy"]
    return out


def sklearn_ceilings(data, seed: int, *, hidden: int, smoke: bool = False) -> dict[str, dict]:
    """Logistic regression and a one-hidden-layer MLP (scikit-learn), their regularisation chosen on
    this seed's validation split from a small grid, then scored once on test."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    x, y = data.x_train.numpy(), data.y_train.numpy()
    xv, yv = data.x_val.numpy(), data.y_val.numpy()
    xt, yt = data.x_test.numpy(), data.y_test.numpy()
    grids = {
        "logistic regression (ceiling; C on val)": [
            (c, lambda c=c: LogisticRegression(C=c, max_iter=200 if smoke else 5000)) for c in (0.1, 1.0, 10.0)],
        f"MLP {data.in_features}-{hidden}-{data.n_classes} (ceiling; alpha on val)": [
            (a, lambda a=a: MLPClassifier((hidden,), alpha=a, max_iter=50 if smoke else 3000, random_state=seed))
            for a in (1e-4, 1e-3, 1e-2)],
    }
    out = {}
    for name, grid in grids.items():
        start = time.perf_counter()
        best = None
        for value, make in grid:
            with warnings.catch_warnings():
                if smoke:  # a few iterations only: convergence warnings are expected
                    warnings.simplefilter("ignore")
                clf = make().fit(x, y)
            score = float(clf.score(xv, yv))
            if best is None or score > best[0]:
                best = (score, value, clf)
        score, value, clf = best
        test = float(clf.score(xt, yt))
        if hasattr(clf, "coefs_"):  # MLP
            params = sum(w.size for w in clf.coefs_) + sum(b.size for b in clf.intercepts_)
        else:
            params = clf.coef_.size + clf.intercept_.size
        out[name] = {"final": test, "selected": test, "val": score, "epoch": "-", "params": int(params),
                     "queries": 0, "evaluated_on": "digital", "wall": time.perf_counter() - start,
                     "choice": value}
    return out


def mean_std(values) -> tuple[float, float]:
    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(values) -> str:
    m, s = mean_std(values)
    return f"{100 * m:5.1f} +- {100 * s:4.1f}"


def print_table(rows: dict[str, list[dict]], n_test: list[int]) -> None:
    """``n_test``: the test-set size of every seed. Every row is also recorded for `pnnlab bench`."""
    from _report import record

    for name, results in rows.items():
        record(name, [r["selected"] for r in results], metric="test accuracy at the val-selected epoch",
               final_mean=100 * mean_std(r["final"] for r in results)[0], test_samples=max(n_test),
               params=sorted({r["params"] for r in results}),
               queries=statistics.fmean(r["queries"] for r in results))
    print(f"\n{'method':<58} {'params':>7} {'test @ val-selected %':>22} {'test final %':>14} "
          f"{'val @ sel. %':>13} {'evaluated on':>24} {'train queries':>14} {'wall s':>7}")
    for name, results in rows.items():
        params = {r["params"] for r in results}
        p = str(params.pop()) if len(params) == 1 else "/".join(str(v) for v in sorted(params))
        print(f"{name:<58} {p:>7} {fmt(r['selected'] for r in results):>22} "
              f"{fmt(r['final'] for r in results):>14} {fmt(r['val'] for r in results):>13} "
              f"{results[0]['evaluated_on']:>24} {statistics.fmean(r['queries'] for r in results):>14.0f} "
              f"{statistics.fmean(r['wall'] for r in results):>7.1f}")
    lo, hi = min(n_test), max(n_test)
    size = f"{lo}" if lo == hi else f"{lo}-{hi}"
    small = " (a small test set: read differences of a few points with care)" if lo < 200 else ""
    print(f"test set: {size} samples per seed, so one test sample is {100 / hi:.2f}-{100 / lo:.2f} points"
          f"{small}." if lo != hi else f"test set: {size} samples per seed, so one test sample is "
          f"{100 / lo:.2f} points{small}.")


def compare(rows: dict[str, list[dict]], pairs: list[tuple[str, str]], n_test: list[int]) -> None:
    """Differences of the mean validation-selected test accuracy, flagged when they are within one
    standard deviation (the larger of the two) or within one test sample."""
    print("\ndifferences (test accuracy at the validation-selected epoch, mean over seeds):")
    for a, b in pairs:
        if a not in rows or b not in rows:
            continue
        ma, sa = mean_std(r["selected"] for r in rows[a])
        mb, sb = mean_std(r["selected"] for r in rows[b])
        diff = ma - mb
        flags = []
        if abs(diff) <= max(sa, sb):
            flags.append("within one std")
        if abs(diff) <= 1.0 / min(n_test) + 1e-12:
            flags.append("within one test sample")
        print(f"  {a}  minus  {b}: {100 * diff:+.1f} points" + (f"  [{', '.join(flags)}]" if flags else ""))


def tune_learning_rates(builders, data, *, training: dict, evaluate_every: int, grid, tie_to: float) -> dict:
    """``--tune``: for each row of ``builders`` (key -> (build, method)), train once per learning rate of
    ``grid`` on ``data`` (seed 0's split) and keep the one with the best validation accuracy at the
    validation-selected epoch; ties go to the rate closest to ``tie_to``. Test accuracy is not read."""
    print(f"--tune: seed 0 only, validation split ({data.summary()}); selected-epoch validation accuracy")
    chosen = {}
    for key, (build, method) in builders.items():
        scores = {lr: run_torch(build(), method, data, seed=0, lr=lr, evaluate_every=evaluate_every,
                                **training)["val"] for lr in grid}
        chosen[key] = max(grid, key=lambda lr: (scores[lr], -abs(lr - tie_to)))
        print(f"  {key:>16}: " + ", ".join(f"lr {lr:g}: {100 * v:.1f} %" for lr, v in scores.items())
              + f"  -> {chosen[key]:g}", flush=True)
    print(f"chosen: {chosen}")
    return chosen


def run_seeds(load, builders, names: dict, learning_rates: dict, seeds, *, training: dict, evaluate_every: int,
              twin_check=(), twin_label: str = "on the nominal twin", hidden: int = 64,
              smoke: bool = False) -> tuple[dict[str, list[dict]], list[int]]:
    """Every row of ``builders(data, seed)`` and the digital ceilings on ``load(seed=seed)`` for each
    seed (each seed its own data split); returns the rows (display name -> per-seed results) and the
    test-set size of every seed."""
    rows: dict[str, list[dict]] = {}
    n_test: list[int] = []
    for seed in seeds:
        data = load(seed=seed)
        n_test.append(len(data.y_test))
        print(f"seed {seed}: {data.summary()}", flush=True)
        for key, (build, method) in builders(data, seed).items():
            r = run_torch(build(), method, data, seed=seed, lr=learning_rates[key], evaluate_every=evaluate_every,
                          twin_check=key in twin_check, **training)
            rows.setdefault(names[key], []).append(r)
            extra = f", {twin_label} {100 * r['twin']:.1f} %" if "twin" in r else ""
            print(f"  {names[key]}: test {100 * r['selected']:.1f} % at val-selected epoch {r['epoch']}, "
                  f"final {100 * r['final']:.1f} % ({r['wall']:.1f} s{extra})", flush=True)
        for name, r in sklearn_ceilings(data, seed, hidden=hidden, smoke=smoke).items():
            rows.setdefault(name, []).append(r)
    return rows, n_test
