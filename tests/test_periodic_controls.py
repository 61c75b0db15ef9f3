"""Periodic (wrap-aware) controls: ControlSpec(periodic=True), PhysicalLayer's Periodic map, and the
photonic plants whose phases are periodic."""

import math

import pytest
import torch

from pnnlab.layers import Bounded, Periodic, PhysicalLayer, _range_map
from pnnlab.plants.base import ControlSpec, Plant
from pnnlab.plants.photonics.activation import ElectroOpticActivationPlant
from pnnlab.plants.photonics.mzi_mesh import CoherentDetection, MeshFabrication, MZIMesh
from pnnlab.plants.photonics.svd import SVDMesh

TWO_PI = 2 * math.pi


class _Phase(Plant):
    """y = cos(x + p): a one-phase toy plant (periodic) beside a non-periodic gain g."""

    def __init__(self):
        super().__init__(in_features=1, out_features=1)

    def control_specs(self):
        return {"p": ControlSpec((1,), 0.0, TWO_PI, periodic=True), "g": ControlSpec((1,), 0.0, 2.0)}

    def _measure(self, x, controls, generator):
        self.seen = {k: v.clone() for k, v in controls.items()}
        return controls["g"] * torch.cos(x + controls["p"])


def test_periodic_spec_needs_finite_bounds():
    with pytest.raises(ValueError, match="periodic ControlSpec needs finite low and high"):
        ControlSpec((2,), 0.0, math.inf, periodic=True)
    assert ControlSpec((2,), 0.0, 1.0).periodic is False


def test_plant_programs_a_wrapped_phase_and_still_rejects_out_of_range_plain_controls():
    plant = _Phase()
    plant(torch.zeros(1, 1), {"p": torch.tensor([TWO_PI + 0.1]), "g": torch.tensor([1.0])})
    assert plant.seen["p"].item() == pytest.approx(0.1, abs=1e-6)  # 2 pi + 0.1 programs 0.1
    plant(torch.zeros(1, 1), {"p": torch.tensor([-0.1]), "g": torch.tensor([1.0])})
    assert plant.seen["p"].item() == pytest.approx(TWO_PI - 0.1, abs=1e-6)
    with pytest.raises(ValueError, match="must lie in"):  # the non-periodic gain keeps its range check
        plant(torch.zeros(1, 1), {"p": torch.tensor([0.0]), "g": torch.tensor([2.5])})
    with pytest.raises(ValueError, match="NaN or infinite"):
        plant(torch.zeros(1, 1), {"p": torch.tensor([math.inf]), "g": torch.tensor([1.0])})


def test_range_map_wraps_periodic_specs_with_unit_gradient_and_keeps_the_sigmoid_otherwise():
    assert isinstance(_range_map(ControlSpec((1,), 0.0, TWO_PI, periodic=True)), Periodic)
    assert isinstance(_range_map(ControlSpec((1,), 0.0, TWO_PI)), Bounded)
    wrap = Periodic(0.0, TWO_PI)
    raw = torch.tensor([TWO_PI + 0.1, -0.2, 3.0, 4 * TWO_PI + 1.0], requires_grad=True)
    value = wrap(raw)
    assert torch.allclose(value, torch.tensor([0.1, TWO_PI - 0.2, 3.0, 1.0]), atol=1e-5)
    value.sum().backward()
    assert torch.equal(raw.grad, torch.ones(4))  # the gradient through the wrap is 1


def test_physical_layer_trajectory_passes_through_two_pi():
    layer = PhysicalLayer(_Phase(), initial_controls={"p": torch.tensor([TWO_PI - 0.05]), "g": torch.tensor([1.0])})
    raw = layer.control_parameters()["p"]
    assert raw.item() == pytest.approx(TWO_PI - 0.05, abs=1e-6)  # the Periodic right inverse is the value
    with torch.no_grad():
        raw += 0.1  # one step across the edge of the range
    assert layer.control_values()["p"].item() == pytest.approx(0.05, abs=1e-5)
    # the non-periodic gain still uses the sigmoid map: its raw parameter is the logit
    g_raw = layer.control_parameters()["g"]
    assert g_raw.item() == pytest.approx(0.0, abs=1e-5)  # logit(1 / 2)
    # a sigmoid-mapped phase would have a vanishing gradient near the edge; the wrap keeps it at 1
    p = layer.controls.parametrizations["p"].original
    value = layer.control_values()["p"]
    (grad,) = torch.autograd.grad(value.sum(), p)
    assert grad.item() == 1.0


@pytest.mark.parametrize("make", [
    # coherent detection: the output screen psi moves the phase of the fields, not their power
    lambda: MZIMesh(n_ports=4, fabrication=MeshFabrication.typical(), detection=CoherentDetection(), seed=1),
    lambda: SVDMesh(n_ports=3, detection=CoherentDetection(), seed=1),
    lambda: ElectroOpticActivationPlant(n_channels=3, seed=1),
], ids=["mzi_mesh", "svd_mesh", "eo_activation"])
def test_photonic_phases_are_periodic_on_the_chip(make):
    plant = make()
    specs = plant.control_specs()
    assert all(spec.periodic for spec in specs.values())
    controls = plant.initial_controls()
    x = plant.example_inputs(5)
    gen = lambda: torch.Generator().manual_seed(3)
    base = plant(x, controls, generator=gen())
    for name, spec in specs.items():
        shifted = dict(controls)
        shifted[name] = controls[name] + 3 * (spec.high - spec.low)  # three periods further: accepted
        assert torch.allclose(plant(x, shifted, generator=gen()), base, atol=2e-3 * float(base.abs().max()))
        moved = dict(controls)
        moved[name] = controls[name] + 0.5 * (spec.high - spec.low)  # half a period: a different setting
        assert not torch.allclose(plant(x, moved, generator=gen()), base, atol=0.05 * float(base.abs().max()))
