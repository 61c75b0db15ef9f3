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


# ---- plant state round trip (checkpoints, pnnlab run --resume) -------------------------------------

def _same(a, b, where="plant"):
    """Deep equality of two objects' state (tensors bit-exact, generators by state); caches skipped."""
    import dataclasses
    if isinstance(a, torch.Generator):
        assert isinstance(b, torch.Generator) and torch.equal(a.get_state(), b.get_state()), \
            f"{where}: generator states differ"
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype \
            and torch.equal(a, b), f"{where}: tensors differ"
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{where}: keys differ"
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (u, v) in enumerate(zip(a, b)):
            _same(u, v, f"{where}[{i}]")
    elif isinstance(a, (bool, int, float, str, type(None), torch.dtype)) or dataclasses.is_dataclass(a) and \
            getattr(type(a), "__dataclass_params__").frozen:
        assert a == b or (isinstance(a, float) and a != a and b != b), f"{where}: {a!r} != {b!r}"
    elif hasattr(a, "__dict__") and not isinstance(a, nn.Module):
        _same({k: v for k, v in vars(a).items() if "cache" not in k and k not in ("meter", "_recorders")},
              {k: v for k, v in vars(b).items() if "cache" not in k and k not in ("meter", "_recorders")}, where)


def check_plant_state(make) -> None:
    """A plant used for a while, saved with ``state_dict()`` (through pickle, as a checkpoint stores it)
    and loaded into a freshly built plant, answers the following queries bit-identically, and both
    plants end in the same state (every attribute, tensors bit-exact, generators by state)."""
    import pickle
    from pnnlab.plants.capabilities import EnergyBased
    a = make()
    controls = a.initial_controls()
    x = a.example_inputs(4)

    def nudged(k):  # controls that change from query to query (a programmed device reprograms)
        out = {}
        for name, spec in a.control_specs().items():
            v = controls[name]
            if spec.bounded:
                v = (v + 0.03 * k * (spec.high - spec.low)).clamp(spec.low, spec.high)
                if spec.symmetric:
                    v = 0.5 * (v + v.T)
            out[name] = v
        return out

    for k in range(3):
        a(x, nudged(k))
    if isinstance(a, EnergyBased):
        a.relax(x, nudged(3))
    if callable(getattr(a, "advance_time", None)):
        a.advance_time(0.25)
    b = make()
    b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    b.meter.__dict__.update(pickle.loads(pickle.dumps(vars(a.meter))))
    for k in range(4, 7):
        ya, yb = a(x, nudged(k)), b(x, nudged(k))
        assert torch.equal(ya, yb), f"{type(a).__name__}: a plant restored from state_dict() answered differently"
    if isinstance(a, EnergyBased):
        sa, sb = a.relax(x, nudged(7)), b.relax(x, nudged(7))
        assert torch.equal(sa.output, sb.output), f"{type(a).__name__}: restored relax differs"
        _same(a.energy_gradients(sa), b.energy_gradients(sb), "energy_gradients")
    _same(a, b, type(a).__name__)


@pytest.mark.parametrize("entry", PLANTS.entries(), ids=lambda e: e.name)
def test_registered_plant_state_round_trips(entry):
    check_plant_state(lambda: entry.load()(**entry.example))
