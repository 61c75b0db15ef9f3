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

Before training, the gradient fidelity of every estimator (cosine and angle to backpropagation
through the noiseless, mismatch-free fibre, :mod:`pnnlab.diagnostics.gradient_fidelity`) is printed.
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

from pnnlab.diagnostics.gradient_fidelity import compare_gradients, estimate_gradients
from pnnlab.methods.cmaes import CMAES
from pnnlab.methods.ideal import IdealBackprop
from pnnlab.methods.feedback_alignment import AugmentedDFA, DirectFeedbackAlignment, FeedbackAlignment
from pnnlab.methods.forward_forward import ForwardForward
from pnnlab.methods.local_learning import PhysicalLocalLearning
from pnnlab.methods.physics_aware import PhysicsAwareTraining
from pnnlab.methods.multiplexed import MultiplexedGradientDescent
from pnnlab.methods.zeroth_order import SPSA, FiniteDifferences, NodePerturbation, WeightPerturbation
from pnnlab.models.fibre_local import build_fibre_goodness_net, build_fibre_mlp
from pnnlab.plants.optics.fibre import TransmissionDrift
from pnnlab.train import train

# Adam learning rate of the zeroth-order estimators, per task (digits' model has P = 1066 parameters,
# vowels' P = 391: the noisier estimate needs a smaller step)
ZO_LR = {"vowels": 1e-2, "digits": 3e-3}

# name -> (method factory, model kind, epoch factor, learning rate ("zo": ZO_LR), batch size)
METHODS = {
    "pat": (lambda: PhysicsAwareTraining(), "mlp", 1.0, 1e-2, 16),
    "fa": (lambda: FeedbackAlignment(seed=1), "mlp", 1.0, 1e-2, 16),
    "dfa": (lambda: DirectFeedbackAlignment(seed=1), "mlp", 1.0, 1e-2, 16),
    "aug_dfa": (lambda: AugmentedDFA(seed=1), "mlp", 1.0, 1e-2, 16),
    "spsa": (lambda: SPSA(n_perturbations=4, epsilon=0.02, seed=1), "mlp", 5.0, "zo", 16),
    "weight_perturbation": (lambda: WeightPerturbation(n_perturbations=8, sigma=0.02, seed=1), "mlp", 5.0, "zo", 16),
    "node_perturbation": (lambda: NodePerturbation(n_perturbations=8, sigma=0.05, seed=1), "mlp", 2.0, "zo", 16),
    "mgd": (lambda: MultiplexedGradientDescent(timesteps=8, amplitude=0.02, seed=1), "mlp", 5.0, "zo", 16),
    "finite_differences": (lambda: FiniteDifferences(epsilon=0.02), "mlp", 0.1, "zo", 16),
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
        lr = ZO_LR[task] if lr == "zo" else lr
        history = train(model, method, data, epochs=epochs, batch_size=batch, lr=lr or 1e-2,
                        evaluate_every=max(1, epochs // 5))
        evals = history.evaluations()
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        results[name] = {"curve": [(e["train_queries"], e["test_accuracy"]) for e in evals],
                         "accuracy": evals[-1]["test_accuracy"], "best": max(e["test_accuracy"] for e in evals),
                         "queries": evals[-1]["train_queries"], "device_s": evals[-1]["train_device_seconds"],
                         "epochs": epochs, "params": trainable, "wall": time.perf_counter() - start}
    return results


def fidelity(task: str, seed: int, kerr: float, names) -> None:
    """Gradient fidelity (pnnlab.diagnostics.gradient_fidelity) of every gradient estimator at the
    initial model, against backpropagation through the noiseless, mismatch-free fibre."""
    data = load(task)
    x, y = data.x_train[:64], data.y_train[:64]
    print(f"\n{task}: gradient fidelity at initialisation (64 samples; reference: ideal backprop, t = 0)")
    print(f"{'method':<20}{'cosine':>8}{'angle deg':>10}{'rel. err':>10}{'queries/step':>14}")
    for name in names:
        factory, kind, _, _, _ = METHODS[name]
        if kind != "mlp" or name == "cmaes":
            continue
        model = build(kind, data, None, seed, kerr)
        ref = estimate_gradients(IdealBackprop(), model, x, y)
        method = factory()
        r = compare_gradients(estimate_gradients(method, model, x, y), ref)["overall"]
        print(f"{name:<20}{r['cosine']:>8.3f}{r['angle_degrees']:>10.1f}{r['relative_error']:>10.2f}"
              f"{method.queries_per_step(model) if hasattr(method, 'queries_per_step') else 1:>14}")


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
        colours = plt.get_cmap("tab20").colors
        for i, (name, r) in enumerate(results.items()):
            q, a = zip(*r["curve"])
            ax.plot([max(v, 1) for v in q], [100 * v for v in a], marker="os^v"[i % 4], ms=3,
                    color=colours[(2 * i) % 20 if i < 10 else (2 * i + 1) % 20], label=name)
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
    parser.add_argument("--epochs", type=int, default=20, help="base epochs for vowels (digits: half); zeroth-order methods get 5x")
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
        epochs = args.epochs if task == "vowels" else max(1, args.epochs // 2)
        fidelity(task, args.seed, args.kerr, args.methods)
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
