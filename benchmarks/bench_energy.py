"""Energy table: inference and one training step of a memristive resistive network trained by centred
equilibrium propagation, everything the physical side needs included, against a digital estimate of
the same network (counted by equivalent weights) on a GPU.

Physical side (pnnlab.energy, pnnlab.plants.electronics.circuit_costs): static dissipation over the RC
settling time (node capacitance = per-device parasitic x attached devices + wire, RC from the
conductances in use, ln(V_range / tolerance) time constants) and over the ADC sampling time; node and
source-line charging C dV^2; ADC conversions of every node read (8 bit, Walden FOM from Murmann's ADC
survey); DAC conversions of every driven input / nudge; programming pulses; and the controller's
digital work (EP's per-edge products of measured node voltages, the contrast, chain rule, optimizer
and pulse controller, and the digital read-out layer). Each assumed constant has a low / nominal /
high value; the table gives the ratio for each, the dominant term, and where the ~10^4 claim of
Yi et al., Nature Electronics 6, 45 (2023) (modelled) holds.

Each network is first trained for a few steps on digits (seed 0's training split) so that the
conductances and update sizes are those of a network in training; accuracy is not the point here.

Run: python benchmarks/bench_energy.py [--smoke]
"""

from __future__ import annotations

import argparse

import torch

from pnnlab.data.tabular import load_digits
from pnnlab.energy import H100_BF16_PEAK, HOROWITZ_FP32_45NM, measure_energy
from pnnlab.methods.equilibrium_propagation import EquilibriumPropagation
from pnnlab.models.resistive_classifier import build_resistive_classifier
from pnnlab.plants.electronics import TAOX_YI_2023


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, nargs="*", default=[64, 700])
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5, help="training steps averaged in the table")
    parser.add_argument("--beta", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny settings (a 64-16-10 network, 2 steps)")
    args = parser.parse_args()
    if args.smoke:
        args.hidden, args.warmup_steps, args.steps = [16], 2, 1
    torch.set_num_threads(args.threads)
    data = load_digits(seed=0)
    x, y = data.x_train[:32], data.y_train[:32]
    method = EquilibriumPropagation(beta=args.beta)
    print(f"energy per inference and per training step, centred EP (beta={args.beta:g}), TaOx memristors, "
          f"batch 32, digits; {args.warmup_steps} warm-up steps, {args.steps} measured step(s)")
    for H in args.hidden:
        model = build_resistive_classifier(in_features=64, n_classes=10, hidden=(H,), device=TAOX_YI_2023)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        g = torch.Generator().manual_seed(0)
        for _ in range(args.warmup_steps):
            idx = torch.randint(0, len(data.y_train), (32,), generator=g)
            opt.zero_grad(set_to_none=True)
            method.step(model, data.x_train[idx], data.y_train[idx], torch.nn.functional.cross_entropy)
            opt.step()
        report = measure_energy(model, method, x, y, optimizer=opt, reference=H100_BF16_PEAK, steps=args.steps)
        plant = model[0].plant
        with torch.no_grad():
            state = plant.relax(x, {k: v.detach() for k, v in model[0].control_values().items()})
        print(f"\n=== 64 -> {H} -> 10 resistive network: {plant.n_conductances} conductances = "
              f"{plant.equivalent_weights} equivalent weights; free-state power per sample "
              f"{float(state.power_W.mean()):.3g} W (max {float(state.power_W.max()):.3g} W), KCL residual "
              f"{state.residual:.2g} A ===")
        for reference in (H100_BF16_PEAK, HOROWITZ_FP32_45NM):
            print(f"\n[digital reference: {reference.name}]")
            print(report.with_reference(reference).table())
        print("assumptions:\n" + "\n".join(f"  - {a}" for a in report.assumptions))
        print(f"  - digital (second table): {HOROWITZ_FP32_45NM.source}")


if __name__ == "__main__":
    main()
