"""The coherent per-class read-out and the relay gain of the photonic network models."""

import math

import torch

from pnnlab.models.photonic_mesh import CoherentReadout, build_photonic_mesh
from pnnlab.plants.photonics.activation import EOMismatch
from pnnlab.plants.photonics.mzi_mesh import Detector, Heaters


def test_coherent_readout_is_linear_in_the_in_phase_field_plus_the_power():
    r = CoherentReadout(3, linear_scale=2.0, power_scale=5.0)
    with torch.no_grad():
        r.offset.copy_(torch.tensor([0.1, -0.2, 0.3]))
    v = torch.tensor([[0.1, -0.2, 0.3, 0.4, 0.0, -0.1]])  # Re y = (.1, -.2, .3), Im y = (.4, 0, -.1)
    expect = 2.0 * v[:, :3] + 5.0 * (v[:, :3] ** 2 + v[:, 3:] ** 2) + r.offset
    assert torch.allclose(r(v), expect)
    # an output phase of pi flips the sign of the linear term only
    assert torch.allclose(r(-v) - r(v), -4.0 * v[:, :3])


def test_relay_gain_scales_the_amplitudes_re_encoded_on_the_next_mesh():
    kw = dict(in_features=4, n_classes=3, n_ports=4, layers=2, fabrication="ideal", heaters=Heaters.ideal(),
              detector=Detector.ideal(), activation=EOMismatch.ideal(), seed=0)
    one, two = build_photonic_mesh(**kw), build_photonic_mesh(relay_gain=2.0, **kw)
    x = torch.rand(6, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        hidden = one[2](one[1](one[0](x)))  # mesh 1 -> activation -> |field|
        # the last mesh's detected power is quadratic in its input amplitude: x2 -> x4
        p1 = one[3].plant(hidden, one[3].control_values())
        p2 = two[3].plant(hidden, two[3].control_values())
    assert torch.allclose(p2, 4.0 * p1, rtol=1e-4, atol=1e-7)
    assert math.isclose(two[0].plant.encoding.scale, 0.5)  # the first mesh keeps 1 / sqrt(in_features)
