"""Feedback alignment, DFA and augmented DFA against exact backpropagation."""

import pytest
import torch
from torch import nn

from pnnlab.diagnostics.gradient_fidelity import compare_gradients, estimate_gradients
from pnnlab.methods.base import MethodRequirementError
from pnnlab.methods.feedback_alignment import AugmentedDFA, DirectFeedbackAlignment, FeedbackAlignment
from pnnlab.methods.ideal import IdealBackprop
from pnnlab.metering import total_usage
from pnnlab.layers import plants_of
from pnnlab.models.fibre_local import build_fibre_mlp
from pnnlab.plants.optics.fibre import SLM, Camera


def _mlp(hidden_layers=2, width=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    layers, d = [], 6
    for _ in range(hidden_layers):
        layers += [nn.Linear(d, width), nn.Tanh()]
        d = width
    layers.append(nn.Linear(d, 3))
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.normal_(0, 1 / d ** 0.5, generator=gen)
                m.bias.zero_()
    return model


def _task(n=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=gen)
    teacher = torch.randn(6, 3, generator=gen)
    return x, torch.tanh(x @ teacher).argmax(1) if False else (torch.sin(2 * x) @ teacher).argmax(1)


def _angle(method, model, x, y, name):
    est = estimate_gradients(method, model, x, y)
    true = estimate_gradients(IdealBackprop(), model, x, y)
    return compare_gradients({name: est[name]}, {name: true[name]})["overall"]["angle_degrees"]


@pytest.mark.parametrize("method_cls", [FeedbackAlignment, DirectFeedbackAlignment, AugmentedDFA])
def test_angle_to_true_gradient_falls_below_90_degrees_during_training(method_cls):
    """Lillicrap 2016 / Nokland 2016: the forward weights align with the random feedback."""
    model, (x, y) = _mlp(), _task()
    method = method_cls(seed=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    angles = []
    for step in range(300):
        if step % 100 == 0:
            angles.append(_angle(method, model, x, y, "0.weight"))
        opt.zero_grad()
        method.step(model, x, y, nn.functional.cross_entropy)
        opt.step()
    angles.append(_angle(method, model, x, y, "0.weight"))
    assert angles[-1] < 80.0, angles
    assert angles[-1] < angles[0], angles


def test_last_layer_gets_the_exact_gradient():
    model, (x, y) = _mlp(), _task(32)
    true = estimate_gradients(IdealBackprop(), model, x, y)
    for method in (FeedbackAlignment(), DirectFeedbackAlignment(), AugmentedDFA()):
        est = estimate_gradients(method, model, x, y)
        torch.testing.assert_close(est["4.weight"], true["4.weight"])
        torch.testing.assert_close(est["4.bias"], true["4.bias"])


def test_dfa_equals_fa_with_one_hidden_layer():
    """With a single hidden layer DFA and FA coincide when B_DFA = B_FA^T (Nokland 2016)."""
    model, (x, y) = _mlp(hidden_layers=1), _task(32)
    fa, dfa = FeedbackAlignment(seed=0), DirectFeedbackAlignment(seed=0)
    b = fa.feedback_matrix(model[2])
    dfa._feedback._matrices[("dfa", 0)] = b.T.clone()
    g_fa, g_dfa = estimate_gradients(fa, model, x, y), estimate_gradients(dfa, model, x, y)
    for name in g_fa:
        torch.testing.assert_close(g_fa[name], g_dfa[name])


def test_augmented_dfa_with_the_true_derivative_is_dfa():
    """aug-DFA with g = f' (here 1 - tanh^2) reduces to DFA with the same random matrices."""
    model, (x, y) = _mlp(), _task(32)
    dfa, aug = DirectFeedbackAlignment(seed=0), AugmentedDFA(derivative=lambda a: 1 - torch.tanh(a) ** 2, seed=0)
    for i in (0, 2):
        b = torch.randn(24, 3)
        dfa._feedback._matrices[("dfa", i)] = b
        aug._feedback._matrices[("aug", i)] = b
    g_dfa, g_aug = estimate_gradients(dfa, model, x, y), estimate_gradients(aug, model, x, y)
    for name in g_dfa:
        torch.testing.assert_close(g_dfa[name], g_aug[name])


def test_fa_with_a_physical_layer_uses_the_twin_and_one_query():
    model = build_fibre_mlp(in_features=6, n_classes=3, encoder_width=4, camera_pixels=8, n_modes=100,
                            slm=SLM.ideal(), camera=Camera.ideal())
    x, y = _task(16)
    for method in (FeedbackAlignment(), DirectFeedbackAlignment(), AugmentedDFA()):
        before = total_usage(plants_of(model))["queries"]
        grads = estimate_gradients(method, model, x, y)
        assert total_usage(plants_of(model))["queries"] - before == method.queries_per_step(model) == 1
        assert grads["0.weight"].abs().sum() > 0
    aug = estimate_gradients(AugmentedDFA(), model, x, y)
    assert not any(k.startswith("1.") for k in aug), "augmented DFA must not touch physical controls"


def test_dfa_needs_a_twin_but_augmented_dfa_does_not():
    model = build_fibre_mlp(in_features=6, n_classes=3, encoder_width=4, camera_pixels=8, n_modes=100,
                            with_twin=False)
    with pytest.raises(MethodRequirementError, match="aug_dfa"):
        DirectFeedbackAlignment().check(model)
    AugmentedDFA().check(model)


def test_dfa_explains_unsupported_models():
    with pytest.raises(TypeError, match="nn.Sequential"):
        DirectFeedbackAlignment().step(nn.ModuleList([nn.Linear(2, 2)]), torch.zeros(1, 2), torch.zeros(1).long(),
                                       nn.functional.cross_entropy)
    with pytest.raises(TypeError, match="derivative"):
        AugmentedDFA(derivative=3)


def test_fa_and_dfa_are_model_based_augmented_dfa_is_not():
    """On a physical model FA and DFA send the error through the twin's Jacobian (model-based, as the
    benchmarks label them): a different twin changes their encoder update. Augmented DFA's update
    does not depend on the twin at all (model-free)."""
    model = build_fibre_mlp(in_features=6, n_classes=3, encoder_width=4, camera_pixels=8, n_modes=100,
                            slm=SLM.ideal(), camera=Camera.ideal())
    other = build_fibre_mlp(in_features=6, n_classes=3, encoder_width=4, camera_pixels=8, n_modes=100,
                            slm=SLM.ideal(), camera=Camera.ideal(), seed=5)
    x, y = _task(16)
    physical = model[1]
    own_twin, wrong_twin = physical.twin, other[1].twin
    for make, model_based in ((lambda: FeedbackAlignment(seed=0), True), (lambda: DirectFeedbackAlignment(seed=0), True),
                              (lambda: AugmentedDFA(seed=0), False)):
        physical.set_twin(own_twin)
        g_own = estimate_gradients(make(), model, x, y)["0.weight"]
        physical.set_twin(wrong_twin)
        g_wrong = estimate_gradients(make(), model, x, y)["0.weight"]
        assert torch.allclose(g_own, g_wrong) != model_based
    physical.set_twin(own_twin)
