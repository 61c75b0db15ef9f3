"""``pnnlab export RUN_DIR``: what a lab needs to program a trained network into its device.

For every physical layer of the trained model (rebuilt from the run's ``config.json`` and
``params-<method>.pt``) the export writes, under ``RUN_DIR/export/<method>/<layer>/``:

- ``controls.npz`` and one ``<control>.npy`` per control: the physical values in their units (float64;
  periodic controls such as phases wrapped into their period), and ``<control>.csv`` for vectors and
  matrices (row, column, value) with the unit in the header;
- **phase maps**: every periodic 2D control in radians (an SLM or a diffractive mask) as 8-bit and 16-bit
  greyscale PNGs, grey level = round(phase / period * 2^bits) mod 2^bits (phase 0 -> level 0, the
  period wraps to 0), with the rms quantisation error of each bit depth in the manifest;
- **MZI mesh phase tables** (``mesh_phases.csv``): one row per MZI with its column, top and bottom
  modes, internal theta and external phi in rad, the heater power for each (P = P_pi phase / pi, with the
  chip's P_pi) and, when the chip has a finite DAC, the DAC codes; plus the output phase screen;
- **crossbar conductance tables** (``conductances.csv``): g+ and g- of every pair in siemens and the
  signed weight, and the pulse program that reaches them from the RESET state (``pulse_program.csv``:
  SET pulses per device under the controller's nominal step, with the pulse duration and energy of
  the device model and their source);
- the digital parts' parameters (``digital.npz``: every parameter and buffer outside the physical
  layers, by module path);
- ``manifest.json``: the run, the method, pnnlab's version, every layer's plant description,
  identity and control table (shape, unit, range, periodic, description, files).

Oscillator couplings and drives, heater powers and any other control are covered by the generic
tables (their unit and range come from the plant's :class:`~pnnlab.plants.base.ControlSpec`).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..layers import PhysicalLayer

__all__ = ["export_run", "ExportResult", "load_trained_model", "phase_levels"]


@dataclass
class ExportResult:
    folder: Path
    manifest: dict


class ExportError(ValueError):
    """A run folder that cannot be exported (not completed, no parameters for that method)."""


def load_trained_model(run_dir: str | Path, method: str | None = None):
    """The trained model of a completed run (rebuilt offline from its config and parameters), the
    method's label, the resolved config and the task data."""
    from ..experiments.run import _build

    folder = Path(run_dir)
    if not (folder / "config.json").is_file():
        raise ExportError(f"{str(folder)!r} is not a run folder (no config.json); pass the folder `pnnlab run` "
                          f"printed.")
    status = json.loads((folder / "status.json").read_text()).get("status") if (folder / "status.json").is_file() else None
    if status != "completed":
        raise ExportError(f"run {str(folder)!r} is {status or 'of unknown status'}, not completed; finish it first "
                          f"(pnnlab run --resume {folder}).")
    resolved = json.loads((folder / "config.json").read_text())
    labels = [m["name"] for m in resolved["methods"]]
    if method is None:
        method = labels[-1]
    if method not in labels:
        raise ExportError(f"method {method!r} is not in run {str(folder)!r}; its methods: {', '.join(labels)}.")
    offline = {k: v for k, v in resolved.items() if k != "remote"}  # a served device's settings export offline
    data, make_model, _ = _build(offline)
    model = make_model()
    state = torch.load(folder / f"params-{method}.pt", weights_only=True, map_location="cpu")
    model.load_state_dict(state)
    model.eval()
    return model, method, resolved, data


def _physical_layers(model) -> list[tuple[str, PhysicalLayer]]:
    layers = [(name or "layer", m) for name, m in model.named_modules() if isinstance(m, PhysicalLayer)]
    return [(name.replace(".", "_"), layer) for name, layer in layers]


def phase_levels(phase: np.ndarray, period: float, low: float, bits: int) -> np.ndarray:
    """Grey levels of a phase map for an SLM of ``bits`` bits: round((phase - low) / period * 2^bits)
    mod 2^bits (so the top of the period wraps to level 0)."""
    levels = 2 ** bits
    return (np.rint((phase - low) / period * levels).astype(np.int64) % levels).astype(np.uint16 if bits > 8 else np.uint8)


def _write_png(path: Path, levels: np.ndarray, bits: int) -> None:
    from PIL import Image

    if bits <= 8:
        Image.fromarray(levels.astype(np.uint8), mode="L").save(path)
    else:
        Image.fromarray(levels.astype(np.uint16)).save(path)  # 16-bit greyscale (I;16)


def _write_table(path: Path, value: np.ndarray, unit: str, name: str) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        if value.ndim <= 1:
            writer.writerow(["index", f"{name} [{unit}]"])
            for i, v in enumerate(np.atleast_1d(value)):
                writer.writerow([i, repr(float(v))])
        else:
            writer.writerow(["row", "column", f"{name} [{unit}]"])
            for (i, j), v in np.ndenumerate(value):
                writer.writerow([i, j, repr(float(v))])


def _mesh_table(folder: Path, plant, values: dict) -> dict:
    layout = plant.layout
    heaters = getattr(plant, "heaters", None)
    bits = getattr(heaters, "dac_bits", None)
    p_pi = getattr(heaters, "p_pi_W", None)
    columns = [int(c) for c in layout.mzi_column]
    tops = [int(t) for t in layout.mzi_top]
    with (folder / "mesh_phases.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        header = ["mzi", "column", "top_mode", "bottom_mode", "theta [rad]", "phi [rad]"]
        if p_pi:
            header += ["theta heater [W]", "phi heater [W]"]
        if bits:
            header += [f"theta DAC code ({bits}-bit)", f"phi DAC code ({bits}-bit)"]
        writer.writerow(header)
        for k, (c, t) in enumerate(zip(columns, tops)):
            theta, phi = float(values["theta"][k]), float(values["phi"][k])
            row = [k, c, t, t + 1, repr(theta), repr(phi)]
            if p_pi:  # thermo-optic shift linear in heater power: P = P_pi * phase / pi
                row += [repr(p_pi * theta / math.pi), repr(p_pi * phi / math.pi)]
            if bits:
                row += [int(round(theta / (2 * math.pi) * 2 ** bits)) % 2 ** bits,
                        int(round(phi / (2 * math.pi) * 2 ** bits)) % 2 ** bits]
            writer.writerow(row)
        if "psi" in values:
            writer.writerow([])
            writer.writerow(["output mode", "", "", "", "psi [rad]"])
            for m, p in enumerate(values["psi"]):
                writer.writerow([m, "", "", "", repr(float(p))])
    return {"mesh_phases": "mesh_phases.csv", "layout": type(layout).__name__, "dac_bits": bits, "p_pi_W": p_pi,
            "p_pi_source": "the chip's Heaters.p_pi_W (default ASSUMED 25 mW, docs/substrates/mzi_mesh.md)",
            "convention": "T(theta, phi) = B D(theta) B D(phi), phases on the top arm (docs/substrates/mzi_mesh.md)"}


def _crossbar_tables(folder: Path, plant, values: dict) -> dict:
    d = plant.device_model
    gp, gm = values["g_plus"], values["g_minus"]
    up_S = d.step_up * d.range_S
    with (folder / "conductances.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "column", "g_plus [S]", "g_minus [S]", "g_plus - g_minus [S]"])
        for (i, j), p in np.ndenumerate(gp):
            writer.writerow([i, j, repr(float(p)), repr(float(gm[i, j])), repr(float(p - gm[i, j]))])
    pulses = {name: np.rint((g - d.g_min_S) / up_S).astype(np.int64) for name, g in (("g_plus", gp), ("g_minus", gm))}
    with (folder / "pulse_program.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "column", "device", "SET pulses from RESET (g_min)", "target [S]"])
        for name, n in pulses.items():
            g = values[name]
            for (i, j), k in np.ndenumerate(n):
                writer.writerow([i, j, name, int(k), repr(float(g[i, j]))])
    total = int(sum(int(n.sum()) for n in pulses.values()))
    rows = gp.shape[0]
    seconds = float(sum(float(n.max(axis=1).sum()) for n in pulses.values())) * d.pulse_duration_s
    return {"conductances": "conductances.csv", "pulse_program": "pulse_program.csv",
            "nominal_step_S": up_S, "pulse_duration_s": d.pulse_duration_s, "pulse_energy_J": d.pulse_energy_J,
            "total_pulses": total, "row_parallel_seconds": seconds, "rows": rows,
            "energy_J": total * d.pulse_energy_J, "device_model": repr(d),
            "note": "pulses under the controller's nominal (linear) step from all devices RESET to g_min; the "
                    "soft-bounds response and write noise make a closed-loop write-verify necessary on a real "
                    "array (docs/substrates/memristor.md)"}


def export_run(run_dir: str | Path, *, method: str | None = None, out: str | Path | None = None,
               slm_bits: tuple[int, ...] = (8, 16)) -> ExportResult:
    """Export the trained settings of ``method`` in the completed run ``run_dir`` (default: its last
    method) to ``out`` (default ``RUN_DIR/export/<method>``). Returns the folder and the manifest."""
    from .. import __version__

    for bits in slm_bits:
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
            raise ValueError(f"slm_bits must hold integers in 1..16 (PNG greyscale depths), got {slm_bits!r}.")
    model, method, resolved, _ = load_trained_model(run_dir, method)
    folder = Path(out) if out is not None else Path(run_dir) / "export" / method
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"run": str(Path(run_dir).resolve()), "method": method, "pnnlab_version": __version__,
                "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "config": resolved, "layers": []}
    if "remote" in resolved:
        manifest["served_device"] = resolved["remote"].get("address")
    physical_params = set()
    for name, layer in _physical_layers(model):
        here = folder / name
        here.mkdir(exist_ok=True)
        plant, specs = layer.plant, layer.plant.control_specs()
        values = {}
        entry = {"layer": name, "plant": type(plant).__name__, "description": plant.describe(),
                 "identity": plant.identity(), "controls": {}}
        for control, spec in specs.items():
            value = layer.control_values()[control].detach().double().cpu().numpy()
            if spec.periodic:
                period = spec.high - spec.low
                value = spec.low + np.mod(value - spec.low, period)
            values[control] = value
            np.save(here / f"{control}.npy", value)
            info = {"shape": list(value.shape), "unit": spec.unit, "low": spec.low, "high": spec.high,
                    "periodic": spec.periodic, "description": spec.description, "npy": f"{control}.npy"}
            if value.ndim <= 2:
                _write_table(here / f"{control}.csv", value, spec.unit, control)
                info["csv"] = f"{control}.csv"
            if spec.periodic and value.ndim == 2:
                info["phase_maps"] = {}
                period = spec.high - spec.low
                for bits in slm_bits:
                    levels = phase_levels(value, period, spec.low, bits)
                    path = f"{control}_{bits}bit.png"
                    _write_png(here / path, levels, bits)
                    realised = spec.low + levels.astype(np.float64) / 2 ** bits * period
                    error = np.angle(np.exp(1j * (realised - value) * 2 * math.pi / period)) * period / (2 * math.pi)
                    info["phase_maps"][str(bits)] = {"png": path, "rms_quantisation_error": float(np.sqrt(np.mean(error ** 2))),
                                                     "levels": 2 ** bits}
            entry["controls"][control] = info
        np.savez(here / "controls.npz", **values)
        if {"theta", "phi"} <= set(values) and hasattr(plant, "layout"):
            entry["tables"] = _mesh_table(here, plant, values)
        elif {"g_plus", "g_minus"} <= set(values) and hasattr(plant, "device_model"):
            entry["tables"] = _crossbar_tables(here, plant, values)
        manifest["layers"].append(entry)
        physical_params |= {id(p) for p in layer.parameters()}
    digital = {k: v.detach().cpu().numpy() for k, v in
               list(model.named_parameters()) + list(model.named_buffers())
               if id(v) not in physical_params and ".controls." not in f".{k}"}
    np.savez(folder / "digital.npz", **digital)
    manifest["digital"] = {"npz": "digital.npz", "arrays": {k: list(v.shape) for k, v in digital.items()}}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return ExportResult(folder=folder, manifest=manifest)
