"""Experiment specs, run folders and the command line."""

import json

import pytest
from click.testing import CliRunner

from pnnlab.cli import main
from pnnlab.experiments import SpecError, resolve_spec, run


def tiny_spec(**overrides):
    spec = {
        "name": "tiny",
        "seed": 0,
        "data": {"name": "iris"},
        "model": {"name": "oscillator_classifier", "mismatch": True},
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
    assert {r["method"] for r in records} == {"in_silico", "pat"}
    assert sum(r["kind"] == "eval" for r in records) == 4
    config = json.loads((folder / "config.json").read_text())
    assert config["train"]["epochs"] == 2 and config["model"]["args"] == {"mismatch": True}


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

    def flaky(self, *args):  # the hardware disconnects on the third step
        calls["n"] += 1
        if calls["n"] == 3:
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
