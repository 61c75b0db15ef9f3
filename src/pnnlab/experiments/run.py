"""Run an experiment spec and write a run folder.

A run folder holds ``config.json`` (the resolved spec), ``metrics.jsonl`` (one JSON record per training
step and per evaluation, tagged with the method), ``params-<method>.pt`` (final parameters), and on success
``summary.json`` and ``accuracy_vs_queries.png``. ``status.json`` says ``running``, ``completed`` or
``failed``; a failed run (an exception, Ctrl-C or SIGTERM) also gets ``error.txt`` with the traceback and
never a ``summary.json``, so a folder never says ``running`` for a run that was stopped this way (only a
SIGKILL or a power cut can leave it so, and nothing in-process can catch those).

Everything that can be checked (names, arguments, data files, the output folder, whether every method
can train the model) is checked before the folder is created.

Each method's ``wall_seconds`` is timed after a warm-up: before any timing, every method takes one
step and one evaluation on a throwaway copy of the model (fresh plants and a fresh method instance,
so nothing of the real run is touched), so the first method of a comparison does not carry the
one-off costs (imports, first-call kernel setup) in its time.

The summary reports, per method, the test accuracy after the final epoch and the test accuracy at
the epoch chosen on the validation split (with that epoch's validation accuracy), never the best
test epoch.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import torch

from ..layers import plants_of
from ..metering import total_usage
from ..registry import DATASETS, METHODS, MODELS
from ..train import evaluate, train
from .spec import SpecError, call_with_kwargs, load_spec, resolve_spec


class RunTerminated(BaseException):
    """The process received SIGTERM during a run (raised by the handler :func:`run` installs, so the
    failure path marks the run folder failed). Like ``KeyboardInterrupt``, it is not an ``Exception``."""


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

    def make_methods():
        return [call_with_kwargs(METHODS.load(m["name"]), m["args"], where=f"method {m['name']!r}")
                for m in resolved["methods"]]

    return data, make_model, make_methods


def _check_out_dir(out_dir: Path) -> None:
    """The output folder must be a folder (or creatable as one) that we can write to."""
    for path in (out_dir, *out_dir.parents):
        if path.exists():
            if not path.is_dir():
                what = "the output folder" if path == out_dir else f"{str(path)!r}, a parent of the output folder,"
                raise SpecError(f"{what} is a file, not a folder: --out / out_dir={str(out_dir)!r}; pass a "
                                f"folder path (it is created if missing).")
            if not os.access(path, os.W_OK | os.X_OK):
                raise SpecError(f"cannot write into {str(path)!r} (permission denied); pass another out_dir.")
            return


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


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`RunTerminated` (in the main thread only; elsewhere
    Python cannot install signal handlers and the default behaviour stays)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise RunTerminated(f"received signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _warm_up(make_model, make_methods, data, resolved) -> None:
    """One step and one evaluation per method on a throwaway model (fresh plants, fresh method)."""
    batch = min(resolved["train"]["batch_size"], len(data.y_train))
    x, y = data.x_train[:batch], data.y_train[:batch]
    for method in make_methods():
        model = make_model()
        if not method.updates_parameters:
            model.zero_grad(set_to_none=True)
        method.step(model, x, y, torch.nn.functional.cross_entropy)
        evaluate(model, data.x_val[:batch], data.y_val[:batch], execution=method.evaluation)


def _result(label: str, method, history, model, wall_seconds: float, n_test: int) -> dict:
    final, chosen = history.final, history.selected
    return {
        "method": label,
        "upper_bound": method.upper_bound,
        "final_epoch": final["epoch"],
        "final_test_accuracy": final["test_accuracy"],
        "final_val_accuracy": final["val_accuracy"],
        "selected_epoch": chosen["epoch"],
        "selected_val_accuracy": chosen["val_accuracy"],
        "selected_test_accuracy": chosen["test_accuracy"],
        "test_samples": n_test,
        "evaluated_on": final["evaluated_on"],
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "plant_queries": final["train_queries"],
        "plant_samples": final["train_samples"],
        "device_seconds": final["train_device_seconds"],
        "joules": final["train_joules"],
        "wall_seconds": wall_seconds,
        "all_plant_usage": total_usage(plants_of(model)),
    }


def run(spec, *, out_dir: str | Path = "runs", progress: bool = False,
        echo: Callable[[str], None] | None = None, warm_up: bool = True) -> RunResult:
    """Run ``spec`` (a dict or the path of a TOML file). Returns the run folder and the summary.

    Raises :class:`SpecError` (a ``ValueError``) for a bad spec, unknown names, bad arguments, a
    missing data file or an unusable ``out_dir``, and :class:`MethodRequirementError` when a method
    cannot train the model, all before any folder exists. ``warm_up=False`` skips the warm-up step
    (then the first method's wall time includes one-off costs).
    """
    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    resolved = resolve_spec(spec)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    try:
        data, make_model, make_methods = _build(resolved)
        methods = make_methods()
        probe = make_model()  # fail on bad model arguments before any folder exists
    except (KeyError, TypeError, ValueError, FileNotFoundError) as error:
        if isinstance(error, SpecError):
            raise
        raise SpecError(str(error.args[0]) if error.args else str(error)) from error
    for method in methods:  # fails with the methods that would work, before any folder exists
        method.check(probe)
    folder = _new_folder(out_dir, resolved["name"])
    _write_json(folder / "config.json", resolved)
    _write_json(folder / "status.json", {"status": "running", "started": time.time(), "pid": os.getpid()})
    results = []
    try:
        with _sigterm_raises(), (folder / "metrics.jsonl").open("w") as metrics:
            if warm_up:
                _warm_up(make_model, make_methods, data, resolved)
            for method, method_spec in zip(methods, resolved["methods"]):
                label = method_spec["name"]
                model = make_model()
                started = time.perf_counter()

                def log(record, label=label):
                    metrics.write(json.dumps({"method": label, **record}) + "\n")

                history = train(model, method, data, seed=resolved["seed"], callback=log, progress=progress,
                                **resolved["train"])
                wall = time.perf_counter() - started
                metrics.flush()
                result = _result(label, method, history, model, wall, len(data.y_test))
                results.append(result)
                torch.save(model.state_dict(), folder / f"params-{label}.pt")
                if echo is not None:
                    echo(f"  {label}: test accuracy {result['final_test_accuracy']:.3f} (final epoch), "
                         f"{result['selected_test_accuracy']:.3f} (epoch {result['selected_epoch']}, chosen on "
                         f"validation) on the {result['evaluated_on']}, {result['plant_queries']} plant queries")
            summary = {"name": resolved["name"], "data": data.summary(), "seed": resolved["seed"],
                       "results": results}
            from .report import plot_accuracy_vs_queries
            plot_accuracy_vs_queries(folder / "metrics.jsonl", folder / "accuracy_vs_queries.png")
            _write_json(folder / "summary.json", summary)
            _write_json(folder / "status.json", {"status": "completed", "finished": time.time()})
    except BaseException as error:
        (folder / "error.txt").write_text("".join(traceback.format_exception(error)))
        _write_json(folder / "status.json", {"status": "failed", "error": f"{type(error).__name__}: {error}",
                                             "finished": time.time()})
        (folder / "summary.json").unlink(missing_ok=True)
        try:
            error.run_folder = folder  # lets the command line tell a failed run from a user error
        except AttributeError:
            pass
        raise
    return RunResult(folder=folder, summary=summary)
