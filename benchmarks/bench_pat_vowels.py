"""Vowels on the simulated SHG-PNN with a sim-to-real gap: physics-aware training vs in-silico training.

Reproduces the setting of the SHG-PNN of Wright et al., Nature 601, 549 (2022),
doi:10.1038/s41586-021-04223-6 (93 % test accuracy with PAT on their experimental SHG-PNN): the 7-vowel,
12-formant task of Hillenbrand et al. (1995), split by speaker, classified by one SHG layer whose
trainable parameters are the pulse shaper's controls, read out from 7 fixed spectral bins with a
per-class scale and offset. The plant has the typical mismatch (unknown dispersion, shaper transfer
error, detector saturation) and detector noise; the twin is the nominal physics.

Prints, over the seeds, mean +- std test accuracy on the plant for PAT and in-silico training
(deployed to the plant), the ideal upper bound (trained and evaluated on the mismatch-free, noiseless
physics: no hardware reaches it), the digital-only baseline (the same digital parts with the SHG layer
replaced by a fixed pass-through) and the digital ceilings (scikit-learn logistic regression and a
small MLP); plus plant queries and wall time per run. Nothing is asserted.

    python benchmarks/bench_pat_vowels.py [--seeds 0 1 2] [--epochs N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import pnnlab
from pnnlab.data.vowels import load_vowels
from pnnlab.models.shg_classifier import (RECOMMENDED_TRAINING, build_shg_classifier,
                                          build_shg_digital_baseline)


def run_method(method, data, seed, training):
    model = build_shg_classifier(in_features=data.in_features, n_classes=data.n_classes, seed=seed)
    start = time.perf_counter()
    history = pnnlab.train(model, method, data, seed=seed, evaluate_every=training["epochs"], **training)
    wall = time.perf_counter() - start
    final = history.final
    out = {"accuracy": final["test_accuracy"], "queries": final["train_queries"],
           "samples": final["train_samples"], "device_s": final["train_device_seconds"], "wall_s": wall}
    if isinstance(method, pnnlab.InSilico):  # what the twin promised before deployment
        out["twin_accuracy"] = pnnlab.evaluate(model, data.x_test, data.y_test,
                                               execution=pnnlab.OnTwin())["accuracy"]
    return out


def run_digital_baseline(data, seed, training):
    model = build_shg_digital_baseline(in_features=data.in_features, n_classes=data.n_classes)
    start = time.perf_counter()
    history = pnnlab.train(model, pnnlab.InSilico(), data, seed=seed, evaluate_every=training["epochs"],
                           **training)
    return {"accuracy": history.final["test_accuracy"], "queries": 0, "samples": 0, "device_s": 0.0,
            "wall_s": time.perf_counter() - start}


def run_sklearn(data, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    x, y, xt, yt = (data.x_train.numpy(), data.y_train.numpy(), data.x_test.numpy(), data.y_test.numpy())
    out = {}
    for name, clf in (("logistic regression (digital ceiling)", LogisticRegression(max_iter=5000)),
                      ("MLP 12-64-7 (digital ceiling)", MLPClassifier((64,), alpha=1e-3, max_iter=3000,
                                                                      random_state=seed))):
        start = time.perf_counter()
        clf.fit(x, y)
        out[name] = {"accuracy": float(clf.score(xt, yt)), "queries": 0, "samples": 0, "device_s": 0.0,
                     "wall_s": time.perf_counter() - start}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=RECOMMENDED_TRAINING["epochs"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    training = {**RECOMMENDED_TRAINING, "epochs": args.epochs}
    rows: dict[str, list[dict]] = {}
    methods = {"PAT (physics-aware, on the plant)": pnnlab.PhysicsAwareTraining(),
               "in-silico (twin-trained, deployed to the plant)": pnnlab.InSilico(),
               "ideal (UPPER BOUND: mismatch-free, noiseless copy)": pnnlab.IdealBackprop()}
    print(f"training: {training}; seeds {args.seeds} (seed = speaker split, plant truth, initial controls)")
    for seed in args.seeds:
        data = load_vowels(seed=seed)
        print(f"seed {seed}: {data.summary()}", flush=True)
        for name, method in methods.items():
            result = run_method(method, data, seed, training)
            rows.setdefault(name, []).append(result)
            extra = f", twin promised {result['twin_accuracy']:.3f}" if "twin_accuracy" in result else ""
            print(f"  {name}: {result['accuracy']:.3f} ({result['wall_s']:.1f} s{extra})", flush=True)
        rows.setdefault("digital-only baseline (SHG layer -> fixed pass-through)", []).append(
            run_digital_baseline(data, seed, training))
        for name, result in run_sklearn(data, seed).items():
            rows.setdefault(name, []).append(result)

    def mean_std(values):
        return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    ceiling = statistics.mean(r["accuracy"] for r in rows["logistic regression (digital ceiling)"])
    print()
    print(f"{'method':<56} {'test acc (mean +- std)':>22} {'/ logistic':>10} {'plant queries':>14} "
          f"{'plant samples':>14} {'device s':>9} {'wall s':>7}")
    for name, results in rows.items():
        m, s = mean_std([r["accuracy"] for r in results])
        print(f"{name:<56} {m * 100:>13.1f} +- {s * 100:4.1f} % {m / ceiling:>10.3f} "
              f"{statistics.mean(r['queries'] for r in results):>14.0f} "
              f"{statistics.mean(r['samples'] for r in results):>14.0f} "
              f"{statistics.mean(r['device_s'] for r in results):>9.1f} "
              f"{statistics.mean(r['wall_s'] for r in results):>7.1f}")
    twin = [r["twin_accuracy"] for r in rows["in-silico (twin-trained, deployed to the plant)"]]
    m, s = mean_std(twin)
    print(f"(in-silico accuracy on its own twin before deployment: {m * 100:.1f} +- {s * 100:.1f} %; "
          f"Wright et al. 2022 report 93 % with PAT on their experimental SHG-PNN)")
    print("plant queries/samples/device s count training only; device seconds use SHGPlant.default_cost() "
          "(assumed constants).")


if __name__ == "__main__":
    main()
