"""GPU check (issue 12, section 6): every registered plant and method gives the same numbers on CUDA as
on the CPU, and the GPU scale measurement of centred equilibrium propagation on the resistive network.

1. **Plants.** Each registered plant is built twice from its registry ``example`` kwargs (same seed), one
   copy moved to the GPU with ``plant.to("cuda")``. Compared: one query ``plant(x, controls)`` (same
   inputs, same controls, the plants' own generators in the same state, so the same noise draws: the
   draws of :mod:`pnnlab.devices` are made on the CPU generator and moved), and, for simulated plants, the
   nominal and true twins' forward pass and their backward pass (gradients with respect to the controls
   and the input). Also checked: the query answers on the plant's device and the twins hold no tensor
   off it. The table gives the largest difference over all these, relative to the largest CPU value
   of the compared quantity, and the time of one query on each device (median of ``--repeats``).
2. **Methods.** Each registered method takes one training step on its conformance model (the registry's
   ``conformance`` example, else the generic model of tests/test_conformance.py: the first registered
   plant that satisfies the method, a ``PhysicalLayer`` with its nominal twin and a ``ChannelAffine``
   read-out), built twice with the same seeds, one copy moved with ``model.to("cuda")``. Compared:
   the step's loss and the gradients it wrote (or, for a method that updates parameters itself, the
   parameters after the step); timed: a second step on each device.
3. **Scale** (issue 12, section 6): centred EP (beta = 1e-3, Adam) on the resistive network 784 -> H -> 10
   (``benchmarks/bench_scale.py``'s ``run_one``), batch 32, from about 10^4 conductances upwards on
   CUDA, time per step (median of ``--repeats`` after a warm-up, synchronised) and peak memory
   (``torch.cuda.max_memory_allocated``), with the digital MLP of the same topology beside it and the
   fitted exponent of time ~ n^b. Sizes stop growing when the next one is predicted (linear in the
   conductance count from the last) to exceed ``--budget-s`` for the whole script or 85 % of the GPU's
   memory. Target (issue 12): >= 10^8 conductances trained by EP at <= 1 s per step; the largest published
   EP-trained resistive network has 5.2 x 10^7 conductances (Scellier 2024, as issue 12 quotes it).

Tolerance: ``max |CUDA - CPU| <= tol x max |CPU|`` per compared quantity, tol = 1e-3 for float32 (and
complex64) results and 1e-6 for float64; a different order of floating-point operations is expected to
change the last bits, and iterative physics (steady-state solvers, ODE integration) accumulates them.
A difference beyond it is printed as FAIL, not hidden; a plant whose dynamics amplifies rounding
(chaotic regimes) may fail honestly.

Without CUDA the script prints why and exits 0. ``--smoke`` runs the same comparisons CPU against CPU
(the second copy moved with ``.to("cpu")``: every difference must then be exactly 0) and a two-size CPU
scale run, so tests cover the code on a machine without a GPU.

Run: python benchmarks/gpu_check.py [--budget-s 450] [--repeats 3] [--out results.json] [--skip-scale]
     [--skip-checks] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import statistics
import sys
import time
import traceback

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

#: hidden sizes of the scale ladder: about 1.6e3 H conductances each (784 inputs as +-pairs, 10 outputs)
LADDER = (8, 32, 128, 512, 1280, 2560, 6400, 12800, 25600, 64000, 128000, 256000)
SCELLIER_2024 = 5.2e7  # conductances, the largest published EP-trained resistive network (as issue 12 quotes it)


def _tolerance(t: torch.Tensor) -> float:
    return 1e-6 if t.dtype in (torch.float64, torch.complex128) else 1e-3


def _tensors(value):
    """Flatten a result (tensor, dict, list, tuple, Equilibrium-like object) into its tensors, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for k in sorted(value, key=str) for t in _tensors(value[k])]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


class Comparison:
    """The worst relative difference over the compared quantities and whether each met its tolerance."""

    def __init__(self) -> None:
        self.worst_rel = 0.0
        self.worst_abs = 0.0
        self.failed: list[str] = []

    def add(self, what: str, ref, other) -> None:
        refs, others = _tensors(ref), _tensors(other)
        if len(refs) != len(others):
            self.failed.append(f"{what}: {len(refs)} tensors on the CPU, {len(others)} on the device")
            self.worst_rel = math.inf
            return
        for a, b in zip(refs, others):
            b = b.detach().to("cpu")
            a = a.detach()
            if a.shape != b.shape:
                self.failed.append(f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
                self.worst_rel = math.inf
                continue
            if not a.is_floating_point() and not a.is_complex():
                a, b = a.double(), b.double()
            diff = float((a - b).abs().max()) if a.numel() else 0.0
            scale = float(a.abs().max()) if a.numel() else 0.0
            rel = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
            if not math.isfinite(diff):
                rel = math.inf
            self.worst_abs = max(self.worst_abs, diff)
            self.worst_rel = max(self.worst_rel, rel)
            if rel > _tolerance(a):
                self.failed.append(f"{what}: rel {rel:.2e} > {_tolerance(a):g}")

    @property
    def passed(self) -> bool:
        return not self.failed


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn, device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(max(1, repeats)):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def _twin_pass(twin, x, controls):
    """Forward and backward of a twin: (output, gradients w.r.t. the controls, gradient w.r.t. x)."""
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in controls.items()}
    xg = x.detach().clone()
    if xg.is_floating_point():
        xg.requires_grad_(True)
    with torch.enable_grad():
        out = twin(xg, leaves)
        (out.abs() if out.is_complex() else out).sum().backward()
    grads = {k: (v.grad if v.grad is not None else torch.zeros_like(v)) for k, v in leaves.items()}
    gx = xg.grad if xg.requires_grad and xg.grad is not None else torch.zeros(0)
    return out, grads, gx


def check_plant(entry, target: torch.device, repeats: int, second_step: bool = True) -> dict:
    from pnnlab.plants.capabilities import Simulated

    cls = entry.load()
    ref, moved = cls(**entry.example), cls(**entry.example)
    moved.to(target)
    where = moved.device
    row = {"name": entry.name, "kind": "plant", "notes": []}
    cmp = Comparison()
    x = ref.example_inputs(4)
    controls = ref.initial_controls(torch.Generator().manual_seed(0))
    on = {k: v.to(where) for k, v in controls.items()}
    y_ref, y_dev = ref(x, controls), moved(x.to(where), on)
    if y_dev.device != where:
        cmp.failed.append(f"query answered on {y_dev.device}, the plant is on {where}")
    cmp.add("query", y_ref, y_dev)
    row["twins"] = isinstance(ref, Simulated)
    if row["twins"]:
        for which in ("nominal_twin", "true_twin"):
            twin_ref, twin_dev = getattr(ref, which)(), getattr(moved, which)()
            off = [n for n, t in twin_dev.state_dict().items() if t.device != where]
            if off:
                cmp.failed.append(f"{which} holds tensors off {where}: {off[:3]}")
                continue
            cmp.add(which, _twin_pass(twin_ref, x, controls), _twin_pass(twin_dev, x.to(where), on))
    row["cpu_ms"] = _median_ms(lambda: ref(x, controls), torch.device("cpu"), repeats)
    x_dev = x.to(where)
    row["device_ms"] = _median_ms(lambda: moved(x_dev, on), where, repeats)
    row.update(passed=cmp.passed, max_rel=cmp.worst_rel, max_abs=cmp.worst_abs, failures=cmp.failed)
    return row


def _method_model(entry, method_cls):
    """A builder of (model, x, y, loss_fn, label) as tests/test_conformance.py chooses it."""
    from pnnlab import ChannelAffine, PhysicalLayer
    from pnnlab.plants.capabilities import Simulated
    from pnnlab.registry import PLANTS

    if "conformance" in entry.example:
        module, _, attribute = entry.example["conformance"].partition(":")
        make = getattr(importlib.import_module(f"pnnlab.{module}"), attribute)

        def build():
            model, x, y = make()
            return model, x, y, nn.functional.cross_entropy
        return build, entry.example["conformance"]
    for plant_entry in PLANTS.entries():
        def build(plant_entry=plant_entry):
            plant = plant_entry.load()(**plant_entry.example)
            twin = plant.nominal_twin() if isinstance(plant, Simulated) else None
            model = nn.Sequential(PhysicalLayer(plant, twin=twin), ChannelAffine(plant.out_features))
            y = torch.randn(8, plant.out_features, generator=torch.Generator().manual_seed(0))
            return model, plant.example_inputs(8), y, nn.functional.mse_loss
        model = build()[0]
        if not method_cls.missing_for(model):
            return build, plant_entry.name
    return None, None


def _step(method, model, x, y, loss_fn):
    method.check(model)
    for p in model.parameters():
        p.grad = None
    loss = method.step(model, x, y, loss_fn)
    if method.updates_parameters:
        return loss, [p.detach().clone() for p in model.parameters()]
    return loss, [p.grad.detach().clone() if p.grad is not None else torch.zeros(0) for p in model.parameters()]


def check_method(entry, target: torch.device, repeats: int, second_step: bool = True) -> dict:
    cls = entry.load()
    build, label = _method_model(entry, cls)
    row = {"name": entry.name, "kind": "method", "on": label}
    if build is None:
        row.update(passed=False, failures=["no registered plant satisfies its requirements"], max_rel=math.inf,
                   max_abs=math.inf)
        return row
    torch.manual_seed(0)
    model_ref, x, y, loss_fn = build()
    torch.manual_seed(0)
    model_dev, _, _, _ = build()
    model_dev.to(target)
    from pnnlab.devices import model_device

    where = model_device(model_dev)
    x_dev, y_dev = x.to(where), y.to(where)
    method_ref, method_dev = cls(), cls()
    cpu = torch.device("cpu")
    result = {}
    row["cpu_ms"] = _median_ms(lambda: result.update(ref=_step(method_ref, model_ref, x, y, loss_fn)), cpu, 1)
    row["device_ms"] = _median_ms(lambda: result.update(dev=_step(method_dev, model_dev, x_dev, y_dev, loss_fn)),
                                  where, 1)
    (loss_ref, out_ref), (loss_dev, out_dev) = result["ref"], result["dev"]
    cmp = Comparison()
    cmp.add("loss", torch.tensor([loss_ref], dtype=torch.float64), torch.tensor([loss_dev], dtype=torch.float64))
    compared = "parameters after the step" if cls.updates_parameters else "gradients"
    cmp.add(compared, out_ref, out_dev)
    row.update(loss_diff=abs(loss_ref - loss_dev), compared=f"loss, {compared}")
    if second_step:  # the first step on a GPU includes its warm-up (kernel loading, allocator growth)
        row["cpu_ms"] = _median_ms(lambda: method_ref.step(model_ref, x, y, loss_fn), cpu, 1)
        row["device_ms"] = _median_ms(lambda: method_dev.step(model_dev, x_dev, y_dev, loss_fn), where, 1)
    row.update(passed=cmp.passed, max_rel=cmp.worst_rel, max_abs=cmp.worst_abs, failures=cmp.failed)
    return row


def _loss_cell(row) -> str:
    return f"{row['loss_diff']:.2e}" if "loss_diff" in row else "-"


def run_checks(target: torch.device, repeats: int, rows: list, second_step: bool = True) -> None:
    from pnnlab.registry import METHODS, PLANTS

    print(f"\n1-2. CPU vs {target}: largest |{target} - CPU| / max |CPU| over the compared quantities "
          f"(tolerance 1e-3 float32, 1e-6 float64)")
    print(f"{'name':<26}{'kind':<8}{'result':<8}{'max rel diff':>14}{'max abs diff':>14}{'loss diff':>11}{'CPU ms':>10}"
          f"{(target.type if target.type != 'cpu' else 'moved') + ' ms':>10}  compared / notes")
    for kind, entries, check in (("plant", PLANTS.entries(), check_plant), ("method", METHODS.entries(), check_method)):
        for entry in entries:
            try:
                row = check(entry, target, repeats, second_step)
            except Exception as error:  # a device gap: print it and go on
                row = {"name": entry.name, "kind": kind, "passed": False, "max_rel": math.inf, "max_abs": math.inf,
                       "failures": [f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"],
                       "traceback": traceback.format_exc()[-1500:]}
            rows.append(row)
            if row["failures"]:
                note = "; ".join(row["failures"])
            elif kind == "method":
                note = f"{row['compared']}; on {row['on']}"
            else:
                note = "query" + (", nominal/true twin fwd+bwd" if row.get("twins") else "")
            print(f"{row['name']:<26}{kind:<8}{'pass' if row['passed'] else 'FAIL':<8}{row['max_rel']:>14.2e}"
                  f"{row['max_abs']:>14.2e}{_loss_cell(row):>11}{row.get('cpu_ms', math.nan):>10.2f}{row.get('device_ms', math.nan):>10.2f}"
                  f"  {note}", flush=True)
    good = sum(r["passed"] for r in rows)
    print(f"{good} of {len(rows)} plants and methods agree within tolerance")


def _fit(rows, floor):
    import numpy as np

    big = [r for r in rows if r["params"] >= floor]
    if len(big) < 2:
        return None
    slope, _ = np.polyfit(np.log([r["params"] for r in big]), np.log([r["seconds"] for r in big]), 1)
    return float(slope)


def ep_agreement(target: torch.device, hidden: int) -> dict:
    """One centred-EP step of the scale benchmark's network (784-H-10) on the CPU and on ``target`` from
    the same state: the relative difference of the gradients it writes (large matrices: the
    floating-point sums of the GPU kernels differ from the CPU's in order)."""
    from bench_scale import build

    out = []
    for device in (torch.device("cpu"), target):
        model, method, params, x, y = build("ep", hidden)
        model.to(device)
        method.step(model, x.to(device), y.to(device), nn.functional.cross_entropy)
        out.append([p.grad for p in model.parameters()])
    cmp = Comparison()
    cmp.add("EP gradients", out[0], out[1])
    return {"hidden": hidden, "params": params, "passed": cmp.passed, "max_rel": cmp.worst_rel,
            "max_abs": cmp.worst_abs}


def run_scale(target: torch.device, repeats: int, ladder, deadline: float, rows: list) -> dict:
    from bench_scale import run_one

    cuda = target.type == "cuda"
    total_MiB = torch.cuda.get_device_properties(target).total_memory / 2 ** 20 if cuda else math.inf
    print(f"\n3. Scale on {target}: centred EP (beta 1e-3, Adam lr 1e-3), resistive network 784-H-10, batch 32; "
          f"median of {repeats} steps after a warm-up{' (synchronised)' if cuda else ''}; peak MiB = "
          f"{'torch.cuda.max_memory_allocated' if cuda else 'process peak resident memory (not per size)'}")
    agree = ep_agreement(target, 512 if len(ladder) > 3 else ladder[0])
    print(f"EP step at H = {agree['hidden']} ({agree['params']:,} conductances), CPU vs {target}: gradients differ by "
          f"{agree['max_rel']:.2e} relative ({'pass' if agree['passed'] else 'FAIL'}, tolerance 1e-3)")
    print(f"{'H':>8}{'conductances':>16}{'EP s/step':>11}{'peak MiB':>10}{'build s':>9}{'MLP s/step':>12}"
          f"{'MLP MiB':>9}{'EP/MLP':>8}")
    stop = "ladder exhausted"
    for i, h in enumerate(ladder):
        try:
            ep = run_one("ep", h, repeats, str(target))
            mlp = run_one("mlp", h, repeats, str(target))
        except (torch.cuda.OutOfMemoryError, MemoryError) as error:
            stop = f"H = {h}: out of memory ({type(error).__name__})"
            break
        finally:
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
        row = {"hidden": h, **{k: ep[k] for k in ("params", "seconds", "peak_MiB", "build_s")},
               "mlp_params": mlp["params"], "mlp_seconds": mlp["seconds"], "mlp_peak_MiB": mlp["peak_MiB"]}
        rows.append(row)
        print(f"{h:>8}{ep['params']:>16,}{ep['seconds']:>11.4f}{ep['peak_MiB']:>10.0f}{ep['build_s']:>9.1f}"
              f"{mlp['seconds']:>12.4f}{mlp['peak_MiB']:>9.0f}{ep['seconds'] / mlp['seconds']:>8.1f}", flush=True)
        if i + 1 < len(ladder):
            ratio = ladder[i + 1] / h
            spent = ep["build_s"] + mlp["build_s"] + (repeats + 1) * (ep["seconds"] + mlp["seconds"])
            if time.perf_counter() + ratio * spent > deadline:
                stop = f"next size H = {ladder[i + 1]} predicted to take {ratio * spent:.0f} s, past --budget-s"
                break
            if ratio * ep["peak_MiB"] > 0.85 * total_MiB:
                stop = f"next size H = {ladder[i + 1]} predicted to need {ratio * ep['peak_MiB']:.0f} MiB > 85 % of the GPU"
                break
    print(f"stopped: {stop}")
    summary = {"stopped": stop, "ep_agreement": agree}
    if rows:
        for floor in (1e5, 1e7):
            b = _fit(rows, floor)
            summary[f"exponent_ge_{floor:.0e}"] = b
            print(f"fitted exponent b of EP s/step ~ conductances^b, sizes >= {floor:.0e}: "
                  + (f"{b:.2f}" if b is not None else "n/a (fewer than two sizes)"))
        within = [r for r in rows if r["seconds"] <= 1.0]
        best = max(within, key=lambda r: r["params"]) if within else None
        met = best is not None and best["params"] >= 1e8
        summary.update(target_met=met, largest_within_1s=best)
        largest = max(rows, key=lambda r: r["params"])
        print(f"target (issue 12: >= 1e8 conductances by EP at <= 1 s/step on one GPU): {'met' if met else 'not met'}; "
              f"largest within 1 s: {best['params']:,} at {best['seconds']:.3f} s" if best else
              "target: not met (no size within 1 s)")
        print(f"largest measured: {largest['params']:,} conductances at {largest['seconds']:.3f} s/step, "
              f"{largest['peak_MiB']:.0f} MiB. For scale: the largest published EP-trained resistive network has "
              f"{SCELLIER_2024:.1e} conductances (Scellier 2024, as issue 12 quotes it; not checked here).")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU (default cuda)")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="wall-clock budget of the whole script; the scale ladder stops before exceeding it")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-params", type=float, default=4.2e8, help="largest EP size tried (conductances)")
    parser.add_argument("--skip-checks", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--out", default=None, help="write every result as JSON to this path")
    parser.add_argument("--smoke", action="store_true", help="CPU against CPU, tiny scale run (no GPU needed)")
    args = parser.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(1)
    if args.smoke:
        target, args.repeats, ladder = torch.device("cpu"), 1, (8, 32)
        label = "CPU (smoke: the second copy moved with .to('cpu'); every difference must be exactly 0)"
    else:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            print(f"gpu_check: torch.cuda.is_available() is False on this machine (torch {torch.__version__}): "
                  f"there is no GPU to compare with; nothing measured. Run --smoke for the CPU-only self-check.")
            return 0
        target = torch.device(args.device)
        if target.type == "cuda" and target.index is None:
            target = torch.device("cuda", torch.cuda.current_device())
        ladder = tuple(h for h in LADDER if 1590 * h <= args.max_params) or LADDER[:1]
        label = torch.cuda.get_device_name(target) if target.type == "cuda" else str(target)
    print(f"gpu_check: CPU vs {target} ({label}); torch {torch.__version__}; budget {args.budget_s:.0f} s; "
          f"one CPU thread")
    results = {"device": str(target), "device_name": label, "torch": torch.__version__, "smoke": args.smoke,
               "checks": [], "scale": [], "scale_summary": None}
    if not args.skip_checks:
        run_checks(target, args.repeats, results["checks"], second_step=not args.smoke)
    if not args.skip_scale:
        results["scale_summary"] = run_scale(target, args.repeats, ladder, start + args.budget_s, results["scale"])
    results["seconds"] = time.perf_counter() - start
    print(f"\ntotal {results['seconds']:.0f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, default=str)
        print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
