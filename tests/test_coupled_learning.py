"""Coupled learning: clamped states, the local contrastive rule is a descent direction, exact
direction in the linear single-output limit, and it learns iris."""

import pytest
import torch
from torch import nn

from pnnlab import ChannelAffine, InSilico, PhysicalLayer, evaluate, train
from pnnlab.diagnostics.gradient_fidelity import compare_gradients, estimate_gradients
from pnnlab.methods.coupled_learning import CoupledLearning
from pnnlab.plants.electronics import ResistiveNetworkPlant
from pnnlab.testing import check_method

torch.set_num_threads(1)


def _model(out=2, hidden=(6,), **kw):
    plant = ResistiveNetworkPlant(in_features=3, out_features=out, hidden=hidden, dtype=torch.float64,
                                  tolerance_V=1e-14, max_sweeps=20000, **kw)
    return nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin(backward_sweeps=200)))


def _batch(out=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(12, 3, generator=g), 0.1 * torch.randn(12, out, generator=g)


def test_clamped_state_holds_outputs_at_the_nudged_target():
    model = _model()
    x, y = _batch()
    plant = model[0].plant
    controls = {k: v.detach() for k, v in model[0].control_values().items()}
    free = plant.relax(x, controls)
    from pnnlab.plants.capabilities import OutputClamp
    target = free.output + 0.5 * (y - free.output)  # Stern et al.: y_C = y_F + eta (y* - y_F)
    clamped = plant.relax(x, controls, nudge=OutputClamp(target), initial=free)
    assert torch.allclose(clamped.output, target, atol=1e-6)


def test_rule_follows_the_gradient_direction_in_the_linear_single_output_limit():
    """Linear network, one differential output: (M_C - M_F) / eta is (almost) parallel to the MSE
    gradient (Stern et al. 2021). Not exactly: the plant holds the output pair's common mode at its
    free value while clamping the difference, which adds a small common-mode term."""
    model = _model(out=1, diode_low_V=-0.2)  # never conducts: a linear network
    x, y = _batch(out=1)
    true = estimate_gradients(InSilico(), model, x, y, nn.functional.mse_loss)
    cosines = []
    for eta in (1e-3, 0.5):
        est = estimate_gradients(CoupledLearning(eta=eta), model, x, y, nn.functional.mse_loss)
        cosines.append(compare_gradients(est, true)["overall"]["cosine"])
    assert cosines[0] > 0.999 and cosines[1] > 0.85
    assert cosines[0] > cosines[1]  # closer to the gradient as eta -> 0


def _norm(grads):
    return sum(float(v.norm() ** 2) for k, v in grads.items() if "conductance" in k) ** 0.5


def test_the_one_over_eta_scale_makes_the_rule_independent_of_eta():
    """(M_C - M_F) grows linearly with the clamp step eta; Stern's 1/eta makes the estimate the same
    for every small eta (a fixed multiple of the gradient: the network's output stiffness, in
    siemens). Fails if the 1/eta is removed (the estimates would differ tenfold)."""
    model = _model(out=1, diode_low_V=-0.2)
    x, y = _batch(out=1)
    true = estimate_gradients(InSilico(), model, x, y, nn.functional.mse_loss)
    small = estimate_gradients(CoupledLearning(eta=1e-3), model, x, y, nn.functional.mse_loss)
    large = estimate_gradients(CoupledLearning(eta=1e-2), model, x, y, nn.functional.mse_loss)
    assert _norm(small) == pytest.approx(_norm(large), rel=0.01)
    stiffness = _norm(small) / _norm(true)  # siemens: the conductance the outputs see
    plant = model[0].plant
    lo, hi = plant.conductance_range_S
    assert lo < stiffness < hi * (plant.hidden[-1] + 2)


def test_rule_is_a_descent_direction_for_a_nonlinear_network():
    model = _model(out=2, hidden=(6, 5))
    x, y = _batch()
    true = estimate_gradients(InSilico(), model, x, y, nn.functional.mse_loss)
    for eta in (0.05, 0.5):
        est = estimate_gradients(CoupledLearning(eta=eta), model, x, y, nn.functional.mse_loss)
        assert compare_gradients(est, true)["overall"]["cosine"] > 0.7


def test_two_relaxations_per_step_and_conformance():
    model = _model()
    x, y = _batch()
    plant = model[0].plant
    before = plant.meter.queries
    CoupledLearning().step(model, x, y, nn.functional.mse_loss)
    assert plant.meter.queries - before == 2
    check_method(CoupledLearning(), model, x, y, loss_fn=nn.functional.mse_loss)


def test_learns_iris():
    from pnnlab.data.tabular import load_iris
    data = load_iris(seed=0)
    plant = ResistiveNetworkPlant(in_features=4, out_features=3, hidden=(16,))
    model = nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin()), ChannelAffine(3, scale=50.0))
    # eta small enough that the clamped outputs stay inside the 0.2 V read range
    train(model, CoupledLearning(eta=0.003), data, epochs=60, lr=0.05, batch_size=32, evaluate_every=60)
    assert evaluate(model, data.x_test, data.y_test)["accuracy"] >= 0.9


@pytest.mark.parametrize("eta", [0.0, 1.5, "0.5", True])
def test_validation(eta):
    with pytest.raises(ValueError, match="eta"):
        CoupledLearning(eta=eta)


def test_cl_step_is_device_clean_on_a_noisy_memristive_network_and_model_to_keeps_the_step():
    """Under the device audit a coupled-learning step (free and clamped relaxations, local rule) runs
    on a memristive, noisy resistive network; model.to("cpu") leaves the step unchanged."""
    from pnnlab.plants.electronics import TAOX_YI_2023, ResistiveMismatch
    from pnnlab.testing import check_method_device

    x, y = _batch(seed=4)
    grads = []
    for move in (False, True):
        model = _model(device=TAOX_YI_2023, mismatch=ResistiveMismatch(read_noise_V=1e-4))
        if move:
            model.to("cpu")
        check_method_device(CoupledLearning(eta=0.1), model, x, y, loss_fn=nn.functional.mse_loss)
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
