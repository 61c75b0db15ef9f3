"""Physical local learning as published (Momeni, Rahmani, Malléjac, del Hougne & Fleury, Science 382,
1297 (2023), doi:10.1126/science.adi8474; algorithm checked against github.com/MomeniAli/PhyLL) with
multimode fibres as the physical layers, against digital-only networks with the same trainable
parameters and the plain digital ceilings.

Physical system: the pnnlab fibre plant (not the authors' acoustic cavity): SLM phases
``phi = scale * h / rms(h)`` (SLM quantisation and crosstalk), an unknown speckle transmission
matrix with a Kerr-like nonlinear phase (``--kerrs``: 0 or 2 rad, chosen on validation), camera shot/read noise, saturation and a
10-bit ADC; the camera image is standardised per sample. Controls frozen, no twin attached.

Networks (every one trained by ``phyll`` with the same alpha, inner steps, Adam learning rate, batch
size and epochs; the acoustic variant's constants alpha = 4, 10 inner steps, from the authors'
``Acoustic/acoustics_pnn.py``; the learning rate, the fibre's Kerr phase and the epoch are chosen on
validation):

* ``fibre``: ``n_blocks`` blocks ``[fibre(h), h] -> Linear(camera + width(h), hidden)``, the label
  written into the first fibre's input (``build_fibre_phyll_net``);
* ``random features``: the same widths, each fibre replaced by a fixed random Fourier feature map
  ``cos(R h / rms(h) + c)`` of the camera's width (same trainable parameters);
* ``no physics``: each fibre removed (``z_l = h_{l-1}``, no skip), the hidden width raised so the
  trainable-parameter count matches the fibre network (nearest width);
* ceilings: logistic regression and a one-hidden-layer MLP (scikit-learn, L-BFGS / Adam to
  convergence; regularisation chosen on validation), trained by backpropagation.

Protocol: the data split, the fibres, the initialisation and the batch order change with the seed.
Hyper-parameters (learning rate, the fibre's Kerr phase, the ceilings' regularisation) are tuned on
seed 0's *validation* split;
test accuracy is reported over seeds 1..k: the final epoch and the epoch chosen on validation
(``History.selected``), mean +- standard deviation. Differences within one standard deviation or within
one test sample (1 / test-set size) are flagged.

Run:  python benchmarks/bench_model_free_phyll.py [--tasks vowels digits] [--seeds 3] [--epochs 60]
      [--digits-epochs 20] [--lrs 5e-4 2e-3] [--kerrs 0 2] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pnnlab.methods.local_learning import PhysicalLocalLearning
from pnnlab.models.fibre_local import build_fibre_phyll_net
from pnnlab.models.phyll import RandomFeatureMap, build_phyll_net, hidden_for_equal_parameters
from pnnlab.train import train

ALPHA, INNER_STEPS = 4.0, 10   # acoustic variant, Acoustic/acoustics_pnn.py l. 228-230 (Momeni 2023 code)


def load(task, seed):
    if task == "vowels":
        from pnnlab.data.vowels import load_vowels
        return load_vowels(seed=seed)
    from pnnlab.data.tabular import load_digits
    return load_digits(seed=seed)


def networks(data, args, seed, kerr=0.0):
    kw = dict(in_features=data.in_features, n_classes=data.n_classes, n_blocks=args.blocks, seed=seed)
    fibre = build_fibre_phyll_net(hidden=args.hidden, camera_pixels=args.camera, n_modes=args.modes,
                                  phase_scale_rad=args.scale, kerr_phase_rad=kerr, **kw)
    target = trainable(fibre)
    rff = build_phyll_net(physics=lambda w, i: RandomFeatureMap(w, args.camera, seed=seed + 101 * i),
                          physical_width=args.camera, hidden=args.hidden, **kw)
    width = hidden_for_equal_parameters(target, in_features=data.in_features, n_classes=data.n_classes,
                                        n_blocks=args.blocks)
    plain = build_phyll_net(physics=None, physical_width=None, hidden=width, **kw)
    return {"fibre": fibre, "random features": rff, f"no physics (hidden {width})": plain}


def trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def run_phyll(model, data, args, lr, seed):
    method = PhysicalLocalLearning(alpha=ALPHA, lr=lr, inner_steps=INNER_STEPS, seed=seed)
    epochs = args.digits_epochs if data.name.startswith("digits") else args.epochs
    history = train(model, method, data, epochs=epochs, batch_size=args.batch, seed=seed,
                    evaluate_every=args.eval_every)
    return history


def ceilings(data, seed, smoke, tune=None):
    """Logistic regression and an MLP (scikit-learn); regularisation ``tune`` or chosen on validation."""
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    x, y = data.x_train.numpy(), data.y_train.numpy()
    xv, yv = data.x_val.numpy(), data.y_val.numpy()
    xt, yt = data.x_test.numpy(), data.y_test.numpy()
    d, c = data.in_features, data.n_classes
    out = {}
    grids = {"logistic regression": [0.01, 0.1, 1.0, 10.0], "MLP 1x256 (backprop)": [1e-4, 1e-2, 1.0]}
    makers = {"logistic regression": lambda r: LogisticRegression(C=r, max_iter=50 if smoke else 2000),
              "MLP 1x256 (backprop)": lambda r: MLPClassifier((256,), alpha=r, max_iter=20 if smoke else 1000,
                                                              random_state=seed)}
    params = {"logistic regression": (d + 1) * c, "MLP 1x256 (backprop)": (d + 1) * 256 + 257 * c}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, make in makers.items():
            if tune is None:
                best = max(grids[name], key=lambda r: make(r).fit(x, y).score(xv, yv))
            else:
                best = tune[name]
            out[name] = (best, make(best).fit(x, y).score(xt, yt), params[name])
    return out


def fmt(values):
    m = 100 * statistics.mean(values)
    s = 100 * (statistics.stdev(values) if len(values) > 1 else 0.0)
    return f"{m:5.1f} +- {s:4.1f}", m, s


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["vowels", "digits"], choices=["vowels", "digits"])
    parser.add_argument("--seeds", type=int, default=3, help="report seeds 1..k (seed 0 is for tuning)")
    parser.add_argument("--epochs", type=int, default=60, help="epochs on vowels")
    parser.add_argument("--digits-epochs", type=int, default=20, help="epochs on digits (5.6x the training set)")
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--camera", type=int, default=256)
    parser.add_argument("--modes", type=int, default=128)
    parser.add_argument("--lrs", type=float, nargs="+", default=[5e-4, 2e-3],
                        help="Adam learning rates tried on seed 0's validation (5e-4: the acoustic variant's)")
    parser.add_argument("--kerrs", type=float, nargs="+", default=[0.0, 2.0],
                        help="mean Kerr-like nonlinear phases of the fibre (rad) tried on seed 0's validation")
    parser.add_argument("--scale", type=float, default=1.0, help="SLM phase per rms of the block input (rad)")
    parser.add_argument("--smoke", action="store_true", help="tiny settings for a test run (seconds)")
    args = parser.parse_args()
    if args.smoke:
        args.tasks, args.seeds, args.epochs, args.digits_epochs, args.eval_every = ["vowels"], 1, 1, 1, 1
        args.hidden, args.camera, args.modes, args.blocks, args.lrs, args.kerrs = 8, 16, 32, 1, [5e-4], [0.0]
    torch.set_num_threads(1)
    print(f"phyll: alpha = {ALPHA:g}, {INNER_STEPS} Adam steps per block per batch (acoustic variant, "
          f"Momeni 2023 code, Acoustic/acoustics_pnn.py); batch {args.batch}; the same epochs for every network "
          f"(vowels {args.epochs}, digits {args.digits_epochs}; evaluated every {args.eval_every}); fibre Kerr phase "
          f"from {args.kerrs} rad (assumed values, chosen on validation), SLM phase {args.scale:g} rad per rms "
          f"(assumed), {args.camera} camera pixels, {args.blocks} blocks of {args.hidden}")
    report_seeds = [0] if args.smoke else list(range(1, args.seeds + 1))
    for task in args.tasks:
        start = time.perf_counter()
        tune_data = load(task, 0)
        # ---- tuning on seed 0's validation split
        chosen = {}
        for name in networks(tune_data, args, 0):
            grid = [(lr, k) for lr in args.lrs for k in (args.kerrs if name == "fibre" else [0.0])]
            scores = {}
            for lr, kerr in grid:
                model = networks(tune_data, args, 0, kerr)[name]
                scores[(lr, kerr)] = run_phyll(model, tune_data, args, lr, 0).selected["val_accuracy"]
            chosen[name] = max(grid, key=lambda c: scores[c])
            print(f"  {task} tuning (seed 0 validation) {name:<24} " + ", ".join(
                (f"lr {lr:g}, Kerr {k:g} rad" if name == "fibre" else f"lr {lr:g}") + f" -> {100 * v:.1f} %"
                for (lr, k), v in scores.items()) + f"; chosen {chosen[name]}")
        tuned_ceilings = {k: v[0] for k, v in ceilings(tune_data, 0, args.smoke).items()}
        print(f"  {task} tuning (seed 0 validation) ceilings: " +
              ", ".join(f"{k} regularisation {v:g}" for k, v in tuned_ceilings.items()))
        # ---- report seeds
        rows = {}
        sizes = []
        for seed in report_seeds:
            data = load(task, seed)
            sizes.append(len(data.y_test))
            for name in chosen:
                lr, kerr = chosen[name]
                model = networks(data, args, seed, kerr)[name]
                history = run_phyll(model, data, args, lr, seed)
                r = rows.setdefault(name, {"final": [], "selected": [], "epoch": [], "params": trainable(model),
                                           "queries": 0, "lr": chosen[name]})
                r["final"].append(history.final["test_accuracy"])
                r["selected"].append(history.selected["test_accuracy"])
                r["epoch"].append(history.selected["epoch"])
                r["queries"] = history.final["train_queries"]
            for name, (reg, acc, params) in ceilings(data, seed, args.smoke, tuned_ceilings).items():
                r = rows.setdefault(name, {"final": [], "selected": [], "epoch": [], "params": params,
                                           "queries": 0, "lr": reg})
                r["final"].append(acc)
                r["selected"].append(acc)
        n_test = min(sizes)
        size = f"{min(sizes)}-{max(sizes)}" if min(sizes) != max(sizes) else f"{n_test}"
        print(f"\n{task}: test accuracy %, seeds {report_seeds} (split, fibres, init and batch order vary); "
              f"test set {size} samples (1 sample = {100 / n_test:.1f} points)"
              + ("  [SMALL TEST SET]" if n_test < 200 else ""))
        print(f"{'network':<28}{'trainable':>10}{'final (mean +- sd)':>20}{'at val-chosen epoch':>22}"
              f"{'epochs chosen':>15}{'train queries':>15}")
        for name, r in rows.items():
            final, _, _ = fmt(r["final"])
            sel, _, _ = fmt(r["selected"])
            epochs = ",".join(str(e) for e in r["epoch"]) if r["epoch"] else "converged"
            print(f"{name:<28}{r['params']:>10}{final:>20}{sel:>22}{epochs:>15}{r['queries']:>15}")
        base = rows["fibre"]["selected"]
        for name, r in rows.items():
            if name == "fibre":
                continue
            diff = round(100 * (statistics.mean(base) - statistics.mean(r["selected"])), 6) + 0.0
            sd = 100 * max(statistics.stdev(base) if len(base) > 1 else 0.0,
                           statistics.stdev(r["selected"]) if len(r["selected"]) > 1 else 0.0)
            flag = []
            if abs(diff) <= sd:
                flag.append("within 1 sd")
            if abs(diff) <= 100 / n_test:
                flag.append("within 1 test sample")
            print(f"  fibre - {name:<26} {diff:+5.1f} points (val-chosen epoch){'  [' + ', '.join(flag) + ']' if flag else ''}")
        print(f"  ({task}: {time.perf_counter() - start:.0f} s wall)")


if __name__ == "__main__":
    main()
