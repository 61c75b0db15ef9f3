"""Digits on a two-layer coupled-oscillator network with the PAT reference mismatch recipe.

Wright et al., Nature 601, 549 (2022), doi:10.1038/s41586-021-04223-6; architecture of example 1
and mismatch recipe of example 2 of mcmahon-lab/Physics-Aware-Training. Issue target: PAT >= 93 %
test accuracy on the plant; in-silico lower; the ideal copy as an upper bound.

The physics does the computing: the trainable parameters are the plants' couplings and drives plus
a per-class scale and offset on the read-out of the 10 class oscillators; the input enters through
a fixed amplitude encoding. Rows:

* PAT            physics-aware training: plant forward, twin backward; evaluated on the plant
* in-silico      backpropagation through the nominal twin only; deployed to and evaluated on the plant
* ideal (UB)     backpropagation through a noiseless, mismatch-free copy, evaluated on that copy:
                 an upper bound no hardware reaches
* digital only   the same digital parts with the oscillator networks replaced by wires
* logistic reg.  / MLP: plain digital classifiers on the same split (reference ceilings)

"acc. on twin" evaluates the same trained model on the nominal twin: the gap to "acc. on plant" is
the sim-to-real gap. Mean +- std over seeds (data split, plant fabrication errors, initialisation).

Run:  python benchmarks/bench_pat_oscillators.py [--seeds 3] [--epochs 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

import pnnlab
from pnnlab.data.tabular import load_digits
from pnnlab.models.oscillator_classifier import (RECOMMENDED_TRAINING, build_oscillator_classifier,
                                                 build_oscillator_digital_baseline)


def run_seed(seed: int, epochs: int, lr: float, batch_size: int) -> dict[str, dict]:
    data = load_digits(seed=seed)
    results = {}
    methods = {"PAT": pnnlab.PhysicsAwareTraining(), "in-silico": pnnlab.InSilico(),
               "ideal (UB)": pnnlab.IdealBackprop()}
    for name, method in methods.items():
        model = build_oscillator_classifier(in_features=data.in_features, n_classes=data.n_classes,
                                            mismatch=True, seed=seed)
        start = time.perf_counter()
        history = pnnlab.train(model, method, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                               evaluate_every=epochs)
        seconds = time.perf_counter() - start
        final = history.final
        twin = pnnlab.evaluate(model, data.x_test, data.y_test, execution=pnnlab.OnTwin())
        results[name] = {"accuracy": final["test_accuracy"], "evaluated_on": final["evaluated_on"],
                         "twin_accuracy": twin["accuracy"], "queries": final["train_queries"],
                         "samples": final["train_samples"], "device_seconds": final["train_device_seconds"],
                         "seconds": seconds}
    baseline = build_oscillator_digital_baseline(in_features=data.in_features, n_classes=data.n_classes)
    start = time.perf_counter()
    # no physical layer: in-silico training is plain backpropagation here
    history = pnnlab.train(baseline, pnnlab.InSilico(), data, epochs=epochs, lr=lr, batch_size=batch_size,
                           seed=seed, evaluate_every=epochs)
    results["digital only"] = {"accuracy": history.final["test_accuracy"], "evaluated_on": "digital",
                               "queries": 0, "seconds": time.perf_counter() - start}
    x_train, y_train = data.x_train.numpy(), data.y_train.numpy()
    x_test, y_test = data.x_test.numpy(), data.y_test.numpy()
    for name, clf in (("logistic reg.", LogisticRegression(max_iter=2000)),
                      ("MLP (64 hidden)", MLPClassifier(hidden_layer_sizes=(64,), max_iter=1000, random_state=seed))):
        start = time.perf_counter()
        clf.fit(x_train, y_train)
        results[name] = {"accuracy": float(np.mean(clf.predict(x_test) == y_test)), "evaluated_on": "digital",
                         "queries": 0, "seconds": time.perf_counter() - start}
    return results


def _fmt(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} +- {std:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=RECOMMENDED_TRAINING["epochs"])
    parser.add_argument("--lr", type=float, default=RECOMMENDED_TRAINING["lr"])
    parser.add_argument("--batch-size", type=int, default=RECOMMENDED_TRAINING["batch_size"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"digits (sklearn 8x8, 1347 train / 450 test), oscillators 64 -> 74 (10 class oscillators), "
          f"t_end 0.5, RK4 5 steps; mismatch: extra coupling 0.2, eta 0.1, input noise 0.02; "
          f"Adam lr {args.lr}, {args.epochs} epochs, batch {args.batch_size}; seeds 0..{args.seeds - 1}")
    per_seed = []
    for seed in range(args.seeds):
        result = run_seed(seed, args.epochs, args.lr, args.batch_size)
        per_seed.append(result)
        print(f"  seed {seed}: " + ", ".join(f"{k} {100 * v['accuracy']:.1f}%" for k, v in result.items()),
              flush=True)
    names = list(per_seed[0])
    print(f"\n{'method':>16} {'test acc. %':>14} {'evaluated on':>13} {'acc. on twin %':>15} "
          f"{'train plant queries':>20} {'device s (assumed)':>19} {'wall s':>7}")
    for name in names:
        rows = [r[name] for r in per_seed]
        twin = _fmt([r["twin_accuracy"] for r in rows]) if "twin_accuracy" in rows[0] else "-"
        device = f"{statistics.fmean(r.get('device_seconds', 0.0) for r in rows):.1f}"
        print(f"{name:>16} {_fmt([r['accuracy'] for r in rows]):>14} {rows[0]['evaluated_on']:>13} {twin:>15} "
              f"{statistics.fmean(r['queries'] for r in rows):>20.0f} {device:>19} "
              f"{statistics.fmean(r['seconds'] for r in rows):>7.1f}")
    pat = statistics.fmean(r["PAT"]["accuracy"] for r in per_seed)
    sim = statistics.fmean(r["in-silico"]["accuracy"] for r in per_seed)
    ideal = statistics.fmean(r["ideal (UB)"]["accuracy"] for r in per_seed)
    print(f"\nPAT - in-silico: {100 * (pat - sim):+.1f} points; ideal (upper bound) - PAT: {100 * (ideal - pat):+.1f} "
          f"points; target PAT >= 93 %: {'met' if pat >= 0.93 else 'NOT met'} ({100 * pat:.1f} %)")


if __name__ == "__main__":
    main()
