"""The reference (bias) light of the photonic mesh model: constant amplitude on chosen input ports, so
the first mesh computes an affine map of the features (bench_photonic_digits.py's blank pixels)."""

import pytest
import torch

from pnnlab.models.photonic_mesh import FieldReadout, PowerReadout, ReferenceInput, ReferenceLight, build_photonic_mesh
from pnnlab.plants.photonics.activation import EOMismatch
from pnnlab.plants.photonics.mzi_mesh import Detector, Heaters, MeshFabrication

KW = dict(in_features=6, n_classes=3, n_ports=6, layers=1, fabrication="ideal", heaters=Heaters.ideal(),
          detector=Detector.ideal(), readout=FieldReadout(), dtype=torch.complex128, seed=0)


def fields(model, x):
    """Coherently detected fields [Re y, Im y] of the mesh (the layer in front of the read-out)."""
    mesh = model[-2]
    with torch.no_grad():
        v = model[:-2](x) if len(model) > 2 else x
        return mesh.plant(v, mesh.control_values())


def test_reference_ports_carry_the_constant_and_the_other_ports_the_features():
    inject = ReferenceInput(6, 6, ReferenceLight(ports=(0, 4), amplitude=2.5))
    x = torch.arange(12.0).reshape(2, 6) + 1.0
    out = inject(x)
    assert torch.equal(out[:, [0, 4]], torch.full((2, 2), 2.5))
    assert torch.equal(out[:, [1, 2, 3, 5]], x[:, [1, 2, 3, 5]])
    # a port beyond the features widens the input
    wide = ReferenceInput(6, 8, ReferenceLight(ports=(7,), amplitude=1.0))(x)
    assert wide.shape == (2, 8) and torch.equal(wide[:, :6], x) and torch.equal(wide[:, 7], torch.ones(2))


def test_reference_light_makes_the_mesh_affine_instead_of_linear():
    plain = build_photonic_mesh(**KW)
    biased = build_photonic_mesh(reference=ReferenceLight(ports=(0, 3), amplitude=1.5), **KW)
    gen = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    x1[:, [0, 3]] = 0.0  # blank features, as the digits' always-zero pixels
    x2[:, [0, 3]] = 0.0
    zero = torch.zeros(4, 6)
    # without a reference the mesh is linear: no light in, no field out
    assert torch.allclose(fields(plain, zero), torch.zeros(4, 6), atol=1e-12)
    # with it, a constant field comes out at zero input (the bias) and the map is affine
    bias = fields(biased, zero)
    assert bias.abs().max() > 1e-3
    assert torch.allclose(bias, bias[:1].expand_as(bias))
    assert torch.allclose(fields(biased, x1 + x2) + bias, fields(biased, x1) + fields(biased, x2), atol=1e-9)
    # the same chip: the bias is the reference ports' columns of its matrix, the rest unchanged
    assert torch.allclose(fields(biased, x1) - bias, fields(plain, x1), atol=1e-9)


def test_reference_light_arguments_are_checked():
    with pytest.raises(ValueError, match="ReferenceLight.ports"):
        ReferenceLight(ports=())
    with pytest.raises(ValueError, match="repeats"):
        ReferenceLight(ports=(1, 1))
    with pytest.raises(ValueError, match="amplitude"):
        ReferenceLight(ports=(1,), amplitude=0.0)
    with pytest.raises(ValueError, match="n_ports=6"):
        build_photonic_mesh(reference=ReferenceLight(ports=(6,)), **KW)
    with pytest.raises(TypeError, match="reference must be"):
        build_photonic_mesh(reference=(0, 3), **KW)


def test_without_a_reference_the_multi_layer_power_chip_is_even_in_its_input_and_the_reference_breaks_it():
    """Signed amplitude encoding, an odd activation (field times a function of its intensity), a |field|
    relay and a power read-out: output(-x) = output(x) on any chip, fabricated or not (noise off here),
    so a z-scored feature's sign is invisible (why bench_photonic_vowels.py adds a reference port)."""
    kw = dict(in_features=6, n_classes=3, layers=3, fabrication=MeshFabrication.typical(),
              heaters=Heaters(crosstalk=0.02, dac_bits=12), detector=Detector.ideal(),
              activation=EOMismatch(photodiode_noise=0.0),
              readout=PowerReadout(scale=20.0), dtype=torch.complex128, seed=3)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    plain = build_photonic_mesh(n_ports=6, **kw)
    biased = build_photonic_mesh(n_ports=7, reference=ReferenceLight(ports=(6,), amplitude=2.0), **kw)
    with torch.no_grad():
        out = plain(x)
        assert out.std(dim=0).max() > 1e-3  # the output does depend on x
        assert torch.allclose(plain(-x), out, rtol=1e-9, atol=1e-12)
        gap = (biased(-x) - biased(x)).abs().max() / biased(x).abs().max()
    assert gap > 1e-2
