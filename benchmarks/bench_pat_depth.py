"""The depth toy of the physics-aware-training reference code (mcmahon-lab/Physics-Aware-Training,
example 3; Wright et al., Nature 601, 549 (2022), doi:10.1038/s41586-021-04223-6).

Reality is f_p(x) = 2 x^theta, the twin is f_m(x) = 2.01 x^theta (a 0.5 % error), one layer applied
n times with a shared exponent theta.

1. Forward error of the twin against the plant after n = 1, 5, 20 applications at theta = 1.1
   (reference: 0.5 %, 3 %, 30 %), with the analytic value (2.01/2)^((theta^n - 1)/(theta - 1)) - 1.
2. n = 10: targets produced by the plant at theta = 1.1; train theta from a wrong start (1.0) with
   physics-aware training (plant forward, twin backward), with in-silico training (twin only) and with
   the ``ideal`` method (backpropagation through the plant's true physics, c = 2, noise off: the upper
   bound), and print the recovered exponents and the plant's error after training, mean +- std over
   seeds (each seed draws its own training and test inputs).

Inputs are x = 2^-10 exp(u), u ~ U(-1/2, 1/2), around the fixed point 2^-10 of 2 x^1.1, so values
stay in a sane range through 20 applications (log(x / 2^-10) grows by 1.1 per application).
Nothing is tuned: the learning rate (0.01), the 300 steps of 64 samples and the start (1.0) are fixed
a priori and shared by every method, so every seed reported is unused by any choice.

Run:  python benchmarks/bench_pat_depth.py [--steps 300] [--lr 0.01] [--start 1.0] [--seeds 0 1 2] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
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


def train_exponent(method, depth: int, start: float, steps: int, lr: float, batch: int = 64,
                   seed: int = 0) -> dict:
    data_plant = make_model(depth, THETA_TRUE)  # a separate instance makes the targets
    model = make_model(depth, start)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    began = time.perf_counter()
    for step in range(steps):
        x = inputs(batch, seed=100_000 * seed + 100 + step)
        with torch.no_grad():
            y = data_plant(x)
        optimizer.zero_grad(set_to_none=True)
        method.step(model, x, y, log_mse)
        optimizer.step()
    seconds = time.perf_counter() - began
    train_queries = model.layer.plant.meter.queries
    x_test = inputs(1024, seed=7 + 100_000 * seed + 99_999)
    with torch.no_grad():
        y_test = data_plant(x_test)
        y_pred = model(x_test)  # on the plant
        rel_error = float(((y_pred - y_test).abs() / y_test).mean())
    theta = float(model.layer.control_values()["exponent"].detach())
    return {"theta": theta, "plant_error": rel_error, "queries": train_queries,
            "seconds": seconds}


def _ms(values, scale=1.0, digits=5):
    m = statistics.fmean(values) * scale
    sd = (statistics.stdev(values) if len(values) > 1 else 0.0) * scale
    return f"{m:.{digits}f} +- {sd:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--start", type=float, default=1.0)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--smoke", action="store_true", help="tiny settings (seconds), same tables")
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps, seeds = (5, args.seeds[:1]) if args.smoke else (args.steps, args.seeds)

    print("1) forward error of the twin (c = 2.01) against the plant (c = 2), theta = 1.1")
    print(f"{'n layers':>9} {'measured':>10} {'analytic':>10} {'reference code':>15}")
    for (depth, measured, analytic), ref in zip(forward_errors(), ("0.5 %", "3 %", "30 %")):
        print(f"{depth:>9} {100 * measured:>9.2f}% {100 * analytic:>9.2f}% {ref:>15}")
    print("(reference: mcmahon-lab/Physics-Aware-Training, example 3 notebook, f(x) = 2 x^theta vs f_m = 2.01 x^theta)")

    print(f"\n2) train theta at depth n = {args.depth} from theta = {args.start} on plant targets "
          f"(theta = {THETA_TRUE}); Adam lr {args.lr}, {steps} steps of 64 samples, log-MSE loss; "
          f"mean +- std over seeds {seeds} (not tuned: fixed settings)")
    print(f"{'method':>32} {'params':>7} {'theta':>22} {'|theta - 1.1|':>14} {'plant rel. error %':>22} "
          f"{'train queries':>14} {'seconds':>8}")
    methods = (("PAT", pnnlab.PhysicsAwareTraining()), ("in-silico", pnnlab.InSilico()),
               ("ideal (UPPER BOUND: true physics)", pnnlab.IdealBackprop()),
               ("untrained", None))
    for name, method in methods:
        runs = [train_exponent(method or pnnlab.PhysicsAwareTraining(), args.depth, args.start,
                               0 if method is None else steps, args.lr, seed=seed) for seed in seeds]
        thetas = [r["theta"] for r in runs]
        print(f"{name:>32} {1:>7} {_ms(thetas):>22} {abs(statistics.fmean(thetas) - THETA_TRUE):>14.2e} "
              f"{_ms([r['plant_error'] for r in runs], 100, 3):>22} "
              f"{statistics.fmean(r['queries'] for r in runs):>14.0f} "
              f"{statistics.fmean(r['seconds'] for r in runs):>8.2f}")
    print("plant rel. error: mean |model(x) - target| / target on 1024 fresh test inputs per seed, on the plant.")


if __name__ == "__main__":
    main()
