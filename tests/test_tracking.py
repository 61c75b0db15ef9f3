"""Run tracking (issue 12, section 2): TensorBoard event files mirror metrics.jsonl, also across a
resume; the MLflow adapter logs parameters, metrics and the run's end; bad [tracking] tables are refused."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

import resume_toys as T
from pnnlab.experiments.run import resume, run
from pnnlab.experiments.spec import SpecError, resolve_spec

pytest.importorskip("torch.utils.tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


@pytest.fixture(autouse=True)
def _toys():
    T.register()


def _events(folder: Path, method: str) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(folder / "tensorboard" / method))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _records(folder: Path, method: str) -> list[dict]:
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["method"] == method]


def _expected(records: list[dict], kind: str, key: str) -> list[tuple[int, float]]:
    return [(r["step"], pytest.approx(r[key], rel=1e-6)) for r in records if r["kind"] == kind]


def test_tensorboard_events_mirror_the_metrics_of_every_method(tmp_path):
    result = run(T.spec("", methods=("pat", "spsa"), epochs=2), out_dir=tmp_path, warm_up=False)
    for method in ("pat", "spsa"):
        events, records = _events(result.folder, method), _records(result.folder, method)
        assert events["train/loss"] == _expected(records, "step", "loss")
        assert events["train/train_queries"] == _expected(records, "step", "train_queries")
        assert events["eval/test_accuracy"] == _expected(records, "eval", "test_accuracy")
        assert events["eval/val_accuracy"] == _expected(records, "eval", "val_accuracy")
        assert not any(tag.endswith(("/epoch", "/step", "/kind")) for tag in events)


def test_a_resumed_run_rewrites_its_events_without_doubles(tmp_path, monkeypatch):
    calls = {"n": 0}
    measure = T.LoggedTanhPlant._measure

    def interrupted(self, x, controls, generator):
        calls["n"] += 1
        if calls["n"] == 23:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the run, after some checkpoints
        return measure(self, x, controls, generator)

    monkeypatch.setattr(T.LoggedTanhPlant, "_measure", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(T.spec("", epochs=3), out_dir=tmp_path / "a", warm_up=False, checkpoint_every_s=0)
    folder = next((tmp_path / "a").iterdir())
    before = _events(folder, "pat")["train/loss"]
    result = resume(folder, checkpoint_every_s=0)
    events, records = _events(result.folder, "pat"), _records(result.folder, "pat")
    assert len(before) < len(events["train/loss"])
    assert events["train/loss"] == _expected(records, "step", "loss")  # one event per record, in order
    assert events["eval/test_accuracy"] == _expected(records, "eval", "test_accuracy")


def test_a_tracker_that_cannot_start_fails_the_run_cleanly(tmp_path, monkeypatch):
    broken = _FakeMLflow()

    def refuse(name):
        raise ConnectionError(f"no tracking server for experiment {name!r}")

    broken.set_experiment = refuse
    monkeypatch.setitem(sys.modules, "mlflow", broken)
    spec = T.spec("", epochs=1) | {"tracking": {"mlflow": True}}
    with pytest.raises(ConnectionError, match="no tracking server"):
        run(spec, out_dir=tmp_path, warm_up=False)
    folder = next(tmp_path.iterdir())
    assert json.loads((folder / "status.json").read_text())["status"] == "failed"
    assert "no tracking server" in (folder / "error.txt").read_text()


def test_tracking_table_switches_tensorboard_off_and_refuses_bad_keys(tmp_path):
    spec = T.spec("", epochs=1) | {"tracking": {"tensorboard": False}}
    result = run(spec, out_dir=tmp_path, warm_up=False)
    assert not (result.folder / "tensorboard").exists() and (result.folder / "metrics.jsonl").is_file()
    with pytest.raises(SpecError, match="unknown \\[tracking\\] key"):
        resolve_spec(T.spec("") | {"tracking": {"tensorbored": True}})
    with pytest.raises(SpecError, match="tensorboard must be true, false"):
        resolve_spec(T.spec("") | {"tracking": {"tensorboard": "yes"}})
    with pytest.raises(SpecError, match="mlflow_uri is set but mlflow is not"):
        resolve_spec(T.spec("") | {"tracking": {"mlflow_uri": "http://127.0.0.1:5000"}})


class _FakeMLflow(types.ModuleType):
    """Records the calls pnnlab makes, with MLflow's function names and signatures."""

    def __init__(self):
        super().__init__("mlflow")
        self.calls, self.runs = [], 0

    def set_tracking_uri(self, uri):
        self.calls.append(("uri", uri))

    def set_experiment(self, name):
        self.calls.append(("experiment", name))

    def start_run(self, run_id=None, run_name=None):
        self.runs += 1
        self.calls.append(("start", run_id, run_name))
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id or f"run{self.runs}"))

    def log_params(self, params):
        self.calls.append(("params", dict(params)))

    def set_tag(self, key, value):
        self.calls.append(("tag", key, value))

    def log_metrics(self, metrics, step):
        self.calls.append(("metrics", dict(metrics), step))

    def end_run(self, status):
        self.calls.append(("end", status))


def test_mlflow_adapter_logs_params_metrics_and_the_end_and_resumes_the_same_run(tmp_path, monkeypatch):
    fake = _FakeMLflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    spec = T.spec("", epochs=2) | {"tracking": {"mlflow": True, "mlflow_uri": "http://127.0.0.1:5999",
                                                "mlflow_experiment": "toys", "tensorboard": False}}
    result = run(spec, out_dir=tmp_path, warm_up=False)
    assert ("uri", "http://127.0.0.1:5999") in fake.calls and ("experiment", "toys") in fake.calls
    params = next(c[1] for c in fake.calls if c[0] == "params")
    assert params["methods.0.name"] == "pat" and params["train.epochs"] == "2"
    logged = [c for c in fake.calls if c[0] == "metrics"]
    evals = [r for r in _records(result.folder, "pat") if r["kind"] == "eval"]
    tests = [(c[2], c[1]["pat.test_accuracy"]) for c in logged if "pat.test_accuracy" in c[1]]
    assert tests == [(r["step"], pytest.approx(r["test_accuracy"])) for r in evals]
    assert fake.calls[-1] == ("end", "FINISHED")
    run_id = json.loads((result.folder / "mlflow.json").read_text())["run_id"]
    assert run_id == "run1"

    # a failed run ends its MLflow run FAILED, and its resume continues the same MLflow run
    fake2 = _FakeMLflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake2)
    measure = T.LoggedTanhPlant._measure
    calls = {"n": 0}

    def interrupted(self, x, controls, generator):
        calls["n"] += 1
        if calls["n"] == 9:
            raise RuntimeError("device lost")
        return measure(self, x, controls, generator)

    monkeypatch.setattr(T.LoggedTanhPlant, "_measure", interrupted)
    with pytest.raises(RuntimeError, match="device lost"):
        run(spec, out_dir=tmp_path / "b", warm_up=False, checkpoint_every_s=0)
    assert fake2.calls[-1] == ("end", "FAILED")
    folder = next((tmp_path / "b").iterdir())
    resume(folder, checkpoint_every_s=0)
    starts = [c for c in fake2.calls if c[0] == "start"]
    assert starts[1][1] == json.loads((folder / "mlflow.json").read_text())["run_id"]
    assert fake2.calls[-1] == ("end", "FINISHED")


def test_real_mlflow_file_store_when_installed(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 wants a database; a folder is enough here
    uri = (tmp_path / "mlruns").as_uri()
    spec = T.spec("", epochs=1) | {"tracking": {"mlflow": True, "mlflow_uri": uri, "tensorboard": False}}
    result = run(spec, out_dir=tmp_path / "runs", warm_up=False)
    run_id = json.loads((result.folder / "mlflow.json").read_text())["run_id"]
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    finished = client.get_run(run_id)
    assert finished.info.status == "FINISHED"
    history = client.get_metric_history(run_id, "pat.test_accuracy")
    assert [m.value for m in history] == pytest.approx([r["test_accuracy"] for r in _records(result.folder, "pat")
                                                         if r["kind"] == "eval"])
