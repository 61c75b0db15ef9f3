"""Gradient fidelity is measured against the gradient on the plant's true physics (issue 7, section 2)."""

import torch
from torch import nn

from pnnlab import ChannelAffine, IdealBackprop, InSilico, PhysicalLayer, PhysicsAwareTraining
from pnnlab.diagnostics import FidelityTracker, estimate_gradients, gradient_fidelity, true_gradients

from toy_plants import TanhPlant


def mismatched_model(error_std, perfect_twin=False):
    p1 = TanhPlant(features_in=3, features_out=5, error_std=error_std, seed=1)
    p2 = TanhPlant(features_in=5, features_out=3, error_std=error_std, seed=2)
    twins = [p.true_twin() if perfect_twin else p.nominal_twin() for p in (p1, p2)]
    torch.manual_seed(0)
    return nn.Sequential(PhysicalLayer(p1, twin=twins[0]), PhysicalLayer(p2, twin=twins[1]), ChannelAffine(3))


def batch(n=64):
    g = torch.Generator().manual_seed(3)
    return torch.randn(n, 3, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_true_gradient_is_backprop_through_the_true_physics_by_default():
    model = mismatched_model(0.5)
    x, y = batch()
    default = true_gradients(model, x, y)  # no reference argument needed
    ideal = estimate_gradients(IdealBackprop(), model, x, y)
    nominal = estimate_gradients(InSilico(), model, x, y)
    assert default.keys() == ideal.keys()
    for name in ideal:
        torch.testing.assert_close(default[name], ideal[name])
    # and it is not the nominal twin's gradient (the reference of the old code)
    assert any(not torch.allclose(default[n], nominal[n], rtol=1e-3, atol=1e-6) for n in default)
    tracker = FidelityTracker(InSilico())
    assert isinstance(tracker.reference, IdealBackprop)


def test_on_a_mismatched_plant_pat_is_closer_to_the_truth_than_in_silico():
    model = mismatched_model(0.5)
    x, y = batch()
    pat = gradient_fidelity(PhysicsAwareTraining(), model, x, y)["overall"]
    silico = gradient_fidelity(InSilico(), model, x, y)["overall"]
    assert pat["cosine"] > silico["cosine"] + 0.02, (pat, silico)
    assert pat["relative_error"] < silico["relative_error"], (pat, silico)
    assert silico["relative_error"] > 0.1  # the nominal twin's gradient is visibly wrong


def test_with_a_perfect_twin_both_estimators_equal_the_truth():
    model = mismatched_model(0.5, perfect_twin=True)
    x, y = batch()
    for method in (PhysicsAwareTraining(), InSilico()):
        overall = gradient_fidelity(method, model, x, y)["overall"]
        assert overall["cosine"] > 1 - 1e-6 and overall["relative_error"] < 1e-5, (method, overall)


def test_fidelity_measurement_does_not_change_parameters():
    model = mismatched_model(0.3)
    x, y = batch()
    before = [p.detach().clone() for p in model.parameters()]
    tracker = FidelityTracker(PhysicsAwareTraining())
    record = tracker.measure(model, x, y, step=0)
    assert tracker.records == [record] and 0 < record["cosine"] <= 1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
