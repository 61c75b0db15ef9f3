"""Energy table: inference and one training step of a memristive resistive network trained by centred
equilibrium propagation, against a digital estimate of the same network on a GPU.

Physical energy is read from the plant's meter: dissipated power x RC settling time for every
relaxation (node capacitance assumed, 10 fF), plus the device's energy per programming pulse for the
update (TaOx preset, 1 pJ per pulse, assumed). Digital energy is FLOPs x joules per FLOP (H100 SXM
BF16 peak at TDP, from the datasheet; Horowitz ISSCC 2014 45 nm FP32 arithmetic shown as a second
reference). Each network is first trained for a few steps on digits so the conductances and update
sizes are those of a network in training. Every assumption is printed with the table.

The claim under test: "over four orders of magnitude" energy advantage (Yi et al., Nature
Electronics 6, 45 (2023), modelled).

Run: python benchmarks/bench_energy.py
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
    parser.add_argument("--steps", type=int, default=10, help="training steps averaged in the table")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_digits(seed=0)
    x, y = data.x_train[:32], data.y_train[:32]
    method = EquilibriumPropagation(beta=0.01)
    for H in args.hidden:
        model = build_resistive_classifier(in_features=64, n_classes=10, hidden=(H,), device=TAOX_YI_2023)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        g = torch.Generator().manual_seed(0)
        for _ in range(args.warmup_steps):
            idx = torch.randint(0, len(data.y_train), (32,), generator=g)
            opt.zero_grad(set_to_none=True)
            method.step(model, data.x_train[idx], data.y_train[idx], torch.nn.functional.cross_entropy)
            opt.step()
        report = measure_energy(model, method, x, y, optimizer=opt, reference=H100_BF16_PEAK,
                                steps=args.steps)
        for reference in (H100_BF16_PEAK, HOROWITZ_FP32_45NM):
            print(f"\n=== 64 -> {H} -> 10 resistive network, centred EP, digital reference: {reference.name} ===")
            print(report.with_reference(reference).table())
        print("assumptions:\n" + "\n".join(f"  - {a}" for a in report.assumptions))
        print(f"  - digital (second table): {HOROWITZ_FP32_45NM.source}")


if __name__ == "__main__":
    main()
