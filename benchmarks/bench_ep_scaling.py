"""Time per training step against network size, up to more than 10^5 conductances.

Resistive networks 64 -> H -> 10 (and one 64 -> 256 -> 256 -> 10) (digits-shaped inputs, diode hidden nodes, differential outputs),
batch 32, on this machine's CPU with 1 torch thread by default. For each size: one step of centred
equilibrium propagation (3 steady-state solves to the KCL tolerance on the plant + local measurements), one of
positive EP (2 solves), and one step of backpropagation through the twin (in-silico: a solve plus
40 differentiable block-coordinate sweeps), all in the same run.

Run: python benchmarks/bench_ep_scaling.py [--threads 1] [--repeats 5] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from pnnlab import InSilico
from pnnlab.methods.equilibrium_propagation import EquilibriumPropagation, PositiveNudging
from pnnlab.models.resistive_classifier import build_resistive_classifier


def step_time(model, method, x, y, repeats):
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        method.step(model, x, y, nn.functional.cross_entropy)
        opt.step()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", nargs="*", default=["8", "64", "256", "700", "1400", "256,256"],
                        help="hidden layer sizes, one network each; '256,256' is two hidden layers")
    parser.add_argument("--beta", type=float, default=1e-4)
    parser.add_argument("--smoke", action="store_true", help="two small networks, one repeat")
    args = parser.parse_args()
    if args.smoke:
        args.hidden, args.repeats = ["8", "8,8"], 1
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 64, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    print(f"resistive network 64 -> H -> 10, batch 32, torch threads {args.threads}")
    print(f"{'H':>9}{'conductances':>14}{'EP centred ms':>15}{'EP positive ms':>16}{'BP (twin) ms':>14}"
          f"{'sweeps/solve':>14}{'EP-c / BP':>11}")
    for spec in args.hidden:
        H = tuple(int(h) for h in spec.split(","))
        model = build_resistive_classifier(in_features=64, n_classes=10, hidden=H, seed=0)
        plant = model[0].plant
        ep = step_time(model, EquilibriumPropagation(beta=args.beta), x, y, args.repeats)
        state = plant.relax(x, {k: v.detach() for k, v in model[0].control_values().items()})
        ep_pos = step_time(model, EquilibriumPropagation(beta=args.beta, nudging=PositiveNudging()), x, y, args.repeats)
        bp = step_time(model, InSilico(), x, y, args.repeats)
        print(f"{spec:>9}{plant.n_conductances:>14}{ep:>15.1f}{ep_pos:>16.1f}{bp:>14.1f}"
              f"{state.private['sweeps']:>14}{ep / bp:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
