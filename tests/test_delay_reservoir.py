"""The delay reservoir: its integration against a plain step-by-step reference, fixed points, node
inertia, delay mismatch, node error and both noises, the trajectory read-out and its metering."""

import math

import pytest
import torch

from pnnlab.plants.reservoirs import DelayReservoirPlant, NodeError
from pnnlab.testing import check_plant


def _controls(eta, gamma, bias=0.0):
    return {"eta": torch.tensor([eta]), "gamma": torch.tensor([gamma]), "bias": torch.tensor([bias])}


def reference(u, mask, *, eta, gamma, p, theta, substeps, delay, initial=0.0, bias=0.0):
    """Independent step-by-step integration of the documented scheme, one sample, plain Python:
    X_{n+1} = a X_n + (1 - a) eta F((X_{n-D} + X_{n+1-D}) / 2 + gamma J_n + beta), F(s) = s / (1 + |s|^p),
    sampled at the end of every virtual-node interval."""
    n_virtual = mask.shape[0]
    h = theta / substeps
    a = math.exp(-h)
    d = round(delay / h)
    history = {}
    x = initial

    def value(index):
        return history.get(index, initial) if index > 0 else initial
    n, states = 0, []
    for k in range(u.shape[0]):
        row = []
        for i in range(n_virtual):
            j = float(mask[i] @ u[k])
            for _ in range(substeps):
                s = 0.5 * (value(n - d) + value(n + 1 - d)) + gamma * j + bias
                x = a * x + (1 - a) * eta * s / (1 + abs(s) ** p)
                n += 1
                history[n] = x
            row.append(x)
        states.append(row)
    return torch.tensor(states, dtype=torch.float64)


def test_conforms_with_every_non_ideality_on():
    check_plant(DelayReservoirPlant(n_virtual=8, steps=4, substeps=2, node_error=NodeError(0.3, 0.05),
                                    delay_mismatch=0.1, process_noise=1e-3, detection_noise=1e-3, seed=3))


@pytest.mark.parametrize("truth", [{}, {"node_error": NodeError(exponent_error=0.5)},
                                   {"node_error": NodeError(gain_error=0.2)},
                                   {"delay_mismatch": 0.2}, {"delay_mismatch": -0.1}])
def test_plant_integrates_its_hidden_equation(truth):
    """The plant (block recurrence, cumulative sums) equals the step-by-step reference run with its
    hidden values, and differs from the design equation (its nominal twin) when a truth is set. Fails
    if a non-ideality is dropped from the plant or if the integration is wrong."""
    plant = DelayReservoirPlant(n_virtual=5, steps=6, substeps=2, theta=0.2, exponent=1.0, seed=1, **truth)
    u = plant.example_inputs(1)
    c = _controls(0.9, 0.8, bias=0.15)
    got = plant(u, c).reshape(6, 5).double()
    error = truth.get("node_error", NodeError())
    want = reference(u.reshape(6, 1).double(), plant.mask.double(), eta=0.9 * (1 + error.gain_error), gamma=0.8,
                     p=1.0 + error.exponent_error, theta=0.2, substeps=2,
                     delay=5 * 0.2 + truth.get("delay_mismatch", 0.0), bias=0.15)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    nominal = plant.nominal_twin()(u, c).reshape(6, 5).double()
    gap = float((nominal - got).abs().max())
    assert (gap > 1e-3) if truth else (gap < 1e-7)
    torch.testing.assert_close(plant.true_twin()(u, c).double().reshape(6, 5), got, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("eta,p,fixed", [(0.5, 1.0, 0.0), (1.5, 1.0, 0.5), (1.5, 2.0, math.sqrt(0.5))])
def test_zero_input_settles_on_the_fixed_point(eta, p, fixed):
    """With u = 0 a constant X solves X = eta F(X): X* = 0 for eta < 1, X* = (eta - 1)^(1/p) on the
    positive branch for eta > 1 (where 0 is unstable); from a delay line holding 0.3 the node settles there."""
    plant = DelayReservoirPlant(n_virtual=10, steps=1, exponent=p, initial_state=0.3)
    states = plant.trajectory(torch.zeros(1, 80), _controls(eta, 0.1))
    assert abs(float(states[0, -1].mean()) - fixed) < 1e-5
    assert float(states[0, -1].std()) < 1e-5
    assert float((states[0, 0] - fixed).abs().max()) > 1e-2  # it started away from it


def test_zero_input_from_rest_stays_at_rest():
    plant = DelayReservoirPlant(n_virtual=10, steps=20)
    assert float(plant(torch.zeros(2, 20), _controls(0.9, 0.5)).abs().max()) == 0.0


@pytest.mark.parametrize("theta", [0.2, 6.0])
def test_node_inertia_couples_neighbouring_virtual_nodes(theta):
    """First input step (the delay line still at rest): the drive is constant over each interval, so the
    node equation is solved exactly by x_i = e^-theta x_{i-1} + (1 - e^-theta) eta F(gamma m_i u)
    (Appeltant 2011: short theta couples neighbours through the node's response time). A long theta
    leaves every node on its own drive. Fails if the inertia (the carried-over state) is removed."""
    plant = DelayReservoirPlant(n_virtual=8, steps=1, theta=theta, substeps=4, seed=2)
    u = torch.tensor([[0.4]])
    eta, gamma = 0.7, 1.3
    x = plant.trajectory(u, _controls(eta, gamma))[0, 0].double()
    a = math.exp(-theta)
    s = gamma * plant.mask[:, 0].double() * 0.4
    drive = eta * s / (1 + s.abs())
    want, prev = [], 0.0
    for i in range(8):
        prev = a * prev + (1 - a) * float(drive[i])
        want.append(prev)
    torch.testing.assert_close(x, torch.tensor(want, dtype=torch.float64), rtol=1e-5, atol=1e-8)
    own = (1 - a) * drive  # what each node would hold without inertia
    if theta < 1:
        assert float((x - own).abs().max()) > 0.1 * float(own.abs().max())
    else:
        assert float((x - own).abs().max()) < 0.01 * float(own.abs().max())


@pytest.mark.parametrize("bias", [0.0, 0.05])
def test_bias_gives_the_node_its_even_quadratic_response(bias):
    """The operating point. First input step (delay line at rest): node i holds
    x_i = e^-theta x_{i-1} + (1 - e^-theta) eta F(gamma m_i u + beta), which gives F(s_i) back. Nodes with mask +1 and -1 see beta +- delta, delta = gamma u;
    their even response F(beta + delta) + F(beta - delta) - 2 F(beta) is -2 delta^2 / (1 + beta)^3 + O(delta^4)
    for p = 1 on Mackey-Glass's s > 0 branch (beta > delta), and exactly 0 at beta = 0 (F is odd there):
    no products of inputs without the bias. Fails if the bias is dropped or F loses its odd continuation."""
    plant = DelayReservoirPlant(n_virtual=8, steps=1, theta=8.0, substeps=4, seed=2)
    m = plant.mask[:, 0]
    assert bool((m > 0).any() and (m < 0).any())
    eta, gamma, u = 0.7, 0.05, 0.4
    c = _controls(eta, gamma, bias)
    a = math.exp(-8.0)

    def node_f(u_value):  # F(s_i) from the exact solution x_i = a x_{i-1} + (1 - a) eta F(s_i)
        x = plant.trajectory(torch.full((1, 1), u_value, dtype=torch.float64), c)[0, 0]
        return (x - a * torch.cat([x.new_zeros(1), x[:-1]])) / ((1 - a) * eta)
    x, rest = node_f(u), node_f(0.0)
    even = float(x[m > 0][0] + x[m < 0][0] - 2 * rest[0])
    delta = gamma * u
    if bias:
        assert math.isclose(float(rest[0]), bias / (1 + bias), rel_tol=1e-5)
        assert math.isclose(even, -2 * delta ** 2 / (1 + bias) ** 3, rel_tol=0.02)
    else:
        assert abs(even) < 1e-9 and float(rest.abs().max()) == 0.0


def test_bias_reaches_the_narma10_small_signal_regime():
    """The functional consequence (a 100-node ring, 1500 training steps, float64 states): at a small input
    amplitude the biased node beats the best linear input delay line (NRMSE about 0.38 on NARMA10) clearly;
    the same node without the bias does not. Fails if the bias stops reaching the nonlinearity."""
    from pnnlab.data.narma import load_narma, nrmse
    from pnnlab.methods.readout import RidgeReadout
    data = load_narma(length=600, n_train=3, n_val=1, n_test=1, washout=100, seed=0)
    plant = DelayReservoirPlant(n_virtual=100, steps=1, desync_nodes=1, seed=1)
    rows = lambda z: z[:, 100:].reshape(-1, z.shape[-1]).double()  # noqa: E731
    target = lambda y: y[:, 100:].reshape(-1, 1).double()  # noqa: E731
    got = {}
    for bias in (0.0, 0.01):
        c = _controls(0.8, 0.002, bias)
        z = [plant.trajectory(x.double(), c) for x in (data.x_train, data.x_val, data.x_test)]
        fit = RidgeReadout(alphas=tuple(10.0 ** k for k in range(-30, 0, 2)))._solve(
            rows(z[0]), target(data.y_train), rows(z[1]), target(data.y_val), 1)
        got[bias] = nrmse(rows(z[2]) @ fit["weight"].T + fit["bias"], target(data.y_test))
    assert got[0.01] < 0.27 and got[0.0] > 0.33, got


def test_desynchronised_design_is_known_to_the_nominal_twin():
    """desync_nodes = 1: tau = (N + 1) theta by design (Paquot 2012); the plant integrates that delay and
    its nominal twin knows it (a design value, not a hidden error)."""
    plant = DelayReservoirPlant(n_virtual=5, steps=6, desync_nodes=1, seed=2)
    u, c = plant.example_inputs(1), _controls(0.9, 0.8)
    got = plant(u, c).reshape(6, 5).double()
    want = reference(u.reshape(6, 1).double(), plant.mask.double(), eta=0.9, gamma=0.8, p=1.0, theta=0.2,
                     substeps=1, delay=6 * 0.2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(plant.nominal_twin()(u, c).double().reshape(6, 5), got, rtol=1e-5, atol=1e-7)
    synchronised = DelayReservoirPlant(n_virtual=5, steps=6, seed=2)(u, c).reshape(6, 5).double()
    assert float((synchronised - got).abs().max()) > 1e-3


def test_delay_mismatch_changes_the_state_sequence_after_one_period():
    """A delay loop one virtual node too long: the first input step (before the loop comes round) is
    unchanged, every later step differs."""
    kw = dict(n_virtual=12, steps=5, seed=4)
    right, wrong = DelayReservoirPlant(**kw), DelayReservoirPlant(delay_mismatch=0.2, **kw)
    u, c = right.example_inputs(3), _controls(0.9, 0.5)
    a, b = right(u, c).reshape(3, 5, 12), wrong(u, c).reshape(3, 5, 12)
    torch.testing.assert_close(a[:, 0], b[:, 0])
    assert bool(((a[:, 1:] - b[:, 1:]).abs().amax(dim=2) > 1e-4).all())


def test_process_noise_is_an_ornstein_uhlenbeck_term():
    """Without feedback (eta = 0) and input the node is dX = -X dt + sigma dW: stationary variance
    sigma^2 / 2, correlation exp(-theta) between neighbouring virtual nodes. Fails if the noise is
    dropped or its discretisation scale is wrong."""
    sigma = 0.2
    plant = DelayReservoirPlant(n_virtual=50, steps=1, process_noise=sigma, substeps=2)
    x = plant.trajectory(torch.zeros(4, 200), _controls(0.0, 0.0),
                         generator=torch.Generator().manual_seed(0))[:, 20:].reshape(4, -1).double()
    assert abs(float(x.var()) / (sigma ** 2 / 2) - 1) < 0.05
    corr = float((x[:, 1:] * x[:, :-1]).mean() / x.var())
    assert abs(corr - math.exp(-0.2)) < 0.03


def test_detection_noise_is_white_on_every_sampled_state():
    sigma = 0.01
    plant = DelayReservoirPlant(n_virtual=50, steps=100, detection_noise=sigma)
    quiet = DelayReservoirPlant(n_virtual=50, steps=100)
    u, c = plant.example_inputs(4), _controls(0.9, 0.5)
    diff = (plant(u, c, generator=torch.Generator().manual_seed(1)) - quiet(u, c)).double()
    assert abs(float(diff.std()) / sigma - 1) < 0.03
    assert abs(float((diff[:, 1:] * diff[:, :-1]).mean()) / sigma ** 2) < 0.05


def test_trajectory_takes_any_length_and_is_metered_per_step():
    plant = DelayReservoirPlant(n_virtual=6, steps=4, seed=5)
    c = _controls(0.8, 0.4)
    u = plant.example_inputs(3)
    flat = plant(u, c).reshape(3, 4, 6)
    torch.testing.assert_close(plant.trajectory(u, c), flat)
    torch.testing.assert_close(plant.trajectory(u.unsqueeze(-1), c), flat)
    before = plant.meter.snapshot()
    long = plant.trajectory(0.5 * torch.rand(2, 10), c)
    after = plant.meter.snapshot()
    assert long.shape == (2, 10, 6)
    assert after["queries"] - before["queries"] == 1 and after["samples"] - before["samples"] == 2
    expected = plant.cost.seconds_per_query + 2 * plant.cost.seconds_per_sample * 10 / 4
    assert math.isclose(after["device_seconds"] - before["device_seconds"], expected, rel_tol=1e-9)
    with pytest.raises(ValueError, match="shape"):
        plant.trajectory(torch.zeros(2, 5, 2), c)


def test_twin_gradient_matches_finite_differences():
    plant = DelayReservoirPlant(n_virtual=5, steps=4, substeps=2)
    twin = plant.nominal_twin()
    u = plant.example_inputs(2).double()
    eta = torch.tensor([0.8], dtype=torch.float64, requires_grad=True)
    c = {"eta": eta, "gamma": torch.tensor([0.6], dtype=torch.float64), "bias": torch.tensor([0.1], dtype=torch.float64)}
    twin(u, c).sum().backward()
    eps = 1e-6
    up = twin(u, {**c, "eta": eta.detach() + eps}).sum()
    down = twin(u, {**c, "eta": eta.detach() - eps}).sum()
    assert math.isclose(float(eta.grad), float(up - down) / (2 * eps), rel_tol=1e-5)


def test_constructor_errors_name_the_argument():
    with pytest.raises(ValueError, match="theta"):
        DelayReservoirPlant(theta=0.0)
    with pytest.raises(ValueError, match="delay_mismatch"):
        DelayReservoirPlant(n_virtual=4, delay_mismatch=-1.0)
    with pytest.raises(ValueError, match="gain_error"):
        NodeError(gain_error=-1.5)
    with pytest.raises(TypeError, match="node_error"):
        DelayReservoirPlant(node_error=0.1)
