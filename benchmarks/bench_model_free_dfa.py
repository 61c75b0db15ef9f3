"""Direct feedback alignment on digits against backpropagation (Nokland, NeurIPS 2016,
arXiv:1609.01596: DFA is "almost as good as BP" for fully connected networks; 1.45 % test error on
permutation-invariant MNIST, Nokland 2016 Table 1), plus feedback alignment (Lillicrap 2016) and
augmented DFA (Nakajima 2022).

1. Digital MLP 64-256-256-10 (tanh), the same initialisation for every method: backpropagation,
   FA, DFA, augmented DFA (g = cos and g = 1 - tanh^2). No physics: every method trains every weight.
2. Fibre network ``build_fibre_mlp``: Linear(64, 32) -> fibre (96 trainable SLM control phases,
   64 camera pixels, all non-idealities) -> standardisation -> Linear(64, 10):
   * ``ideal (upper bound)``: backpropagation through the fibre's true physics (noise off), evaluated on it;
   * ``pat``: physics-aware training through the crude twin (model-based);
   * ``dfa``: the error projected to the encoder crosses the fibre through the *twin's Jacobian*
     (model-based: it needs the same twin as PAT);
   * ``aug_dfa``: random projection times g(a) = cos a at the encoder, no twin (model-free); the
     fibre's control phases are not trained (no derivative through the physics is available).
   The ``trained`` column counts the parameters each method changed (measured after training).

Budget: the same epochs (``--epochs``) and batch size (32) for every method; Adam learning rate
1e-3 (digital MLP) and 1e-2 (fibre), fixed in advance, not tuned in this run; the epoch is chosen
on validation (``History.selected``). Seeds 1..k vary the data split, the fibre, the initialisation
(same for every method within a seed) and the batch order; mean +- sd; test set 450 samples.

Run:  python benchmarks/bench_model_free_dfa.py [--epochs 20] [--seeds 3] [--smoke]
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


def digital_mlp(seed: int, width: int = 256) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 10))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                bound = 1.0 / m.in_features ** 0.5
                m.weight.uniform_(-bound, bound, generator=gen)
                m.bias.zero_()
    return model


def tanh_prime(a: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(a) ** 2


def run(rows, label, build, methods, epochs, seeds, lr):
    for name, kind, factory in methods:
        final, selected, start, trained, total = [], [], time.perf_counter(), 0, 0
        for seed in seeds:
            data = load_digits(seed=seed)
            model = build(seed)
            before = [p.detach().clone() for p in model.parameters()]
            history = train(model, factory(seed), data, epochs=epochs, batch_size=32, lr=lr, seed=seed,
                            evaluate_every=max(1, epochs // 5))
            final.append(history.final["test_accuracy"])
            selected.append(history.selected["test_accuracy"])
            trained = sum(p.numel() for b, p in zip(before, model.parameters()) if not torch.equal(b, p.detach()))
            total = sum(p.numel() for p in model.parameters() if p.requires_grad)
            n_test = len(data.y_test)
        rows.append({"model": label, "method": name, "kind": kind, "final": final, "selected": selected,
                     "trained": trained, "of": total, "wall": time.perf_counter() - start, "n_test": n_test})


def _ms(v):
    return 100 * statistics.mean(v), 100 * (statistics.stdev(v) if len(v) > 1 else 0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..k")
    parser.add_argument("--smoke", action="store_true", help="tiny settings for a test run (seconds)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    epochs, seeds, width = (1, [1], 32) if args.smoke else (args.epochs, list(range(1, args.seeds + 1)), 256)
    rows = []
    run(rows, "digital MLP", lambda s: digital_mlp(s, width), [
        ("backprop", "backprop (reference)", lambda s: IdealBackprop()),
        ("fa", "random feedback", lambda s: FeedbackAlignment(seed=s)),
        ("dfa", "random feedback", lambda s: DirectFeedbackAlignment(seed=s)),
        ("aug_dfa g=cos", "random feedback", lambda s: AugmentedDFA(seed=s)),
        ("aug_dfa g=1-tanh^2", "random feedback", lambda s: AugmentedDFA(derivative=tanh_prime, seed=s)),
    ], epochs, seeds, 1e-3)
    fibre = lambda s: build_fibre_mlp(in_features=64, n_classes=10, encoder_width=32, camera_pixels=64, seed=s)
    run(rows, "fibre MLP", fibre, [
        ("ideal (upper bound)", "upper bound (true physics)", lambda s: IdealBackprop()),
        ("pat (crude twin)", "model-based (twin backward)", lambda s: PhysicsAwareTraining()),
        ("dfa", "model-based (twin Jacobian)", lambda s: DirectFeedbackAlignment(seed=s)),
        ("aug_dfa g=cos", "model-free", lambda s: AugmentedDFA(seed=s)),
    ], epochs, seeds, 1e-2)
    n_test = rows[0]["n_test"]
    print(f"digits, {epochs} epochs and batch 32 for every method; seeds {seeds} (split, init, fibre, batch "
          f"order); test set {n_test} samples (1 sample = {100 / n_test:.2f} points); accuracy on the plant "
          f"(the ideal bound on the true physics, noise off)")
    print(f"{'model':<13}{'method':<22}{'kind':<30}{'trained':>8}{'of':>8}{'final %':>14}{'val-chosen %':>15}"
          f"{'vs ref':>8}{'wall s':>8}")
    refs = {"digital MLP": "backprop", "fibre MLP": "pat (crude twin)"}
    for r in rows:
        ref = next(q for q in rows if q["model"] == r["model"] and q["method"] == refs[r["model"]])
        fm, fs = _ms(r["final"])
        sm, ss = _ms(r["selected"])
        rm, rs = _ms(ref["selected"])
        flag = ""
        if r is not ref:
            flags = [f for f, ok in (("<=1 sd", abs(sm - rm) <= max(ss, rs)), ("<=1 sample", abs(sm - rm) <= 100 / n_test)) if ok]
            flag = f"  [{', '.join(flags)}]" if flags else ""
        print(f"{r['model']:<13}{r['method']:<22}{r['kind']:<30}{r['trained']:>8}{r['of']:>8}{fm:>7.1f} +-{fs:>4.1f}"
              f"{sm:>8.1f} +-{ss:>4.1f}{sm - rm:>+8.1f}{r['wall']:>8.0f}{flag}")
    print("vs ref: val-chosen accuracy minus the reference's (backprop for the digital MLP, PAT for the fibre)")


if __name__ == "__main__":
    main()
