"""The exciton-polariton condensate plant: dGPE physics (threshold and steady state, unitarity, step-size
convergence, free dispersion), the lattice plant and one mutation-proof test per hidden non-ideality."""

import math

import pytest
import torch

from pnnlab.plants.optics.fibre import Camera
from pnnlab.plants.polaritons import (LAB_CAMERA, DirectEncoding, Evolution, MaskEncoding, PolaritonCondensate,
                                      PolaritonMismatch, PolaritonParameters, PolaritonTwin, PumpLattice, evolve,
                                      kinetic_phase)
from pnnlab.testing import check_plant

PARAMS = PolaritonParameters.gaas()
SMALL = dict(lattice=PumpLattice(shape=(6,)), evolution=Evolution(duration_ps=20.0))


def _uniform(pump, *, steps, dt=0.5, n=8, density=0.3):
    """Homogeneous run on a periodic grid (no absorber, no potential), float64."""
    kin = kinetic_phase((n,), 1.0, PARAMS, dt, dtype=torch.complex128)
    psi = torch.full((1, n), math.sqrt(density), dtype=torch.complex128)
    n_r = torch.zeros(1, n, dtype=torch.float64)
    p = torch.full((1, n), float(pump), dtype=torch.float64)
    return evolve(psi, n_r, pump=p, params=PARAMS, kinetic=kin, dt_ps=dt, steps=steps)


def test_threshold_and_homogeneous_steady_state():
    """P_th = gamma_c gamma_R / R. Below: the condensate decays and n_R -> P / gamma_R. Above: n_R clamps at
    gamma_c / R and |psi|^2 -> (P - P_th) / gamma_c (the fixed point of the two equations)."""
    p_th = PARAMS.gamma_c * PARAMS.gamma_r / PARAMS.r
    assert PARAMS.threshold == pytest.approx(p_th)
    psi, n_r = _uniform(0.8 * p_th, steps=400, dt=1.0, n=4)  # the scheme's fixed points are exact for any dt
    assert float(psi.abs().square().max()) < 1e-3 * 0.3  # decayed from the seed density 0.3
    torch.testing.assert_close(n_r, torch.full_like(n_r, 0.8 * p_th / PARAMS.gamma_r), rtol=1e-4, atol=0.0)
    for factor in (1.5, 3.0):
        psi, n_r = _uniform(factor * p_th, steps=700, dt=1.0, n=4)
        torch.testing.assert_close(n_r, torch.full_like(n_r, PARAMS.gamma_c / PARAMS.r), rtol=1e-4, atol=0.0)
        expected = (factor - 1.0) * p_th / PARAMS.gamma_c
        torch.testing.assert_close(psi.abs().square(), torch.full_like(n_r, expected), rtol=1e-4, atol=0.0)


def test_split_step_is_unitary_without_gain_and_loss():
    """Loss 0, no pump, empty reservoir: kinetic step and local phase are unitary, so sum |psi|^2 dx is
    conserved to rounding, with the g_c |psi|^2 nonlinearity on; the field itself does change."""
    n = 64
    g = torch.Generator().manual_seed(0)
    x = torch.arange(n, dtype=torch.float64)
    psi0 = (torch.exp(-((x - 32) / 5) ** 2) * (3.0 + torch.rand(n, generator=g, dtype=torch.float64))
            * torch.exp(1j * 0.7 * x)).unsqueeze(0)
    kin = kinetic_phase((n,), 1.0, PARAMS, 0.2, dtype=torch.complex128)
    zero = torch.zeros(1, n, dtype=torch.float64)
    psi, n_r = evolve(psi0, zero, pump=zero, params=PARAMS, kinetic=kin, dt_ps=0.2, steps=300, loss=0.0)
    assert float(psi.abs().square().sum()) == pytest.approx(float(psi0.abs().square().sum()), rel=1e-12)
    assert float((psi - psi0).abs().max()) > 0.5
    assert float(n_r.abs().max()) == 0.0


def test_free_wavepacket_spreads_with_the_polariton_mass():
    """|psi|^2 of a free Gaussian packet has sigma(t) = sigma0 sqrt(1 + (hbar t / 2 m sigma0^2)^2): checks the
    kinetic coefficient hbar / 2m of m = 5e-5 m_e (1.158 um^2/ps)."""
    assert PARAMS.kinetic_um2_per_ps == pytest.approx(3.80998e-5 / 5e-5 / 0.65821196, rel=1e-5)
    n, dx, s0, t = 512, 0.5, 3.0, 10.0
    x = (torch.arange(n, dtype=torch.float64) - n / 2) * dx
    psi0 = torch.exp(-x ** 2 / (4 * s0 ** 2)).to(torch.complex128).unsqueeze(0)
    kin = kinetic_phase((n,), dx, PARAMS, 0.5, dtype=torch.complex128)
    zero = torch.zeros(1, n, dtype=torch.float64)
    params = PolaritonParameters(g_c=0.0, g_r=0.0)
    psi, _ = evolve(psi0, zero, pump=zero, params=params, kinetic=kin, dt_ps=0.5, steps=round(t / 0.5), loss=0.0)
    rho = psi.abs().square()[0]
    sigma = float((rho * x ** 2).sum() / rho.sum()) ** 0.5
    assert sigma == pytest.approx(s0 * math.sqrt(1 + (PARAMS.kinetic_um2_per_ps * t / s0 ** 2) ** 2), rel=1e-3)


def test_strang_scheme_converges_at_second_order():
    """Pumped, interacting, lossy run on a lattice: the error against a dt/16 reference falls ~4x per halving."""
    lattice = PumpLattice(shape=(6,), grid_step_um=1.0)
    x = torch.rand(1, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    pump = {"pump": torch.full((6,), 1.8, dtype=torch.float64)}

    def run(dt):
        twin = PolaritonTwin(lattice=lattice, evolution=Evolution(duration_ps=16.0, dt_ps=dt), params=PARAMS,
                             encoding=DirectEncoding(gain=1.0), in_features=6)
        return twin(x, pump)

    ref = run(1.0 / 32)
    errors = [float((run(dt) - ref).abs().max()) for dt in (0.5, 0.25)]
    assert errors[1] < 1e-2 * float(ref.abs().max())
    assert 3.0 < errors[0] / errors[1] < 5.5, errors


@pytest.mark.parametrize("lattice", [PumpLattice(shape=(5,)), PumpLattice(shape=(2, 3), margin_sites=1)])
def test_plant_conforms_with_every_non_ideality(lattice):
    check_plant(PolaritonCondensate(in_features=4, lattice=lattice, evolution=Evolution(duration_ps=10.0),
                                    encoding=MaskEncoding(gain=0.8), mismatch=PolaritonMismatch.typical(),
                                    camera=LAB_CAMERA))


def test_ideal_plant_equals_its_twins_and_bins_the_emission():
    plant = PolaritonCondensate(in_features=6, **SMALL)
    x, c = plant.example_inputs(3), plant.initial_controls()
    y = plant(x, c)
    torch.testing.assert_close(y, plant.nominal_twin()(x, c))
    torch.testing.assert_close(y, plant.true_twin()(x, c))
    assert y.shape == (3, 6) and float(y.min()) > 0.0
    # pixels are the cell means of |psi|^2 / n_ref: check the binning by hand for one cell
    twin = plant.nominal_twin()
    assert twin.reference_density == pytest.approx(PARAMS.threshold / PARAMS.gamma_c)


def test_pump_threshold_shows_in_the_lattice():
    """Sites pumped well below P_th stay dark, sites above light up (the condensate's threshold-linear response)."""
    plant = PolaritonCondensate(in_features=1, lattice=PumpLattice(shape=(8,)), evolution=Evolution(duration_ps=40.0))
    dark = plant(torch.zeros(1, 1), {"pump": torch.full((8,), 0.5)})
    bright = plant(torch.zeros(1, 1), {"pump": torch.full((8,), 2.5)})
    assert float(dark.max()) < 1e-3
    assert float(bright[0, 2:6].mean()) > 1.0  # order (P - P_th)/gamma_c = 1.5 n_ref in the interior


def _noiseless(**mismatch):
    return PolaritonCondensate(in_features=6, mismatch=PolaritonMismatch(**mismatch), **SMALL)


def _gap(plant, x, c):
    y = plant(x, c)
    return float((y - plant.nominal_twin()(x, c)).abs().max() / y.abs().max()), y


def test_disorder_potential_is_smooth_random_device_state():
    plant = _noiseless(disorder_meV=0.2, disorder_correlation_um=2.0)
    v = plant._potential  # the hidden truth, read here only to verify it
    assert float(v.mean()) == pytest.approx(0.0, abs=1e-9)
    assert float(v.square().mean().sqrt()) == pytest.approx(0.2, rel=1e-6)
    neighbour = float((v[1:] * v[:-1]).mean() / v.square().mean())
    assert neighbour > 0.8  # smooth on the 1 um grid for a 2 um correlation length
    assert torch.equal(v, _noiseless(disorder_meV=0.2, disorder_correlation_um=2.0)._potential)
    other = PolaritonCondensate(in_features=6, mismatch=PolaritonMismatch(disorder_meV=0.2), seed=1, **SMALL)
    assert not torch.allclose(v, other._potential)
    # the plant sees it: equals a twin given that potential, differs from the nominal twin
    x, c = plant.example_inputs(4), plant.initial_controls()
    gap, y = _gap(plant, x, c)
    assert gap > 0.05
    twin = PolaritonTwin(lattice=plant.lattice, evolution=plant.evolution, params=PARAMS, encoding=plant.encoding,
                         in_features=6, potential_meV=v)
    torch.testing.assert_close(y, twin(x, c))


def test_pump_scale_error_is_a_pump_power_error():
    """With only a pump-scale error e, the plant equals the design driven with (1 + e) times the pump (the
    controls and the input gain scaled): P -> (1 + e) P exactly."""
    e = 0.1
    plant = _noiseless(pump_scale_error=e)
    x, c = plant.example_inputs(4), plant.initial_controls()
    gap, y = _gap(plant, x, c)
    assert gap > 0.05
    scaled = PolaritonCondensate(in_features=6, encoding=DirectEncoding(gain=1.0 + e), **SMALL).nominal_twin()
    torch.testing.assert_close(y, scaled(x, {"pump": c["pump"] * (1 + e)}), rtol=1e-4, atol=1e-5)


def test_pump_blur_is_a_gaussian_convolution():
    """The true pump is the programmed one convolved with a Gaussian of std pump_blur_um (computed here by a
    direct periodic sum); the plant's emission changes accordingly."""
    sigma = 1.5
    plant = _noiseless(pump_blur_um=sigma)
    x, c = plant.example_inputs(2), plant.initial_controls()
    programmed = plant.nominal_twin().pump_profile(x, c["pump"]).double()
    n = programmed.shape[1]
    d = torch.arange(n, dtype=torch.float64)
    dist = torch.remainder(d[:, None] - d[None, :] + n / 2, n) - n / 2  # periodic distance, grid step 1 um
    kernel = torch.exp(-0.5 * (dist / sigma) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    expected = programmed @ kernel.T
    torch.testing.assert_close(plant.true_twin().pump_profile(x, c["pump"]).double(), expected, rtol=1e-4, atol=1e-4)
    gap, _ = _gap(plant, x, c)
    assert gap > 0.03


@pytest.mark.parametrize("field, attribute", [("r_error", "r"), ("gamma_r_error", "gamma_r")])
def test_reservoir_rate_errors(field, attribute):
    """R -> R (1 + e_R), gamma_R -> gamma_R (1 + e_gR): the plant equals a design twin with those rates and
    differs from the nominal one (after 20 ps the lattice is still in its transient, so the sign of the
    change is not the steady-state threshold's; the steady state itself is tested above)."""
    e = 0.25
    plant = _noiseless(**{field: e})
    x, c = plant.example_inputs(4), plant.initial_controls()
    gap, y = _gap(plant, x, c)
    assert gap > 0.02
    rates = {"r": PARAMS.r, "gamma_r": PARAMS.gamma_r}
    rates[attribute] *= 1 + e
    shifted = PolaritonParameters(mass_ratio=PARAMS.mass_ratio, gamma_c=PARAMS.gamma_c, g_c=PARAMS.g_c,
                                  g_r=PARAMS.g_r, **rates)
    twin = PolaritonTwin(lattice=plant.lattice, evolution=plant.evolution, params=shifted, encoding=plant.encoding,
                         in_features=6)
    torch.testing.assert_close(y, twin(x, c))


def test_camera_noise_is_shot_and_read_noise_from_the_per_call_generator():
    camera = Camera(signal_electrons=400.0, full_well_electrons=None, read_noise_electrons=3.0, bit_depth=None)
    plant = PolaritonCondensate(in_features=6, camera=camera, **SMALL)
    x, c = plant.example_inputs(1).expand(400, -1).contiguous(), {"pump": torch.full((6,), 2.5)}
    clean = plant.nominal_twin()(x[:1], c)[0]
    y = plant(x, c, generator=torch.Generator().manual_seed(0))
    expected = clean / 400.0 + (3.0 / 400.0) ** 2  # Poisson electrons plus read noise, in units of n_ref
    ratio = y.var(dim=0) / expected
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.1)
    torch.testing.assert_close(y.mean(dim=0), clean, rtol=0.05, atol=0.01)
    again = plant(x, c, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, again)
    quiet = PolaritonCondensate(in_features=6, **SMALL)
    assert torch.equal(quiet(x[:2], c, generator=torch.Generator().manual_seed(0)),
                       quiet(x[:2], c, generator=torch.Generator().manual_seed(1)))


def test_initial_field_noise_comes_from_the_per_call_generator():
    plant = _noiseless(initial_noise=0.2)
    x, c = plant.example_inputs(3), plant.initial_controls()
    a = plant(x, c, generator=torch.Generator().manual_seed(0))
    b = plant(x, c, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a, b)
    assert torch.equal(a, plant(x, c, generator=torch.Generator().manual_seed(0)))
    clean = plant.true_twin()(x, c)
    assert float((a - clean).abs().max()) > 1e-4
    assert float((a - clean).abs().max() / clean.abs().max()) < 0.5


def test_twin_is_differentiable_in_pump_and_input_in_2d():
    plant = PolaritonCondensate(in_features=3, lattice=PumpLattice(shape=(2, 2), margin_sites=1),
                                evolution=Evolution(duration_ps=6.0), encoding=MaskEncoding(gain=0.5))
    x = plant.example_inputs(2).requires_grad_(True)
    c = {"pump": plant.initial_controls()["pump"].requires_grad_(True)}
    y = plant.true_twin()(x, c)
    assert y.shape == (2, 4)
    y.sum().backward()
    assert float(c["pump"].grad.abs().min()) > 0 and float(x.grad.abs().max()) > 0


@pytest.mark.parametrize("kwargs, match", [
    ({"in_features": 9, "lattice": PumpLattice(shape=(4,))}, "DirectEncoding"),
    ({"mismatch": "very typical"}, "mismatch"),
    ({"pump_max": 0.0}, "pump_max"),
    ({"camera": None}, "camera"),
])
def test_bad_arguments_are_explained(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        PolaritonCondensate(**kwargs)


def test_bad_components_are_explained():
    with pytest.raises(ValueError, match="whole number"):
        PumpLattice(spacing_um=4.0, grid_step_um=1.5)
    with pytest.raises(ValueError, match="shape"):
        PumpLattice(shape=(2, 2, 2))
    with pytest.raises(ValueError, match="whole number of steps"):
        Evolution(duration_ps=10.0, dt_ps=0.3)
    with pytest.raises(ValueError, match="r_error"):
        PolaritonMismatch(r_error=-1.0)
    with pytest.raises(ValueError, match="gamma_c"):
        PolaritonParameters(gamma_c=0.0)


def test_presets_and_tables_build_the_recipe_objects():
    """Experiment files name the hidden truth and camera by preset and the geometry by a table; each maps to the
    object it names (a wrong map, e.g. 'typical' -> no mismatch or 'lab' -> ideal camera, fails here)."""
    from pnnlab.plants.polaritons import CAMERA_PRESETS, MISMATCH_PRESETS
    named = PolaritonCondensate(in_features=3, lattice={"shape": [4], "grid_step_um": 2.0},
                                evolution={"duration_ps": 5.0}, params="gaas", mismatch="typical", camera="lab")
    assert named.mismatch == PolaritonMismatch.typical() and named.camera == LAB_CAMERA
    assert named.lattice == PumpLattice(shape=(4,), grid_step_um=2.0) and named.evolution == Evolution(duration_ps=5.0)
    assert named.params == PolaritonParameters.gaas()
    assert PolaritonCondensate(in_features=2, lattice=(4,), mismatch="ideal", camera="ideal").camera == Camera.ideal()
    assert set(MISMATCH_PRESETS) == {"typical", "ideal"} and set(CAMERA_PRESETS) == {"lab", "ideal"}
    obj = PolaritonCondensate(in_features=3, lattice=PumpLattice(shape=(4,), grid_step_um=2.0),
                              evolution=Evolution(duration_ps=5.0), mismatch=PolaritonMismatch.typical(),
                              camera=LAB_CAMERA)
    x, c = obj.example_inputs(2), obj.initial_controls()
    torch.testing.assert_close(named(x, c, generator=torch.Generator().manual_seed(1)),
                               obj(x, c, generator=torch.Generator().manual_seed(1)))
    for kwargs, match in (({"mismatch": "bad"}, "presets are"), ({"camera": "cmos"}, "presets are"),
                          ({"evolution": {"length_ps": 3.0}}, "not valid Evolution"), ({"camera": 3}, "preset name")):
        with pytest.raises((ValueError, TypeError), match=match):
            PolaritonCondensate(in_features=2, lattice=(4,), **kwargs)


def test_condensate_is_device_clean_with_every_non_ideality_and_its_constants_move():
    """Under the device audit: the grids, spots, absorber, kinetic phase, blur filter and input mask built
    without the data's device, or the seed field / reservoir / initial noise / camera noise drawn off it, fail
    here; the twin's design constants are buffers that move with model.to."""
    from torch import nn

    from pnnlab import PhysicalLayer
    from pnnlab.testing import check_plant_device
    plant = PolaritonCondensate(in_features=3, lattice=PumpLattice(shape=(2, 2), grid_step_um=2.0),
                                evolution=Evolution(duration_ps=3.0), encoding=MaskEncoding(),
                                mismatch=PolaritonMismatch.typical(), camera=LAB_CAMERA)
    check_plant_device(plant)
    layer = PhysicalLayer(plant, twin=plant.nominal_twin())
    nn.Sequential(layer).to("meta")
    assert plant.device.type == "meta" and plant._potential.device.type == "meta"
    assert all(t.device.type == "meta" for t in layer.twin.state_dict().values())
    assert all(t.device.type == "meta" for t in plant._truth.state_dict().values())
