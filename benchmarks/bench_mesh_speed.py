"""Speed of the MZI mesh engine against a fixed-unitary complex matmul, measured in the same run.

Issue 8, section 3: batch 256, complex64, mesh forward+backward <= 1 ms at 64 ports and <= 10 ms at
256 ports (targets set by the issue for 2 CPU cores). The mesh is the rectangular (Clements) layout
with N(N-1)/2 MZIs and an output phase screen; forward+backward = y = mesh(x), loss = sum |y|^2,
gradients of every phase (theta, phi, psi). The baseline is y = x @ W^T with a fixed N x N unitary W
(forward), and the same with the gradient of W (forward+backward: what a digital complex layer of the
same size costs). Times are the MINIMUM over repetitions (the machine is shared; the median is printed
beside it), in milliseconds, with ``torch.set_num_threads`` threads (default 1: on a shared 2-core
machine two threads contend and the figures swing by 10x). Memory: the engine's reusable field
buffers (the fields entering every column, kept for the analytic backward, reused across calls):
(L + 1)(N + 2)K complex numbers with K = N (U built from the identity) or the batch.

Run: flock /tmp/pnnlab-bench.lock .venv/bin/python benchmarks/bench_mesh_speed.py [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from pnnlab.plants.photonics.decompose import random_unitary
from pnnlab.plants.photonics.mesh_engine import MeshEngine, Rectangular, mzi_transfer

TARGETS_MS = {64: 1.0, 256: 10.0}  # issue 8, section 3 (forward+backward, batch 256, complex64)


def _time(fn, reps: int) -> tuple[float, float]:
    fn()
    fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return 1e3 * min(samples), 1e3 * statistics.median(samples)


def measure(n: int, batch: int, reps: int, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    layout = Rectangular(n)
    engine = MeshEngine(layout, dtype=torch.complex64)
    theta = (6.28 * torch.rand(layout.n_mzis, generator=gen)).requires_grad_(True)
    phi = (6.28 * torch.rand(layout.n_mzis, generator=gen)).requires_grad_(True)
    psi = (6.28 * torch.rand(n, generator=gen)).requires_grad_(True)
    x = torch.complex(torch.randn(batch, n, generator=gen), torch.randn(batch, n, generator=gen))
    W_fixed = random_unitary(n, generator=gen, dtype=torch.complex64)
    W = W_fixed.clone().requires_grad_(True)

    # sanity: propagating the batch column by column (monitor path) equals the mesh's matrix applied
    with torch.no_grad():
        T = mzi_transfer(theta, phi)
        err = float((engine.apply(x, T, psi, monitor=True)[0] - x @ engine.matrix(T, psi).T).abs().max())

    def mesh_fwd():
        with torch.no_grad():
            engine.forward(x, theta, phi, psi)

    def mesh_fwd_bwd():
        theta.grad = phi.grad = psi.grad = None
        engine.forward(x, theta, phi, psi).abs().square().sum().backward()

    def mm_fwd():
        with torch.no_grad():
            x @ W_fixed.T

    def mm_fwd_bwd():
        W.grad = None
        (x @ W.T).abs().square().sum().backward()

    out = {"n": n, "mzis": layout.n_mzis, "params": 2 * layout.n_mzis + n, "check": err}
    out["mesh_fwd"] = _time(mesh_fwd, reps)
    out["mesh_fb"] = _time(mesh_fwd_bwd, reps)
    out["mm_fwd"] = _time(mm_fwd, reps)
    out["mm_fb"] = _time(mm_fwd_bwd, reps)
    out["buffers_mb"] = sum(buf.numel() * buf.element_size() for buf, _ in engine._cache.values()) / 2 ** 20
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny settings (a few seconds)")
    ap.add_argument("--ports", type=int, nargs="+", default=[16, 64, 128, 256])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ports, batch = (args.ports, args.batch) if not args.smoke else ([8, 16], 16)
    print(f"MZI mesh engine speed: batch {batch}, complex64, rectangular (Clements) layout, "
          f"{torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.2f} (shared machine)")
    print("targets: forward+backward <= 1 ms at 64 ports, <= 10 ms at 256 ports (source: issue 8, section 3)")
    header = (f"{'ports':>5} {'MZIs':>6} {'params':>7} | {'mesh fwd':>9} {'mesh f+b':>9} {'(median)':>9} | "
              f"{'matmul fwd':>10} {'matmul f+b':>10} | {'f+b ratio':>9} | {'target':>7} {'met':>4} | "
              f"{'buffers MB':>10} | {'|mesh - U x|':>12}")
    print(header)
    print("-" * len(header))
    for n in ports:
        reps = args.reps or (3 if args.smoke else (30 if n <= 64 else 8))
        r = measure(n, batch, reps)
        target = TARGETS_MS.get(n)
        met = "" if target is None else ("yes" if r["mesh_fb"][0] <= target else "no")
        print(f"{n:>5} {r['mzis']:>6} {r['params']:>7} | {r['mesh_fwd'][0]:>9.3f} {r['mesh_fb'][0]:>9.3f} "
              f"{r['mesh_fb'][1]:>9.3f} | {r['mm_fwd'][0]:>10.3f} {r['mm_fb'][0]:>10.3f} | "
              f"{r['mesh_fb'][0] / r['mm_fb'][0]:>9.1f} | {'' if target is None else f'{target:.1f}':>7} {met:>4} | "
              f"{r['buffers_mb']:>10.2f} | {r['check']:>12.2e}", flush=True)
    print("times in ms, minimum over repetitions (median of forward+backward beside it); 'params' = trainable "
          "phases (2 per MZI + N screen phases); the matmul baseline's f+b includes the gradient of its N x N matrix; "
          "'buffers MB' = the engine's field buffers (its memory beyond the inputs and phases).")
    print("What bounds the mesh: its N columns are applied one after another (each a batched 2x2 product, four "
          "PyTorch calls, plus one gradient product per column in the single adjoint sweep), so the time is "
          "about 2N sequential steps of small elementwise complex kernels: per-call overhead at 64 ports, "
          "elementwise complex throughput and memory traffic (the fields of every column are kept) at 256 ports; "
          "the matmul baseline is one BLAS call.")


if __name__ == "__main__":
    main()
