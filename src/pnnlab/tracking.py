"""Run tracking: a run's metric records mirrored to TensorBoard and, when asked, to MLflow.

Every run folder holds ``metrics.jsonl`` (the record of truth). With TensorBoard installed
(``pip install "pnnlab[tracking]"``) a run also writes TensorBoard event files beside it, one folder per
method (``RUN_DIR/tensorboard/<method>/``), with TensorBoard's own writer
(:class:`torch.utils.tensorboard.SummaryWriter`): open them with ``tensorboard --logdir runs``. Scalars:

- ``train/<key>`` for every step record (``loss``, ``train_queries``, ``train_device_seconds``, ...),
- ``eval/<key>`` for every evaluation (``val_accuracy``, ``test_accuracy``, ``val_loss``, ...),

each at the record's training step. A resumed run rewrites its TensorBoard folder from the records kept
up to the checkpoint, so the event files always say what ``metrics.jsonl`` says (nothing doubled).

An experiment file turns tracking on and off in a ``[tracking]`` table::

    [tracking]
    tensorboard = true            # default: "auto" (write when TensorBoard is installed)
    mlflow = true                 # default false
    mlflow_uri = "http://127.0.0.1:5000"   # optional; MLflow's own default (./mlruns) otherwise
    mlflow_experiment = "vowels"  # optional; defaults to the spec's name

MLflow (``pip install mlflow``, not a pnnlab dependency) gets the resolved configuration as parameters,
every record as metrics named ``<method>.<key>`` at its step, and the run folder as a tag; its run id is
kept in ``RUN_DIR/mlflow.json`` so a resumed run continues the same MLflow run. MLflow keeps every logged
value, so the records between a run's last checkpoint and its interruption appear twice there after a
resume (TensorBoard and ``metrics.jsonl`` have them once).
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any, Iterable

__all__ = ["RunTracking", "TrackingError", "resolve_tracking", "tensorboard_available"]

TRACKING_KEYS = {"tensorboard", "mlflow", "mlflow_uri", "mlflow_experiment"}
_NOT_SCALARS = {"kind", "step", "epoch", "evaluated_on", "method"}


class TrackingError(ValueError):
    """A ``[tracking]`` table that cannot be honoured (bad keys, a tracker that is not installed)."""


def tensorboard_available() -> bool:
    """Whether TensorBoard's writer can be imported (the ``tracking`` extra)."""
    try:
        importlib.import_module("torch.utils.tensorboard")
    except ImportError:
        return False
    return True


def resolve_tracking(table: Any) -> dict:
    """Check a ``[tracking]`` table and fill in the defaults: ``{tensorboard, mlflow, mlflow_uri,
    mlflow_experiment}`` with ``tensorboard`` one of ``True``, ``False``, ``"auto"``."""
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise TrackingError(f"[tracking] must be a table, got {type(table).__name__} {table!r}.")
    unknown = sorted(set(table) - TRACKING_KEYS)
    if unknown:
        raise TrackingError(f"unknown [tracking] key(s) {unknown}; allowed: {sorted(TRACKING_KEYS)}.")
    resolved = {"tensorboard": table.get("tensorboard", "auto"), "mlflow": table.get("mlflow", False),
                "mlflow_uri": table.get("mlflow_uri"), "mlflow_experiment": table.get("mlflow_experiment")}
    if resolved["tensorboard"] not in (True, False, "auto"):
        raise TrackingError(f"[tracking] tensorboard must be true, false or \"auto\", got "
                            f"{resolved['tensorboard']!r}.")
    if not isinstance(resolved["mlflow"], bool):
        raise TrackingError(f"[tracking] mlflow must be true or false, got {resolved['mlflow']!r}.")
    for key in ("mlflow_uri", "mlflow_experiment"):
        value = resolved[key]
        if value is not None and (not isinstance(value, str) or not value):
            raise TrackingError(f"[tracking] {key} must be a non-empty string, got {value!r}.")
        if value is not None and not resolved["mlflow"]:
            raise TrackingError(f"[tracking] {key} is set but mlflow is not; add mlflow = true to log to MLflow.")
    if resolved["tensorboard"] is True and not tensorboard_available():
        raise TrackingError("[tracking] tensorboard = true but TensorBoard is not installed: "
                            "pip install 'pnnlab[tracking]' (or pip install tensorboard), or set "
                            "tensorboard = false.")
    if resolved["mlflow"]:
        try:
            importlib.import_module("mlflow")
        except ImportError as error:
            raise TrackingError("[tracking] mlflow = true but MLflow is not installed: pip install mlflow, "
                                "or set mlflow = false.") from error
    return resolved


def _scalars(record: dict) -> Iterable[tuple[str, float]]:
    for key, value in record.items():
        if key in _NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        yield key, float(value)


class _TensorBoard:
    def __init__(self, root: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer_class = SummaryWriter
        self.root = root
        self._writers: dict[str, Any] = {}

    def log(self, method: str, record: dict) -> None:
        writer = self._writers.get(method)
        if writer is None:
            writer = self._writers[method] = self._writer_class(log_dir=str(self.root / method))
        group = "eval" if record.get("kind") == "eval" else "train"
        for key, value in _scalars(record):
            writer.add_scalar(f"{group}/{key}", value, global_step=int(record.get("step", 0)))

    def flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self, status: str) -> None:
        for writer in self._writers.values():
            writer.close()


class _MLflow:
    def __init__(self, folder: Path, config: dict, uri: str | None, experiment: str | None) -> None:
        self.mlflow = importlib.import_module("mlflow")
        self.ids_file = folder / "mlflow.json"
        if uri is not None:
            self.mlflow.set_tracking_uri(uri)
        self.mlflow.set_experiment(experiment or config.get("name", "pnnlab"))
        saved = json.loads(self.ids_file.read_text())["run_id"] if self.ids_file.is_file() else None
        if saved is not None:
            self.run = self.mlflow.start_run(run_id=saved)
        else:
            self.run = self.mlflow.start_run(run_name=folder.name)
            self.ids_file.write_text(json.dumps({"run_id": self.run.info.run_id}) + "\n")
            self.mlflow.log_params({k: str(v)[:500] for k, v in _flatten(config).items()})
            self.mlflow.set_tag("pnnlab.run_folder", str(folder.resolve()))

    def log(self, method: str, record: dict) -> None:
        metrics = {f"{method}.{key}": value for key, value in _scalars(record)}
        if metrics:
            self.mlflow.log_metrics(metrics, step=int(record.get("step", 0)))

    def flush(self) -> None:
        pass

    def close(self, status: str) -> None:
        self.mlflow.end_run(status="FINISHED" if status == "completed" else "FAILED")


def _flatten(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    flat.update(_flatten(item, f"{name}.{i}."))
                else:
                    flat[f"{name}.{i}"] = item
        else:
            flat[name] = value
    return flat


class RunTracking:
    """The trackers of one run folder, fed every metric record the run writes to ``metrics.jsonl``.

    ``kept`` (a resume) is the list of ``(method, record)`` pairs kept up to the checkpoint: the
    TensorBoard folder is rebuilt from them before the run continues. A tracker that fails to write is
    closed and reported once through ``echo``; it never stops the run (``metrics.jsonl`` is the record).
    """

    def __init__(self, folder: Path, config: dict, *, kept: list[tuple[str, dict]] | None = None,
                 echo=None) -> None:
        settings = config.get("tracking") or resolve_tracking(None)
        self._echo = echo
        self._sinks: list[Any] = []
        use_tb = settings["tensorboard"] is True or (settings["tensorboard"] == "auto" and tensorboard_available())
        if use_tb:
            root = Path(folder) / "tensorboard"
            if kept is not None and root.exists():
                shutil.rmtree(root)  # rebuilt from the kept records: the events say what metrics.jsonl says
            self._sinks.append(_TensorBoard(root))
            for method, record in kept or []:
                self._sinks[-1].log(method, record)
        if settings["mlflow"]:
            self._sinks.append(_MLflow(Path(folder), config, settings["mlflow_uri"], settings["mlflow_experiment"]))

    @property
    def active(self) -> list[str]:
        return [type(sink).__name__.strip("_").lower() for sink in self._sinks]

    def log(self, method: str, record: dict) -> None:
        for sink in list(self._sinks):
            try:
                sink.log(method, record)
            except Exception as error:  # a tracker never stops a run: metrics.jsonl is the record
                self._drop(sink, error)

    def flush(self) -> None:
        for sink in list(self._sinks):
            try:
                sink.flush()
            except Exception as error:
                self._drop(sink, error)

    def close(self, status: str) -> None:
        for sink in self._sinks:
            try:
                sink.close(status)
            except Exception as error:
                self._report(sink, error)
        self._sinks = []

    def _drop(self, sink, error: Exception) -> None:
        self._sinks.remove(sink)
        self._report(sink, error)
        try:
            sink.close("failed")
        except Exception:
            pass

    def _report(self, sink, error: Exception) -> None:
        if self._echo is not None:
            self._echo(f"  tracking: {type(sink).__name__.strip('_')} stopped ({type(error).__name__}: {error}); "
                       f"metrics.jsonl still has every record")
