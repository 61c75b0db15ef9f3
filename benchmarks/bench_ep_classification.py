"""Equilibrium propagation and coupled learning on nonlinear resistive networks: digits (8x8) and iris.

For each dataset the same network (64 -> 64 -> 10 or 4 -> 16 -> 3, diode hidden nodes, differential
outputs, per-class digital gain and offset) is trained with

* backpropagation through the exact twin of the network (``in_silico`` on the ideal network: the
  reference "BP" accuracy; on the non-ideal network, ``pat`` and ``in_silico`` are shown too),
* centred equilibrium propagation (Laborieux et al. 2021), positive EP (Scellier & Bengio 2017) at
  the same beta and at beta / 10,
* coupled learning (Stern et al. 2021),

first on an ideal network (exact conductances, no noise), then with the memristor non-idealities
on (TaOx preset: pulsed soft-bounded asymmetric updates, cycle-to-cycle and device-to-device
variation, write and read noise, drift, stuck devices; plus 5 % conductance variation is replaced by
the device model, 20 mV diode threshold spread, 10 % diode conductance spread, 1 mV voltage read
noise). Accuracies are measured on the plant; iris (38 test samples, one sample = 2.6 points) is
averaged over seeds. Same optimiser (Adam), epochs, batch and learning rate for every method of a condition.
In-silico training never pulses: it deploys once with write-verify (1 % write noise) at evaluation.

Run: python benchmarks/bench_ep_classification.py [--datasets digits iris] [--seeds-iris 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pnnlab import InSilico, PhysicsAwareTraining, evaluate, train
from pnnlab.data.tabular import load_digits, load_iris
from pnnlab.methods.coupled_learning import CoupledLearning
from pnnlab.methods.equilibrium_propagation import EquilibriumPropagation, PositiveNudging
from pnnlab.models.resistive_classifier import build_resistive_classifier
from pnnlab.plants.electronics import TAOX_YI_2023, TYPICAL_MISMATCH

CONFIG = {
    "digits": {"loader": load_digits, "hidden": (64,), "epochs": 30},
    "iris": {"loader": load_iris, "hidden": (16,), "epochs": 100},
}
#: Adam learning rate per condition, the same for every method. In-situ training on the memristive
#: network works better with larger steps (0.2): each update is then many pulses, and the training
#: signal dominates the drift that soft-bounded, asymmetric devices add to balanced small updates.
LR = {False: 0.05, True: 0.2}


def methods(beta, eta, nonideal):
    out = []
    if nonideal:
        out += [("BP via twin (pat)", PhysicsAwareTraining()), ("BP via twin (in_silico)", InSilico())]
    else:
        out += [("BP (exact twin)", InSilico())]
    out += [(f"EP centred, beta={beta:g}", EquilibriumPropagation(beta=beta)),
            (f"EP positive, beta={beta:g}", EquilibriumPropagation(beta=beta, nudging=PositiveNudging())),
            (f"EP positive, beta={beta / 10:g}", EquilibriumPropagation(beta=beta / 10, nudging=PositiveNudging())),
            (f"coupled learning, eta={eta:g}", CoupledLearning(eta=eta))]
    return out


def run(dataset, cfg, seeds, beta, eta):
    rows = []
    for nonideal in (False, True):
        condition = "TaOx memristors + mismatch" if nonideal else "ideal network"
        print(f"  -- {dataset}, {condition}: Adam lr {LR[nonideal]}, {cfg['epochs']} epochs, batch 32, "
              f"{seeds} seed(s)", flush=True)
        for label, method in methods(beta, eta, nonideal):
            accs, secs, pulses = [], [], []
            for seed in range(seeds):
                data = cfg["loader"](seed=seed)
                model = build_resistive_classifier(
                    in_features=data.in_features, n_classes=data.n_classes, hidden=cfg["hidden"], seed=seed,
                    device=TAOX_YI_2023 if nonideal else None, mismatch=TYPICAL_MISMATCH if nonideal else None)
                start = time.perf_counter()
                train(model, method, data, epochs=cfg["epochs"], lr=LR[nonideal], batch_size=32,
                      evaluate_every=cfg["epochs"], seed=seed)
                secs.append(time.perf_counter() - start)
                accs.append(evaluate(model, data.x_test, data.y_test)["accuracy"] * 100)
                pulses.append(model[0].plant.pulses)
            rows.append({"dataset": dataset, "condition": condition, "method": label,
                         "acc": statistics.mean(accs), "std": statistics.pstdev(accs) if seeds > 1 else 0.0,
                         "seconds": statistics.mean(secs), "pulses": statistics.mean(pulses)})
            r = rows[-1]
            print(f"  {dataset:<7}{condition:<28}{label:<30}{r['acc']:>7.2f} +- {r['std']:<5.2f}"
                  f"{r['seconds']:>8.1f}s{r['pulses']:>12.0f}", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="*", default=["digits", "iris"])
    parser.add_argument("--seeds-iris", type=int, default=5)
    parser.add_argument("--seeds-digits", type=int, default=2)
    parser.add_argument("--beta", type=float, default=0.01)
    parser.add_argument("--eta", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"  {'data':<7}{'network':<28}{'method':<30}{'test accuracy %':>15}{'train':>9}{'pulses':>12}")
    summary = []
    for dataset in args.datasets:
        cfg = CONFIG[dataset]
        seeds = args.seeds_iris if dataset == "iris" else args.seeds_digits
        rows = run(dataset, cfg, seeds, args.beta, args.eta)
        summary += rows
    print("\ngaps to backpropagation on the same network (percentage points, positive = below BP):")
    for dataset in args.datasets:
        for condition in ("ideal network", "TaOx memristors + mismatch"):
            rows = [r for r in summary if r["dataset"] == dataset and r["condition"] == condition]
            ref = rows[0]
            for r in rows[1:]:
                print(f"  {dataset:<7}{condition:<28}{r['method']:<30}{ref['acc'] - r['acc']:>+7.2f}  "
                      f"(vs {ref['method']})")
    for r in summary:
        if r["dataset"] == "iris" and r["method"].startswith("coupled"):
            print(f"coupled learning on iris, {r['condition']}: {r['acc']:.1f} % (target >= 90 %: "
                  f"{'met' if r['acc'] >= 90 else 'NOT met'})")


if __name__ == "__main__":
    main()
