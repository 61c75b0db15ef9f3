"""Extending without forking (issue 12, section 7): a user's plant, model, dataset or method becomes a
name in experiment files and `pnnlab list`, by register() in-process or by an installed package's
entry points; built-in names are never replaced by accident."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import pnnlab
from pnnlab import ChannelAffine, PhysicalLayer
from pnnlab.cli import main
from pnnlab.experiments.run import run
from pnnlab.registry import DATASETS, MODELS, PLANTS, Registry
from pnnlab.testing import check_plant
from toy_plants import TanhPlant


@pytest.fixture
def clean_registries():
    saved = {r: dict(r._entries) for r in (PLANTS, MODELS, DATASETS)}
    yield
    for registry, entries in saved.items():
        registry._entries = entries


def build_tanh_model(*, in_features, n_classes, seed=0, error_std=0.3):
    """Test model: one TanhPlant layer with a per-class read-out."""
    plant = TanhPlant(features_in=in_features, features_out=n_classes, error_std=error_std, seed=seed)
    g = torch.Generator().manual_seed(seed)
    return nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin(), initial_controls=plant.initial_controls(g)),
                         ChannelAffine(n_classes))


def test_registered_plant_and_model_are_named_in_specs_and_listed(tmp_path, clean_registries):
    entry = pnnlab.register("plant", "my_tanh", TanhPlant, example={"features_in": 3, "features_out": 2})
    pnnlab.register("models", "my_tanh_model", build_tanh_model)
    assert entry.origin == "register()" and PLANTS.load("my_tanh") is TanhPlant
    assert MODELS.get("my_tanh_model").summary == "Test model: one TanhPlant layer with a per-class read-out."
    check_plant(PLANTS.build("my_tanh", **entry.example))  # the conformance helpers take it as it is
    listing = CliRunner().invoke(main, ["list", "models"]).output
    assert "my_tanh_model" in listing and "per-class read-out" in listing
    spec = {"name": "plugin", "data": {"name": "iris"}, "model": {"name": "my_tanh_model", "error_std": 0.2},
            "methods": [{"name": "pat"}], "train": {"epochs": 1}}
    result = run(spec, out_dir=tmp_path, warm_up=False)
    assert result.summary["results"][0]["method"] == "pat"


def test_register_refuses_taken_names_bad_kinds_and_bad_targets(clean_registries):
    with pytest.raises(ValueError, match="'iris' is already taken.*replace=True"):
        pnnlab.register("dataset", "iris", lambda **kw: None)
    pnnlab.register("dataset", "iris", "mylab.data:load_iris", replace=True)  # explicit replacement is allowed
    assert DATASETS.get("iris").origin == "register()"
    with pytest.raises(ValueError, match="kind must be one of"):
        pnnlab.register("substrate", "x", TanhPlant)
    with pytest.raises(ValueError, match="'package.module:attribute'"):
        pnnlab.register("plant", "x", "mylab.devices.Interferometer")
    with pytest.raises(ValueError, match="name must be letters"):
        pnnlab.register("plant", "my plant", TanhPlant)
    with pytest.raises(TypeError, match="target must be a class"):
        pnnlab.register("plant", "x", 42)
    pnnlab.register("plant", "ghost", "no_such_package.devices:Ghost")
    with pytest.raises(ImportError, match="'ghost' \\(register\\(\\)\\) points at 'no_such_package.devices:Ghost'"):
        PLANTS.load("ghost")


PLUGIN = textwrap.dedent('''
    """A lab's own package, installed beside pnnlab."""
    import numpy as np
    from sklearn.datasets import load_iris
    from pnnlab.data.base import to_task

    def load_two_features(*, seed=0):
        """Iris with its first two features only (plug-in dataset)."""
        bunch = load_iris()
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(bunch.target))
        x, y = bunch.data[order, :2], bunch.target[order]
        return to_task("two_features", x[:110], y[:110], x[110:], y[110:], 3, "iris, 2 features", seed=seed)
''')


def _install_fake_distribution(root, points: str) -> None:
    (root / "mylab_plugin.py").write_text(PLUGIN)
    info = root / "mylab_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mylab-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(points)


def test_entry_points_of_an_installed_package_become_names(tmp_path):
    _install_fake_distribution(tmp_path, "[pnnlab.datasets]\ntwo_features = mylab_plugin:load_two_features\n"
                                         "iris = mylab_plugin:load_two_features\n")
    spec = tmp_path / "spec.toml"
    spec.write_text('name = "plug"\n[data]\nname = "two_features"\n[model]\nname = "matched_mlp"\n'
                    'parameters = 40\n[method]\nname = "ideal"\n[train]\nepochs = 1\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    listed = subprocess.run([sys.executable, "-m", "pnnlab.cli", "list", "datasets"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "two_features" in listed.stdout and "plug-in from mylab-plugin" in listed.stdout
    assert "skipped: the dataset name is taken" in listed.stderr  # 'iris' stays the built-in one
    ran = subprocess.run([sys.executable, "-m", "pnnlab.cli", "run", str(spec), "--out", str(tmp_path / "runs")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert ran.returncode == 0, ran.stderr
    summary = (next((tmp_path / "runs").iterdir()) / "summary.json").read_text()
    assert "two_features: 88 train / 22 validation / 40 test" in summary  # the plug-in loader's split, a digital model


def test_plugins_are_read_once_and_lazily(monkeypatch):
    calls = []

    def fake_entry_points(group):
        calls.append(group)
        return []

    monkeypatch.setattr("importlib.metadata.entry_points", fake_entry_points)
    registry = Registry("plant", [])
    assert calls == []  # building a registry reads nothing
    registry.names()
    registry.names()
    assert calls == ["pnnlab.plants"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "x" not in registry
