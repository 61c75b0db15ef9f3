"""The depth toy of the physics-aware-training reference code (mcmahon-lab/Physics-Aware-Training,
example 3; Wright et al., Nature 601, 549 (2022), doi:10.1038/s41586-021-04223-6).

Reality is f_p(x) = 2 x^theta, the twin is f_m(x) = 2.01 x^theta (a 0.5 % error), one layer applied
n times with a shared exponent theta.

1. Forward error of the twin against the plant after n = 1, 5, 20 applications at theta = 1.1
   (reference: 0.5 %, 3 %, 30 %), with the analytic value (2.01/2)^((theta^n - 1)/(theta - 1)) - 1.
2. n = 10: targets produced by the plant at theta = 1.1; train theta from a wrong start (1.0) with
   physics-aware training (plant forward, twin backward) and with in-silico training (twin only),
   and print the recovered exponents and the plant's error after training.

Inputs are x = 2^-10 exp(u), u ~ U(-1/2, 1/2), around the fixed point 2^-10 of 2 x^1.1, so values
stay in a sane range through 20 applications (log(x / 2^-10) grows by 1.1 per application).

Run:  python benchmarks/bench_pat_depth.py [--steps 300] [--lr 0.01] [--start 1.0]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import pnnlab
from pnnlab.plants.toy.power_law import PowerLawPlant

THETA_TRUE = 1.1
FIXED_POINT = 2.0 ** -10


class Repeated(nn.Module):
    """One physical layer applied ``depth`` times (shared controls)."""

    def __init__(self, layer: pnnlab.PhysicalLayer, depth: int) -> None:
        super().__init__()
        self.layer = layer
        self.depth = depth

    def forward(self, x):
        for _ in range(self.depth):
            x = self.layer(x)
        return x


def inputs(batch: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return FIXED_POINT * torch.exp(torch.rand(batch, 1, generator=gen, dtype=torch.float64) - 0.5)


def make_model(depth: int, theta: float) -> Repeated:
    plant = PowerLawPlant()
    layer = pnnlab.PhysicalLayer(plant, twin=plant.nominal_twin(),
                                 initial_controls={"exponent": torch.tensor([theta])})
    return Repeated(layer, depth).double()


def forward_errors(depths=(1, 5, 20)) -> list[tuple[int, float, float]]:
    x = inputs(256, seed=1)
    rows = []
    for depth in depths:
        model = make_model(depth, THETA_TRUE)
        with torch.no_grad():
            y_plant = model(x)
            with pnnlab.executing(pnnlab.OnTwin()):
                y_twin = model(x)
        measured = float(((y_twin - y_plant).abs() / y_plant).mean())
        analytic = (2.01 / 2.0) ** ((THETA_TRUE ** depth - 1) / (THETA_TRUE - 1)) - 1
        rows.append((depth, measured, analytic))
    return rows


def log_mse(prediction, target):
    return (torch.log(prediction) - torch.log(target)).square().mean()


def train_exponent(method, depth: int, start: float, steps: int, lr: float, batch: int = 64) -> dict:
    data_plant = make_model(depth, THETA_TRUE)  # a separate instance makes the targets
    model = make_model(depth, start)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    began = time.perf_counter()
    for step in range(steps):
        x = inputs(batch, seed=100 + step)
        with torch.no_grad():
            y = data_plant(x)
        optimizer.zero_grad(set_to_none=True)
        method.step(model, x, y, log_mse)
        optimizer.step()
    seconds = time.perf_counter() - began
    train_queries = model.layer.plant.meter.queries
    x_test = inputs(1024, seed=7)
    with torch.no_grad():
        y_test = data_plant(x_test)
        y_pred = model(x_test)  # on the plant
        rel_error = float(((y_pred - y_test).abs() / y_test).mean())
    theta = float(model.layer.control_values()["exponent"].detach())
    return {"theta": theta, "plant_error": rel_error, "queries": train_queries,
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--start", type=float, default=1.0)
    parser.add_argument("--depth", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)

    print("1) forward error of the twin (c = 2.01) against the plant (c = 2), theta = 1.1")
    print(f"{'n layers':>9} {'measured':>10} {'analytic':>10} {'reference code':>15}")
    for (depth, measured, analytic), ref in zip(forward_errors(), ("0.5 %", "3 %", "30 %")):
        print(f"{depth:>9} {100 * measured:>9.2f}% {100 * analytic:>9.2f}% {ref:>15}")

    print(f"\n2) train theta at depth n = {args.depth} from theta = {args.start} on plant targets "
          f"(theta = {THETA_TRUE}); Adam lr {args.lr}, {args.steps} steps of 64 samples, log-MSE loss")
    print(f"{'method':>12} {'theta':>10} {'|theta - 1.1|':>14} {'plant rel. error':>17} {'train queries':>14} "
          f"{'seconds':>8}")
    for name, method in (("PAT", pnnlab.PhysicsAwareTraining()), ("in-silico", pnnlab.InSilico())):
        r = train_exponent(method, args.depth, args.start, args.steps, args.lr)
        print(f"{name:>12} {r['theta']:>10.5f} {abs(r['theta'] - THETA_TRUE):>14.2e} "
              f"{100 * r['plant_error']:>16.3f}% {r['queries']:>14} {r['seconds']:>8.2f}")
    r = train_exponent(pnnlab.PhysicsAwareTraining(), args.depth, args.start, 0, args.lr)
    print(f"{'untrained':>12} {r['theta']:>10.5f} {abs(r['theta'] - THETA_TRUE):>14.2e} "
          f"{100 * r['plant_error']:>16.3f}% {r['queries']:>14} {r['seconds']:>8.2f}")


if __name__ == "__main__":
    main()
