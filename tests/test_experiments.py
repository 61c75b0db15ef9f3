"""Experiment specs, run folders and the command line."""

import json

import pytest
import torch
from click.testing import CliRunner

from pnnlab import MethodRequirementError
from pnnlab.cli import main
from pnnlab.experiments import SpecError, format_table, resolve_spec, run


def tiny_spec(**overrides):
    spec = {
        "name": "tiny",
        "seed": 0,
        "data": {"name": "iris"},
        "model": {"name": "oscillator_classifier", "mismatch": "wright2022"},
        "methods": [{"name": "in_silico"}, {"name": "pat"}],
        "train": {"epochs": 2, "lr": 0.05, "batch_size": 64},
    }
    spec.update(overrides)
    return spec


def test_run_writes_a_complete_run_folder(tmp_path):
    result = run(tiny_spec(), out_dir=tmp_path)
    folder = result.folder
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "metrics.jsonl", "summary.json", "status.json", "accuracy_vs_queries.png",
            "params-in_silico.pt", "params-pat.pt"} <= names
    assert json.loads((folder / "status.json").read_text())["status"] == "completed"
    summary = json.loads((folder / "summary.json").read_text())
    by_method = {r["method"]: r for r in summary["results"]}
    assert by_method["in_silico"]["plant_queries"] == 0
    assert by_method["pat"]["plant_queries"] == 2 * 2 * 2  # 2 layers x 2 steps/epoch x 2 epochs
    assert all(r["evaluated_on"] == "plant" for r in summary["results"])
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    # the summary reports the final test accuracy and the one at the epoch chosen on validation
    for r in summary["results"]:
        evals = [e for e in records if e["method"] == r["method"] and e["kind"] == "eval"]
        assert r["final_test_accuracy"] == evals[-1]["test_accuracy"] and r["final_epoch"] == 2
        chosen = max(evals, key=lambda e: (e["val_accuracy"], -e["val_loss"], -e["epoch"]))
        assert r["selected_epoch"] == chosen["epoch"]
        assert r["selected_test_accuracy"] == chosen["test_accuracy"]
        assert r["selected_val_accuracy"] == chosen["val_accuracy"]
        assert "test_accuracy" not in r and "best_test_accuracy" not in r
        assert r["test_samples"] == 38 and r["trainable_parameters"] > 0
    assert {r["method"] for r in records} == {"in_silico", "pat"}
    assert sum(r["kind"] == "eval" for r in records) == 4
    config = json.loads((folder / "config.json").read_text())
    assert config["train"]["epochs"] == 2 and config["model"]["args"] == {"mismatch": "wright2022"}


@pytest.mark.parametrize("change, words", [
    ({"data": {"name": "vowel"}}, "unknown dataset 'vowel'"),
    ({"model": {"name": "oscillator_classifier", "n_layers_typo": 3}}, "n_layers_typo"),
    ({"methods": [{"name": "pat"}, {"name": "nope"}]}, "unknown method 'nope'"),
    ({"train": {"epochs": 0}}, "epochs must be a positive integer"),
    ({"train": {"epoch": 3}}, "unknown [train] key"),
    ({"optimiser": {}}, "unknown section"),
    ({"data": {"name": "iris", "test_fraction": 2.0}}, "test_fraction"),
])
def test_bad_specs_fail_before_any_folder_is_written(tmp_path, change, words):
    with pytest.raises(SpecError) as info:
        run(tiny_spec(**change), out_dir=tmp_path)
    assert words in str(info.value)
    assert not any(tmp_path.iterdir())


def test_missing_data_file_is_a_clear_error(tmp_path):
    spec = tiny_spec(data={"name": "vowels", "path": str(tmp_path / "nowhere.csv")})
    with pytest.raises(SpecError, match="does not exist"):
        run(spec, out_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_a_failed_run_says_so_and_leaves_no_summary(tmp_path, monkeypatch):
    from pnnlab.methods.physics_aware import PhysicsAwareTraining
    original = PhysicsAwareTraining.step
    calls = {"n": 0}

    def flaky(self, *args):  # the hardware disconnects on the third step (the first call is the warm-up)
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("device disconnected")
        return original(self, *args)

    monkeypatch.setattr(PhysicsAwareTraining, "step", flaky)
    spec = tiny_spec(methods=[{"name": "in_silico"}, {"name": "pat"}], train={"epochs": 2, "batch_size": 32})
    with pytest.raises(RuntimeError, match="device disconnected"):
        run(spec, out_dir=tmp_path)
    (folder,) = list(tmp_path.iterdir())
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "failed" and "device disconnected" in status["error"]
    assert "device disconnected" in (folder / "error.txt").read_text()
    assert not (folder / "summary.json").exists()
    # what was measured before the failure is kept
    assert (folder / "metrics.jsonl").read_text().count('"method": "pat"') == 2


def test_exactly_one_of_method_and_methods():
    with pytest.raises(SpecError, match="exactly one"):
        resolve_spec({**tiny_spec(), "method": {"name": "pat"}})


def test_cli_run_and_list(tmp_path):
    spec = tmp_path / "exp.toml"
    spec.write_text('name = "cli"\n[data]\nname = "iris"\n[model]\nname = "oscillator_classifier"\n'
                    '[method]\nname = "pat"\n[train]\nepochs = 1\nbatch_size = 64\n')
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(spec), "--out", str(tmp_path / "runs"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "pat" in result.output and "plant queries" in result.output
    listing = runner.invoke(main, ["list"])
    assert listing.exit_code == 0 and "coupled_oscillators" in listing.output and "vowels" in listing.output


def test_cli_reports_bad_files_with_exit_code_2(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\nname=")
    result = runner.invoke(main, ["run", str(bad), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "not valid TOML" in result.output
    result = runner.invoke(main, ["run", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_the_experiment_seed_reaches_the_data_split(tmp_path):
    from pnnlab.experiments.run import _build
    splits = {}
    for seed in (0, 1):
        resolved = resolve_spec(tiny_spec(seed=seed))
        assert resolved["data"]["args"]["seed"] == seed
        data, _, _ = _build(resolved)
        splits[seed] = data
    assert not torch.equal(splits[0].x_test, splits[1].x_test)
    assert not torch.equal(splits[0].x_val, splits[1].x_val)
    # an explicit [data] seed wins over the experiment seed
    resolved = resolve_spec(tiny_spec(seed=1, data={"name": "iris", "seed": 0}))
    assert resolved["data"]["args"]["seed"] == 0
    torch.testing.assert_close(_build(resolved)[0].x_test, splits[0].x_test)


def test_cli_seed_reaches_the_data_split(tmp_path):
    runner = CliRunner()
    folders = []
    for seed in ("0", "3"):
        out = tmp_path / f"runs{seed}"
        result = runner.invoke(main, ["demo", "--seed", seed, "--epochs", "1", "--out", str(out), "--no-progress"])
        assert result.exit_code == 0, result.output
        (folder,) = list(out.iterdir())
        folders.append(folder)
        config = json.loads((folder / "config.json").read_text())
        assert config["data"]["args"]["seed"] == int(seed)
    from pnnlab.registry import DATASETS
    configs = [json.loads((f / "config.json").read_text())["data"] for f in folders]
    first, second = (DATASETS.load(c["name"])(**c["args"]) for c in configs)
    assert not torch.equal(first.x_test, second.x_test)  # two seeds, two splits


def test_format_table_shows_final_and_validation_chosen_test_accuracy():
    row = {"method": "pat", "upper_bound": False, "final_test_accuracy": 0.8, "selected_test_accuracy": 0.75,
           "selected_epoch": 7, "selected_val_accuracy": 0.9, "evaluated_on": "plant", "plant_queries": 10,
           "trainable_parameters": 42, "wall_seconds": 1.0, "test_samples": 40}
    table = format_table([row, {**row, "method": "ideal", "upper_bound": True, "evaluated_on": "true physics"}])
    assert "80.0%" in table and "75.0% (epoch 7)" in table and "90.0%" in table
    assert "test (final)" in table and "test @ val-chosen epoch" in table and "ideal (upper bound)" in table
    assert "40 samples (one sample = 2.5 points)" in table


def test_a_method_that_cannot_train_the_model_fails_before_any_folder(tmp_path):
    spec = tiny_spec(methods=[{"name": "pat"}, {"name": "forward_forward"}])
    with pytest.raises(MethodRequirementError) as info:
        run(spec, out_dir=tmp_path / "runs")
    message = str(info.value)
    assert "needs to be a GoodnessNet" in message
    working = message.split("would work with this model:")[1]
    assert "pat" in working and "forward_forward" not in working and "phyll" not in working
    assert not (tmp_path / "runs").exists()
    runner = CliRunner()
    spec_file = tmp_path / "ff.toml"
    spec_file.write_text('[data]\nname = "iris"\n[model]\nname = "oscillator_classifier"\n'
                         '[method]\nname = "forward_forward"\n[train]\nepochs = 1\n')
    result = runner.invoke(main, ["run", str(spec_file), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "GoodnessNet" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("make_bad, words", [
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "is a file, not a folder"),
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt" / "sub", "a parent of the output folder"),
])
def test_cli_out_pointing_at_a_file_is_a_one_line_error(tmp_path, make_bad, words):
    spec_file = tmp_path / "exp.toml"
    spec_file.write_text('[data]\nname = "iris"\n[model]\nname = "oscillator_classifier"\n'
                         '[method]\nname = "pat"\n[train]\nepochs = 1\n')
    out = make_bad(tmp_path)
    for args in (["run", str(spec_file), "--out", str(out)], ["demo", "--epochs", "1", "--out", str(out)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert words in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()[-1]) > 0 and result.output.count("error:") == 1


def test_cli_bad_toml_content_is_a_one_line_error(tmp_path):
    runner = CliRunner()
    for text, words in [('[data]\nname = "iris"\n', "needs a [model] table"),
                        ('[data]\nname = "iris"\n[model]\nname = "oscillator_classifier"\n[method]\nname = "pat"\n'
                         '[train]\nepochs = "many"\n', "epochs must be a positive integer"),
                        ('seed = 1.5\n[data]\nname = "iris"\n[model]\nname = "x"\n[method]\nname = "pat"\n',
                         "seed must be an integer")]:
        spec_file = tmp_path / "exp.toml"
        spec_file.write_text(text)
        result = runner.invoke(main, ["run", str(spec_file), "--out", str(tmp_path / "runs")])
        assert result.exit_code == 2 and words in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    result = runner.invoke(main, ["run", str(tmp_path), "--out", str(tmp_path / "runs")])  # a folder
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_a_run_failing_while_training_exits_1_with_one_line(tmp_path, monkeypatch):
    from pnnlab.methods.physics_aware import PhysicsAwareTraining

    def broken(self, *args):
        raise RuntimeError("device disconnected")

    monkeypatch.setattr(PhysicsAwareTraining, "step", broken)
    spec_file = tmp_path / "exp.toml"
    spec_file.write_text('[data]\nname = "iris"\n[model]\nname = "oscillator_classifier"\n'
                         '[method]\nname = "pat"\n[train]\nepochs = 1\n')
    result = CliRunner().invoke(main, ["run", str(spec_file), "--out", str(tmp_path / "runs"), "--no-progress"])
    assert result.exit_code == 1 and "device disconnected" in result.output and "error.txt" in result.output
    assert isinstance(result.exception, SystemExit)


def test_sigterm_marks_the_run_failed(tmp_path):
    """A real process (the command line) receives SIGTERM mid-training: the folder says failed, the
    command prints one line and exits 143, no traceback."""
    import os
    import signal
    import subprocess
    import sys
    import time
    spec_file = tmp_path / "long.toml"
    spec_file.write_text('name = "long"\n[data]\nname = "iris"\n[model]\nname = "oscillator_classifier"\n'
                         '[method]\nname = "pat"\n[train]\nepochs = 100000\nbatch_size = 8\n')
    out = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "pnnlab.cli", "run", str(spec_file), "--out", str(out),
                                "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # wait until training has started
            folders = list(out.iterdir()) if out.exists() else []
            metrics = folders[0] / "metrics.jsonl" if folders else None
            if metrics is not None and metrics.exists() and metrics.stat().st_size:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the run never started")
        status = json.loads((folders[0] / "status.json").read_text())
        assert status["status"] == "running" and status["pid"] == process.pid
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and stderr.strip().count("\n") == 0
    assert "interrupted (SIGTERM)" in stderr and "marked failed" in stderr
    status = json.loads((folders[0] / "status.json").read_text())
    assert status["status"] == "failed" and "SIGTERM" in status["error"]
    assert "RunTerminated" in (folders[0] / "error.txt").read_text()
    assert not (folders[0] / "summary.json").exists()


def test_sigterm_handler_is_restored_after_a_run(tmp_path):
    import signal
    before = signal.getsignal(signal.SIGTERM)
    run(tiny_spec(methods=[{"name": "in_silico"}], train={"epochs": 1, "batch_size": 64}), out_dir=tmp_path)
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_first_method_of_a_comparison_is_timed_after_a_warm_up(tmp_path, monkeypatch):
    import importlib
    run_module = importlib.import_module("pnnlab.experiments.run")
    calls = []
    original = run_module._warm_up

    def spy(*args):
        calls.append(len(list(tmp_path.rglob("params-*.pt"))))  # before any method is trained
        return original(*args)

    monkeypatch.setattr(run_module, "_warm_up", spy)
    result = run(tiny_spec(train={"epochs": 1, "batch_size": 64}), out_dir=tmp_path)
    assert calls == [0]
    # the warm-up used throwaway models: the real runs' plant usage is unchanged by it
    pat = {r["method"]: r for r in result.summary["results"]}["pat"]
    assert pat["plant_queries"] == 2 * 2 * 1
