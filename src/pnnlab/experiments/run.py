"""Run an experiment spec and write a run folder.

A run folder holds ``config.json`` (the resolved spec), ``metrics.jsonl`` (one JSON record per training
step and per evaluation, tagged with the method), ``params-<method>.pt`` (final parameters), and on success
``summary.json`` and ``accuracy_vs_queries.png``; with TensorBoard installed, ``tensorboard/<method>/``
event files of the same records (:mod:`pnnlab.tracking`; an optional ``[tracking]`` table also logs to
MLflow). ``status.json`` says ``running``, ``completed`` or
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

Every plant query of the run is recorded in ``queries.sqlite`` (the run's configuration in its
metadata, each plant's identity; plants named ``<method>/<i>``), with checkpoints, so that
:func:`resume` (``pnnlab run --resume RUN_DIR``) continues a killed or interrupted run to the same
parameters, metrics and summary as an uninterrupted one, replaying the queries recorded after the
checkpoint instead of asking the device again (:mod:`pnnlab.checkpoint`). The warm-up's throwaway
plants are not recorded; a resumed run does not warm up again (its ``wall_seconds`` include one-off
costs).

A spec with a ``[remote]`` table trains against a device served by ``pnnlab serve``
(:mod:`.remote_spec`): the run folder's ``remote.json`` fixes the client id, the warm-up is skipped
(no device query happens off the record), and each method's connection releases the device's lease
when the method ends.
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

from .. import checkpoint as ckpt
from ..layers import plants_of
from ..metering import total_usage
from ..registry import DATASETS, METHODS, MODELS
from ..tracking import RunTracking
from ..train import TrainState, evaluate, train
from .remote_spec import close_remote, new_client_id, saved_client_id
from .spec import SpecError, call_with_kwargs, load_spec, resolve_spec

#: default wall time between checkpoints (seconds); 0 checkpoints after every step and evaluation
CHECKPOINT_EVERY_S = 10.0


class RunTerminated(BaseException):
    """The process received SIGTERM during a run (raised by the handler :func:`run` installs, so the
    failure path marks the run folder failed). Like ``KeyboardInterrupt``, it is not an ``Exception``."""


@dataclass
class RunResult:
    folder: Path
    summary: dict
    #: True when :func:`resume` found the run already completed and did nothing
    already_completed: bool = False


def _build(resolved: dict):
    data = call_with_kwargs(DATASETS.load(resolved["data"]["name"]), resolved["data"]["args"],
                            where=f"dataset {resolved['data']['name']!r}")
    model_args = {"in_features": data.in_features, "n_classes": data.n_classes, "seed": resolved["seed"],
                  **resolved["model"]["args"]}

    remote = resolved.get("remote")

    def make_model(client_id: str | None = None):
        model = call_with_kwargs(MODELS.load(resolved["model"]["name"]), dict(model_args),
                                 where=f"model {resolved['model']['name']!r}")
        if remote is not None:  # the one physical layer talks to the served device instead
            from .remote_spec import attach_remote
            attach_remote(model, remote, client_id=client_id)
        return model

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
        echo: Callable[[str], None] | None = None, warm_up: bool = True,
        checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> RunResult:
    """Run ``spec`` (a dict or the path of a TOML file). Returns the run folder and the summary.

    Raises :class:`SpecError` (a ``ValueError``) for a bad spec, unknown names, bad arguments, a
    missing data file or an unusable ``out_dir``, and :class:`MethodRequirementError` when a method
    cannot train the model, all before any folder exists. ``warm_up=False`` skips the warm-up step
    (then the first method's wall time includes one-off costs). ``checkpoint_every_s`` is the wall time
    between checkpoints (0: after every step and evaluation); it changes what a resume redoes, never
    its result.
    """
    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    resolved = resolve_spec(spec)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    try:
        data, make_model, make_methods = _build(resolved)
        methods = make_methods()
        probe = make_model()  # fail on bad model arguments (or an unreachable device) before any folder exists
    except (KeyError, TypeError, ValueError, FileNotFoundError) as error:
        if isinstance(error, SpecError):
            raise
        raise SpecError(str(error.args[0]) if error.args else str(error)) from error
    try:
        for method in methods:  # fails with the methods that would work, before any folder exists
            method.check(probe)
    finally:
        close_remote(probe)  # a served device's lease goes back before the run takes it
    folder = _new_folder(out_dir, resolved["name"])
    client_id = new_client_id(folder) if "remote" in resolved else None
    _write_json(folder / "config.json", resolved)
    _write_json(folder / "status.json", {"status": "running", "started": time.time(), "pid": os.getpid()})
    try:
        recorder = ckpt.RunRecorder.create(folder / "queries.sqlite", metadata={"config": _normal(resolved)})
    except BaseException as error:
        _mark_failed(folder, error)
        raise
    return _execute(folder, resolved, data, make_model, make_methods, methods, recorder, start=None, progress=progress,
                    echo=echo, warm_up=warm_up, checkpoint_every_s=checkpoint_every_s, client_id=client_id)


def resume(run_dir: str | Path, *, spec=None, progress: bool = False, echo: Callable[[str], None] | None = None,
           checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> RunResult:
    """Continue the run in ``run_dir`` (killed, interrupted or failed) from its newest checkpoint; it ends
    with the parameters, metrics and summary an uninterrupted run would have written. The queries
    recorded after the checkpoint are answered from ``queries.sqlite``, not asked again.

    A completed run is left as it is (``already_completed=True``). Refused with
    :class:`~pnnlab.checkpoint.ResumeError` (a ``ValueError``): a folder that is not a run folder or
    has no checkpoint, a ``config.json`` that differs from the configuration the run recorded, a
    ``spec`` (optional: the experiment file the run was started from) that resolves to another
    configuration, a run that still seems to be running (its process is alive), and a plant whose
    identity differs from the recorded one (:class:`~pnnlab.checkpoint.PlantIdentityError`).
    Checkpoints are pickles: resume only run folders you wrote yourself."""
    folder = Path(run_dir)
    if not (folder / "config.json").is_file() or not (folder / "status.json").is_file():
        raise ckpt.ResumeError(f"{str(folder)!r} is not a run folder (no config.json and status.json); pass the "
                               f"folder that `pnnlab run` printed.")
    status = json.loads((folder / "status.json").read_text())
    if status.get("status") == "completed":
        return RunResult(folder=folder, summary=json.loads((folder / "summary.json").read_text()),
                         already_completed=True)
    resolved = json.loads((folder / "config.json").read_text())
    if spec is not None:
        wanted = _normal(resolve_spec(load_spec(spec) if isinstance(spec, (str, Path)) else spec))
        if wanted != _normal(resolved):
            raise ckpt.ResumeError(f"the experiment spec differs from the configuration of run {str(folder)!r} "
                                   f"({_first_difference(wanted, _normal(resolved))}); a run resumes with the "
                                   f"configuration it started with. Start a new run for the changed spec.")
    pid = status.get("pid")
    if status.get("status") == "running" and isinstance(pid, int) and pid != os.getpid() and _alive(pid):
        raise ckpt.ResumeError(f"run {str(folder)!r} is marked running and its process {pid} is alive; stop it "
                               f"first (a run is resumed only once it has stopped).")
    recorder = ckpt.RunRecorder.open(folder / "queries.sqlite")
    try:
        recorded = recorder.meta.get("user", {}).get("config")
        if recorded != _normal(resolved):
            raise ckpt.ResumeError(f"config.json of run {str(folder)!r} differs from the configuration the run "
                                   f"recorded ({_first_difference(_normal(resolved), recorded)}); it was edited "
                                   f"after the run started. Restore it, or start a new run.")
        try:
            data, make_model, make_methods = _build(resolved)
            methods = make_methods()
        except (KeyError, TypeError, ValueError, FileNotFoundError) as error:
            raise SpecError(str(error.args[0]) if error.args else str(error)) from error
        method_index, payload = recorder.checkpoint()
        start = (method_index, ckpt.read(payload))
        # the device check before anything changes: the plants of the method that resumes must be the
        # recorded ones (the model built here is thrown away; the global generators are restored later)
        client_id = saved_client_id(folder) if "remote" in resolved else None
        check = make_model(client_id)
        try:
            recorder.check_identity(_plant_names(resolved, method_index, check))
        finally:
            close_remote(check)
        records = recorder.records()
        with (folder / "metrics.jsonl").open("w") as metrics:  # exactly the records up to the checkpoint
            for index, record in records:
                metrics.write(json.dumps({"method": resolved["methods"][index]["name"], **record}) + "\n")
    except BaseException:
        recorder.close(status="open")
        raise
    (folder / "error.txt").unlink(missing_ok=True)
    _write_json(folder / "status.json", {"status": "running", "started": status.get("started"),
                                         "resumed": time.time(), "pid": os.getpid(),
                                         "resumes": int(status.get("resumes", 0)) + 1})
    if echo is not None:
        echo(f"resuming {folder} at method {resolved['methods'][method_index]['name']!r}, step "
             f"{start[1]['train'].step}; {recorder.pending} recorded queries will be replayed")
    return _execute(folder, resolved, data, make_model, make_methods, methods, recorder, start=start, progress=progress,
                    echo=echo, warm_up=False, checkpoint_every_s=checkpoint_every_s, client_id=client_id)


class _Checkpointer:
    """``train(checkpoint=...)`` of a run: writes a checkpoint at the start and at the end of the method
    and in between at the first record after ``every_s`` seconds, never while recorded queries are still
    being replayed (a checkpoint then would skip them)."""

    def __init__(self, recorder, index: int, model, method, results: list, every_s: float, stored: int,
                 epochs: int) -> None:
        self.recorder, self.index, self.model, self.method, self.results = recorder, index, model, method, results
        self.every_s, self.epochs = every_s, epochs
        self.stored = stored  # records of this method already on file
        self.last = -float("inf")

    def __call__(self, state: TrainState) -> None:
        now = time.perf_counter()
        forced = (state.step == 0 and not state.records) or state.finished(self.epochs)
        if self.recorder.pending or not (forced or now - self.last >= self.every_s):
            return
        payload = ckpt.capture(method_index=self.index, state=state, model=self.model, method=self.method,
                               results=self.results)
        new = [(self.index, r) for r in state.records[self.stored:]]
        self.recorder.write_checkpoint(payload, method_index=self.index, step=state.step, records=new)
        self.stored = len(state.records)
        self.last = now


def _execute(folder, resolved, data, make_model, make_methods, methods, recorder, *, start, progress, echo, warm_up,
             checkpoint_every_s, client_id=None) -> RunResult:
    every_s = float(checkpoint_every_s)
    results = [] if start is None else list(start[1]["results"])
    first = 0 if start is None else start[0]
    names = [m["name"] for m in resolved["methods"]]
    tracking = None
    try:
        kept = None if start is None else [(names[i], record) for i, record in recorder.records()]
        tracking = RunTracking(folder, resolved, kept=kept, echo=echo)
        with _sigterm_raises(), (folder / "metrics.jsonl").open("a" if start else "w") as metrics:
            if warm_up and "remote" not in resolved:  # a served device is never queried off the record
                _warm_up(make_model, make_methods, data, resolved)
            for index in range(first, len(methods)):
                method, label = methods[index], names[index]
                model = make_model(client_id)
                named = _plant_names(resolved, index, model)
                if named:  # a purely digital model (a baseline) has no plant queries to record
                    recorder.add_plants(named)
                resume_state, stored = None, 0
                if start is not None and index == first:
                    mine = [r for i, r in recorder.records() if i == index]
                    resume_state = ckpt.restore(start[1], model=model, method=method, records=mine)
                    stored = len(mine)
                started = time.perf_counter() - (resume_state.wall_seconds if resume_state else 0.0)

                def log(record, label=label):
                    metrics.write(json.dumps({"method": label, **record}) + "\n")
                    tracking.log(label, record)

                saver = _Checkpointer(recorder, index, model, method, results, every_s, stored,
                                     resolved["train"]["epochs"])
                history = train(model, method, data, seed=resolved["seed"], callback=log, progress=progress,
                                resume=resume_state, checkpoint=saver, **resolved["train"])
                wall = time.perf_counter() - started
                metrics.flush()
                tracking.flush()
                result = _result(label, method, history, model, wall, len(data.y_test))
                results.append(result)
                torch.save(model.state_dict(), folder / f"params-{label}.pt")
                close_remote(model)
                if echo is not None:
                    echo(f"  {label}: test accuracy {result['final_test_accuracy']:.3f} (final epoch), "
                         f"{result['selected_test_accuracy']:.3f} (epoch {result['selected_epoch']}, chosen on "
                         f"validation) on the {result['evaluated_on']}, {result['plant_queries']} plant queries")
            if recorder.pending:
                raise ckpt.ReplayMismatchError(
                    f"the resumed run ended with {recorder.pending} recorded queries not asked again; it diverged "
                    f"from the recorded run.")
            summary = {"name": resolved["name"], "data": data.summary(), "seed": resolved["seed"],
                       "results": results}
            from .report import plot_accuracy_vs_queries
            plot_accuracy_vs_queries(folder / "metrics.jsonl", folder / "accuracy_vs_queries.png")
            _write_json(folder / "summary.json", summary)
            recorder.close(status="closed")
            tracking.close("completed")
            _write_json(folder / "status.json", {"status": "completed", "finished": time.time()})
    except BaseException as error:
        if tracking is not None:
            tracking.close("failed")
        recorder.close(status=f"failed: {type(error).__name__}: {error}")
        _mark_failed(folder, error)
        raise
    return RunResult(folder=folder, summary=summary)


def _plant_names(resolved: dict, index: int, model) -> dict:
    """The recording names of a method's plants: ``<method>/<i>`` (``<method>.<index>/<i>`` when a spec
    lists the same method twice)."""
    names = [m["name"] for m in resolved["methods"]]
    label = names[index]
    prefix = label if names.count(label) == 1 else f"{label}.{index}"
    return {f"{prefix}/{j}": p for j, p in enumerate(ckpt._unique_plants(model))}


def _mark_failed(folder: Path, error: BaseException) -> None:
    (folder / "error.txt").write_text("".join(traceback.format_exception(error)))
    _write_json(folder / "status.json", {"status": "failed", "error": f"{type(error).__name__}: {error}",
                                         "finished": time.time()})
    (folder / "summary.json").unlink(missing_ok=True)
    try:
        error.run_folder = folder  # lets the command line tell a failed run from a user error
    except AttributeError:
        pass


def _normal(config):
    """A configuration as its JSON file holds it (tuples become lists)."""
    return json.loads(json.dumps(config, default=str))


def _first_difference(a, b, where="") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (u, v) in enumerate(zip(a, b)):
            if u != v:
                return _first_difference(u, v, f"{where}[{i}]")
    return f"{where or 'the configuration'}: {a!r} here, {b!r} recorded"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
