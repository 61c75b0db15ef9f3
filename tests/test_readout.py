"""Closed-form read-outs: ridge equals scikit-learn / the normal equations on the same features, alpha
is chosen on the validation split, the plant queries are exactly one pass over train + val, and the
same method works unchanged on another registered plant (a fibre used as an extreme learning machine)."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from pnnlab import PhysicalLayer, train
from pnnlab.data import narma as narma_data
from pnnlab.execution import OnTrueTwin
from pnnlab.methods.base import MethodRequirementError
from pnnlab.methods.readout import LogisticReadout, RidgeReadout, readout_model
from pnnlab.plants.optics.fibre import SLM, Camera, FibrePlant
from pnnlab.plants.reservoirs import DelayReservoirPlant


def _series_task(seed=0, length=60, washout=10):
    return narma_data.load_narma(length=length, n_train=3, n_val=2, n_test=1, washout=washout, seed=seed)


def _reservoir_model(length=60, **kw):
    plant = DelayReservoirPlant(n_virtual=12, steps=length, seed=1, **kw)
    model = readout_model(plant, 1)
    model[0] = PhysicalLayer(plant, initial_controls={"eta": torch.tensor([0.9]), "gamma": torch.tensor([0.3]),
                                                          "bias": torch.tensor([0.0])})
    return plant, model


def test_ridge_equals_sklearn_and_the_normal_equations_on_the_same_features():
    from sklearn.linear_model import Ridge
    data = _series_task()
    plant, model = _reservoir_model()
    method = RidgeReadout(washout=10, alphas=(1e-6,))
    fit = method.fit(model, data)
    z = method.features(model, data.x_train)[:, 10:].reshape(-1, 12).double()  # noiseless plant: same features
    y = data.y_train[:, 10:].reshape(-1).double()
    reference = Ridge(alpha=1e-6, fit_intercept=True, solver="svd").fit(z.numpy(), y.numpy())
    readout = model[2]
    torch.testing.assert_close(readout.weight.detach().double().flatten(), torch.from_numpy(reference.coef_),
                               rtol=1e-4, atol=1e-4 * float(reference.coef_.__abs__().max()))
    # the normal equations with a centred design: (Zc^T Zc + alpha I) w = Zc^T (y - mean y)
    zc, yc = z - z.mean(0), y - y.mean()
    w = torch.linalg.solve(zc.T @ zc + 1e-6 * torch.eye(12, dtype=torch.float64), zc.T @ yc)
    torch.testing.assert_close(readout.weight.detach().double().flatten(), w, rtol=1e-4,
                               atol=1e-4 * float(w.abs().max()))
    assert math.isclose(float(readout.bias.detach()), float(y.mean() - z.mean(0) @ w), rel_tol=1e-4, abs_tol=1e-6)
    assert fit.alpha == 1e-6


def test_alpha_is_chosen_on_the_validation_split():
    """Every alpha's validation MSE recomputed independently: the chosen one is the minimum. Replacing the
    validation targets by a constant (the training mean) makes the largest alpha best, which a method
    choosing on the training split (always the smallest alpha) would never pick."""
    data = _series_task()
    _, model = _reservoir_model()
    alphas = (1e-8, 1e-5, 1e-2, 1e1, 1e4)
    method = RidgeReadout(washout=10, alphas=alphas)
    fit = method.fit(model, data)
    z_tr = method.features(model, data.x_train)[:, 10:].reshape(-1, 12).double()
    z_va = method.features(model, data.x_val)[:, 10:].reshape(-1, 12).double()
    y_tr = data.y_train[:, 10:].reshape(-1, 1).double()
    y_va = data.y_val[:, 10:].reshape(-1, 1).double()
    mse = {a: float((z_va @ w + b - y_va).pow(2).mean())
           for a, (w, b) in zip(alphas, RidgeReadout.solve_ridge(z_tr, y_tr, alphas))}
    assert fit.alpha == min(mse, key=mse.get)
    assert fit.alpha < 1e4
    constant = SimpleNamespace(x_train=data.x_train, y_train=data.y_train, x_val=data.x_val,
                               y_val=torch.full_like(data.y_val, float(data.y_train[:, 10:].mean())))
    assert RidgeReadout(washout=10, alphas=alphas).fit(model, constant).alpha == 1e4


def test_fit_spends_exactly_one_pass_over_train_and_val():
    data = _series_task()
    plant, model = _reservoir_model()
    fit = RidgeReadout(washout=10, batch_size=2).fit(model, data)
    assert fit.usage["queries"] == math.ceil(3 / 2) + math.ceil(2 / 2)
    assert fit.usage["samples"] == 5 == plant.meter.samples
    # the upper bound on the true physics queries nothing
    before = plant.meter.queries
    RidgeReadout(washout=10).fit(model, data, execution=OnTrueTwin())
    assert plant.meter.queries == before


def test_readout_fits_narma_better_than_the_mean_and_is_used_by_train():
    data = _series_task(length=120, washout=20)
    _, model = _reservoir_model(length=120)
    RidgeReadout(washout=20).fit(model, data)
    with torch.no_grad():
        pred = model(data.x_test)
    assert narma_data.nrmse(data.scored(pred), data.scored(data.y_test)) < 0.9
    # pnnlab.train calls step(): one closed-form fit per batch, parameters written by the method
    from pnnlab.data.tabular import load_iris
    iris = load_iris(seed=0)
    plant = DelayReservoirPlant(n_virtual=10, steps=4, seed=0)
    elm = nn.Sequential(PhysicalLayer(plant), nn.Linear(40, 3))
    history = train(elm, RidgeReadout(), iris, epochs=1, batch_size=len(iris.y_train))
    assert history.final["val_accuracy"] > 0.6


def _fibre_elm(classes):
    plant = FibrePlant(in_features=64, out_features=160, n_modes=96, slm=SLM.ideal(), camera=Camera.ideal(), seed=0)
    return nn.Sequential(PhysicalLayer(plant), nn.Linear(160, classes))


@pytest.mark.parametrize("method_cls", [RidgeReadout, LogisticReadout])
def test_same_method_trains_a_fibre_extreme_learning_machine(method_cls):
    """A multimode fibre (registered plant ``fibre``) as a fixed random feature map of 8x8 digits, the
    read-out fitted unchanged; far above chance (10 %) on the test split."""
    from pnnlab.data.tabular import load_digits
    data = load_digits(seed=0)
    model = _fibre_elm(data.n_classes)
    fit = method_cls(alphas=(1e-2, 1.0, 1e2)).fit(model, data)
    with torch.no_grad():
        accuracy = float((model(data.x_test).argmax(1) == data.y_test).float().mean())
    assert fit.val_accuracy > 0.8 and accuracy > 0.8
    assert fit.usage["samples"] == len(data.y_train) + len(data.y_val)


def test_logistic_readout_equals_sklearn_on_standardised_features():
    from sklearn.linear_model import LogisticRegression
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 5, generator=g, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * torch.randn(120, generator=g, dtype=torch.float64) > 0).long() \
        + (x[:, 2] > 1).long()
    res = LogisticReadout(alphas=(1.0,))._solve(x, y, x, y, 3)
    mean, std = x.mean(0), x.std(0, unbiased=False)
    reference = LogisticRegression(C=1.0, max_iter=2000, tol=1e-10).fit(((x - mean) / std).numpy(), y.numpy())
    ours = torch.softmax(x @ res["weight"].T + res["bias"], dim=1)
    theirs = torch.from_numpy(reference.predict_proba(((x - mean) / std).numpy()))
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_errors_name_what_is_missing():
    plant = DelayReservoirPlant(n_virtual=4, steps=2)
    with pytest.raises(MethodRequirementError, match="Linear"):
        RidgeReadout().check(nn.Sequential(PhysicalLayer(plant)))
    with pytest.raises(ValueError, match="alphas"):
        RidgeReadout(alphas=())
    with pytest.raises(ValueError, match="ridge_readout"):
        LogisticReadout()._solve(torch.zeros(6, 2).double(), torch.zeros(6, 1).double(),
                                 torch.zeros(6, 2).double(), torch.zeros(6, 1).double(), 1)
