"""Physical local learning as published (Momeni et al., Science 382, 1297 (2023)), checked against a
direct re-computation of the paper's equations, and the contrastive local method it replaced.

Each PhyLL test removes one ingredient when the corresponding code is mutated:
* the label embedding in the physics' input -> test_label_is_written_into_the_first_physical_input,
  test_scores_equal_a_direct_recomputation_of_the_equations;
* the skip [Phi(h), h] -> test_skip_carries_the_block_input_past_the_physics (and the oracle);
* the fixed random unit vector -> test_goodness_is_cosine_to_a_fixed_random_unit_vector (and the oracle);
* the several optimizer steps per block per batch -> test_step_follows_the_authors_schedule.
"""

import copy

import pytest
import torch
from torch import nn

from pnnlab.data.base import TaskData
from pnnlab.layers import physical_layers, plants_of
from pnnlab.metering import total_usage
from pnnlab.methods.local_learning import ContrastiveLocalLearning, PhysicalLocalLearning, wrong_labels
from pnnlab.models.fibre_local import build_fibre_goodness_net, build_fibre_phyll_net
from pnnlab.models.phyll import PhyLLNet, RandomFeatureMap, build_phyll_net, phyll_parameter_count
from pnnlab.train import evaluate, train


def _blobs(n=150, d=6, classes=3, seed=0, spread=0.5):
    gen = torch.Generator().manual_seed(42)
    centres = 1.5 * torch.randn(classes, d, generator=gen)
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=gen)
    return centres[y] + spread * torch.randn(n, d, generator=gen), y


class TanhPhysics(nn.Module):
    """A fixed, label-agnostic nonlinear 'physical system' tanh(R h) (buffers only)."""

    def __init__(self, width_in, width_out, seed):
        super().__init__()
        self.register_buffer("r", torch.randn(width_out, width_in, generator=torch.Generator().manual_seed(seed)))

    def forward(self, h):
        return torch.tanh(h @ self.r.T / h.shape[1] ** 0.5)


class Recorder(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.inputs = inner, []

    def forward(self, h):
        self.inputs.append(h.detach().clone())
        return self.inner(h)


def _tanh_net(d=4, classes=3, hidden=5, physical=6, blocks=2, skip=True, seed=0):
    return build_phyll_net(in_features=d, n_classes=classes, physics=lambda w, i: TanhPhysics(w, physical, 10 + i),
                           physical_width=physical, n_blocks=blocks, hidden=hidden, skip=skip, seed=seed)


def _cos_abs(a, p):
    """cos(|a|, p) written out: sum_j |a_j| p_j / max(||a|| ||p||, eps)."""
    a = a.abs()
    return (a * p).sum(1) / torch.clamp(a.norm(dim=1) * p.norm(), min=1e-6)


# ---------------------------------------------------------------- the paper's equations (oracle)

def test_scores_equal_a_direct_recomputation_of_the_equations():
    torch.manual_seed(0)
    model = _tanh_net()
    x = torch.randn(7, 4)
    scores = model(x)
    expected = torch.zeros(7, 3)
    for c in range(3):
        u = torch.zeros(7, 3 + 4)
        u[:, c] = x.abs().max(dim=1).values          # label value max|x| at the label's position
        u[:, 3:] = x                                  # ... in front of the data: the physics sees both
        h, total = u, torch.zeros(7)
        for l in range(2):
            phi = model.physics[l](h)
            z = torch.cat([phi, h], 1)                # skip [Phi(h), h]
            a = z @ model.linears[l].weight.T + model.linears[l].bias
            total = total + _cos_abs(a, model.probe(l))
            h = a
        expected[:, c] = total
    torch.testing.assert_close(scores, expected)
    # the loss is softplus(-alpha dG), i.e. log(1 + exp(-alpha dG)) of the authors' code
    method = PhysicalLocalLearning(alpha=4.0)
    gp, gn = torch.tensor([0.3, 0.9]), torch.tensor([0.5, 0.1])
    torch.testing.assert_close(method.local_loss(gp, gn), torch.log(1 + torch.exp(-4.0 * (gp - gn))).mean())


def test_step_follows_the_authors_schedule():
    """Two steps of the method equal the authors' loop written out: per block, K Adam steps on the same
    measured inputs, then the block's detached output goes on; Adam state is kept across batches."""
    model = _tanh_net()
    reference = copy.deepcopy(model)
    x, y = _blobs(12, d=4)
    method = PhysicalLocalLearning(alpha=4.0, lr=1e-2, inner_steps=5, seed=3)
    for start in (0, 6):
        method.step(model, x[start:start + 6], y[start:start + 6], None)
    gen = torch.Generator().manual_seed(3)
    opts = [torch.optim.Adam(lin.parameters(), lr=1e-2) for lin in reference.linears]
    for start in (0, 6):
        xb, yb = x[start:start + 6], y[start:start + 6]
        yn = wrong_labels(yb, 3, gen)
        hp, hn = reference.embed(xb, yb), reference.embed(xb, yn)
        for l, lin in enumerate(reference.linears):
            zp = torch.cat([reference.physics[l](hp), hp], 1)
            zn = torch.cat([reference.physics[l](hn), hn], 1)
            for _ in range(5):
                delta = _cos_abs(lin(zp), reference.probe(l)) - _cos_abs(lin(zn), reference.probe(l))
                loss = torch.log(1 + torch.exp(-4.0 * delta)).mean()
                opts[l].zero_grad()
                loss.backward()
                opts[l].step()
            hp, hn = lin(zp).detach(), lin(zn).detach()
    for got, want in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(got, want)
    # and the schedule matters: one step per batch lands elsewhere
    single = copy.deepcopy(reference)
    other = _tanh_net()
    PhysicalLocalLearning(alpha=4.0, lr=1e-2, inner_steps=1, seed=3).step(other, x[:6], y[:6], None)
    assert not torch.allclose(other.linears[0].weight, single.linears[0].weight)


# ---------------------------------------------------------------- each ingredient

def test_label_is_written_into_the_first_physical_input():
    model = _tanh_net()
    model.physics[0] = Recorder(model.physics[0])
    x, y = _blobs(8, d=4)
    PhysicalLocalLearning(inner_steps=1, seed=0).step(model, x, y, None)
    seen = model.physics[0].inputs[0]
    assert seen.shape == (16, 3 + 4)
    pos, neg = seen[:8], seen[8:]
    v = x.abs().max(dim=1).values
    torch.testing.assert_close(pos[:, :3], v[:, None] * nn.functional.one_hot(y, 3).float())
    torch.testing.assert_close(pos[:, 3:], x)
    torch.testing.assert_close(neg[:, 3:], x)
    # a negative carries exactly one label, and it is wrong
    assert torch.equal((neg[:, :3] != 0).sum(1), torch.ones(8, dtype=torch.long))
    assert not bool((neg[:, :3].argmax(1) == y).any())
    # prediction: the physics is run for every candidate label
    model.physics[0].inputs.clear()
    model(x[:2])
    torch.testing.assert_close(model.physics[0].inputs[0][:3, :3].diag(), x[0].abs().max().repeat(3))


def test_negative_labels_are_uniform_over_the_wrong_ones():
    y = torch.zeros(30000, dtype=torch.long)
    neg = wrong_labels(y, 4, torch.Generator().manual_seed(0))
    counts = torch.bincount(neg, minlength=4).float() / len(y)
    assert counts[0] == 0
    torch.testing.assert_close(counts[1:], torch.full((3,), 1 / 3), atol=0.01, rtol=0)


def test_skip_carries_the_block_input_past_the_physics():
    """With an uninformative physical system (constant output) only the skip [Phi(h), h] carries the
    data: PhyLL learns with it and stays near chance without it."""

    class Blind(nn.Module):
        def forward(self, h):
            return torch.ones(h.shape[0], 6)

    x, y = _blobs(150, d=6)
    xt, yt = _blobs(150, d=6, seed=1)
    accuracy = {}
    for skip in (True, False):
        model = build_phyll_net(in_features=6, n_classes=3, physics=lambda w, i: Blind(), physical_width=6,
                                n_blocks=1, hidden=16, skip=skip, seed=0)
        assert model.linears[0].in_features == (6 + 9 if skip else 6)
        h = torch.randn(4, 9)
        z = model.block_input(0, h)
        torch.testing.assert_close(z, torch.cat([torch.ones(4, 6), h], 1) if skip else torch.ones(4, 6))
        method = PhysicalLocalLearning(lr=1e-2, inner_steps=5, seed=0)
        for _ in range(30):
            method.step(model, x, y, None)
        accuracy[skip] = evaluate(model, xt, yt)["accuracy"]
    assert accuracy[True] > 0.85
    assert accuracy[False] < 0.5


def test_goodness_is_cosine_to_a_fixed_random_unit_vector():
    model = _tanh_net(hidden=50)
    p0, p1 = model.probe(0).clone(), model.probe(1).clone()
    assert abs(float(p0.norm()) - 1) < 1e-3 and abs(float(p1.norm()) - 1) < 1e-3
    assert float(torch.dot(p0, p1)) < 0.5                   # one independent probe per layer
    assert not any(p is model.probe(0) for p in model.parameters())
    a = torch.randn(5, 50)
    torch.testing.assert_close(model.goodness(0, a), _cos_abs(a, p0))
    torch.testing.assert_close(model.goodness(0, 3.0 * a), model.goodness(0, a))   # scale-free, unlike mean(a^2)
    torch.testing.assert_close(model.goodness(0, -a), model.goodness(0, a))        # of |a|
    aligned = p0.abs()[None].repeat(2, 1)
    torch.testing.assert_close(model.goodness(0, aligned), torch.full((2,), float(torch.dot(p0.abs(), p0))))
    x, y = _blobs(12, d=4)
    PhysicalLocalLearning(inner_steps=3).step(model, x, y, None)
    assert torch.equal(model.probe(0), p0) and torch.equal(model.probe(1), p1)     # fixed
    # the probes come from the seed
    assert torch.equal(_tanh_net(hidden=50, seed=0).probe(0), p0)
    assert not torch.equal(_tanh_net(hidden=50, seed=1).probe(0), p0)


# ---------------------------------------------------------------- on the fibre plant, through train()

def _task():
    (x, y), (xv, yv), (xt, yt) = _blobs(150), _blobs(60, seed=1), _blobs(90, seed=2)
    return TaskData(name="blobs", x_train=x, y_train=y, x_val=xv, y_val=yv, x_test=xt, y_test=yt, n_classes=3)


def test_phyll_trains_through_an_unknown_fibre_with_train():
    model = build_fibre_phyll_net(in_features=6, n_classes=3, n_blocks=2, hidden=16, camera_pixels=48,
                                  n_modes=64, phase_scale_rad=1.0)
    assert all(layer.twin is None for layer in physical_layers(model))   # PhyLL needs no model of the physics
    controls = [p.detach().clone() for layer in physical_layers(model) for p in layer.parameters()]
    assert phyll_parameter_count(in_features=6, n_classes=3, n_blocks=2, hidden=16, physical_width=48) == \
        sum(p.numel() for p in model.parameters() if p.requires_grad)
    method = PhysicalLocalLearning(lr=5e-3, inner_steps=5, seed=0)
    method.check(model)
    history = train(model, method, _task(), epochs=6, batch_size=25, seed=0)
    assert history.final["test_accuracy"] > 0.85
    after = [p.detach() for layer in physical_layers(model) for p in layer.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(controls, after))
    # the meter confirms one query per physical block per step, 2 x batch samples each
    before = total_usage(plants_of(model))
    x, y = _blobs(10)
    method.step(model, x, y, None)
    after = total_usage(plants_of(model))
    assert after["queries"] - before["queries"] == method.queries_per_step(model) == 2
    assert after["samples"] - before["samples"] == 2 * 20


def test_wrong_model_and_arguments_are_explained():
    with pytest.raises(TypeError, match="PhyLLNet"):
        PhysicalLocalLearning().step(nn.Linear(2, 2), torch.zeros(2, 2), torch.zeros(2).long(), None)
    with pytest.raises(ValueError, match="inner_steps"):
        PhysicalLocalLearning(inner_steps=0)
    with pytest.raises(ValueError, match="requires_grad"):
        PhyLLNet(physics=[nn.Linear(3, 3)], linears=[nn.Linear(6, 2)], n_classes=2)
    assert PhysicalLocalLearning.optics().alpha == 5.0 and PhysicalLocalLearning.optics().inner_steps == 20
    assert PhysicalLocalLearning.microwave().lr == 2.5e-4


def test_random_feature_control_is_fixed_and_informative():
    f = RandomFeatureMap(5, 40, seed=0)
    assert not list(f.parameters())
    h = torch.randn(3, 5)
    torch.testing.assert_close(f(h), f(2 * h))                     # scale removed, as the fibre's encoder does
    assert not torch.allclose(f(h)[0], f(h)[1])


# ---------------------------------------------------------------- contrastive local (the former 'phyll')

def test_contrastive_loss_is_symmetric_and_scale_free():
    method = ContrastiveLocalLearning(sharpness=4.0)
    g = torch.tensor([0.3, 1.0])
    torch.testing.assert_close(method.local_loss(g, g.flip(0)), method.local_loss(g + 5, g.flip(0) + 5))
    assert float(method.local_loss(torch.tensor([2.0]), torch.tensor([0.0]))) < 0.01


def test_contrastive_local_trains_through_an_unknown_fibre_without_touching_it():
    model = build_fibre_goodness_net(in_features=6, n_classes=3, hidden=16, camera_pixels=64, n_modes=100,
                                     phase_scale_rad=0.5)
    for layer in physical_layers(model):
        layer.set_twin(None)
    controls = [p.detach().clone() for layer in physical_layers(model) for p in layer.parameters()]
    x, y = _blobs()
    xt, yt = _blobs(seed=1)
    method = ContrastiveLocalLearning(seed=0)
    method.check(model)
    start = evaluate(model, xt, yt)["accuracy"]
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for epoch in range(20):
        for i in range(0, 150, 25):
            opt.zero_grad()
            method.step(model, x[i:i + 25], y[i:i + 25], None)
            opt.step()
    final = evaluate(model, xt, yt)["accuracy"]
    assert final > 0.85 and final > start
    after = [p.detach() for layer in physical_layers(model) for p in layer.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(controls, after))


def test_no_step_on_a_non_finite_loss():
    model = _tanh_net()
    with torch.no_grad():
        model.linears[0].weight[0, 0] = float("nan")
    before = [p.detach().clone() for p in model.linears[0].parameters()]
    with pytest.raises(FloatingPointError, match="no step was taken"):
        PhysicalLocalLearning().step(model, *_blobs(6, d=4), None)
    after = list(model.linears[0].parameters())
    assert torch.equal(after[1], before[1]) and torch.equal(after[0][1:], before[0][1:])
