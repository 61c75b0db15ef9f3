"""Run an experiment spec and write a run folder.

A run folder holds ``config.json`` (the resolved spec), ``metrics.jsonl`` (one JSON record per training
step and per evaluation, tagged with the method), ``params-<method>.pt`` (final parameters), and on success
``summary.json`` and ``accuracy_vs_queries.png``. ``status.json`` says ``running``, ``completed`` or
``failed``; a failed run also gets ``error.txt`` with the traceback and never a ``summary.json``.
Everything that can be checked (names, arguments, data files) is checked before the folder is created.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from ..layers import plants_of
from ..metering import total_usage
from ..registry import DATASETS, METHODS, MODELS
from ..train import train
from .spec import SpecError, call_with_kwargs, load_spec, resolve_spec


@dataclass
class RunResult:
    folder: Path
    summary: dict


def _build(resolved: dict):
    data = call_with_kwargs(DATASETS.load(resolved["data"]["name"]), resolved["data"]["args"],
                            where=f"dataset {resolved['data']['name']!r}")
    model_args = {"in_features": data.in_features, "n_classes": data.n_classes, "seed": resolved["seed"],
                  **resolved["model"]["args"]}

    def make_model():
        return call_with_kwargs(MODELS.load(resolved["model"]["name"]), dict(model_args),
                                where=f"model {resolved['model']['name']!r}")

    methods = [call_with_kwargs(METHODS.load(m["name"]), m["args"], where=f"method {m['name']!r}")
               for m in resolved["methods"]]
    return data, make_model, methods


def _new_folder(out_dir: Path, name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = out_dir / f"{stamp}-{name}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = out_dir / f"{stamp}-{name}-{suffix}"
    folder.mkdir(parents=True)
    return folder


def _write_json(path: Path, payload) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)


def run(spec, *, out_dir: str | Path = "runs", progress: bool = False,
        echo: Callable[[str], None] | None = None) -> RunResult:
    """Run ``spec`` (a dict or the path of a TOML file). Returns the run folder and the summary."""
    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    resolved = resolve_spec(spec)
    try:
        data, make_model, methods = _build(resolved)
        make_model()  # fail on bad model arguments before any folder exists
    except (KeyError, TypeError, ValueError, FileNotFoundError) as error:
        if isinstance(error, SpecError):
            raise
        raise SpecError(str(error.args[0]) if error.args else str(error)) from error
    folder = _new_folder(Path(out_dir), resolved["name"])
    _write_json(folder / "config.json", resolved)
    _write_json(folder / "status.json", {"status": "running", "started": time.time()})
    results = []
    try:
        with (folder / "metrics.jsonl").open("w") as metrics:
            for method, method_spec in zip(methods, resolved["methods"]):
                label = method_spec["name"]
                model = make_model()
                started = time.perf_counter()

                def log(record, label=label):
                    metrics.write(json.dumps({"method": label, **record}) + "\n")

                history = train(model, method, data, seed=resolved["seed"], callback=log, progress=progress,
                                **resolved["train"])
                metrics.flush()
                final = history.final
                results.append({
                    "method": label,
                    "upper_bound": method.upper_bound,
                    "test_accuracy": final["test_accuracy"],
                    "evaluated_on": final["evaluated_on"],
                    "plant_queries": final["train_queries"],
                    "plant_samples": final["train_samples"],
                    "device_seconds": final["train_device_seconds"],
                    "joules": final["train_joules"],
                    "wall_seconds": time.perf_counter() - started,
                    "all_plant_usage": total_usage(plants_of(model)),
                })
                torch.save(model.state_dict(), folder / f"params-{label}.pt")
                if echo is not None:
                    echo(f"  {label}: test accuracy {final['test_accuracy']:.3f} on the "
                         f"{final['evaluated_on']}, {final['train_queries']} plant queries")
        summary = {"name": resolved["name"], "data": data.summary(), "results": results}
        from .report import plot_accuracy_vs_queries
        plot_accuracy_vs_queries(folder / "metrics.jsonl", folder / "accuracy_vs_queries.png")
        _write_json(folder / "summary.json", summary)
        _write_json(folder / "status.json", {"status": "completed", "finished": time.time()})
    except BaseException as error:
        (folder / "error.txt").write_text("".join(traceback.format_exception(error)))
        _write_json(folder / "status.json", {"status": "failed", "error": f"{type(error).__name__}: {error}",
                                             "finished": time.time()})
        raise
    return RunResult(folder=folder, summary=summary)
