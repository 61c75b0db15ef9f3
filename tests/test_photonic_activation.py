"""Electro-optic activation (Williamson et al. 2020): transfer function, hidden truth, and its use
between reciprocal layers trained by the in-situ adjoint method."""

import math

import pytest
import torch
from torch import nn

from pnnlab import PhysicalLayer
from pnnlab.plants.photonics.activation import (EODesign, EOMismatch, ElectroOpticActivationPlant,
                                                ElectroOpticNonlinearity, eo_activation)
from pnnlab.testing import check_plant


def _power_transmission(alpha, gain, bias, power):
    return (1 - alpha) * math.cos(0.5 * (gain * power + bias)) ** 2


def test_transfer_function_matches_williamson():
    z = torch.tensor([[0.3 + 0.4j, 1.0 + 0.0j, -0.2 + 0.9j]], dtype=torch.complex128)
    alpha, g, phi_b = 0.1, math.pi, math.pi
    out = eo_activation(z, alpha=alpha, gain=g, bias=phi_b)
    for k in range(3):
        zk = complex(z[0, k])
        p = abs(zk) ** 2
        expected = 1j * math.sqrt(1 - alpha) * complex(math.cos(-(g * p + phi_b) / 2),
                                                       math.sin(-(g * p + phi_b) / 2)) * math.cos((g * p + phi_b) / 2) * zk
        assert complex(out[0, k]) == pytest.approx(expected, abs=1e-12)
    # power transmission (1 - alpha) cos^2((g P + phi_b) / 2): zero at P = 0 for phi_b = pi, rising with P
    powers = torch.linspace(0.0, 0.9, 10, dtype=torch.float64)
    t = eo_activation(powers.sqrt().to(torch.complex128).unsqueeze(0), alpha=alpha, gain=g, bias=phi_b).abs().square()
    assert float(t[0, 0]) == 0.0
    assert bool((t[0, 1:] > t[0, :-1]).all())  # ReLU-like, monotone up to P = 1
    # no gain: a linear element
    lin = eo_activation(z, alpha=alpha, gain=0.0, bias=0.5)
    ratio = lin / z
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))


def test_conforms():
    check_plant(ElectroOpticActivationPlant(n_channels=3))
    check_plant(ElectroOpticActivationPlant(n_channels=3, mismatch=EOMismatch.ideal()))


def test_nominal_twin_is_the_ideal_plant_and_the_digital_module():
    plant = ElectroOpticActivationPlant(n_channels=3, mismatch=EOMismatch.ideal())
    x = plant.example_inputs(6).double()
    c = {"bias_rad": torch.full((3,), 0.3)}
    y = plant(x, c)
    torch.testing.assert_close(plant.nominal_twin()(x, c), y)
    torch.testing.assert_close(ElectroOpticNonlinearity(3, bias_rad=0.3)(x), y)


@pytest.mark.parametrize("which", ["alpha_rel_sigma", "gain_rel_sigma", "bias_sigma_rad"])
def test_each_fabrication_error_shows_in_the_measured_transmission(which):
    """Mutation: with the error off, the measured transmission is the design's (and the other way)."""
    sigma = {"alpha_rel_sigma": 0.2, "gain_rel_sigma": 0.2, "bias_sigma_rad": 0.3}[which]
    for on in (True, False):
        mismatch = EOMismatch(**{**{k: 0.0 for k in ("alpha_rel_sigma", "gain_rel_sigma", "bias_sigma_rad")},
                                 "photodiode_noise": 0.0, which: sigma if on else 0.0})
        plant = ElectroOpticActivationPlant(n_channels=4, mismatch=mismatch, seed=5)
        power = 0.6
        x = torch.zeros(1, 8, dtype=torch.float64)
        x[0, :4] = math.sqrt(power)
        bias = torch.full((4,), 2.0, dtype=torch.float64)
        y = plant(x, {"bias_rad": bias})
        measured = (y[0, :4] ** 2 + y[0, 4:] ** 2) / power
        design = _power_transmission(0.1, math.pi, 2.0, power)
        true = [_power_transmission(float(plant._alpha[k]), float(plant._gain[k]),
                                    2.0 + float(plant._bias_offset[k]), power) for k in range(4)]
        torch.testing.assert_close(measured, torch.tensor(true, dtype=torch.float64), rtol=1e-9, atol=1e-12)
        gap = float((measured - design).abs().max())
        assert (gap > 2e-3) if on else (gap < 1e-12)


def test_photodiode_noise_moves_the_modulator_phase():
    """Mutation: without photodiode noise repeated outputs are identical; with it their spread is the
    linearised gain x noise x d(out)/d(bias)."""
    sigma = 1e-3
    plant = ElectroOpticActivationPlant(n_channels=2, mismatch=EOMismatch(0.0, 0.0, 0.0, photodiode_noise=sigma))
    x = torch.full((4000, 4), 0.5, dtype=torch.float64)
    bias = torch.full((2,), 2.0, dtype=torch.float64)
    y = plant(x, {"bias_rad": bias})
    h = 1e-6
    slope = (plant.true_twin()(x[:1], {"bias_rad": bias + h}) - plant.true_twin()(x[:1], {"bias_rad": bias - h})) / (2 * h)
    expected = (math.pi * sigma * slope.abs())[0]
    torch.testing.assert_close(y.std(0), expected, rtol=0.08, atol=1e-9)
    quiet = ElectroOpticActivationPlant(n_channels=2, mismatch=EOMismatch.ideal())
    assert float(quiet(x, {"bias_rad": bias}).std(0).max()) == 0.0


def test_validation():
    with pytest.raises(ValueError, match="alpha"):
        EODesign(alpha=1.5)
    with pytest.raises(TypeError, match="mismatch"):
        ElectroOpticActivationPlant(mismatch=None)


def test_adjoint_through_mesh_activation_mesh_matches_the_true_gradient():
    """Reciprocal mesh -> on-chip activation -> reciprocal mesh, trained by the in-situ adjoint
    method: the mesh gradients come from light, the activation's Jacobian from dithering; together
    they match backpropagation through the true hardware (noise off) to the dithering error, and the
    meter shows 3 + 7 + 3 queries."""
    from test_adjoint import ToyReciprocalMesh
    from pnnlab.execution import OnTrueTwin, executing
    from pnnlab.methods.adjoint import AdjointInSitu
    mesh1 = ToyReciprocalMesh(n=3, columns=3, split_sigma=0.1, offset_sigma=0.3, seed=1)
    act = ElectroOpticActivationPlant(n_channels=3, mismatch=EOMismatch(photodiode_noise=0.0), seed=2)
    mesh2 = ToyReciprocalMesh(n=3, columns=3, split_sigma=0.1, offset_sigma=0.3, coherent=False, seed=3)

    class Fields(nn.Module):  # coherent read-out of mesh 1 ([Re, Im]) is the activation's input layout
        def forward(self, v):
            return v

    class Amplitude(nn.Module):  # the activation's output field re-encoded as real amplitudes for mesh 2
        def forward(self, v):
            return torch.sqrt(v[:, :3] ** 2 + v[:, 3:] ** 2 + 1e-12)

    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(PhysicalLayer(mesh1, initial_controls=mesh1.initial_controls(g)), Fields(),
                          PhysicalLayer(act), Amplitude(),
                          PhysicalLayer(mesh2, initial_controls=mesh2.initial_controls(g)),
                          nn.Linear(3, 2).double()).double()
    x = torch.rand(6, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (6,), generator=g)
    before = [p.meter.queries for p in (mesh1, act, mesh2)]
    for p in model.parameters():
        p.grad = None
    AdjointInSitu(dither=1e-5).step(model, x, y, nn.functional.cross_entropy)
    measured = [p.grad.clone() for p in model.parameters()]
    assert [p.meter.queries - b for p, b in zip((mesh1, act, mesh2), before)] == [3, 7, 3]
    for p in model.parameters():
        p.grad = None
    with executing(OnTrueTwin()):
        nn.functional.cross_entropy(model(x), y).backward()
    for a, b in zip(measured, [p.grad for p in model.parameters()]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)


def test_photonic_mesh_model_adjoint_gradient_and_queries():
    """The registered 3-layer coherent network on ideal chips with on-chip activations (noise off):
    the in-situ adjoint gradient equals backpropagation through the hardware (to the dithering error)
    and costs 3 queries per mesh and 7 per activation."""
    from pnnlab.execution import OnTrueTwin, executing
    from pnnlab.methods.adjoint import AdjointInSitu
    from pnnlab.models.photonic_mesh import build_photonic_mesh
    from pnnlab.plants.photonics.mzi_mesh import Detector, Heaters
    model = build_photonic_mesh(in_features=5, n_classes=3, n_ports=5, layers=3, fabrication="ideal",
                                heaters=Heaters.ideal(), detector=Detector.ideal(), activation=EOMismatch.ideal(),
                                dtype=torch.complex128, seed=0).double()
    from pnnlab.layers import physical_layers
    plants = [layer.plant for layer in physical_layers(model)]
    assert [type(p).__name__ for p in plants] == ["MZIMesh", "ElectroOpticActivationPlant", "MZIMesh",
                                                  "ElectroOpticActivationPlant", "MZIMesh"]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=g)
    before = [p.meter.queries for p in plants]
    for p in model.parameters():
        p.grad = None
    AdjointInSitu(dither=1e-6).step(model, x, y, nn.functional.cross_entropy)
    assert [p.meter.queries - b for p, b in zip(plants, before)] == [3, 7, 3, 7, 3]
    measured = [p.grad.clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    with executing(OnTrueTwin()):
        nn.functional.cross_entropy(model(x), y).backward()
    for a, b in zip(measured, [p.grad for p in model.parameters()]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_photonic_mesh_model_validates_its_recipes():
    from pnnlab.models.photonic_mesh import build_photonic_mesh
    with pytest.raises(TypeError, match="activation"):
        build_photonic_mesh(in_features=4, n_classes=3, activation="typical")
    with pytest.raises(ValueError, match="fabrication"):
        build_photonic_mesh(in_features=4, n_classes=3, fabrication="bad")
    digital = build_photonic_mesh(in_features=4, n_classes=3, activation=None, layers=2)
    assert any(isinstance(m, ElectroOpticNonlinearity) for m in digital)


@pytest.mark.parametrize("method_name", ["spsa", "weight_perturbation", "pat", "in_silico", "ideal", "adjoint"])
def test_existing_methods_run_on_the_photonic_network_unchanged(method_name):
    from pnnlab.models.photonic_mesh import build_photonic_mesh
    from pnnlab.registry import METHODS
    from pnnlab.testing import check_method
    model = build_photonic_mesh(in_features=4, n_classes=3, layers=2, seed=0)
    g = torch.Generator().manual_seed(0)
    check_method(METHODS.build(method_name), model, torch.randn(6, 4, generator=g), torch.randint(0, 3, (6,), generator=g))


@pytest.mark.parametrize("method_name", ["spsa", "finite_differences", "pat", "in_silico"])
def test_existing_methods_run_on_the_microring_bank_unchanged(method_name):
    from pnnlab import ChannelAffine
    from pnnlab.plants.photonics.microring import MicroringWeightBank
    from pnnlab.registry import METHODS
    from pnnlab.testing import check_method
    plant = MicroringWeightBank(in_features=3, out_features=2)
    model = nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin()), ChannelAffine(2))
    g = torch.Generator().manual_seed(0)
    check_method(METHODS.build(method_name), model, torch.rand(6, 3, generator=g), torch.randint(0, 2, (6,), generator=g))


def test_activation_keeps_its_results_on_to_cpu_and_builds_its_twins_on_its_device():
    """plant.to("cpu") changes nothing (same generator, same photodiode noise; both twins); after
    plant.to(device) both twins' constants (design numbers included) are buffers on that device."""
    from photonic_devices import off_device

    plant = ElectroOpticActivationPlant(n_channels=3)
    x, controls = plant.example_inputs(4), plant.initial_controls()

    def results():
        return [plant(x, controls, generator=torch.Generator().manual_seed(2)), plant.nominal_twin()(x, controls),
                plant.true_twin()(x, controls)]

    before = results()
    assert plant.to("cpu") is plant
    assert all(torch.equal(a, b) for a, b in zip(before, results()))
    plant.to("meta")
    assert plant.initial_controls()["bias_rad"].device.type == "meta"
    for name, obj in (("plant", plant), ("nominal twin", plant.nominal_twin()), ("true twin", plant.true_twin())):
        assert off_device(obj, "meta") == [], name
    assert {t.device.type for t in plant.nominal_twin().buffers()} == {"meta"}
