"""Equilibrium propagation and coupled learning on nonlinear resistive networks (0.2 V read range):
digits (8x8) and iris, against backpropagation references and digital baselines.

Model (the same for every physical method): a resistive network (64 -> 64 -> 10 for digits,
4 -> 16 -> 3 for iris; diode hidden nodes, differential outputs) followed by a per-class digital
gain and offset. Methods, all for the same number of epochs (stated), batch 32, Adam:

* backpropagation references: ``in_silico`` (through the nominal twin) and, on the non-ideal
  network, ``pat`` (plant forward, twin backward) and ``ideal`` (through ``true_twin()``, the hidden
  physics with noise off: an UPPER BOUND no laboratory can run);
* centred EP (Laborieux et al. 2021) at beta, positive EP (Scellier & Bengio 2017) at beta and
  beta / 10, coupled learning (Stern et al. 2021) at eta;
* digital baselines with no physics: logistic regression and an MLP with the network's number of
  equivalent weights (a ReLU hidden layer of the same width).

Conditions: an ideal network (exact conductances, no noise), and TaOx memristors + mismatch (pulsed
soft-bounded asymmetric updates, cycle-to-cycle and device-to-device variation, write and read noise,
drift, stuck devices; 10 mV diode threshold spread, 10 % diode conductance spread, 0.5 mV read noise).
beta and eta are set by the physics, not tuned: the nudge beta u B |dL/dy| and the clamp step eta B
|dL/dy| must stay well inside the read range (both scale with the read-out gain). The read-out gain
of every physical method is tuned together with its learning rate on seed 0's VALIDATION split over
``--gains`` (default 500 and 2000 /V; ties to the gain listed first: list them ascending, so the
smaller nudge wins). 2000 /V was found on seed 0's digits VALIDATION split only: centred EP,
beta = 1e-4, 20 epochs, best of lr {0.05, 0.2}, mean validation accuracy over the ideal and
TaOx+mismatch networks, over gains
{50, 200, 500, 2000, 5000, 10000} (88.85 % for 2000 and for 5000, a tie broken towards the smaller
gain, i.e. the smaller nudge; 10000 drove nudges out of the read range); no test figure was looked
at. The learning rate of every method is tuned on the VALIDATION split of seed 0 over ``--lrs``;
test accuracies are reported on ``--report-seeds`` (default 1..k with ``--seeds k``; each seed draws
its own data split, network and devices), as the final accuracy and the accuracy at the epoch chosen
on validation (never the best test epoch).

Run: python benchmarks/bench_ep_classification.py [--datasets digits iris] [--report-seeds 4 5 6] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from torch import nn

from pnnlab import IdealBackprop, InSilico, PhysicsAwareTraining, train
from pnnlab.data.tabular import load_digits, load_iris
from pnnlab.methods.coupled_learning import CoupledLearning
from pnnlab.methods.equilibrium_propagation import EquilibriumPropagation, PositiveNudging
from pnnlab.models.resistive_classifier import build_resistive_classifier
from pnnlab.plants.electronics import TAOX_YI_2023, TYPICAL_MISMATCH

CONFIG = {
    "digits": {"loader": load_digits, "hidden": (64,), "epochs": 30, "evaluate_every": 2},
    "iris": {"loader": load_iris, "hidden": (16,), "epochs": 100, "evaluate_every": 5},
}


def methods(beta, eta, nonideal):
    out = [("BP via nominal twin (in_silico)", InSilico())]
    if nonideal:
        out += [("BP via twin, plant forward (pat)", PhysicsAwareTraining()),
                ("ideal (UPPER BOUND, true twin)", IdealBackprop())]
    out += [(f"EP centred, beta={beta:g}", EquilibriumPropagation(beta=beta)),
            (f"EP positive, beta={beta:g}", EquilibriumPropagation(beta=beta, nudging=PositiveNudging())),
            (f"EP positive, beta={beta / 10:g}", EquilibriumPropagation(beta=beta / 10, nudging=PositiveNudging())),
            (f"coupled learning, eta={eta:g}", CoupledLearning(eta=eta))]
    return out


def _physical_run(cfg, method, seed, lr, nonideal, epochs, gain):
    data = cfg["loader"](seed=seed)
    model = build_resistive_classifier(in_features=data.in_features, n_classes=data.n_classes, hidden=cfg["hidden"],
                                       seed=seed, gain=gain, device=TAOX_YI_2023 if nonideal else None,
                                       mismatch=TYPICAL_MISMATCH if nonideal else None)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = train(model, method, data, epochs=epochs, lr=lr, batch_size=32,
                        evaluate_every=min(cfg["evaluate_every"], epochs), seed=seed)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"val": history.selected["val_accuracy"], "final": history.final["test_accuracy"],
            "selected": history.selected["test_accuracy"], "seconds": time.perf_counter() - start,
            "pulses": model[0].plant.pulses, "params": params, "n_test": len(data.y_test),
            "range_warnings": sum("read range" in str(w.message) for w in caught)}


def _digital_run(cfg, kind, seed, lr, epochs):
    data = cfg["loader"](seed=seed)
    torch.manual_seed(seed)
    H = cfg["hidden"][0]
    if kind == "logistic regression":
        model = nn.Linear(data.in_features, data.n_classes)
    else:
        model = nn.Sequential(nn.Linear(data.in_features, H), nn.ReLU(), nn.Linear(H, data.n_classes))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    evals = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=g)
        for i in range(0, n, 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
            opt.step()
        if epoch % min(cfg["evaluate_every"], epochs) == 0 or epoch == epochs:
            with torch.no_grad():
                acc = {s: float((model(data.split(s)[0]).argmax(1) == data.split(s)[1]).float().mean())
                       for s in ("val", "test")}
                val_loss = float(nn.functional.cross_entropy(model(data.x_val), data.y_val))
            evals.append((acc["val"], -val_loss, -epoch, acc["test"]))
    best = max(evals)
    return {"val": best[0], "final": evals[-1][3], "selected": best[3], "seconds": time.perf_counter() - start,
            "pulses": 0, "params": sum(p.numel() for p in model.parameters()), "n_test": len(data.y_test),
            "range_warnings": 0}


def _mean_std(values):
    values = [100 * v for v in values]
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def evaluate_entry(run, lrs, seeds, tune_seed, gains=(None,)):
    """Tune (lr, gain) on the validation split of ``tune_seed``; report test accuracies on ``seeds``.
    Ties go to the earlier lr, then the earlier gain."""
    grid = [(lr, gain) for gain in gains for lr in lrs]
    tuning = {key: run(tune_seed, *key) for key in grid}
    best = max(grid, key=lambda k: (tuning[k]["val"], -lrs.index(k[0]), -list(gains).index(k[1])))
    lr, gain = best
    results = [run(seed, lr, gain) for seed in seeds]
    final = _mean_std([r["final"] for r in results])
    selected = _mean_std([r["selected"] for r in results])
    return {"lr": lr, "gain": gain, "tuning_val": {k: v["val"] for k, v in tuning.items()}, "final": final, "selected": selected,
            "seconds": statistics.mean(r["seconds"] for r in results),
            "pulses": statistics.mean(r["pulses"] for r in results), "params": results[0]["params"],
            "n_test": results[0]["n_test"], "range_warnings": sum(r["range_warnings"] for r in results)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="*", default=["digits", "iris"])
    parser.add_argument("--conditions", nargs="*", default=["ideal", "nonideal"])
    parser.add_argument("--seeds", type=int, default=3, help="report seeds 1..k (seed 0 is used for tuning)")
    parser.add_argument("--report-seeds", type=int, nargs="*", default=None,
                        help="report these seeds instead of 1..k (never 0, the tuning seed)")
    parser.add_argument("--gains", type=float, nargs="*", default=[500.0, 2000.0],
                        help="read-out gains (1/V) tuned with the lr on seed 0's validation split (docstring)")
    parser.add_argument("--lrs", type=float, nargs="*", default=[0.05, 0.2])
    parser.add_argument("--beta", type=float, default=1e-4)
    parser.add_argument("--eta", type=float, default=2e-5)
    parser.add_argument("--epochs", type=int, default=None, help="override every dataset's epochs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="iris, 2 epochs, one seed, one learning rate")
    args = parser.parse_args()
    if args.smoke:
        args.datasets, args.seeds, args.lrs, args.epochs = ["iris"], 1, [0.05], 2
    torch.set_num_threads(args.threads)
    seeds = list(range(1, args.seeds + 1)) if args.report_seeds is None else list(args.report_seeds)
    if 0 in seeds:
        parser.error("--report-seeds must not contain 0: seed 0's validation split is used for tuning")
    print(f"learning rate of each method tuned on seed 0's validation split over {args.lrs}; test accuracy on "
          f"seeds {seeds} (mean +- std); 'selected' = test accuracy at the epoch chosen on validation\n"
          f"read-out gain(s) {args.gains} /V, tuned with the lr per method on seed 0's validation split (2000: "
          f"chosen on seed 0's digits validation split with centred EP, see the docstring); "
          f"beta={args.beta:g}, eta={args.eta:g} (set by the read range, not tuned)\n"
          f"read range +-0.2 V: Li et al., Nat. Commun. 9, 2385 (2018) (the paper checked; its 0.2 V read "
          f"amplitude recalled, not verified); node read noise 0.5 mV and diode spreads: TYPICAL_MISMATCH (assumed)")
    header = (f"  {'data':<7}{'network':<15}{'method':<42}{'params':>7}{'lr':>6}{'gain':>6}{'final test %':>16}"
              f"{'selected test %':>18}{'train s':>9}{'pulses':>10}")
    summary = []
    for dataset in args.datasets:
        cfg = dict(CONFIG[dataset])
        epochs = args.epochs or cfg["epochs"]
        for condition in args.conditions:
            nonideal = condition == "nonideal"
            label = "TaOx+mismatch" if nonideal else "ideal"
            print(f"\n-- {dataset}, {label}: {epochs} epochs, batch 32, Adam, every method the same budget", flush=True)
            print(header)
            entries = [(name, lambda s, lr, gain, m=m: _physical_run(cfg, m, s, lr, nonideal, epochs, gain))
                       for name, m in methods(args.beta, args.eta, nonideal)]
            entries += [(f"digital {kind} (no physics)", lambda s, lr, gain, k=kind: _digital_run(cfg, k, s, lr, epochs))
                        for kind in ("logistic regression", f"MLP {cfg['hidden'][0]} ReLU")]
            for name, run in entries:
                physical = not name.startswith("digital")
                r = evaluate_entry(run, args.lrs, seeds, 0, args.gains if physical else (None,))
                r.update(dataset=dataset, condition=label, method=name)
                summary.append(r)
                warn = f"  [{r['range_warnings']} nudges left the read range]" if r["range_warnings"] else ""
                gain = f"{r['gain']:g}" if r["gain"] else "-"
                print(f"  {dataset:<7}{label:<15}{name:<42}{r['params']:>7}{r['lr']:>6g}{gain:>6}"
                      f"{r['final'][0]:>9.2f} +- {r['final'][1]:<4.2f}{r['selected'][0]:>11.2f} +- {r['selected'][1]:<4.2f}"
                      f"{r['seconds']:>9.1f}{r['pulses']:>10.0f}{warn}", flush=True)
            print("  tuning (seed-0 validation accuracy per lr or lr/gain): " + "; ".join(
                f"{r['method']}: " + ", ".join((f"{lr:g}" if g is None else f"{lr:g}/{g:g}") + f"->{100 * v:.1f}"
                                            for (lr, g), v in r["tuning_val"].items())
                for r in summary if r["dataset"] == dataset and r["condition"] == label))
    print("\ngaps of centred EP and coupled learning to the STRONGER backprop reference on the same network "
          "(selected-epoch test accuracy, points; positive = below the reference):")
    for dataset in args.datasets:
        for label in ("ideal", "TaOx+mismatch"):
            rows = [r for r in summary if r["dataset"] == dataset and r["condition"] == label]
            if not rows:
                continue
            refs = [r for r in rows if r["method"].startswith("BP")]
            ref = max(refs, key=lambda r: r["selected"][0])
            one_sample = 100.0 / ref["n_test"]
            for r in rows:
                if not (r["method"].startswith("EP centred") or r["method"].startswith("coupled")):
                    continue
                gap = ref["selected"][0] - r["selected"][0]
                noise = max(ref["selected"][1], r["selected"][1])
                flag = " (within one std)" if abs(gap) <= noise else ""
                flag += " (within one test sample)" if abs(gap) <= one_sample else ""
                print(f"  {dataset:<7}{label:<15}{r['method']:<30}{gap:>+7.2f} vs {ref['method']}{flag}; "
                      f"test set {ref['n_test']} samples (1 sample = {one_sample:.2f} points)")
            bound = [r for r in rows if r["method"].startswith("ideal")]
            if bound:
                print(f"  {dataset:<7}{label:<15}upper bound (ideal, true twin): {bound[0]['selected'][0]:.2f} %")


if __name__ == "__main__":
    main()
