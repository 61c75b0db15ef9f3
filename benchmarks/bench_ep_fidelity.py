"""Gradient fidelity over training: how close equilibrium propagation (centred / positive nudging),
coupled learning and backpropagation through the nominal twin come to the TRUE gradient (backprop
through ``true_twin()``, the plant's hidden physics with noise off: pnnlab.diagnostics default),
measured with :class:`pnnlab.diagnostics.gradient_fidelity.FidelityTracker` while a resistive
network (64 -> 64 -> 10, 0.2 V read range) learns digits with centred EP.

Two plants: an ideal network (no mismatch: the nominal twin is the truth), and a mismatched one
(10 % conductance variation, 10 mV diode threshold spread, 10 % diode conductance spread; read noise
off so that the figures show bias, not noise). Every ``--every`` steps each estimator is evaluated on
the same batch without changing the parameters. Cosines are over the conductances only (the
read-out gradient is exact for every method and would flatter the physical estimate). On the
mismatched network EP's relative error includes the hidden static conductance gain: EP measures
dL/dG at the actual conductances, while the true gradient with respect to the *requested*
conductance carries that gain (unknowable in situ), so compare cosines there.

Run: python benchmarks/bench_ep_fidelity.py [--steps 60] [--every 20] [--smoke]
"""

from __future__ import annotations

import argparse

import torch

from pnnlab import InSilico
from pnnlab.data.tabular import load_digits
from pnnlab.diagnostics.gradient_fidelity import compare_gradients, estimate_gradients, true_gradients
from pnnlab.methods.coupled_learning import CoupledLearning
from pnnlab.methods.equilibrium_propagation import EquilibriumPropagation, PositiveNudging
from pnnlab.models.resistive_classifier import build_resistive_classifier
from pnnlab.plants.electronics import ResistiveMismatch

MISMATCH = ResistiveMismatch(conductance_variation=0.1, diode_threshold_spread_V=0.01, diode_conductance_spread=0.1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--beta", type=float, default=1e-4)
    parser.add_argument("--eta", type=float, default=2e-5)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="16 hidden nodes, 2 measurements")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.every, args.hidden = 2, 2, 16
    torch.set_num_threads(args.threads)
    data = load_digits(seed=0)
    b = args.beta
    estimators = {f"EP centred b={b:g}": EquilibriumPropagation(beta=b),
                  f"EP positive b={b:g}": EquilibriumPropagation(beta=b, nudging=PositiveNudging()),
                  f"EP positive b={b / 10:g}": EquilibriumPropagation(beta=b / 10, nudging=PositiveNudging()),
                  f"coupled learning eta={args.eta:g}": CoupledLearning(eta=args.eta),
                  "BP via nominal twin": InSilico()}
    print("cosine similarity (relative error) of each estimate to the true gradient (backprop through "
          "true_twin()), over the conductances; coupled learning's relative error includes its scale "
          "(the output stiffness, in siemens), so read its cosine")
    for label, mismatch in (("ideal network", None), ("mismatched network", MISMATCH)):
        model = build_resistive_classifier(in_features=64, n_classes=10, hidden=(args.hidden,), seed=0,
                                           mismatch=mismatch)
        model[0].set_twin(model[0].plant.nominal_twin(backward_sweeps=80))
        trainer = EquilibriumPropagation(beta=b)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        g = torch.Generator().manual_seed(0)
        print(f"\n=== {label} ===")
        print(f"{'step':>6}" + "".join(f"{name:>30}" for name in estimators))
        for step in range(args.steps + 1):
            idx = torch.randint(0, len(data.y_train), (32,), generator=g)
            x, y = data.x_train[idx], data.y_train[idx]
            if step % args.every == 0:
                ref = {k: v for k, v in true_gradients(model, x, y).items() if "conductance" in k}
                cells = []
                for method in estimators.values():
                    est = {k: v for k, v in estimate_gradients(method, model, x, y).items() if "conductance" in k}
                    p = compare_gradients(est, ref)["overall"]
                    cells.append(f"{p['cosine']:.5f} ({p['relative_error']:.2e})")
                print(f"{step:>6}" + "".join(f"{c:>30}" for c in cells), flush=True)
            opt.zero_grad(set_to_none=True)
            trainer.step(model, x, y, torch.nn.functional.cross_entropy)
            opt.step()


if __name__ == "__main__":
    main()
