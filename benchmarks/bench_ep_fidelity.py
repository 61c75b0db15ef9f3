"""Gradient fidelity over training: how close equilibrium propagation (positive / centred nudging)
and coupled learning come to the true gradient, measured with
:class:`pnnlab.diagnostics.gradient_fidelity.FidelityTracker` while a resistive network learns digits.

The network (64 -> 64 -> 10, ideal: no mismatch, no device) is trained with centred EP; every
``--every`` steps each estimator is evaluated on the same batch against backpropagation through the
network's exact twin (``in_silico`` on a mismatch-free plant), without changing the parameters.

Run: python benchmarks/bench_ep_fidelity.py [--steps 120] [--every 20]
"""

from __future__ import annotations

import argparse

import torch

from pnnlab import InSilico
from pnnlab.data.tabular import load_digits
from pnnlab.diagnostics.gradient_fidelity import FidelityTracker, compare_gradients
from pnnlab.methods.coupled_learning import CoupledLearning
from pnnlab.methods.equilibrium_propagation import EquilibriumPropagation, PositiveNudging
from pnnlab.models.resistive_classifier import build_resistive_classifier


def _grads(method, model, x, y):
    from pnnlab.diagnostics.gradient_fidelity import estimate_gradients
    return estimate_gradients(method, model, x, y)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--beta", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_digits(seed=0)
    model = build_resistive_classifier(in_features=64, n_classes=10, hidden=(64,), seed=0)
    model[0].set_twin(model[0].plant.nominal_twin(backward_sweeps=80))
    b = args.beta
    estimators = {f"EP centred b={b:g}": EquilibriumPropagation(beta=b),
                  f"EP positive b={b:g}": EquilibriumPropagation(beta=b, nudging=PositiveNudging()),
                  f"EP positive b={b / 10:g}": EquilibriumPropagation(beta=b / 10, nudging=PositiveNudging()),
                  "coupled learning eta=0.01": CoupledLearning(eta=0.01)}
    trackers = {name: FidelityTracker(method, InSilico()) for name, method in estimators.items()}
    trainer = EquilibriumPropagation(beta=b)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(0)
    print("cosine similarity (relative error) against the exact gradient: first over all parameters "
          "(FidelityTracker), then over the conductances only (the read-out gradient is exact for every "
          "method, so the overall figure flatters the physical estimate)")
    print(f"{'step':>6}" + "".join(f"{name:>28}" for name in estimators))
    for step in range(args.steps + 1):
        idx = torch.randint(0, len(data.y_train), (32,), generator=g)
        x, y = data.x_train[idx], data.y_train[idx]
        if step % args.every == 0:
            cells, physical = [], []
            for name, tracker in trackers.items():
                r = tracker.measure(model, x, y, step)
                cells.append(f"{r['cosine']:.5f} ({r['relative_error']:.2e})")
                est = {k: v for k, v in _grads(tracker.method, model, x, y).items() if "conductance" in k}
                ref = {k: v for k, v in _grads(tracker.reference, model, x, y).items() if "conductance" in k}
                p = compare_gradients(est, ref)["overall"]
                physical.append(f"{p['cosine']:.5f} ({p['relative_error']:.2e})")
            print(f"{step:>6}" + "".join(f"{c:>28}" for c in cells), flush=True)
            print(f"{'  G':>6}" + "".join(f"{c:>28}" for c in physical), flush=True)
        opt.zero_grad(set_to_none=True)
        trainer.step(model, x, y, torch.nn.functional.cross_entropy)
        opt.step()


if __name__ == "__main__":
    main()
