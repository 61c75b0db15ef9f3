"""Speed of in-situ device updates: one training step of a 256 x 256 memristor crossbar layer,
batch 256, with pulsed, asymmetric, noisy device updates.

One step = forward pass on the crossbar plant (device reads with read noise), backward pass through
the crossbar's twin (physics-aware training), Adam step on the requested conductances (about one pulse per device per step), and the
programming round that turns every requested change into pulses with the vectorised n-pulse
statistics of the soft-bounds device model (TaOx preset: asymmetric SET/RESET, multiplicative
cycle-to-cycle noise, device-to-device variation of steps and bounds, RRAM relaxation on the device
clock, stuck devices), read through the aihwkit-default DAC/ADC periphery. Compared with a plain
backpropagation step of an ``nn.Linear(256, 256)`` of the same shape in the same run. Target: <= 40 ms.

Pulse-by-pulse reference: issue 3 quoted "about 750 ms" for the most-used analog-hardware simulator
(aihwkit) on this machine. That figure is not reproduced: aihwkit 1.1.0 (C++ simulator, CPU, one
thread) takes 5-10 ms for this step here (benchmarks/aihwkit_reference_step.py, which needs aihwkit
installed; the figures printed below are from its run in this project on 2026-12-01). If aihwkit is
importable in the running interpreter, this script also times it live.

Run: python benchmarks/bench_crossbar_update.py [--threads 1] [--repeats 30] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from pnnlab import PhysicalLayer, PhysicsAware, executing
from pnnlab.plants.electronics import TAOX_YI_2023, MemristorCrossbarPlant


#: measured with benchmarks/aihwkit_reference_step.py in this project (2026-12-01, 2-core AMD EPYC,
#: one torch thread): aihwkit 1.1.0, torch 2.10.0, AnalogLinear(256, 256) + AnalogSGD, SoftBoundsDevice
REFERENCE = (
    "pulse-by-pulse reference (aihwkit 1.1.0 C++ simulator, SoftBoundsDevice, 256x256, batch 256, 1 thread, "
    "this machine; measured 2026-12-01 with benchmarks/aihwkit_reference_step.py):",
    "  5.1-5.7 ms at 0.3-0.8 minimal steps per device per step, 7.1-8.8 ms at 1.4-1.9 (two runs: 5.1-10.3 ms)",
    "  issue 3's '~750 ms' for this step is NOT reproduced on this machine; it is not used for any ratio here",
)


def _aihwkit_live(n, batch, repeats):
    try:
        from aihwkit.nn import AnalogLinear
        from aihwkit.optim import AnalogSGD
        from aihwkit.simulator.configs import SingleRPUConfig
        from aihwkit.simulator.configs.devices import SoftBoundsDevice
    except Exception:  # noqa: BLE001 - aihwkit is optional
        return None
    g = torch.Generator().manual_seed(1)
    x, target = torch.randn(batch, n, generator=g), torch.randn(batch, n, generator=g)
    layer = AnalogLinear(n, n, bias=False, rpu_config=SingleRPUConfig(device=SoftBoundsDevice()))
    opt = AnalogSGD(layer.parameters(), lr=0.5)
    opt.regroup_param_groups(layer)

    def step():
        opt.zero_grad()
        nn.functional.mse_loss(layer(x), target).backward()
        opt.step()

    med, best = timed(step, repeats)
    return f"aihwkit live in this run (lr 0.5): median {med:.2f} ms, best {best:.2f} ms"


def timed(fn, repeats):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--smoke", action="store_true", help="tiny settings (32 x 32, batch 32, 3 repeats)")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.batch, args.repeats = 32, 32, 3
    torch.set_num_threads(args.threads)
    n, B = args.size, args.batch
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, n, generator=g)
    target = torch.randn(B, n, generator=g)

    plant = MemristorCrossbarPlant(in_features=n, out_features=n, device=TAOX_YI_2023)
    layer = PhysicalLayer(plant, twin=plant.nominal_twin())
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)  # ~1 pulse per device per step
    pulses = []

    def crossbar_step():
        opt.zero_grad(set_to_none=True)
        with executing(PhysicsAware()):
            loss = nn.functional.mse_loss(layer(x), target)
        loss.backward()
        opt.step()
        pulses.append(plant.program(layer.control_values())["pulses"])  # the pulsed in-situ update

    def update_only():
        # the programming round alone: fresh requested changes of +-1..3 pulses on every device
        with torch.no_grad():
            for p in layer.control_parameters().values():
                p.add_(0.02 * torch.randn(p.shape, generator=g))
        plant.program(layer.control_values())

    linear = nn.Linear(n, n)
    lin_opt = torch.optim.Adam(linear.parameters(), lr=1e-3)

    def backprop_step():
        lin_opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(linear(x), target).backward()
        lin_opt.step()

    med, best = timed(crossbar_step, args.repeats)
    upd_med, upd_best = timed(update_only, args.repeats)
    bp_med, bp_best = timed(backprop_step, args.repeats)
    devices = 2 * n * n
    print(f"crossbar {n}x{n} (differential pairs: {devices} devices), batch {B}, "
          f"device {TAOX_YI_2023.name}, periphery: {plant.periphery.source}, torch threads {args.threads}")
    print(f"{'step':<52}{'median ms':>10}{'best ms':>10}")
    print(f"{'in-situ training step (forward, backward, pulses)':<52}{med:>10.2f}{best:>10.2f}")
    print(f"{'  pulsed device update alone':<52}{upd_med:>10.2f}{upd_best:>10.2f}")
    print(f"{'plain backprop step, nn.Linear same shape':<52}{bp_med:>10.2f}{bp_best:>10.2f}")
    print(f"ratio in-situ / plain backprop (median): {med / bp_med:.2f}")
    print(f"mean pulses per training step: {statistics.mean(pulses[3:]):.0f} "
          f"({statistics.mean(pulses[3:]) / devices:.3f} per device)")
    print(f"target <= 40 ms: {'met' if med <= 40 else 'NOT met'}")
    for line in REFERENCE:
        print(line)
    live = _aihwkit_live(n, B, args.repeats)
    print(live if live else "aihwkit not importable here: no live comparison in this run")


if __name__ == "__main__":
    main()
