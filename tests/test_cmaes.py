"""CMA-ES through the cma package: query cost, own random stream, and it optimises a plant."""

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("cma")

from pnnlab import ChannelAffine, PhysicalLayer  # noqa: E402
from pnnlab.layers import plants_of  # noqa: E402
from pnnlab.metering import total_usage  # noqa: E402
from pnnlab.methods.cmaes import CMAES  # noqa: E402
from toy_plants import TanhPlant  # noqa: E402


def _problem():
    plant = TanhPlant(features_in=3, features_out=3, error_std=0.3)
    model = nn.Sequential(PhysicalLayer(plant), ChannelAffine(3, scale=2.0))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=gen)
    return model, x, (x @ torch.randn(3, 3, generator=gen)).argmax(1)


def test_cmaes_reduces_the_plant_loss_and_counts_its_queries():
    model, x, y = _problem()
    method = CMAES(sigma0=0.3, seed=0)
    state = np.random.get_state()[1].copy()
    first = method.step(model, x, y, nn.functional.cross_entropy)
    for _ in range(60):
        before = total_usage(plants_of(model))["queries"]
        loss = method.step(model, x, y, nn.functional.cross_entropy)
        assert total_usage(plants_of(model))["queries"] - before == method.queries_per_step(model)
    assert loss < 0.6 * first
    assert np.array_equal(state, np.random.get_state()[1]), "CMAES must not touch NumPy's global generator"


def test_cmaes_is_reproducible_from_its_seed():
    losses = []
    for _ in range(2):
        model, x, y = _problem()
        method = CMAES(sigma0=0.3, seed=5)
        losses.append([method.step(model, x, y, nn.functional.cross_entropy) for _ in range(3)])
    assert losses[0] == losses[1]


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="sigma0"):
        CMAES(sigma0=0.0)
    with pytest.raises(ValueError, match="population_size"):
        CMAES(population_size=1)
