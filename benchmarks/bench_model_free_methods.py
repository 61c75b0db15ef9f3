"""Every model-free method on the same multimode-fibre plant: test accuracy on the plant against
plant queries, on vowels and digits, with and without drift of the transmission matrix.

Plant: the fibre with all non-idealities (SLM quantisation and crosstalk, camera shot and read
noise, saturation, 10-bit ADC), linear propagation unless ``--kerr`` adds a Kerr-like phase.
Model (all gradient estimators, the same for each): ``build_fibre_mlp`` =
``Linear(d, k) -> fibre (k input pixels, 128 - k trainable SLM control phases, 16 camera pixels)
-> per-sample standardisation -> Linear(16, n_classes)``. PAT uses the fibre's crude twin (TM
measured once with 30 % error, no quantisation, crosstalk, Kerr phase, noise or drift), FA and DFA pass the
error through that twin, augmented DFA and the zeroth-order methods use no model at all.
PhyLL and forward-forward need label-embedded goodness networks: ``build_fibre_goodness_net`` on
the same plant type (the fibre is a fixed front end; only digital layers learn).

With ``--drift``, the transmission matrix decorrelates fully every ``--tau`` seconds of *device
time* (one SLM frame = 1/60 s per sample), so methods that query more also see more drift.

Run:  python benchmarks/bench_model_free_methods.py [--tasks vowels digits] [--drift] [--tau 600]
      [--kerr 0.0]
      [--out benchmarks/results/model_free_methods.png]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from pnnlab.methods.cmaes import CMAES
from pnnlab.methods.feedback_alignment import AugmentedDFA, DirectFeedbackAlignment, FeedbackAlignment
from pnnlab.methods.forward_forward import ForwardForward
from pnnlab.methods.local_learning import PhysicalLocalLearning
from pnnlab.methods.physics_aware import PhysicsAwareTraining
from pnnlab.methods.multiplexed import MultiplexedGradientDescent
from pnnlab.methods.zeroth_order import SPSA, FiniteDifferences, NodePerturbation, WeightPerturbation
from pnnlab.models.fibre_local import build_fibre_goodness_net, build_fibre_mlp
from pnnlab.plants.optics.fibre import TransmissionDrift
from pnnlab.train import train

# name -> (method factory, model kind, epochs, learning rate, batch size)
METHODS = {
    "pat": (lambda: PhysicsAwareTraining(), "mlp", 1.0, 1e-2, 16),
    "fa": (lambda: FeedbackAlignment(seed=1), "mlp", 1.0, 1e-2, 16),
    "dfa": (lambda: DirectFeedbackAlignment(seed=1), "mlp", 1.0, 1e-2, 16),
    "aug_dfa": (lambda: AugmentedDFA(seed=1), "mlp", 1.0, 1e-2, 16),
    "spsa": (lambda: SPSA(n_perturbations=4, epsilon=0.02, seed=1), "mlp", 5.0, 3e-3, 16),
    "weight_perturbation": (lambda: WeightPerturbation(n_perturbations=8, sigma=0.02, seed=1), "mlp", 5.0, 3e-3, 16),
    "node_perturbation": (lambda: NodePerturbation(n_perturbations=8, sigma=0.05, seed=1), "mlp", 1.0, 1e-2, 16),
    "mgd": (lambda: MultiplexedGradientDescent(timesteps=8, amplitude=0.02, seed=1), "mlp", 5.0, 3e-3, 16),
    "finite_differences": (lambda: FiniteDifferences(epsilon=0.02), "mlp", 0.1, 1e-2, 16),
    "cmaes": (lambda: CMAES(sigma0=0.1, population_size=16, diagonal=True, seed=1), "mlp", 5.0, None, 16),
    "phyll": (lambda: PhysicalLocalLearning(seed=1), "goodness", 1.0, 3e-3, 16),
    "forward_forward": (lambda: ForwardForward(seed=1), "goodness", 1.0, 3e-3, 16),
}


def load(task: str):
    if task == "vowels":
        from pnnlab.data.vowels import load_vowels
        return load_vowels(seed=0)
    from pnnlab.data.tabular import load_digits
    return load_digits(seed=0)


def build(kind: str, data, drift, seed: int, kerr: float):
    if kind == "mlp":
        return build_fibre_mlp(in_features=data.in_features, n_classes=data.n_classes, encoder_width=12,
                               camera_pixels=16, drift=drift, kerr_phase_rad=kerr, seed=seed)
    return build_fibre_goodness_net(in_features=data.in_features, n_classes=data.n_classes, hidden=64,
                                    camera_pixels=256, phase_scale_rad=0.5, drift=drift,
                                    kerr_phase_rad=kerr, seed=seed)


def run(task: str, base_epochs: int, drift, seed: int, names, kerr: float) -> dict:
    data = load(task)
    results = {}
    for name in names:
        factory, kind, epoch_factor, lr, batch = METHODS[name]
        epochs = max(1, int(round(base_epochs * epoch_factor)))
        model = build(kind, data, drift, seed, kerr)
        method = factory()
        start = time.perf_counter()
        history = train(model, method, data, epochs=epochs, batch_size=batch, lr=lr or 1e-2,
                        evaluate_every=max(1, epochs // 5))
        evals = history.evaluations()
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        results[name] = {"curve": [(e["train_queries"], e["test_accuracy"]) for e in evals],
                         "accuracy": evals[-1]["test_accuracy"], "best": max(e["test_accuracy"] for e in evals),
                         "queries": evals[-1]["train_queries"], "device_s": evals[-1]["train_device_seconds"],
                         "epochs": epochs, "params": trainable, "wall": time.perf_counter() - start}
    return results


def table(task: str, results: dict, label: str) -> None:
    ref = results.get("pat", {}).get("accuracy")
    print(f"\n{task} ({label}): test accuracy on the plant after training")
    print(f"{'method':<20}{'params':>7}{'epochs':>7}{'acc %':>8}{'best %':>8}{'vs PAT':>8}"
          f"{'queries':>10}{'device h':>10}{'wall s':>8}")
    for name, r in results.items():
        diff = f"{100 * (r['accuracy'] - ref):+.1f}" if ref is not None else "-"
        print(f"{name:<20}{r['params']:>7}{r['epochs']:>7}{100 * r['accuracy']:>8.1f}{100 * r['best']:>8.1f}"
              f"{diff:>8}{r['queries']:>10}{r['device_s'] / 3600:>10.2f}{r['wall']:>8.1f}")


def plot(all_results: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(all_results), figsize=(6 * len(all_results), 4.5), squeeze=False)
    for ax, (key, results) in zip(axes[0], all_results.items()):
        for name, r in results.items():
            q, a = zip(*r["curve"])
            ax.plot([max(v, 1) for v in q], [100 * v for v in a], marker="o", ms=3, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("plant queries during training")
        ax.set_ylabel("test accuracy on the plant (%)")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"\nplot saved to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["vowels", "digits"], choices=["vowels", "digits"])
    parser.add_argument("--epochs", type=int, default=20, help="base epochs for vowels (digits: a third); zeroth-order methods get 5x")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--drift", action="store_true", help="also run with a drifting transmission matrix")
    parser.add_argument("--tau", type=float, default=600.0, help="decorrelation time of the TM in device seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kerr", type=float, default=0.0,
                        help="Kerr-like nonlinear phase of the fibre in rad (the crude twin ignores it)")
    parser.add_argument("--out", default="benchmarks/results/model_free_methods.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    everything = {}
    for task in args.tasks:
        epochs = args.epochs if task == "vowels" else max(1, args.epochs // 3)
        settings = [("static", None)]
        if args.drift:
            settings.append((f"drift tau={args.tau:g} s", TransmissionDrift(decorrelation_time_s=args.tau)))
        for label, drift in settings:
            results = run(task, epochs, drift, args.seed, args.methods, args.kerr)
            label += f", Kerr {args.kerr:g} rad"
            table(task, results, label)
            everything[f"{task}, {label}"] = results
    plot(everything, args.out)


if __name__ == "__main__":
    main()
