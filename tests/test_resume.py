"""Resume of a killed run (issue 11, section 3): a run killed with SIGKILL at a random query and resumed
ends with the parameters, metrics and summary of an uninterrupted run, and its device made no query
twice; refusals (no checkpoint, changed configuration, another device) and a completed run."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import resume_toys as T
from pnnlab.checkpoint import PlantIdentityError, ResumeError, dumps_with_references, loads_with_references
from pnnlab.recording import Recording

ROOT = Path(__file__).resolve().parents[1]
TESTS = str(ROOT / "tests")
METHODS = "pat,spsa"  # spsa keeps a generator of its own: method state

CHILD = textwrap.dedent(f"""
    import sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {TESTS!r})
    import resume_toys as T
    T.register()
    if sys.argv[1] == "cli":
        from pnnlab.cli import main
        sys.argv = ["pnnlab"] + sys.argv[2:]
        main()
    from pnnlab.experiments.run import run
    log, out, every = sys.argv[2], sys.argv[3], float(sys.argv[4])
    result = run(T.spec(log, methods=tuple({METHODS!r}.split(","))), out_dir=out, warm_up=False,
                 checkpoint_every_s=every)
    print("FOLDER", result.folder)
""")


def _child(*args, env=None):
    return subprocess.Popen([sys.executable, "-c", CHILD, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def _log(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _outcome(folder: Path):
    """Parameters, metrics (wall clock left out) and summary (wall clock left out) of a run folder."""
    metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    for record in metrics:
        record.pop("wall_seconds")
    summary = json.loads((folder / "summary.json").read_text())
    for result in summary["results"]:
        result.pop("wall_seconds")
    params = {m: torch.load(folder / f"params-{m}.pt") for m in METHODS.split(",")}
    return params, metrics, summary


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run (in a fresh process, like the runs it is compared with)."""
    base = tmp_path_factory.mktemp("reference")
    child = _child("run", base / "device.log", base / "runs", 0.0)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    folder = Path(out.split("FOLDER")[-1].strip())
    with Recording(folder / "queries.sqlite") as recording:
        queries = [(q.plant, q.batch) for q in recording.queries()]
    done = [line[2:] for line in _log(base / "device.log") if line[2] == "done"]
    return folder, queries, done


# kill cases: (checkpoint interval, which queries may be the last one answered before the kill)
CASES = {
    # a checkpoint after every record; killed after the first of the two queries of a training step
    "mid-step": (0.0, lambda i, plant, batch: plant == "pat/0" and batch <= 16),
    # killed in an evaluation that is not the method's last (between two evaluation queries; the
    # evaluation noise generator must continue from where the replayed queries left it)
    "evaluation": (0.0, lambda i, plant, batch: plant.startswith("pat/") and batch > 16 and i < 40),
    # one checkpoint per method start: every query of the method so far is replayed on resume
    "long-replay": (1e9, lambda i, plant, batch: plant == "spsa/1" and batch <= 16),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_run_killed_at_a_random_query_resumes_to_the_uninterrupted_result(case, reference, tmp_path):
    ref_folder, ref_queries, ref_done = reference
    every, eligible = CASES[case]
    candidates = [i for i, (plant, batch) in enumerate(ref_queries) if eligible(i, plant, batch) and i > 0]
    kill_after = random.Random(f"resume-{case}").choice(candidates)  # 0-based index of the last answered query
    log = tmp_path / "device.log"
    child = _child("run", log, tmp_path / "runs", every, env={"RESUME_TEST_HANG_AT": str(kill_after + 2)})
    deadline = time.monotonic() + 120
    while sum(1 for line in _log(log) if line[2] == "start") < kill_after + 2:  # the next query has begun
        assert child.poll() is None, child.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached the query to kill it at"
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    folder = next((tmp_path / "runs").iterdir())
    assert json.loads((folder / "status.json").read_text())["status"] == "running"  # nothing could mark it
    with Recording(folder / "queries.sqlite") as recording:
        assert len(recording) == kill_after + 1  # every answered query is on file, the hung one is not

    resumed = _child("cli", "run", "--resume", folder, "--no-progress",
                     "--checkpoint-every", every) if case == "mid-step" else None
    if resumed is None:
        script = ("import sys; sys.path.insert(0, %r); import resume_toys as T; T.register(); "
                  "from pnnlab.experiments.run import resume; resume(%r, checkpoint_every_s=%r)"
                  % (TESTS, str(folder), every))
        resumed = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err

    params, metrics, summary = _outcome(folder)
    ref_params, ref_metrics, ref_summary = _outcome(ref_folder)
    for method in params:
        assert params[method].keys() == ref_params[method].keys()
        for key in params[method]:
            assert torch.equal(params[method][key], ref_params[method][key]), (method, key)
    assert metrics == ref_metrics
    assert summary == ref_summary
    # the device made no query twice: the physics runs of both processes are those of the reference run
    done = [line[2:] for line in _log(log) if line[2] == "done"]
    pids = [line[0] for line in _log(log) if line[2] == "done"]
    assert done == ref_done
    assert pids.count(pids[0]) == kill_after + 1  # the killed process answered exactly the recorded queries
    with Recording(folder / "queries.sqlite") as recording:
        assert [q.seq for q in recording.queries()] == list(range(len(ref_queries)))
        assert recording.meta["status"] == "closed"
    if case == "long-replay":  # the resumed process replayed the method's queries before the kill
        assert sum(1 for plant, _ in ref_queries[:kill_after + 1] if plant.startswith("spsa/")) > 4

    if case == "mid-step":  # resuming a completed run says so and changes nothing
        before = (folder / "summary.json").stat().st_mtime_ns
        again = _child("cli", "run", "--resume", folder, "--no-progress")
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        assert "already completed" in out
        assert (folder / "summary.json").stat().st_mtime_ns == before


# ---- refusals (in this process) --------------------------------------------------------------------

@pytest.fixture
def interrupted(tmp_path, monkeypatch):
    """A run stopped by Ctrl-C at its 9th plant query (marked failed, resumable)."""
    T.register()
    from pnnlab.experiments.run import run
    measure, calls = T.LoggedTanhPlant._measure, []

    def stopping(self, *args):
        calls.append(1)
        if len(calls) == 9:
            raise KeyboardInterrupt
        return measure(self, *args)

    monkeypatch.setattr(T.LoggedTanhPlant, "_measure", stopping)
    spec = T.spec("", methods=("pat",), epochs=2)
    with pytest.raises(KeyboardInterrupt) as stopped:
        run(spec, out_dir=tmp_path / "runs", warm_up=False, checkpoint_every_s=0.0)
    monkeypatch.setattr(T.LoggedTanhPlant, "_measure", measure)
    return stopped.value.run_folder, spec


def test_an_interrupted_run_resumes_and_a_completed_one_is_left_alone(interrupted):
    from pnnlab.experiments.run import resume
    folder, spec = interrupted
    assert json.loads((folder / "status.json").read_text())["status"] == "failed"
    result = resume(folder, spec=spec)  # the experiment file may be given again: it must match
    assert not result.already_completed and (folder / "summary.json").is_file()
    assert not (folder / "error.txt").exists()
    assert resume(folder).already_completed


def test_a_changed_configuration_is_refused(interrupted):
    from pnnlab.experiments.run import resume
    folder, spec = interrupted
    with pytest.raises(ResumeError, match=r"train\.epochs: 3 here, 2 recorded"):
        resume(folder, spec={**spec, "train": {**spec["train"], "epochs": 3}})
    config = json.loads((folder / "config.json").read_text())
    config["train"]["lr"] = 0.5
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ResumeError, match=r"config\.json .* differs .*train\.lr: 0\.5 here, 0\.05 recorded"):
        resume(folder)


def test_a_different_device_is_refused(interrupted, monkeypatch):
    from pnnlab.experiments.run import resume
    folder, spec = interrupted
    identity = T.LoggedTanhPlant.identity
    monkeypatch.setattr(T.LoggedTanhPlant, "identity", lambda self: identity(self) | {"serial": "B2"})
    with pytest.raises(PlantIdentityError, match=r"plant 'pat/0' is not the device .*serial.*'A1'.*'B2'"):
        resume(folder)
    assert json.loads((folder / "status.json").read_text())["status"] == "failed"  # untouched
    monkeypatch.setattr(T.LoggedTanhPlant, "identity", identity)
    assert resume(folder).summary["results"][0]["method"] == "pat"


def test_a_folder_without_a_checkpoint_is_refused_with_a_clear_message(interrupted, tmp_path):
    from pnnlab.cli import main
    from pnnlab.experiments.run import resume
    folder, _ = interrupted
    with sqlite3.connect(folder / "queries.sqlite") as db:
        db.execute("DELETE FROM checkpoints")
    with pytest.raises(ResumeError, match="holds no checkpoint"):
        resume(folder)
    old = tmp_path / "old-run"  # a run folder written before runs were recorded
    shutil.copytree(folder, old)
    (old / "queries.sqlite").unlink()
    with pytest.raises(ResumeError, match="no recording to resume from"):
        resume(old)
    with pytest.raises(ResumeError, match="not a run folder"):
        resume(tmp_path)
    outcome = CliRunner().invoke(main, ["run", "--resume", str(folder)])
    assert outcome.exit_code == 2 and "error:" in outcome.output and "no checkpoint" in outcome.output
    outcome = CliRunner().invoke(main, ["run"])
    assert outcome.exit_code == 2 and "--resume RUN_DIR" in outcome.output


# ---- pieces --------------------------------------------------------------------------------------

def test_method_state_is_pickled_with_references_to_the_live_model():
    from pnnlab.methods.feedback_alignment import FeedbackAlignment
    model_a = T.build_logged_tanh(in_features=4, n_classes=3)
    model_b = T.build_logged_tanh(in_features=4, n_classes=3)
    affine = model_a[2]
    state = {"module": affine, "param": affine.scale if hasattr(affine, "scale") else next(affine.parameters()),
             "plant": model_a[1].plant, "by_id": {id(affine): 7}, "value": torch.ones(2)}
    restored = loads_with_references(dumps_with_references(state, model_a), model_b)
    assert restored["module"] is model_b[2] and restored["plant"] is model_b[1].plant
    assert restored["param"] is (model_b[2].scale if hasattr(model_b[2], "scale") else next(model_b[2].parameters()))
    assert restored["by_id"] == {id(model_b[2]): 7}  # a cache keyed by id(module) follows the module
    assert torch.equal(restored["value"], torch.ones(2))
    # a method whose cache is keyed by id(): FA's fixed feedback matrices survive the round trip
    fa = FeedbackAlignment(seed=4)
    linear = torch.nn.Linear(3, 2)
    model = torch.nn.Sequential(linear)
    b_matrix = fa.feedback_matrix(linear)
    fresh, model2 = FeedbackAlignment(seed=4), torch.nn.Sequential(torch.nn.Linear(3, 2))
    fresh.load_state_dict(loads_with_references(dumps_with_references(fa.state_dict(), model), model2))
    assert torch.equal(fresh.feedback_matrix(model2[0]), b_matrix)
    assert fresh._feedback._generator.get_state().equal(fa._feedback._generator.get_state())


def test_train_resumed_from_any_state_ends_as_the_uninterrupted_training():
    import copy
    from pnnlab import PhysicsAwareTraining, train
    from pnnlab.data.tabular import load_iris
    data = load_iris(seed=1)
    states = []

    def keep(state):  # what a checkpoint would capture, at this moment
        states.append((state.snapshot(), copy.deepcopy(model.state_dict()),
                       [p.state_dict() for p in plants], [dict(vars(p.meter)) for p in plants]))

    model = T.build_logged_tanh(in_features=4, n_classes=3)
    plants = [model[0].plant, model[1].plant]
    full = train(model, PhysicsAwareTraining(), data, epochs=2, batch_size=16, seed=5, checkpoint=keep,
                 evaluate_every=2)
    final = copy.deepcopy(model.state_dict())
    for at in (0, 3, len(states) - 2):  # start, mid-epoch, after the last step (evaluation pending)
        state, params, plant_states, meters = states[at]
        model = T.build_logged_tanh(in_features=4, n_classes=3)
        model.load_state_dict(params)
        for p, s, m in zip((model[0].plant, model[1].plant), plant_states, meters):
            p.load_state_dict(s)
            vars(p.meter).update(m)
        resumed = train(model, PhysicsAwareTraining(), data, epochs=2, batch_size=16, seed=5,
                        resume=copy.deepcopy(state), evaluate_every=2)
        assert all(torch.equal(final[k], model.state_dict()[k]) for k in final), at
        strip = [{k: v for k, v in r.items() if k != "wall_seconds"} for r in full.records]
        assert [{k: v for k, v in r.items() if k != "wall_seconds"} for r in resumed.records] == strip, at


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # EP's nudges may leave the 0.2 V read range on purpose
def test_an_ep_run_stopped_between_the_free_and_the_nudged_relaxation_resumes_exactly(tmp_path, monkeypatch):
    """Equilibrium propagation on the resistive network: the replayed free equilibrium keeps its private
    warm-start data, so the live nudged relaxation that follows starts where the recorded run's did."""
    from pnnlab.experiments.run import resume, run
    from pnnlab.plants.electronics.resistive_network import ResistiveNetworkPlant
    spec = {"name": "ep", "seed": 2, "data": {"name": "iris"}, "model": {"name": "resistive_classifier", "hidden": [4]},
            "methods": [{"name": "equilibrium_propagation", "beta": 0.05}],
            "train": {"epochs": 1, "batch_size": 32, "lr": 0.01}}
    reference = run(spec, out_dir=tmp_path / "reference", warm_up=False)
    relax, calls = ResistiveNetworkPlant._relax, []

    def stopping(self, x, controls, nudge, initial, generator):
        calls.append(nudge)
        if len(calls) == 5:  # the 2nd training step: its free relaxation answered, the first nudge not
            assert nudge is not None
            raise KeyboardInterrupt
        return relax(self, x, controls, nudge, initial, generator)

    monkeypatch.setattr(ResistiveNetworkPlant, "_relax", stopping)
    with pytest.raises(KeyboardInterrupt) as stopped:
        run(spec, out_dir=tmp_path / "runs", warm_up=False, checkpoint_every_s=0.0)
    monkeypatch.setattr(ResistiveNetworkPlant, "_relax", relax)
    folder = stopped.value.run_folder
    with Recording(folder / "queries.sqlite") as recording:
        assert [q.info["nudge"] for q in recording.queries()] == ["free", "force", "force", "free"]
    resume(folder)
    ref = torch.load(reference.folder / "params-equilibrium_propagation.pt")
    got = torch.load(folder / "params-equilibrium_propagation.pt")
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    strip = lambda f: [{k: v for k, v in json.loads(line).items() if k != "wall_seconds"}  # noqa: E731
                       for line in (f / "metrics.jsonl").read_text().splitlines()]
    assert strip(folder) == strip(reference.folder)
