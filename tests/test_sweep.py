"""Sweeps (issue 12, section 1): planning (grid, random, checks), serial execution with the mean +- std
table chosen on validation, resume without redoing finished trials, the Ray Tune executor with a
device resource (skipped without Ray), and the install hint without Ray."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from pnnlab.cli import main
from pnnlab.experiments.spec import SpecError
from pnnlab.sweeps import aggregate, load_sweep, ray_resources, run_sweep
from pnnlab.sweeps import execute as sweep_execute

TINY_MODEL = {"name": "shg_classifier", "resolution_pixels": 64, "points_per_pixel": 2}


def sweep_spec(**sweep) -> dict:
    return {"name": "tiny", "data": {"name": "iris"}, "model": dict(TINY_MODEL), "method": {"name": "pat"},
            "train": {"epochs": 1, "batch_size": 32}, "sweep": {"seeds": [1, 2], **sweep}}


def test_grid_plan_lists_every_configuration_on_every_seed():
    plan = load_sweep(sweep_spec(grid={"train.lr": [0.01, 0.03], "method": ["pat", "in_silico"]}))
    assert len(plan.trials) == 8 and len(plan.configs) == 4
    assert {t.seed for t in plan.trials} == {1, 2}
    assert plan.configs[3] == {"train.lr": 0.03, "method": "in_silico"}
    names = [t.name for t in plan.trials]
    assert len(set(names)) == 8


def test_random_plan_is_reproducible_and_within_its_distributions():
    spec = sweep_spec(search="random", samples=6, sampler_seed=4,
                      random={"train.lr": {"loguniform": [1e-3, 1e-1]}, "train.batch_size": {"randint": [8, 16]}},
                      grid={"method": ["pat", "in_silico"]})
    a, b = load_sweep(spec), load_sweep(spec)
    assert a.configs == b.configs and len(a.configs) == 6
    lrs = [c["train.lr"] for c in a.configs.values()]
    assert all(1e-3 <= lr <= 1e-1 for lr in lrs) and len(set(lrs)) == 6
    assert all(8 <= c["train.batch_size"] <= 16 for c in a.configs.values())
    other = load_sweep({**spec, "sweep": {**spec["sweep"], "sampler_seed": 5}})
    assert other.configs != a.configs


@pytest.mark.parametrize("sweep, words", [
    ({"grid": {"train.lr": 0.1}}, "non-empty list"),
    ({"metric": "selected_test_accuracy"}, "never selects on test"),
    ({"grid": {"methods.3.lr": [1]}}, "indexes a list of 1 table"),
    ({"random": {"train.lr": {"normal": [0, 1]}}, "search": "random"}, "loguniform"),
    ({"random": {"train.lr": {"loguniform": [0, 1]}}, "search": "random"}, "low > 0"),
    ({"grid": {"method": ["pat", "no_such_method"]}}, "unknown method 'no_such_method'"),
    ({"seeds": [1, 1]}, "distinct integers"),
    ({"gird": {}}, "unknown \\[sweep\\] key"),
    ({"grid": {"seed": [1, 2]}}, "seeds go in"),
])
def test_bad_sweeps_fail_before_any_trial(sweep, words):
    spec = sweep_spec()
    spec["sweep"].update(sweep)
    if "methods.3" in json.dumps(sweep):
        spec.pop("method")
        spec["methods"] = [{"name": "pat"}]
    with pytest.raises(SpecError, match=words):
        load_sweep(spec)


def test_serial_sweep_writes_run_folders_and_a_table_chosen_on_validation(tmp_path):
    result = run_sweep(sweep_spec(grid={"train.lr": [0.002, 0.05]}), out_dir=tmp_path, serial=True)
    assert len(result.trials) == 4
    for record in result.trials:  # each trial is an ordinary, completed run folder
        status = json.loads((tmp_path / "tiny" / "runs" / record["folder"].split("/")[-1] / "status.json").read_text())
        assert status["status"] == "completed"
    rows = json.loads((result.folder / "results.json").read_text())["rows"]
    assert len(rows) == 2
    for row in rows:
        mine = [r["results"][0] for r in result.trials if r["config_id"] == row["config_id"]]
        tests = [m["selected_test_accuracy"] for m in mine]
        assert row["selected_test_accuracy"] == pytest.approx(np.mean(tests))
        assert row["selected_test_accuracy_std"] == pytest.approx(np.std(tests, ddof=1))
    chosen = [r for r in rows if r["chosen_on_validation"]]
    assert len(chosen) == 1 and chosen[0]["selected_val_accuracy"] == max(r["selected_val_accuracy"] for r in rows)
    assert "test @ val-chosen %" in result.table and "one test sample" in result.table
    assert (result.folder / "accuracy_vs_queries.png").stat().st_size > 1000
    with pytest.raises(SpecError, match="exists: pass --resume"):
        run_sweep(sweep_spec(grid={"train.lr": [0.002, 0.05]}), out_dir=tmp_path, serial=True)


def test_a_killed_sweep_resumes_without_redoing_finished_trials(tmp_path, monkeypatch):
    import importlib

    run_module = importlib.import_module("pnnlab.experiments.run")  # the module (the package exports run())
    real_run, started = run_module.run, []

    def flaky_run(spec, **kwargs):
        started.append(spec["name"])
        if len(started) == 3:
            raise KeyboardInterrupt  # the sweep is stopped during its third trial
        return real_run(spec, **kwargs)

    monkeypatch.setattr(run_module, "run", flaky_run)
    spec = sweep_spec(grid={"train.lr": [0.002, 0.05]})
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out_dir=tmp_path, serial=True)
    assert len(list((tmp_path / "tiny" / "trials").glob("*.json"))) == 2
    started.clear()
    result = run_sweep(spec, out_dir=tmp_path, serial=True, resume=True)
    assert len(started) == 2 and len(result.trials) == 4  # only the two unfinished trials ran again
    changed = sweep_spec(grid={"train.lr": [0.002, 0.07]})
    with pytest.raises(SpecError, match="planned from another spec"):
        run_sweep(changed, out_dir=tmp_path, serial=True, resume=True)


def test_a_trial_on_a_served_device_holds_that_device():
    spec = sweep_spec()
    spec["remote"] = {"address": "127.0.0.1:50051", "token_file": "token.txt"}
    assert ray_resources(load_sweep(spec)) == {"cpu": 1.0, "pnnlab_device:127.0.0.1:50051": 1.0}
    assert ray_resources(load_sweep(sweep_spec(device="bench-1"))) == {"cpu": 1.0, "pnnlab_device:bench-1": 1.0}
    assert ray_resources(load_sweep(sweep_spec())) == {"cpu": 1.0}


def test_without_ray_the_command_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as on a machine without it
    with pytest.raises(SpecError, match="pip install 'pnnlab\\[sweep\\]'.*--serial"):
        sweep_execute._run_ray(load_sweep(sweep_spec()), tmp_path, address=None, resume=False)
    path = tmp_path / "sweep.toml"
    path.write_text('name = "tiny"\n[data]\nname = "iris"\n[model]\nname = "shg_classifier"\n[method]\n'
                    'name = "pat"\n[sweep]\nseeds = [1]\n')
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "pip install 'pnnlab[sweep]'" in result.output


def test_ray_sweep_never_runs_two_trials_on_one_device(tmp_path):
    pytest.importorskip("ray.tune")
    spec = sweep_spec(grid={"train.lr": [0.002, 0.05]}, device="bench-1", max_concurrent=2)
    spec["sweep"]["seeds"] = [1]
    result = run_sweep(spec, out_dir=tmp_path, serial=False)
    assert len(result.trials) == 2
    spans = []
    for record in result.trials:
        folder = tmp_path / "tiny" / "runs" / record["folder"].split("/")[-1]
        assert json.loads((folder / "status.json").read_text())["status"] == "completed"
        assert json.loads((folder / "config.json").read_text())["train"]["lr"] == record["overrides"]["train.lr"]
        spans.append((record["started"], record["finished"]))
    (a0, a1), (b0, b1) = sorted(spans)
    assert a1 <= b0  # the second trial waited for the device (it started after the first ended)
    before = {p.name: p.stat().st_mtime for p in (tmp_path / "tiny" / "trials").glob("*.json")}
    again = run_sweep(spec, out_dir=tmp_path, serial=False, resume=True)  # Ray's restore: nothing to redo
    assert len(again.trials) == 2
    assert {p.name: p.stat().st_mtime for p in (tmp_path / "tiny" / "trials").glob("*.json")} == before


def test_aggregate_flags_differences_within_one_std():
    def rec(config, seed, val, test):
        return {"config_id": config, "seed": seed, "overrides": {"train.lr": config},
                "results": [{"method": "pat", "selected_test_accuracy": test, "final_test_accuracy": test,
                             "selected_val_accuracy": val, "plant_queries": 10, "wall_seconds": 1.0,
                             "test_samples": 30, "trainable_parameters": 5}]}
    rows = aggregate([rec(0, 1, 0.9, 0.80), rec(0, 2, 0.8, 0.90), rec(1, 1, 0.5, 0.50), rec(1, 2, 0.5, 0.52)])
    best, other = sorted(rows, key=lambda r: -r["selected_val_accuracy"])
    assert best["chosen_on_validation"] and not other["chosen_on_validation"]
    assert best["selected_test_accuracy"] == pytest.approx(0.85)
    assert not other["within_one_std_of_chosen"]  # 0.85 vs 0.51, stds 0.07 and 0.014
