"""Physical local learning: no model of the physics, only the digital layers learn."""

import torch

from pnnlab.layers import physical_layers
from pnnlab.methods.local_learning import PhysicalLocalLearning
from pnnlab.models.fibre_local import build_fibre_goodness_net
from pnnlab.train import evaluate


def _blobs(n=150, d=6, classes=3, seed=0):
    gen = torch.Generator().manual_seed(42)
    centres = 1.5 * torch.randn(classes, d, generator=gen)
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=gen)
    return centres[y] + 0.5 * torch.randn(n, d, generator=gen), y


def test_contrastive_loss_is_symmetric_and_scale_free():
    method = PhysicalLocalLearning(sharpness=4.0)
    g = torch.tensor([0.3, 1.0])
    # depends only on G+ - G-: adding a constant to both changes nothing
    torch.testing.assert_close(method.local_loss(g, g.flip(0)), method.local_loss(g + 5, g.flip(0) + 5))
    assert float(method.local_loss(torch.tensor([2.0]), torch.tensor([0.0]))) < 0.01


def test_phyll_trains_through_an_unknown_fibre_without_touching_it():
    model = build_fibre_goodness_net(in_features=6, n_classes=3, hidden=16, camera_pixels=64, n_modes=100,
                                     phase_scale_rad=0.5)
    for layer in physical_layers(model):
        layer.set_twin(None)  # PhyLL must not need any model of the physics
    controls = [p.detach().clone() for layer in physical_layers(model) for p in layer.parameters()]
    x, y = _blobs()
    xt, yt = _blobs(seed=1)
    method = PhysicalLocalLearning(seed=0)
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


def test_phyll_query_cost_is_confirmed_by_the_meter():
    from pnnlab.layers import plants_of
    from pnnlab.metering import total_usage
    model = build_fibre_goodness_net(in_features=6, n_classes=3, n_blocks=2, hidden=8, camera_pixels=12, n_modes=100)
    x, y = _blobs(10)
    method = PhysicalLocalLearning()
    before = total_usage(plants_of(model))["queries"]
    method.step(model, x, y, None)
    assert total_usage(plants_of(model))["queries"] - before == method.queries_per_step(model) == 2
