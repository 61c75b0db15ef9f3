"""The hardware boundary, control mapping, executions, methods and the training loop."""

import math

import pytest
import torch
from torch import nn

import pnnlab
from pnnlab import (ChannelAffine, InSilico, MethodRequirementError, OnPlant, OnTwin, PhysicalLayer,
                    PhysicsAware, PhysicsAwareTraining, IdealBackprop, executing)
from pnnlab.data.base import TaskData
from pnnlab.plants.capabilities import EnergyBased
from pnnlab.methods.base import BackpropThrough, NeedsCapability
from pnnlab.testing import check_method, check_plant

from toy_plants import TanhPlant


def two_layer(error_std=0.0, noise_std=0.0, perfect_twin=False):
    p1 = TanhPlant(features_in=3, features_out=4, error_std=error_std, noise_std=noise_std, seed=1)
    p2 = TanhPlant(features_in=4, features_out=2, error_std=error_std, noise_std=noise_std, seed=2)
    t1 = p1.true_twin() if perfect_twin else p1.nominal_twin()
    t2 = p2.true_twin() if perfect_twin else p2.nominal_twin()
    torch.manual_seed(0)
    return nn.Sequential(PhysicalLayer(p1, twin=t1), PhysicalLayer(p2, twin=t2), ChannelAffine(2))


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


def test_toy_plant_conforms():
    check_plant(TanhPlant(error_std=0.1, noise_std=0.01))


def test_plant_builds_no_graph_and_meters_every_call():
    plant = TanhPlant()
    x = torch.randn(7, 3, requires_grad=True)
    controls = {k: v.requires_grad_(True) for k, v in plant.initial_controls().items()}
    y = plant(x, controls)
    assert y.grad_fn is None and not y.requires_grad
    plant(x[:2], controls)
    assert plant.meter.queries == 2 and plant.meter.samples == 9
    assert math.isclose(plant.meter.device_seconds, 2e-3 + 9e-6)
    assert math.isclose(plant.meter.joules, 9e-9)


@pytest.mark.parametrize("bad, error, words", [
    (torch.randn(4, 5), ValueError, "shape (batch, 3)"),
    (torch.randn(3), ValueError, "shape (batch, 3)"),
    (torch.ones(2, 3, dtype=torch.int64), TypeError, "floating-point"),
    (torch.tensor([[1.0, float("nan"), 0.0]]), ValueError, "NaN"),
    ([[1.0, 2.0, 3.0]], TypeError, "torch.Tensor"),
])
def test_plant_rejects_bad_inputs_with_clear_messages(bad, error, words):
    plant = TanhPlant()
    with pytest.raises(error, match=None) as info:
        plant(bad, plant.initial_controls())
    assert words in str(info.value)
    assert plant.meter.queries == 0


def test_plant_rejects_bad_controls():
    plant = TanhPlant()
    good = plant.initial_controls()
    with pytest.raises(ValueError, match=r"controls\['weight'\] must lie in \[-3.0, 3.0\]"):
        plant(torch.zeros(1, 3), {**good, "weight": torch.full((2, 3), 5.0)})
    with pytest.raises(ValueError, match="missing \\['bias'\\]"):
        plant(torch.zeros(1, 3), {"weight": good["weight"]})
    with pytest.raises(ValueError, match="shape"):
        plant(torch.zeros(1, 3), {**good, "bias": torch.zeros(3)})


def test_physical_layer_maps_parameters_into_range():
    layer = PhysicalLayer(TanhPlant())
    raw = layer.control_parameters()["weight"]
    with torch.no_grad():
        raw.fill_(100.0)
    assert float(layer.control_values()["weight"].detach().max()) <= 3.0
    with torch.no_grad():
        raw.fill_(-100.0)
    assert float(layer.control_values()["weight"].detach().min()) >= -3.0
    # initial physical values are kept by the parametrisation
    plant = TanhPlant()
    init = plant.initial_controls()
    layer = PhysicalLayer(plant, initial_controls=init)
    assert torch.allclose(layer.control_values()["weight"], init["weight"], atol=1e-5)


def test_symmetric_control_spec_is_enforced_by_the_layer():
    from pnnlab.layers import Symmetric
    sym = Symmetric()
    raw = torch.randn(4, 4)
    assert torch.allclose(sym(raw), sym(raw).T)


def test_default_execution_is_the_plant_and_carries_no_gradient():
    model = two_layer(error_std=0.3)
    x = torch.randn(5, 3)
    y = model(x)
    assert model[0].plant.meter.queries == 1
    with executing(OnTwin()):
        y_twin = model(x)
    assert y_twin.requires_grad
    assert model[0].plant.meter.queries == 1  # the twin never queries the plant
    assert not torch.allclose(y, y_twin.detach())  # the gap is visible


def test_pat_with_a_perfect_twin_equals_backpropagation():
    model = two_layer(error_std=0.3, perfect_twin=True)
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    PhysicsAwareTraining().step(model, x, y, nn.functional.cross_entropy)
    g_pat = grads(model)
    model.zero_grad()
    with executing(OnTwin()):
        loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    for a, b in zip(g_pat, grads(model)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_pat_forward_value_is_the_plant_and_backward_is_the_twin_at_measured_activations():
    model = two_layer(error_std=0.3)
    x = torch.randn(8, 3)
    with executing(PhysicsAware()):
        out = model(x)
    with torch.no_grad():
        plant_out = model(x)  # OnPlant: identical noiseless plant
    torch.testing.assert_close(out.detach(), plant_out)
    # gradient of the second layer uses the twin evaluated at the *measured* first-layer output
    layer1, layer2 = model[0], model[1]
    h_measured = layer1.plant(x, layer1.control_values())
    w = layer2.control_values()["weight"].detach().requires_grad_(True)
    y_twin = torch.tanh(h_measured @ w.T + layer2.control_values()["bias"].detach())
    (y_twin * model[2].scale.detach()).sum().backward()
    model.zero_grad()
    with executing(PhysicsAware()):
        model(x).sum().backward()
    raw = layer2.control_parameters()["weight"]
    # chain rule through the sigmoid range map: dL/draw = dL/dw * dw/draw
    span = 6.0
    s = (layer2.control_values()["weight"].detach() + 3.0) / span
    torch.testing.assert_close(raw.grad, w.grad * span * s * (1 - s), rtol=1e-4, atol=1e-6)


def test_in_silico_makes_no_queries_and_pat_one_per_layer():
    model = two_layer(error_std=0.3)
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    InSilico().step(model, x, y, nn.functional.cross_entropy)
    assert [l.plant.meter.queries for l in pnnlab.physical_layers(model)] == [0, 0]
    PhysicsAwareTraining().step(model, x, y, nn.functional.cross_entropy)
    assert [l.plant.meter.queries for l in pnnlab.physical_layers(model)] == [1, 1]


def test_ideal_runs_on_the_true_physics_not_on_the_nominal_twin():
    model = two_layer(error_std=0.3)
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    IdealBackprop().step(model, x, y, nn.functional.cross_entropy)
    assert model[0].plant.meter.queries == 0
    assert IdealBackprop.upper_bound and isinstance(IdealBackprop.evaluation, pnnlab.OnTrueTwin)
    # the bound's gradient is the true physics' gradient, which differs from the nominal twin's
    ideal = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    pnnlab.InSilico().step(model, x, y, nn.functional.cross_entropy)
    assert any(not torch.allclose(ideal[n], p.grad) for n, p in model.named_parameters())
    with pnnlab.executing(pnnlab.OnTrueTwin()):
        out = model[0](x)
    layer = model[0]
    truth = layer.plant.true_twin()(x, layer.control_values())
    torch.testing.assert_close(out, truth)


def test_missing_twin_fails_before_the_first_step_and_names_alternatives():
    model = nn.Sequential(PhysicalLayer(TanhPlant()), ChannelAffine(2))
    with pytest.raises(MethodRequirementError) as info:
        PhysicsAwareTraining().check(model)
    message = str(info.value)
    assert "lacks a twin" in message and "ideal" in message and "'pat'" in message


def test_missing_capability_is_reported():
    class NeedsEnergy(BackpropThrough):
        name = "needs_energy"
        requirements = (NeedsCapability(EnergyBased),)
        execution = OnPlant()

    model = two_layer()
    with pytest.raises(MethodRequirementError, match="EnergyBased"):
        NeedsEnergy().check(model)


def test_check_method_passes_for_core_methods():
    for method in (InSilico(), PhysicsAwareTraining(), IdealBackprop()):
        model = two_layer(error_std=0.2)
        check_method(method, model, torch.randn(8, 3), torch.randint(0, 2, (8,)))


def small_task(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    a, b = n * 3 // 5, n * 4 // 5
    return TaskData("toy", x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:], 2)


def test_train_learns_and_counts_training_queries_only():
    model = two_layer(error_std=0.2)
    data = small_task()
    records = []
    history = pnnlab.train(model, PhysicsAwareTraining(), data, epochs=15, batch_size=24, lr=0.05,
                           callback=records.append)
    assert records == history.records
    steps = history.steps()
    assert steps[-1]["train_queries"] == 2 * len(steps)  # 2 layers, 1 query each per step
    assert history.final["evaluated_on"] == "plant"
    assert history.final["test_accuracy"] >= 0.8
    first, last = steps[0]["loss"], steps[-1]["loss"]
    assert last < first


def test_train_validates_arguments():
    model = two_layer()
    data = small_task()
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        pnnlab.train(model, InSilico(), data, epochs=0)
    with pytest.raises(TypeError, match="Method instance"):
        pnnlab.train(model, "pat", data)
    with pytest.raises(TypeError, match="TaskData"):
        pnnlab.train(model, InSilico(), (data.x_train, data.y_train))


def test_evaluate_reports_its_own_queries():
    model = two_layer()
    data = small_task()
    result = pnnlab.evaluate(model, data.x_test, data.y_test, batch_size=10)
    assert result["queries"] == 2 * math.ceil(len(data.y_test) / 10)
    assert 0 <= result["accuracy"] <= 1


def test_twin_gap_is_zero_for_a_perfect_twin_and_positive_otherwise():
    plant = TanhPlant(error_std=0.3)
    x, c = torch.randn(10, 3), plant.initial_controls()
    assert pnnlab.twin_gap(plant, plant.true_twin(), x, c) < 1e-6
    assert pnnlab.twin_gap(plant, plant.nominal_twin(), x, c) > 1e-3


def test_cost_model_rejects_negative_constants():
    with pytest.raises(ValueError, match="seconds_per_query"):
        pnnlab.CostModel(seconds_per_query=-1.0)


def test_executing_rejects_non_executions():
    with pytest.raises(TypeError, match="Execution"):
        with executing("plant"):
            pass


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_the_optimizer_never_steps_on_a_non_finite_loss(bad):
    model = two_layer(error_std=0.2)
    data = small_task()
    calls = {"n": 0}

    def loss_fn(out, y):  # finite for two steps, then non-finite
        calls["n"] += 1
        loss = nn.functional.cross_entropy(out, y)
        return loss * bad if calls["n"] == 3 else loss

    snapshots = []
    with pytest.raises(FloatingPointError) as info:
        pnnlab.train(model, PhysicsAwareTraining(), data, epochs=5, batch_size=24, loss_fn=loss_fn,
                     callback=lambda r: snapshots.append([p.detach().clone() for p in model.parameters()]))
    message = str(info.value)
    assert f"the loss is {bad * 1.0}" in message and "step 3" in message and "did not step" in message
    assert "plant outputs are checked" in message.lower() and "loss function" in message
    assert "unlikely cause" in message  # the loss was finite and flat: the lr is not blamed blindly
    # the parameters are those after step 2: the optimizer skipped step 3
    assert len(snapshots) == 2
    assert all(torch.equal(a, b) for a, b in zip(snapshots[-1], model.parameters()))


def test_non_finite_gradients_also_stop_training_before_the_step():
    model = two_layer(error_std=0.2)
    data = small_task()

    class PoisonedGradient(PhysicsAwareTraining):
        def step(self, model, x, y, loss_fn):
            loss = super().step(model, x, y, loss_fn)
            next(model.parameters()).grad.fill_(float("inf"))
            return loss

    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(FloatingPointError, match="gradient of .* is non-finite"):
        pnnlab.train(model, PoisonedGradient(), data, epochs=1, batch_size=24)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_diverging_loss_is_blamed_on_the_learning_rate():
    model = two_layer(error_std=0.2)
    data = small_task()
    calls = {"n": 0}

    def loss_fn(out, y):  # grows 100x per step, then overflows
        calls["n"] += 1
        loss = nn.functional.cross_entropy(out, y)
        return loss * (float("inf") if calls["n"] == 4 else 100.0 ** calls["n"])

    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        pnnlab.train(model, PhysicsAwareTraining(), data, epochs=5, batch_size=24, loss_fn=loss_fn, lr=0.5)


def _noisy_run(evaluate_every, seed=0):
    model = two_layer(error_std=0.2, noise_std=0.05)
    history = pnnlab.train(model, PhysicsAwareTraining(), small_task(), epochs=6, batch_size=24, lr=0.05,
                           seed=seed, evaluate_every=evaluate_every)
    return history, [p.detach().clone() for p in model.parameters()]


def test_evaluation_does_not_change_training_on_a_noisy_plant():
    h1, p1 = _noisy_run(evaluate_every=1)
    h6, p6 = _noisy_run(evaluate_every=6)
    assert len(h1.evaluations()) == 6 and len(h6.evaluations()) == 1
    assert [r["loss"] for r in h1.steps()] == [r["loss"] for r in h6.steps()]
    assert all(torch.equal(a, b) for a, b in zip(p1, p6))
    # and the comparison can fail: a different seed changes training
    _, p_other = _noisy_run(evaluate_every=1, seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(p1, p_other))


def test_evaluate_draws_noise_from_its_own_generator():
    model = two_layer(noise_std=0.1)
    data = small_task()
    plant = model[0].plant
    state = plant._generator.get_state()
    first = pnnlab.evaluate(model, data.x_test, data.y_test)
    assert torch.equal(plant._generator.get_state(), state)  # the plant's own stream is untouched
    again = pnnlab.evaluate(model, data.x_test, data.y_test)
    assert first["loss"] == again["loss"]  # default: a fresh generator seeded 0
    other = pnnlab.evaluate(model, data.x_test, data.y_test, generator=torch.Generator().manual_seed(5))
    assert other["loss"] != first["loss"]
    layer = model[0]
    x = data.x_test[:4]
    with executing(OnPlant(generator=torch.Generator().manual_seed(9))):
        a = layer(x)
    with executing(OnPlant(generator=torch.Generator().manual_seed(9))):
        b = layer(x)
    torch.testing.assert_close(a, b)
    assert torch.equal(plant._generator.get_state(), state)


def test_ideal_bound_is_still_evaluated_on_the_true_physics():
    model = two_layer(error_std=0.3, noise_std=0.05)
    history = pnnlab.train(model, IdealBackprop(), small_task(), epochs=2, batch_size=24)
    assert history.final["evaluated_on"] == pnnlab.OnTrueTwin.label
    assert sum(p.meter.queries for p in pnnlab.plants_of(model)) == 0


def test_methods_that_would_work_are_only_those_that_can_train_the_model():
    from pnnlab.methods.base import NeedsDigitalModule, NeedsModel
    model = two_layer(error_std=0.2)  # Sequential of physical layers and a ChannelAffine, no nn.Linear
    working = pnnlab.Method.methods_that_can_train(model)
    assert {"in_silico", "pat", "spsa"} <= set(working) and "ideal (upper bound)" in working
    for unable in ("forward_forward", "dfa", "fa", "aug_dfa"):  # need a GoodnessNet / a digital nn.Linear
        assert unable not in working
    with pytest.raises(MethodRequirementError) as info:
        pnnlab.ForwardForward().check(model)
    message = str(info.value)
    assert "the model needs to be a GoodnessNet (got Sequential)" in message
    assert "build_fibre_goodness_net" in message and "forward_forward" not in message.split("would work")[1]
    assert NeedsModel(nn.Sequential).missing_in(model) is None
    assert NeedsDigitalModule(nn.Linear).missing_in(model) == "to contain a trainable digital Linear"
    assert NeedsDigitalModule(nn.Linear).missing_in(nn.Sequential(model, nn.Linear(2, 2))) is None
    # a frozen Linear does not count
    frozen = nn.Linear(2, 2).requires_grad_(False)
    assert NeedsDigitalModule(nn.Linear).missing_in(nn.Sequential(model, frozen)) is not None


@pytest.mark.parametrize("noise_std", [0.0, 0.02])
def test_conformance_catches_a_true_twin_that_is_the_nominal_one(noise_std):
    from pnnlab.testing import check_true_twin

    class Mislabelled(TanhPlant):
        def true_twin(self):  # the old ambiguity: "ideal" twin = design values
            return self.nominal_twin()

    check_true_twin(TanhPlant(error_std=0.3, noise_std=noise_std))
    with pytest.raises(AssertionError, match="true_twin"):
        check_true_twin(Mislabelled(error_std=0.3, noise_std=noise_std))


def test_the_true_physics_is_asked_afresh_so_a_changing_truth_is_followed():
    model = two_layer(error_std=0.3)
    layer = model[0]
    x = torch.randn(5, 3)
    with executing(pnnlab.OnTrueTwin()):
        before = layer(x).detach()
    layer.plant._error += 0.5  # the device drifted (or was reprogrammed) since
    with executing(pnnlab.OnTrueTwin()):
        after = layer(x).detach()
    torch.testing.assert_close(after, layer.plant(x, layer.control_values()))
    assert not torch.allclose(before, after)


def test_conformance_catches_a_plant_that_ignores_the_call_generator():
    class Stubborn(TanhPlant):
        def _measure(self, x, controls, generator):
            return super()._measure(x, controls, self._generator)  # evaluation would change training

    check_plant(TanhPlant(noise_std=0.01))
    with pytest.raises(AssertionError, match="drew from its own generator"):
        check_plant(Stubborn(noise_std=0.01))
