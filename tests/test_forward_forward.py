"""Forward-forward on goodness networks: locality, query cost, and learning a simple task."""

import pytest
import torch
from torch import nn

from pnnlab.layers import plants_of
from pnnlab.metering import total_usage
from pnnlab.methods.forward_forward import ForwardForward
from pnnlab.models.fibre_local import build_fibre_goodness_net
from pnnlab.models.goodness import GoodnessNet, goodness
from pnnlab.train import evaluate


def _blobs(n=120, d=6, classes=3, seed=0):
    centres = 2.0 * torch.randn(classes, d, generator=torch.Generator().manual_seed(42))
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=gen)
    return centres[y] + 0.5 * torch.randn(n, d, generator=gen), y


def _digital_net(d=6, classes=3):
    torch.manual_seed(0)  # nn.Linear default initialisation only
    blocks = [nn.Sequential(nn.Linear(d + classes, 32), nn.ReLU()), nn.Sequential(nn.Linear(32, 32), nn.ReLU())]
    return GoodnessNet(blocks, n_classes=classes, label_scale=2.0)


def test_gradients_are_exactly_the_local_objectives():
    """Each block's .grad is the autograd gradient of its own loss only (nothing crosses blocks)."""
    model, (x, y) = _digital_net(), _blobs(16)
    method = ForwardForward(seed=0)
    method.step(model, x, y, None)
    got = [p.grad.clone() for p in model.parameters()]
    # rebuild the same positive/negative batch and differentiate block 2's loss alone
    neg = ForwardForward(seed=0).negative_labels(y, 3)
    u = model.embed(torch.cat([x, x]), torch.cat([y, neg]))
    model.zero_grad()
    h1 = model.blocks[0](u)
    h2 = model.blocks[1](model.block_inputs(u, 1, h1.detach()))
    g = goodness(h2)
    method.local_loss(g[:16], g[16:]).backward()
    assert all(p.grad is None for p in model.blocks[0].parameters())
    for p, ref in zip(model.blocks[1].parameters(), got[2:]):
        torch.testing.assert_close(p.grad, ref)


def test_forward_forward_learns_and_separates_goodness():
    model, (x, y) = _digital_net(), _blobs()
    method = ForwardForward(threshold=2.0, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        method.step(model, x, y, None)
        opt.step()
    xt, yt = _blobs(seed=1)
    assert evaluate(model, xt, yt)["accuracy"] > 0.9
    with torch.no_grad():
        scores = model(xt)
    correct = scores.gather(1, yt[:, None]).squeeze(1)
    assert float(correct.mean()) > float(scores.mean())


def test_physical_front_end_is_queried_once_per_step_and_once_for_inference():
    model = build_fibre_goodness_net(in_features=6, n_classes=3, n_blocks=2, hidden=8, camera_pixels=12, n_modes=100)
    x, y = _blobs(10)
    plants = plants_of(model)
    assert len(plants) == 2
    before = total_usage(plants)
    ForwardForward().step(model, x, y, None)
    after = total_usage(plants)
    assert after["queries"] - before["queries"] == ForwardForward().queries_per_step(model) == 2
    # front end: 10 samples (label-independent); block 2: positive and negative, 20 samples
    assert after["samples"] - before["samples"] == 10 + 20
    model(x)
    assert total_usage(plants)["samples"] - after["samples"] == 10 + 10 * 3


def test_wrong_model_is_explained():
    with pytest.raises(TypeError, match="GoodnessNet"):
        ForwardForward().step(nn.Linear(2, 2), torch.zeros(2, 2), torch.zeros(2).long(), None)
    with pytest.raises(ValueError, match="threshold"):
        ForwardForward(threshold=0.0)
