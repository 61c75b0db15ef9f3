"""Direct feedback alignment on digits against backpropagation (Nokland, NeurIPS 2016,
arXiv:1609.01596: DFA is "almost as good as BP" for fully connected networks; 1.45 % test error on
permutation-invariant MNIST), plus feedback alignment (Lillicrap 2016) and augmented DFA
(Nakajima 2022).

1. Digital MLP 64-256-256-10 (tanh), the same initialisation for every method: backpropagation,
   FA, DFA, augmented DFA (g = cos and g = 1 - tanh^2).
2. Fibre network ``build_fibre_mlp``: Linear(64, 32) -> fibre (96 trainable SLM control phases,
   64 camera pixels, all non-idealities) -> standardisation -> Linear(64, 10): physics-aware
   training through the crude twin (the backpropagation reference available on hardware), the ideal
   upper bound (backpropagation through the noiseless, mismatch-free fibre, evaluated on it), DFA
   (error projected through the twin's Jacobian) and augmented DFA (no model of the fibre).

Run:  python benchmarks/bench_model_free_dfa.py [--epochs 30] [--seeds 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from pnnlab.data.tabular import load_digits
from pnnlab.methods.feedback_alignment import AugmentedDFA, DirectFeedbackAlignment, FeedbackAlignment
from pnnlab.methods.ideal import IdealBackprop
from pnnlab.methods.physics_aware import PhysicsAwareTraining
from pnnlab.models.fibre_local import build_fibre_mlp
from pnnlab.train import train


def digital_mlp(seed: int) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                bound = 1.0 / m.in_features ** 0.5
                m.weight.uniform_(-bound, bound, generator=gen)
                m.bias.zero_()
    return model


def tanh_prime(a: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(a) ** 2


def run(rows, label, build, methods, data, epochs, seeds, lr):
    for name, factory in methods:
        accs, start = [], time.perf_counter()
        for seed in range(seeds):
            history = train(build(seed), factory(seed), data, epochs=epochs, batch_size=32, lr=lr, seed=seed,
                            evaluate_every=epochs)
            accs.append(history.final["test_accuracy"])
        rows.append((label, name, 100 * statistics.mean(accs),
                     100 * (statistics.stdev(accs) if seeds > 1 else 0.0), time.perf_counter() - start))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_digits(seed=0)
    rows = []
    run(rows, "digital MLP", digital_mlp, [
        ("backprop", lambda s: IdealBackprop()),
        ("fa", lambda s: FeedbackAlignment(seed=s)),
        ("dfa", lambda s: DirectFeedbackAlignment(seed=s)),
        ("aug_dfa g=cos", lambda s: AugmentedDFA(seed=s)),
        ("aug_dfa g=1-tanh^2", lambda s: AugmentedDFA(derivative=tanh_prime, seed=s)),
    ], data, args.epochs, args.seeds, 1e-3)
    fibre = lambda s: build_fibre_mlp(in_features=64, n_classes=10, encoder_width=32, camera_pixels=64, seed=s)
    run(rows, "fibre MLP", fibre, [
        ("ideal (upper bound)", lambda s: IdealBackprop()),
        ("pat (crude twin)", lambda s: PhysicsAwareTraining()),
        ("dfa", lambda s: DirectFeedbackAlignment(seed=s)),
        ("aug_dfa g=cos", lambda s: AugmentedDFA(seed=s)),
    ], data, args.epochs, args.seeds, 1e-2)
    print(f"digits, {args.epochs} epochs, mean over {args.seeds} seeds; accuracy on the plant "
          f"(the ideal bound on its noiseless copy)")
    print(f"{'model':<13}{'method':<22}{'test acc %':>11}{'sd':>6}{'vs ref':>8}{'wall s':>8}")
    refs = {"digital MLP": "backprop", "fibre MLP": "pat (crude twin)"}
    for label, name, mean, sd, wall in rows:
        ref = next(m for l, n, m, _, _ in rows if l == label and n == refs[label])
        print(f"{label:<13}{name:<22}{mean:>11.1f}{sd:>6.1f}{mean - ref:>+8.1f}{wall:>8.1f}")


if __name__ == "__main__":
    main()
