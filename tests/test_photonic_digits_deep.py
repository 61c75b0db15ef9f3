"""The two-mesh network of bench_photonic_digits.py (build_photonic_mesh with layers=2, a reference light
and the coherent read-out): the reference reaches only the first mesh, an on-chip activation plant sits
between the meshes, and the relay gain scales the amplitudes driving the second mesh."""

import torch

from pnnlab.layers import PhysicalLayer
from pnnlab.models.photonic_mesh import (CoherentReadout, FieldModulus, FieldReadout, ReferenceInput, ReferenceLight,
                                         build_photonic_mesh)
from pnnlab.plants.photonics.activation import EOMismatch, ElectroOpticActivationPlant
from pnnlab.plants.photonics.mzi_mesh import Detector, Heaters, MZIMesh

KW = dict(in_features=6, n_classes=3, n_ports=6, layers=2, fabrication="ideal", heaters=Heaters.ideal(),
          detector=Detector.ideal(), activation=EOMismatch.ideal(), readout=FieldReadout(),
          reference=ReferenceLight(ports=(0,), amplitude=1.0), dtype=torch.complex128, seed=0)


def second_mesh_fields(model, x):
    """Coherently detected fields [Re y, Im y] of the last mesh (the layer in front of the read-out)."""
    mesh = model[-2]
    with torch.no_grad():
        return mesh.plant(model[:-2](x), mesh.control_values())


def test_two_mesh_layout_reference_on_the_first_mesh_only():
    model = build_photonic_mesh(**KW)
    kinds = [type(m) for m in model]
    assert kinds == [ReferenceInput, PhysicalLayer, PhysicalLayer, FieldModulus, PhysicalLayer, CoherentReadout]
    assert isinstance(model[1].plant, MZIMesh) and isinstance(model[4].plant, MZIMesh)
    assert isinstance(model[2].plant, ElectroOpticActivationPlant)
    # the second mesh reads all 6 fields of the first (coherent detection of every port), its read-out 3 ports
    assert model[1].plant.out_features == 12 and model[4].plant.out_features == 6


def test_relay_gain_scales_the_second_mesh_linearly():
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    one = second_mesh_fields(build_photonic_mesh(relay_gain=1.0, **KW), x)
    three = second_mesh_fields(build_photonic_mesh(relay_gain=3.0, **KW), x)
    assert one.abs().max() > 1e-3
    torch.testing.assert_close(three, 3.0 * one)
