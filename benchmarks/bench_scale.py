"""Scale: time and memory per training step against physical parameter count, for physically local
training (issue 12, section 6).

1. Centred equilibrium propagation (Laborieux et al. 2021) on a nonlinear resistive network
   784 -> H -> 10 (diode hidden nodes, differential outputs; ``build_resistive_classifier``), batch 32,
   from about 10^4 conductances up to ``--max-params`` (default 2 x 10^6): per step, three steady-state
   solves to the KCL tolerance on the plant, the local conductance updates and an Adam step.
2. Physics-aware training of one N-port MZI mesh (``build_photonic_mesh``, one layer, N^2 phases,
   digital read-out), batch 32, N = 16 ... ``--max-ports``.

Each size runs in a fresh subprocess (one torch thread), so its peak resident memory (``ru_maxrss``)
belongs to that size alone; the step time is the median of ``--repeats`` steps after one warm-up step.
A baseline measured in the same run: one backpropagation step of a digital MLP of the same topology
(``nn.Linear`` layers 784 -> H -> 10; about half the resistive network's parameter count, which has
two conductances per differential output and bias sources), so the figures read as ratios on any machine. The
fitted exponent b of time ~ n^b (least squares on log-log, the sizes >= 10^5) is printed; ``--plot``
draws the log-log figure.

Targets (issue 12): on two CPU cores >= 10^6 physical parameters trained by EP at seconds per step; on
one modern GPU >= 10^8 at <= 1 s per step (the largest published EP-trained resistive network has
5.2 x 10^7 conductances, Scellier et al. 2024, as quoted in issue 12). ``--device cuda`` runs every size
on the GPU (each still in its own process; peak memory is then the CUDA allocator's peak,
``torch.cuda.max_memory_allocated``); ``benchmarks/gpu_check.py`` runs the EP ladder on CUDA up to 10^8
conductances and beyond within a time budget, beside its CPU-vs-CUDA agreement checks.

Run: python benchmarks/bench_scale.py [--max-params 2e6] [--max-ports 256] [--repeats 3] [--device cpu|cuda]
     [--plot PATH] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

def build(kind: str, size: int, *, batch: int = 32):
    """(model, method, physical parameter count, x, y) for one size, on the CPU (seeded; the plants draw
    their state on the CPU and move with ``model.to``)."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(0)
    if kind == "ep":
        from pnnlab.methods.equilibrium_propagation import EquilibriumPropagation
        from pnnlab.models.resistive_classifier import build_resistive_classifier
        model = build_resistive_classifier(in_features=784, n_classes=10, hidden=(size,), seed=0)
        method, params = EquilibriumPropagation(beta=1e-3), model[0].plant.n_conductances
        x = torch.rand(batch, 784, generator=g)
    elif kind == "mesh":
        from pnnlab.methods.physics_aware import PhysicsAwareTraining
        from pnnlab.models.photonic_mesh import build_photonic_mesh
        model = build_photonic_mesh(in_features=size, n_classes=10, layers=1, activation=None, seed=0)
        method = PhysicsAwareTraining()
        params = sum(v.numel() for v in model[0].control_values().values())
        x = torch.rand(batch, size, generator=g)
    elif kind == "mlp":
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(784, size), nn.Tanh(), nn.Linear(size, 10))
        method, params = None, sum(p.numel() for p in model.parameters())
        x = torch.rand(batch, 784, generator=g)
    else:
        raise ValueError(f"kind must be 'ep', 'mesh' or 'mlp', got {kind!r}")
    return model, method, params, x, torch.randint(0, 10, (batch,), generator=g)


def run_one(kind: str, size: int, repeats: int, device: str = "cpu") -> dict:
    """Median seconds per training step (zero_grad, the method's step or backprop, Adam) of ``repeats``
    steps after one warm-up step, on ``device``; on CUDA the clock stops after a synchronize and
    ``peak_MiB`` is the CUDA allocator's peak (``torch.cuda.max_memory_allocated``, reset here), on the
    CPU the process's peak resident memory (``ru_maxrss``, meaningful in a fresh process only)."""
    import resource
    import statistics
    import time

    import torch
    from torch import nn

    device = torch.device(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    model, method, params, x, y = build(kind, size)
    model.to(device)
    x, y = x.to(device), y.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    build_s = time.perf_counter() - start

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    times = []
    for i in range(repeats + 1):
        sync()
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if method is None:
            nn.functional.cross_entropy(model(x), y).backward()
        else:
            method.step(model, x, y, nn.functional.cross_entropy)
        opt.step()
        sync()
        if i:
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated(device) if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2 ** 20
    return {"params": params, "seconds": statistics.median(times), "peak_MiB": peak, "build_s": build_s,
            "device": str(device), "memory": "cuda max_memory_allocated" if cuda else "ru_maxrss"}


CHILD = r"""
import json, sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[5])
from bench_scale import run_one
print(json.dumps(run_one(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])))
"""


def measure(kind: str, size: int, repeats: int, device: str = "cpu") -> dict:
    """:func:`run_one` in a fresh subprocess (one torch thread), so its peak memory is its own."""
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run([sys.executable, "-c", CHILD, kind, str(size), str(repeats), device, here],
                          capture_output=True, text=True, timeout=1800,
                          env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **os.environ})
    if done.returncode != 0:
        raise RuntimeError(f"{kind} size {size} failed: {done.stderr[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def exponent(rows: list[dict], floor: float = 1e5) -> float | None:
    import numpy as np

    big = [r for r in rows if r["params"] >= floor]
    if len(big) < 2:
        big = rows
    if len(big) < 2:
        return None
    slope, _ = np.polyfit(np.log([r["params"] for r in big]), np.log([r["seconds"] for r in big]), 1)
    return float(slope)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-params", type=float, default=2e6)
    parser.add_argument("--max-ports", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--device", default="cpu", help="torch device of every run: cpu (default) or cuda")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.device != "cpu":
        import torch

        if args.device.startswith("cuda") and not torch.cuda.is_available():
            parser.error(f"--device {args.device}: torch.cuda.is_available() is False on this machine; use --device cpu")
    if args.smoke:
        args.max_params, args.max_ports, args.repeats = 3e4, 16, 1
    hidden = [h for h in (8, 32, 128, 512, 1280, 2560, 5120, 12800, 25600, 64000)
              if 2 * (784 * h + 10 * h) <= args.max_params * 1.01] or [8]
    ports = [n for n in (16, 32, 64, 128, 256, 512) if n <= args.max_ports] or [16]
    from _report import record

    results = {"EP (centred), resistive network 784-H-10": [], "PAT, one N-port MZI mesh": [],
               "digital MLP 784-H-10 (same topology), backprop": []}
    memory = "CUDA allocator peak" if args.device != "cpu" else "peak resident memory"
    print(f"batch 32, one torch thread, device {args.device}, median of {args.repeats} steps after a warm-up; each "
          f"size in its own process; peak MiB = {memory}")
    print(f"{'what':<44}{'size':>8}{'physical params':>17}{'s / step':>11}{'peak MiB':>10}{'vs MLP':>9}")
    for h in hidden:
        ep, mlp = measure("ep", h, args.repeats, args.device), measure("mlp", h, args.repeats, args.device)
        results["EP (centred), resistive network 784-H-10"].append(ep)
        results["digital MLP 784-H-10 (same topology), backprop"].append(mlp)
        print(f"{'EP centred (resistive, H hidden)':<44}{h:>8}{ep['params']:>17,}{ep['seconds']:>11.4f}"
              f"{ep['peak_MiB']:>10.0f}{ep['seconds'] / mlp['seconds']:>9.1f}", flush=True)
        print(f"{'  digital MLP, same topology (baseline)':<44}{h:>8}{mlp['params']:>17,}{mlp['seconds']:>11.4f}"
              f"{mlp['peak_MiB']:>10.0f}{'1.0':>9}", flush=True)
    for n in ports:
        mesh = measure("mesh", n, args.repeats, args.device)
        results["PAT, one N-port MZI mesh"].append(mesh)
        print(f"{'PAT, one MZI mesh (N ports)':<44}{n:>8}{mesh['params']:>17,}{mesh['seconds']:>11.4f}"
              f"{mesh['peak_MiB']:>10.0f}{'':>9}", flush=True)
    print("\nfitted exponent b of seconds/step ~ params^b (least squares on log-log, sizes >= 1e5 where available):")
    for name, rows in results.items():
        b = exponent(rows)
        biggest = max(rows, key=lambda r: r["params"])
        print(f"  {name:<46} b = {b:.2f}" if b is not None else f"  {name:<46} b = n/a",
              f"; largest {biggest['params']:,} params at {biggest['seconds']:.3f} s/step, {biggest['peak_MiB']:.0f} MiB")
        record(name, [biggest["seconds"]], unit="s/step", scale=1.0, params=biggest["params"], exponent=b)
    ep_big = max(results["EP (centred), resistive network 784-H-10"], key=lambda r: r["params"])
    if args.device == "cpu":
        verdict = "met" if ep_big["params"] >= 1e6 and ep_big["seconds"] <= 10 else "not met"
        print(f"\nCPU target (>= 1e6 physical parameters by EP at seconds per step): {verdict} "
              f"({ep_big['params']:,} at {ep_big['seconds']:.2f} s). GPU target (>= 1e8 at <= 1 s): run with "
              f"--device cuda or benchmarks/gpu_check.py on a machine with a GPU.")
    else:
        verdict = "met" if ep_big["params"] >= 1e8 and ep_big["seconds"] <= 1 else "not met"
        print(f"\nGPU target (>= 1e8 physical parameters by EP at <= 1 s per step): {verdict} "
              f"({ep_big['params']:,} at {ep_big['seconds']:.3f} s on {args.device}).")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4.2))
        for name, rows in results.items():
            b = exponent(rows)
            ax.loglog([r["params"] for r in rows], [r["seconds"] for r in rows], "o-",
                      label=f"{name} (b = {b:.2f})" if b is not None else name)
        ax.set_xlabel("physical parameters (conductances / phases; MLP: weights)")
        ax.set_ylabel(f"seconds per training step (batch 32, {args.device}, 1 CPU thread)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"figure: {args.plot}")


if __name__ == "__main__":
    main()
