"""Time per physics-aware-training step, as a ratio to a plain backpropagation step through the twin.

Issue target: at most 1.3x (the plant's forward pass should be the only extra work).

Model: the digits oscillator classifier (pnnlab.models.oscillator_classifier: 64 oscillators, then
74, read out from 10 class oscillators) with the PAT reference mismatch recipe. A "step" is what
pnnlab.train does per batch: zero_grad, method.step (forward, loss, backward), optimizer.step.
PAT steps (PhysicsAwareTraining: plant forward + twin forward/backward) and backpropagation steps
through the twin (InSilico) alternate in blocks on the same model, batch and optimizer in the same
process, so machine-load changes hit both alike. We print the median time per step over all
blocks, the ratio of medians, and the median of the per-pair ratios (each PAT block divided by the
adjacent backpropagation block: robust to slow changes in the machine's load).

Nothing is trained for accuracy here, so no data split or tuning is involved (the digits training
split of seed 0 only supplies one fixed batch).

Run:  python benchmarks/bench_pat_step_time.py [--batch-size 32] [--blocks 200] [--steps-per-block 5] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import pnnlab
from pnnlab.data.tabular import load_digits
from pnnlab.models.oscillator_classifier import RECOMMENDED_TRAINING, build_oscillator_classifier
from pnnlab.plants.mechanics.oscillators import OscillatorMismatch


def time_steps(batch_size: int, blocks: int, steps_per_block: int, warmup: int = 50) -> dict:
    """Alternate blocks of PAT and twin-backpropagation steps; times per step of each."""
    data = load_digits(seed=0)
    model = build_oscillator_classifier(in_features=data.in_features, n_classes=data.n_classes,
                                        mismatch=OscillatorMismatch.wright2022(), seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(data.y_train), generator=gen)[:batch_size]
    x, y = data.x_train[idx], data.y_train[idx]
    loss_fn = torch.nn.functional.cross_entropy
    methods = {"pat": pnnlab.PhysicsAwareTraining(), "backprop_twin": pnnlab.InSilico()}

    def step(method):
        optimizer.zero_grad(set_to_none=True)
        method.step(model, x, y, loss_fn)
        optimizer.step()

    for _ in range(warmup):
        for method in methods.values():
            step(method)
    times = {name: [] for name in methods}
    queries_before = pnnlab.total_usage(pnnlab.plants_of(model))["queries"]
    for block in range(blocks):
        order = list(methods.items()) if block % 2 == 0 else list(methods.items())[::-1]
        for name, method in order:
            start = time.perf_counter()
            for _ in range(steps_per_block):
                step(method)
            times[name].append((time.perf_counter() - start) / steps_per_block)
    queries = pnnlab.total_usage(pnnlab.plants_of(model))["queries"] - queries_before
    return {"times": times, "queries_per_pat_step": queries / (blocks * steps_per_block)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=RECOMMENDED_TRAINING["batch_size"])
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--steps-per-block", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sweep", action="store_true", help="also time batch sizes 8, 32, 128, 512")
    parser.add_argument("--smoke", action="store_true", help="tiny settings (seconds), same table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warmup = 50
    if args.smoke:
        args.blocks, args.steps_per_block, args.sweep, warmup = 4, 2, False, 2
    sizes = [args.batch_size] + ([b for b in (8, 32, 128, 512) if b != args.batch_size] if args.sweep else [])
    print(f"digits oscillator classifier (64 -> 74 oscillators, RK4 5 steps), torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s); {args.blocks} alternating blocks x {args.steps_per_block} steps")
    print(f"{'batch':>6} {'PAT ms/step':>12} {'BP-twin ms/step':>16} {'ratio of medians':>17} "
          f"{'median pair ratio':>18} {'plant queries/PAT step':>23}")
    for batch in sizes:
        result = time_steps(batch, args.blocks, args.steps_per_block, warmup=warmup)
        pat, bp = result["times"]["pat"], result["times"]["backprop_twin"]
        med_pat, med_bp = statistics.median(pat), statistics.median(bp)
        pair = statistics.median(a / b for a, b in zip(pat, bp))
        print(f"{batch:>6} {med_pat * 1e3:>12.3f} {med_bp * 1e3:>16.3f} {med_pat / med_bp:>17.3f} "
              f"{pair:>18.3f} {result['queries_per_pat_step']:>23.1f}", flush=True)
    print("target: ratio <= 1.3 (Wright et al. 2022 PAT costs one extra plant forward pass per layer)")


if __name__ == "__main__":
    main()
