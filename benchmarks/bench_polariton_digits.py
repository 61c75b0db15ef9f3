"""Digits on a simulated exciton-polariton condensate chain: (a) the condensate as a reservoir with a
ridge read-out, against a linear classifier on the same inputs and a fixed random feature map of the same
width; (b) the pump's own part trained with PAT, in-silico and the ideal bound under a sample/set-up
mismatch.

Claims this compares with: Ballarini et al., Nano Lett. 20, 3506 (2020), doi:10.1021/acs.nanolett.0c00435
(a polariton condensate lattice with a trained linear read-out beats linear classifiers on MNIST; their
exact numbers are not reproduced here: a different task, scikit-learn's 8x8 digits) and Opala et al.,
Phys. Rev. Applied 11, 064029 (2019) (polariton-lattice reservoir computing, random input weights).

Plant (pnnlab.plants.polaritons, docs/substrates/polaritons.md): a 1D chain of condensates, 4 um
spacing, 4 um FWHM Gaussian pump spots, grid step 2 um (2 points per site; coarse, chosen for run time),
2 absorbing margin sites per side, GaAs-like parameters (PolaritonParameters.gaas(): ASSUMED round
values, m = 5e-5 m_e, gamma_c = 0.2/ps, gamma_R = 0.3/ps, R = 0.01 um/ps, g_c = 3.5 ueV um, g_R = 2 g_c);
40 ps of evolution in 80 Strang steps of 0.5 ps from a uniform seed. Inputs: the 64 pixel values / 16
(in [0, 1]) added to the pump through a fixed random mask (MaskEncoding, N(0,1)/8 entries, gain in
units of P_th). Hidden truth in every row: PolaritonMismatch.typical() (0.05 meV disorder, 0.7 um pump
blur, +8 % pump power, R +15 %, gamma_R -10 %, 5 % initial-field noise; ASSUMED) and LAB_CAMERA (1000
e- at the reference density, 5 e- read noise; ASSUMED).

(a) Reservoir: pump amplitudes fixed (uniform ``level`` P_th), the plant queried once on train + val +
test; read-out = closed-form ridge regression onto one-hot labels on standardised features, alpha chosen
on each seed's validation split from 1e-4..1e2. Baselines with the same read-out: ridge on the raw 64
pixels (the linear classifier on the same inputs), and a fixed random ReLU feature map relu(W x + b) of
the same width as the chain. Input gain 0.5 P_th and pump level 2.0 P_th were chosen on seed 0's
validation split (at 128 sites from 8 exploratory settings, gains 0.5-3 x levels 1-2.5; ``--tune`` runs
the grid gains {0.5, 1, 2} x levels {1, 1.5, 2}, which chose the same at 256 sites; test accuracy is
never read for it).

(b) Trained pump: ``build_polariton_classifier`` (chain of ``--train-sites`` sites, pump per site
trainable in [0, 3] P_th, digital linear read-out), Adam, the same epochs, batch size and learning rate
for in-silico (nominal-twin forward and backward, deployed on the plant), PAT (plant forward,
nominal-twin backward) and the ideal bound (true twin, noise off): 10 epochs, batch 64, learning rate
0.1, chosen from {0.03, 0.1, 0.3} with the ideal method on seed 0's validation split (``--tune`` reruns
it: 78.1 / 78.4 / 73.6 % val). The fixed random ReLU map of the same width with a ridge read-out is the
no-physics reference (closed form, not the same training budget).

Seeds 1, 2, 3 (each its own data split, mask, disorder draw and initialisation) are reported; seed 0 is
used only by ``--tune``. Full run: about 5-6 minutes on one core.

    python benchmarks/bench_polariton_digits.py [--seeds 1 2 3] [--sites 128] [--reservoir-only] [--tune] [--smoke]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

import pnnlab
from pnnlab.data.tabular import load_digits
from pnnlab.models.polariton_classifier import build_polariton_classifier, polariton_plant
from pnnlab.plants.polaritons import LAB_CAMERA, PolaritonMismatch

from _pat_common import compare, print_table, run_torch, sklearn_ceilings

ALPHAS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def load(seed: int, smoke: bool = False):
    data = load_digits(seed=seed, normalise=False)
    scaled = {f"x_{s}": getattr(data, f"x_{s}") / 16.0 for s in ("train", "val", "test")}
    data = dataclasses.replace(data, **scaled)
    if smoke:
        data = dataclasses.replace(data, x_train=data.x_train[:120], y_train=data.y_train[:120],
                                   x_val=data.x_val[:60], y_val=data.y_val[:60],
                                   x_test=data.x_test[:60], y_test=data.y_test[:60])
    return data


def ridge_readout(f_train, y_train, f_val, y_val, f_test, y_test, n_classes):
    """Closed-form ridge onto one-hot labels (features standardised on train, bias unpenalised); alpha on
    validation. Returns (test accuracy, val accuracy, alpha, parameter count)."""
    mu, sd = f_train.mean(0), f_train.std(0).clamp_min(1e-8)
    z = [(f - mu) / sd for f in (f_train, f_val, f_test)]
    z = [torch.cat([zz, torch.ones(len(zz), 1, dtype=zz.dtype)], dim=1).double() for zz in z]
    targets = torch.nn.functional.one_hot(y_train, n_classes).double()
    gram, rhs = z[0].T @ z[0], z[0].T @ targets
    eye = torch.eye(gram.shape[0], dtype=torch.float64)
    eye[-1, -1] = 0.0
    best = None
    for alpha in ALPHAS:
        w = torch.linalg.solve(gram + alpha * len(z[0]) * eye, rhs)
        val = float(((z[1] @ w).argmax(1) == y_val).double().mean())
        if best is None or val > best[0]:
            best = (val, alpha, w)
    val, alpha, w = best
    test = float(((z[2] @ w).argmax(1) == y_test).double().mean())
    return test, val, alpha, w.numel()


def reservoir_features(data, *, seed, sites, gain, level, smoke):
    plant = polariton_plant(in_features=data.in_features, sites=sites, gain=gain, seed=seed,
                            mismatch=PolaritonMismatch.typical(), camera=LAB_CAMERA,
                            duration_ps=20.0 if smoke else 40.0)
    controls = {"pump": torch.full((sites,), level)}
    gen = torch.Generator().manual_seed(1000 + seed)
    with torch.no_grad():
        return [plant(x, controls, generator=gen) for x in (data.x_train, data.x_val, data.x_test)], plant


def random_features(data, *, seed, width):
    g = torch.Generator().manual_seed(2000 + seed)
    w = torch.randn(data.in_features, width, generator=g) / data.in_features ** 0.5
    b = 0.5 * torch.randn(width, generator=g)
    return [torch.relu((x - 0.3) @ w + b) for x in (data.x_train, data.x_val, data.x_test)]


def row(test, val, params, wall, queries=0, on="plant"):
    return {"final": test, "selected": test, "val": val, "epoch": "-", "params": params, "queries": queries,
            "evaluated_on": on, "wall": wall}


def part_a(seeds, *, sites, gain, level, smoke):
    rows: dict[str, list[dict]] = {}
    n_test = []
    for seed in seeds:
        data = load(seed, smoke)
        n_test.append(len(data.y_test))
        args = (data.y_train, None, data.y_val, None, data.y_test, data.n_classes)
        start = time.perf_counter()
        (f_tr, f_va, f_te), plant = reservoir_features(data, seed=seed, sites=sites, gain=gain, level=level, smoke=smoke)
        t, v, alpha, p = ridge_readout(f_tr, data.y_train, f_va, data.y_val, f_te, data.y_test, data.n_classes)
        name = f"polariton reservoir ({sites} sites) + ridge"
        rows.setdefault(name, []).append(row(t, v, p, time.perf_counter() - start, queries=3, on="plant"))
        print(f"  seed {seed}: {name}: test {100 * t:.1f} % (val {100 * v:.1f} %, alpha {alpha:g})", flush=True)
        start = time.perf_counter()
        t, v, alpha, p = ridge_readout(data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test,
                                       data.n_classes)
        rows.setdefault("linear ridge classifier on the 64 pixels", []).append(
            row(t, v, p, time.perf_counter() - start, on="digital"))
        start = time.perf_counter()
        f = random_features(data, seed=seed, width=sites)
        t, v, alpha, p = ridge_readout(f[0], data.y_train, f[1], data.y_val, f[2], data.y_test, data.n_classes)
        rows.setdefault(f"fixed random ReLU features ({sites}) + ridge", []).append(
            row(t, v, p, time.perf_counter() - start, on="digital"))
        for name, r in sklearn_ceilings(data, seed, hidden=64, smoke=smoke).items():
            rows.setdefault(name, []).append(r)
    return rows, n_test


def tune_a(*, sites, smoke):
    data = load(0, smoke)
    print(f"--tune (a): seed 0 validation split only ({data.summary()})")
    best = None
    for gain in (0.5, 1.0, 2.0):
        for level in (1.0, 1.5, 2.0):
            (f_tr, f_va, _), _ = reservoir_features(data, seed=0, sites=sites, gain=gain, level=level, smoke=smoke)
            _, v, alpha, _ = ridge_readout(f_tr, data.y_train, f_va, data.y_val, f_va, data.y_val, data.n_classes)
            print(f"  gain {gain:g} P_th, level {level:g} P_th: val {100 * v:.1f} % (alpha {alpha:g})", flush=True)
            if best is None or v > best[0]:
                best = (v, gain, level)
    print(f"  chosen: gain {best[1]:g}, level {best[2]:g}")
    return best[1], best[2]


def tune_b(*, sites, epochs, batch, smoke, grid=(0.03, 0.1, 0.3)):
    """Learning rate for every (b) row, chosen with the ideal method on seed 0's validation split."""
    data = load(0, smoke)
    print(f"--tune (b): ideal method, seed 0 validation split only, {epochs} epochs")
    scores = {}
    for lr in grid:
        model = build_polariton_classifier(in_features=data.in_features, n_classes=data.n_classes, seed=0,
                                           sites=sites, duration_ps=20.0 if smoke else 40.0,
                                           mismatch=PolaritonMismatch.typical(), camera=LAB_CAMERA)
        scores[lr] = run_torch(model, pnnlab.IdealBackprop(), data, seed=0, epochs=epochs, lr=lr, batch_size=batch,
                               evaluate_every=1)["val"]
        print(f"  lr {lr:g}: val {100 * scores[lr]:.1f} % (at the val-selected epoch)", flush=True)
    chosen = max(grid, key=lambda lr: scores[lr])
    print(f"  chosen: lr {chosen:g}")
    return chosen


def part_b(seeds, *, sites, epochs, lr, batch, smoke):
    rows: dict[str, list[dict]] = {}
    n_test = []
    methods = {"in-silico (nominal twin, deployed)": pnnlab.InSilico(),
               "PAT (plant forward, nominal-twin backward)": pnnlab.PhysicsAwareTraining(),
               "ideal (upper bound; true twin, noise off)": pnnlab.IdealBackprop()}
    for seed in seeds:
        data = load(seed, smoke)
        n_test.append(len(data.y_test))
        for name, method in methods.items():
            model = build_polariton_classifier(in_features=data.in_features, n_classes=data.n_classes, seed=seed,
                                               sites=sites, duration_ps=20.0 if smoke else 40.0,
                                               mismatch=PolaritonMismatch.typical(), camera=LAB_CAMERA)
            r = run_torch(model, method, data, seed=seed, epochs=epochs, lr=lr, batch_size=batch, evaluate_every=1)
            rows.setdefault(name, []).append(r)
            print(f"  seed {seed}: {name}: test {100 * r['selected']:.1f} % at val-selected epoch {r['epoch']}, "
                  f"final {100 * r['final']:.1f} % ({r['wall']:.1f} s)", flush=True)
        start = time.perf_counter()
        f = random_features(data, seed=seed, width=sites)
        t, v, alpha, p = ridge_readout(f[0], data.y_train, f[1], data.y_val, f[2], data.y_test, data.n_classes)
        rows.setdefault(f"fixed random ReLU features ({sites}) + ridge", []).append(
            row(t, v, p, time.perf_counter() - start, on="digital"))
    return rows, n_test


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--sites", type=int, default=128, help="reservoir chain length (a)")
    parser.add_argument("--train-sites", type=int, default=32, help="chain length of the trained model (b)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--tune", action="store_true", help="rerun the (a) grid on seed 0's validation split")
    parser.add_argument("--reservoir-only", action="store_true", help="run part (a) only")
    parser.add_argument("--smoke", action="store_true", help="tiny settings (seconds), same tables")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gain, level = 0.5, 2.0  # chosen with --tune on seed 0's validation split
    sites, train_sites, epochs, seeds = args.sites, args.train_sites, args.epochs, args.seeds
    if args.smoke:
        sites, train_sites, epochs, seeds = 16, 8, 1, seeds[:2]
    print("constants: PolaritonParameters.gaas() (assumed GaAs-like values, see docs/substrates/polaritons.md); "
          "PolaritonMismatch.typical() and LAB_CAMERA (assumed); digits: scikit-learn 8x8, pixels / 16")
    lr = 0.1  # chosen with --tune (ideal method, seed 0's validation split)
    if args.tune:
        gain, level = tune_a(sites=sites, smoke=args.smoke)
        if not args.reservoir_only:
            lr = tune_b(sites=train_sites, epochs=epochs, batch=64, smoke=args.smoke)
    print(f"\n(a) reservoir: fixed pump {level:g} P_th per site, input mask gain {gain:g} P_th, {sites} sites, "
          f"seeds {seeds}")
    start = time.perf_counter()
    rows, n_test = part_a(seeds, sites=sites, gain=gain, level=level, smoke=args.smoke)
    print_table(rows, n_test)
    compare(rows, [(f"polariton reservoir ({sites} sites) + ridge", "linear ridge classifier on the 64 pixels"),
                   (f"polariton reservoir ({sites} sites) + ridge", f"fixed random ReLU features ({sites}) + ridge")],
            n_test)
    print(f"(a) took {time.perf_counter() - start:.0f} s")
    if args.reservoir_only:
        return
    print(f"\n(b) trained pump: {train_sites} sites, {epochs} epochs, batch 64, Adam lr {lr:g} (chosen on seed 0 val), "
          f"seeds {seeds}")
    start = time.perf_counter()
    rows, n_test = part_b(seeds, sites=train_sites, epochs=epochs, lr=lr, batch=64, smoke=args.smoke)
    print_table(rows, n_test)
    compare(rows, [("PAT (plant forward, nominal-twin backward)", "in-silico (nominal twin, deployed)"),
                   ("ideal (upper bound; true twin, noise off)", "PAT (plant forward, nominal-twin backward)")], n_test)
    print(f"(b) took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
