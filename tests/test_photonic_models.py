"""Options of the photonic network builder (``build_photonic_mesh``): the read-out recipes and the first
mesh's input scale (used by the vowels and digits benchmarks), with the defaults unchanged."""

import math

import pytest
import torch
from torch import nn

from pnnlab.layers import ChannelAffine, physical_layers
from pnnlab.models.photonic_mesh import CoherentReadout, FieldReadout, PowerReadout, build_photonic_mesh
from pnnlab.plants.photonics.activation import EOMismatch
from pnnlab.plants.photonics.mzi_mesh import CoherentDetection, Detector, Heaters, Photodetection

IDEAL = dict(fabrication="ideal", heaters=Heaters.ideal(), detector=Detector.ideal(), activation=EOMismatch.ideal())


def _x(batch=6, features=4, seed=0):
    return torch.rand(batch, features, generator=torch.Generator().manual_seed(seed))


def test_default_read_out_is_still_photodetection_with_a_per_class_affine_of_scale_20():
    model = build_photonic_mesh(in_features=4, n_classes=3, layers=2, seed=0)
    last = physical_layers(model)[-1].plant
    assert isinstance(last.detection, Photodetection) and last.ports == 3
    assert isinstance(model[-1], ChannelAffine)
    assert torch.allclose(model[-1].scale.detach(), torch.full((3,), 20.0))
    assert math.isclose(physical_layers(model)[0].plant.encoding.scale, 0.5)  # 1 / sqrt(in_features)
    same = build_photonic_mesh(in_features=4, n_classes=3, layers=2, readout=PowerReadout(scale=20.0), seed=0)
    with torch.no_grad():
        assert torch.allclose(model(_x()), same(_x()))
    shorthand = build_photonic_mesh(in_features=4, n_classes=3, layers=2, readout_scale=7.0, seed=0)
    assert torch.allclose(shorthand[-1].scale.detach(), torch.full((3,), 7.0))


def test_field_read_out_detects_the_last_mesh_coherently_and_is_linear_in_its_in_phase_field():
    """On ideal chips the logits are a Re y_k + b |y_k|^2 of the last mesh's complex output fields y_k
    (computed here from the mesh's own twin): fails if the last mesh is photodetected or the read-out
    drops either term."""
    model = build_photonic_mesh(in_features=4, n_classes=3, n_ports=4, layers=2,
                                readout=FieldReadout(linear_scale=3.0, power_scale=2.0), seed=0, **IDEAL)
    meshes = physical_layers(model)
    last = meshes[-1]
    assert isinstance(last.plant.detection, CoherentDetection) and last.plant.ports == 3
    assert isinstance(model[-1], CoherentReadout)
    x = _x()
    with torch.no_grad():
        hidden = nn.Sequential(*list(model)[:-2])(x)  # everything before the last mesh
        y = last.plant.true_twin().fields(hidden, last.control_values())[:, :3]
        expect = 3.0 * y.real + 2.0 * y.abs().square()
        assert torch.allclose(model(x), expect, rtol=1e-4, atol=1e-6)
        assert y.imag.abs().max() > 1e-3  # the quadratures differ: the power term is not (Re y)^2


def test_input_scale_sets_the_first_mesh_amplitude_and_the_in_phase_logits_follow_it_linearly():
    kw = dict(in_features=4, n_classes=3, n_ports=4, layers=1, readout=FieldReadout(linear_scale=1.0, power_scale=0.0),
              seed=0, **IDEAL)
    one = build_photonic_mesh(input_scale=0.5, **kw)
    three = build_photonic_mesh(input_scale=1.5, **kw)
    assert math.isclose(one[0].plant.encoding.scale, 0.5) and math.isclose(three[0].plant.encoding.scale, 1.5)
    with torch.no_grad():
        assert torch.allclose(three(_x()), 3.0 * one(_x()), rtol=1e-4, atol=1e-7)


def test_field_read_out_network_adjoint_gradient_equals_backpropagation_through_the_hardware():
    """Mesh -> on-chip activation -> mesh with coherent detection of the last mesh (ideal chips, noise
    off): the in-situ adjoint gradient equals autograd through the true hardware, 3/7/3 queries."""
    from pnnlab.execution import OnTrueTwin, executing
    from pnnlab.methods.adjoint import AdjointInSitu
    model = build_photonic_mesh(in_features=4, n_classes=3, n_ports=4, layers=2, readout=FieldReadout(),
                                dtype=torch.complex128, seed=1, **IDEAL).double()
    plants = [layer.plant for layer in physical_layers(model)]
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=g)
    before = [p.meter.queries for p in plants]
    AdjointInSitu(dither=1e-6).step(model, x, y, nn.functional.cross_entropy)
    assert [p.meter.queries - b for p, b in zip(plants, before)] == [3, 7, 3]
    measured = [p.grad.clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    with executing(OnTrueTwin()):
        nn.functional.cross_entropy(model(x), y).backward()
    for a, b in zip(measured, [p.grad for p in model.parameters()]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_builder_rejects_bad_read_out_and_input_scale_arguments():
    with pytest.raises(ValueError, match="not both"):
        build_photonic_mesh(in_features=4, n_classes=3, readout=FieldReadout(), readout_scale=10.0)
    with pytest.raises(TypeError, match="readout"):
        build_photonic_mesh(in_features=4, n_classes=3, readout="coherent")
    with pytest.raises(ValueError, match="input_scale"):
        build_photonic_mesh(in_features=4, n_classes=3, input_scale=-1.0)
    with pytest.raises(ValueError, match="linear_scale"):
        FieldReadout(linear_scale=0.0)
    with pytest.raises(ValueError, match="PowerReadout.scale"):
        PowerReadout(scale=-2.0)
