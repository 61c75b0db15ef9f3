"""Physical local learning with the multimode-fibre plant against a digital-only network with the
same trainable parameters (the claim of Oguz et al., Optics Letters 48, 5249 (2023),
doi:10.1364/OL.496884; Momeni et al., Science 382, 1297 (2023), doi:10.1126/science.adi8474).

Physical network (``build_fibre_goodness_net``): the input is shown on the SLM (phase = 0.5 rad per
standard deviation), propagates through the fibre with a Kerr-like nonlinear phase (``--kerr``,
2 rad by default: nonlinear propagation as in Oguz et al.), the camera image (``--camera`` pixels, noise, saturation and 10-bit
quantisation included) is standardised per sample, the label is embedded next to it and a digital
``Linear(camera + n_classes, hidden) -> ReLU`` block is trained with the local contrastive objective
(forward-forward is run as well). The fibre's controls are frozen: only digital weights learn.
Digital-only baseline: the *same* trainable layer, with the fibre replaced by a fixed repetition of
the input features (``digital_only=True``), trained the same way. Accuracies are means over seeds
(plant, initialisation and batch order change with the seed).

Run:  python benchmarks/bench_model_free_phyll.py [--tasks vowels digits] [--seeds 3] [--epochs 40] [--kerr 2.0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pnnlab.methods.forward_forward import ForwardForward
from pnnlab.methods.local_learning import PhysicalLocalLearning
from pnnlab.models.fibre_local import build_fibre_goodness_net
from pnnlab.train import train


def load(task):
    if task == "vowels":
        from pnnlab.data.vowels import load_vowels
        return load_vowels(seed=0)
    if task == "mnist1d":
        from pnnlab.data.mnist1d import load_mnist1d
        return load_mnist1d(seed=0)
    from pnnlab.data.tabular import load_digits
    return load_digits(seed=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["vowels", "digits"], choices=["vowels", "digits", "mnist1d"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--camera", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--kerr", type=float, default=2.0, help="mean Kerr-like nonlinear phase in the fibre (rad)")
    parser.add_argument("--scale", type=float, default=0.5, help="SLM phase per standard deviation of a feature (rad)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'task':<8}{'method':<17}{'network':<14}{'trainable':>10}{'test acc % (mean +- sd)':>26}"
          f"{'queries':>9}{'wall s':>8}")
    for task in args.tasks:
        data = load(task)
        epochs = args.epochs if task == "vowels" else max(1, args.epochs // 4)
        summary = {}
        for method_cls in (PhysicalLocalLearning, ForwardForward):
            for digital in (False, True):
                accs, start, queries, params = [], time.perf_counter(), 0, 0
                for seed in range(args.seeds):
                    model = build_fibre_goodness_net(in_features=data.in_features, n_classes=data.n_classes,
                                                     hidden=args.hidden, camera_pixels=args.camera,
                                                     phase_scale_rad=args.scale, kerr_phase_rad=args.kerr,
                                                     digital_only=digital, seed=seed)
                    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
                    history = train(model, method_cls(seed=seed), data, epochs=epochs, batch_size=16,
                                    lr=args.lr, seed=seed, evaluate_every=epochs)
                    accs.append(history.final["test_accuracy"])
                    queries = history.final["train_queries"]
                label = "digital-only" if digital else "fibre + digital"
                mean, sd = 100 * statistics.mean(accs), 100 * (statistics.stdev(accs) if len(accs) > 1 else 0.0)
                summary[(method_cls.name, digital)] = mean
                print(f"{task:<8}{method_cls.name:<17}{label:<14}{params:>10}{mean:>17.1f} +- {sd:<4.1f}"
                      f"{queries:>11}{time.perf_counter() - start:>8.1f}")
        for name in ("phyll", "forward_forward"):
            print(f"{task:<8}{name:<17}fibre - digital-only = {summary[(name, False)] - summary[(name, True)]:+.1f} points")


if __name__ == "__main__":
    main()
