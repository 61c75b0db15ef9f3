"""Every registered plant, method, dataset and model passes the public conformance checks."""

import pytest
import torch
from torch import nn

from pnnlab import ChannelAffine, PhysicalLayer
from pnnlab.plants.capabilities import Simulated
from pnnlab.registry import DATASETS, METHODS, MODELS, PLANTS
from pnnlab.testing import check_method, check_plant

LIGHT_DATASETS = ["vowels", "digits", "iris", "wine"]


@pytest.mark.parametrize("entry", PLANTS.entries(), ids=lambda e: e.name)
def test_registered_plant_conforms(entry):
    plant = entry.load()(**entry.example)
    check_plant(plant)


def _generic_models():
    for entry in PLANTS.entries():
        plant = entry.load()(**entry.example)
        twin = plant.nominal_twin() if isinstance(plant, Simulated) else None
        yield entry.name, plant, nn.Sequential(PhysicalLayer(plant, twin=twin), ChannelAffine(plant.out_features))


@pytest.mark.parametrize("entry", METHODS.entries(), ids=lambda e: e.name)
def test_registered_method_conforms(entry):
    method_cls = entry.load()
    method = method_cls()
    assert method.name == entry.name, f"{method_cls.__name__}.name must equal its registry name {entry.name!r}"
    assert method.plant_queries_per_step, f"{entry.name} must state its plant queries per step"
    if "conformance" in entry.example:
        module, _, attribute = entry.example["conformance"].partition(":")
        import importlib
        model, x, y = getattr(importlib.import_module(f"pnnlab.{module}"), attribute)()
        check_method(method, model, x, y)
        return
    tried = 0
    for plant_name, plant, model in _generic_models():
        if method_cls.missing_for(model):
            continue
        tried += 1
        x = plant.example_inputs(8)
        y = torch.randn(8, plant.out_features, generator=torch.Generator().manual_seed(0))
        check_method(method, model, x, y, loss_fn=nn.functional.mse_loss)
    assert tried, f"no registered plant satisfies {entry.name}'s requirements; give it a conformance example"


@pytest.mark.parametrize("name", LIGHT_DATASETS)
def test_registered_dataset_loads(name):
    data = DATASETS.load(name)()
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert int(data.y_train.max()) < data.n_classes and int(data.y_train.min()) >= 0
    assert torch.isfinite(data.x_train).all() and torch.isfinite(data.x_test).all()


@pytest.mark.parametrize("entry", MODELS.entries(), ids=lambda e: e.name)
def test_registered_model_builds_and_runs_on_the_plant(entry):
    data = DATASETS.load("iris")()
    kwargs = {"in_features": data.in_features, "n_classes": data.n_classes, "seed": 0, **entry.example}
    model = entry.load()(**kwargs)
    out = model(data.x_test[:5])
    assert out.shape == (5, data.n_classes)
    assert torch.isfinite(out).all()


def test_registry_names_are_unique_and_loadable():
    for registry in (PLANTS, METHODS, DATASETS, MODELS):
        names = registry.names()
        assert len(names) == len(set(names))
        for entry in registry.entries():
            entry.load()


def test_unknown_name_suggests_close_matches():
    with pytest.raises(KeyError, match="Did you mean 'pat'"):
        METHODS.get("patt")
