"""``pnnlab export RUN_DIR --edge``: a standalone inference artefact of a trained network.

The artefact (``RUN_DIR/export/<method>/edge/``) runs without pnnlab and without any training
dependency, with PyTorch alone:

- ``network.pt2`` (``torch.export``, batch size dynamic; or ``network.ts``, a TorchScript trace, where
  the physics cannot be exported): the whole trained network in which every physical layer is its
  digital twin's physics with the trained controls as constants (the minimal reference runtime of the
  physics), and the digital layers as they are. ``physics="nominal"`` (default) uses the layer's own
  twin (what the trained model computes "on its twin"); ``physics="true"`` the simulated plant's
  hidden physics with noise off (a closer stand-in for the fabricated device, for simulated plants);
- ``predict.py``: the reference runtime: ``python predict.py inputs.npy`` prints the predicted class of
  every row (imports torch and numpy only);
- ``inputs.npy``, ``expected_logits.npy``: test inputs and the trained model's outputs on them
  (computed through pnnlab), so a device or a port can check itself;
- the device settings of :func:`~pnnlab.export.hardware.export_run` for programming the physical parts
  (``../``, the export folder; ``settings/`` inside ``out`` when an ``out`` folder is given);
- ``edge.json``: the physics used, the tolerance check, and the energy and latency per inference:
  the physical layers from the plants' cost models (their constants and sources), the digital
  layers' FLOPs at stated energy per FLOP, against the same network run entirely on a CPU (latency
  measured here, energy at an arithmetic-only FP32 figure) and on a GPU (energy at the H100's peak
  BF16 efficiency; latency measured only when CUDA is available).

The exported network is checked: on the whole test split and on a single sample (batch sizes other
than the one it was exported with), its outputs must equal the model's to ``atol = rtol = 1e-5``
(else the export stops, naming the largest difference: a trace of a twin with data-dependent control
flow is only valid where that flow does not change).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..energy import H100_BF16_PEAK, HOROWITZ_FP32_45NM
from ..execution import Execution, OnTrueTwin, OnTwin, executing
from ..layers import PhysicalLayer
from ..plants.photonics.mesh_engine import plain_ops
from .hardware import ExportError, export_run, load_trained_model

__all__ = ["export_edge"]

PREDICT = '''"""Reference runtime of a pnnlab edge artefact: needs only torch and numpy.

    python predict.py inputs.npy            # one predicted class per row
"""
import sys
from pathlib import Path

import numpy as np
import torch

here = Path(__file__).resolve().parent
if (here / "network.pt2").is_file():  # torch.export (the default)
    network = torch.export.load(str(here / "network.pt2")).module()
else:  # TorchScript (when the physics could not be exported)
    network = torch.jit.load(str(here / "network.ts"))
x = torch.from_numpy(np.load(sys.argv[1] if len(sys.argv) > 1 else here / "inputs.npy")).float()
with torch.no_grad():
    logits = network(x)
for k in logits.argmax(dim=1).tolist():
    print(k)
'''


class _Physics(torch.nn.Module):
    """The trained network with its physical layers run by a fixed execution (for tracing)."""

    def __init__(self, model: torch.nn.Module, execution: Execution) -> None:
        super().__init__()
        self.model, self.execution = model, execution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with executing(self.execution):
            return self.model(x)


def _cost(layers: list[PhysicalLayer]) -> dict:
    per = []
    for layer in layers:
        c = layer.plant.cost
        per.append({"plant": type(layer.plant).__name__, "seconds_per_query": c.seconds_per_query,
                    "seconds_per_sample": c.seconds_per_sample, "joules_per_query": c.joules_per_query,
                    "joules_per_sample": c.joules_per_sample, "source": c.source})
    one = {"seconds": sum(p["seconds_per_query"] + p["seconds_per_sample"] for p in per),
           "joules": sum(p["joules_per_query"] + p["joules_per_sample"] for p in per)}
    batch = 256
    amortised = {"seconds": sum(p["seconds_per_query"] / batch + p["seconds_per_sample"] for p in per),
                 "joules": sum(p["joules_per_query"] / batch + p["joules_per_sample"] for p in per)}
    return {"layers": per, "per_inference_batch_1": one, "per_inference_batch_256": amortised}


def _flops(module: torch.nn.Module, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    return int(counter.get_total_flops())


def _latency(network, x: torch.Tensor, repeats: int = 20) -> float:
    with torch.no_grad():
        network(x)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            network(x)
            best = min(best, time.perf_counter() - start)
    return best


def export_edge(run_dir: str | Path, *, method: str | None = None, out: str | Path | None = None,
                physics: str = "nominal") -> dict:
    """Write the standalone artefact of the module docstring; returns ``edge.json``'s content."""
    if physics not in ("nominal", "true"):
        raise ValueError(f"physics must be 'nominal' (the layers' twins) or 'true' (a simulated plant's hidden "
                         f"physics, noise off), got {physics!r}.")
    model, method, _, data = load_trained_model(run_dir, method)
    settings = export_run(run_dir, method=method, out=None if out is None else Path(out) / "settings")
    folder = Path(out) if out is not None else settings.folder / "edge"
    folder.mkdir(parents=True, exist_ok=True)
    layers = [m for m in model.modules() if isinstance(m, PhysicalLayer)]
    if physics == "nominal" and any(layer.twin is None for layer in layers):
        raise ExportError("a physical layer has no twin to export as the reference physics; attach one, or "
                          "use physics='true' for a simulated plant.")
    wrapped = _Physics(model, OnTwin() if physics == "nominal" else OnTrueTwin()).eval()
    x_test = data.x_test
    trace_batch = min(32, len(x_test))
    with torch.no_grad():
        expected = wrapped(x_test)
    for stale in ("network.pt2", "network.ts"):
        (folder / stale).unlink(missing_ok=True)
    traced, file, fallback = _export_or_trace(wrapped, x_test[:trace_batch], folder)
    with torch.no_grad():
        got = traced(x_test)  # the whole split: another batch size than the trace's
        single = traced(x_test[:1])
    if (got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
            or not torch.allclose(single, expected[:1], atol=1e-5, rtol=1e-5)):
        worst = float((got - expected).abs().max()) if got.shape == expected.shape else float("nan")
        (folder / file).unlink(missing_ok=True)
        raise ExportError(f"the exported network differs from the trained one on the test split (largest "
                          f"difference {worst:.3g}); a twin with data-dependent control flow cannot be traced.")
    (folder / "predict.py").write_text(PREDICT)
    np.save(folder / "inputs.npy", x_test.numpy())
    np.save(folder / "expected_logits.npy", expected.numpy())
    physical = _cost(layers)
    total_flops = _flops(wrapped, x_test[:1])
    digital_flops = total_flops - _physics_flops(wrapped, layers, x_test[:1])
    cpu_batch_1 = _latency(traced, x_test[:1])
    cpu_batch = _latency(traced, x_test[:256]) / len(x_test[:256])
    gpu_latency = None
    if torch.cuda.is_available():  # pragma: no cover - no GPU in CI
        cuda_net = (torch.export.load(str(folder / file)).module().cuda() if file.endswith(".pt2")
                    else torch.jit.load(str(folder / file), map_location="cuda"))
        gpu_latency = _latency(cuda_net, x_test[:256].cuda()) / len(x_test[:256])
    report = {
        "method": method, "physics": physics, "network": file,
        "format": "torch.export" if file.endswith(".pt2") else f"TorchScript trace (torch.export failed: {fallback})",
        "runtime": "predict.py (torch, numpy)",
        "check": {"split": "test", "samples": len(x_test), "traced_batch": trace_batch, "atol": 1e-5, "rtol": 1e-5,
                  "max_abs_difference": float((got - expected).abs().max())},
        "per_inference": {
            "physical_part": physical,
            "flops_counted": "matrix products and convolutions (torch.utils.flop_counter); FFTs and elementwise "
                             "operations are not counted, so FLOP-based energies are lower bounds",
            "digital_part": {"flops": digital_flops, "joules_fp32_45nm": digital_flops * HOROWITZ_FP32_45NM.joules_per_flop,
                             "joules_source": HOROWITZ_FP32_45NM.source},
            "same_network_on_cpu": {"flops": total_flops, "latency_s_batch_1": cpu_batch_1,
                                    "latency_s_per_sample_batch_256": cpu_batch,
                                    "joules_fp32_45nm": total_flops * HOROWITZ_FP32_45NM.joules_per_flop,
                                    "note": "latency measured here (1 thread, TorchScript of the twin physics); "
                                            "energy arithmetic-only at 45 nm FP32: a lower bound for a CPU",
                                    "joules_source": HOROWITZ_FP32_45NM.source},
            "same_network_on_gpu": {"flops": total_flops,
                                    "joules_h100_bf16_peak": total_flops * H100_BF16_PEAK.joules_per_flop,
                                    "joules_source": H100_BF16_PEAK.source,
                                    "latency_s_per_sample_batch_256": gpu_latency,
                                    "latency_note": None if gpu_latency is not None else "not measured: no CUDA device here"},
        },
    }
    (folder / "edge.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def _export_or_trace(wrapped: torch.nn.Module, example: torch.Tensor, folder: Path):
    """``torch.export`` with a dynamic batch (saved as ``network.pt2``); where the physics cannot be
    exported (data-dependent control flow), a TorchScript trace (``network.ts``). Returns the callable,
    its file name and why export failed (or None). Both record the physics under ``plain_ops()``: the
    MZI mesh engine then runs its reference path of ordinary torch operations instead of its fast
    custom autograd Functions, which neither tracer can record (the engine also selects it by itself
    when it sees a tracer; the flag makes it independent of the torch version's tracer flags)."""
    import warnings

    with plain_ops():
        try:
            batch = torch.export.Dim("batch", min=1, max=1 << 20)
            program = torch.export.export(wrapped, (example,), dynamic_shapes={"x": {0: batch}})
            torch.export.save(program, str(folder / "network.pt2"))
            return program.module(), "network.pt2", None
        except Exception as error:  # fall back to a trace, checked like the export
            reason = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation and tracer warnings: the trace is checked below
            with torch.no_grad():
                traced = torch.jit.trace(wrapped, example, check_trace=False)
            traced = torch.jit.freeze(traced.eval())
            torch.jit.save(traced, str(folder / "network.ts"))
    return traced, "network.ts", reason


def _physics_flops(wrapped: _Physics, layers: list[PhysicalLayer], x: torch.Tensor) -> int:
    """FLOPs spent inside the physical layers' reference physics (the rest of the network is digital)."""
    from torch.utils.flop_counter import FlopCounterMode

    spent = [0]
    hooks = []
    for layer in layers:
        counters = {}

        def pre(module, args, counters=counters):
            counters["c"] = FlopCounterMode(display=False)
            counters["c"].__enter__()

        def post(module, args, output, counters=counters):
            counters["c"].__exit__(None, None, None)
            spent[0] += int(counters["c"].get_total_flops())

        hooks += [layer.register_forward_pre_hook(pre), layer.register_forward_hook(post)]
    try:
        with torch.no_grad():
            wrapped(x)
    finally:
        for h in hooks:
            h.remove()
    return spent[0]
