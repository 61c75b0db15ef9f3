"""Reference timing for benchmarks/bench_crossbar_update.py: one in-situ training step of a 256 x 256
analog layer, batch 256, in the IBM analog hardware kit (aihwkit), which simulates the pulsed update
coincidence by coincidence in C++ (``AnalogLinear`` + ``AnalogSGD``, ``SoftBoundsDevice``, default
``SingleRPUConfig``: forward and backward through its default IO periphery, stochastic pulse trains).

aihwkit is not a dependency of pnnlab; run this in an environment that has it, e.g.

    python -m venv /tmp/aihw && /tmp/aihw/bin/pip install aihwkit "torch==2.10.*"
    /tmp/aihw/bin/python benchmarks/aihwkit_reference_step.py

(aihwkit 1.1.0's wheel imports with torch 2.10, not with 2.9 or 2.14.) The learning rates are chosen so
that devices move by about 0.3-2 minimal steps per training step, bracketing the ~1 pulse per device
per step of bench_crossbar_update.py. Prints the median time per step for each.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--smoke", action="store_true", help="tiny settings (32 x 32, 3 repeats)")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.batch, args.repeats = 32, 32, 3
    try:
        import aihwkit
        import torch
        from aihwkit.nn import AnalogLinear
        from aihwkit.optim import AnalogSGD
        from aihwkit.simulator.configs import SingleRPUConfig
        from aihwkit.simulator.configs.devices import SoftBoundsDevice
    except Exception as error:  # noqa: BLE001 - any import failure means: no aihwkit here
        print(f"aihwkit is not usable in this environment ({type(error).__name__}: {error}); "
              f"see this script's docstring for how to install it.")
        return
    torch.set_num_threads(args.threads)
    n, B = args.size, args.batch
    g = torch.Generator().manual_seed(0)
    x, target = torch.randn(B, n, generator=g), torch.randn(B, n, generator=g)
    print(f"aihwkit {aihwkit.__version__}, torch {torch.__version__}, {n}x{n}, batch {B}, "
          f"torch threads {args.threads}, SoftBoundsDevice, SingleRPUConfig defaults")
    print(f"{'learning rate':<16}{'median ms':>10}{'best ms':>10}{'|dw| / dw_min per step':>24}")
    for lr in (0.05, 0.2, 0.5, 1.0):
        config = SingleRPUConfig(device=SoftBoundsDevice())
        layer = AnalogLinear(n, n, bias=False, rpu_config=config)
        opt = AnalogSGD(layer.parameters(), lr=lr)
        opt.regroup_param_groups(layer)
        times, moved = [], []
        for i in range(args.repeats + 3):
            w0 = layer.get_weights()[0].clone()
            start = time.perf_counter()
            opt.zero_grad()
            torch.nn.functional.mse_loss(layer(x), target).backward()
            opt.step()
            elapsed = time.perf_counter() - start
            if i >= 3:
                times.append(elapsed)
                moved.append(float((layer.get_weights()[0] - w0).abs().mean()) / config.device.dw_min)
        print(f"{lr:<16g}{statistics.median(times) * 1e3:>10.2f}{min(times) * 1e3:>10.2f}"
              f"{statistics.mean(moved):>24.2f}")


if __name__ == "__main__":
    main()
