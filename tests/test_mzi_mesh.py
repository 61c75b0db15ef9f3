"""MZI mesh engine, decomposition, tolerance analysis, MZIMesh and SVDMesh plants: physics tests.

Each hidden-truth element of the plant has a test that fails if the element is removed from the physics."""

import math

import pytest
import torch

from pnnlab import PhysicalLayer
from pnnlab.plants.photonics.decompose import decompose, random_unitary
from pnnlab.plants.photonics.mesh_engine import MeshEngine, Rectangular, Triangular, first_half, mzi_transfer
from pnnlab.plants.photonics.mesh_physics import (AmplitudeEncoding, CoherentDetection, Detector, Heaters,
                                                  MeshFabrication, PhaseEncoding, Photodetection)
from pnnlab.plants.photonics.mzi_mesh import MZIMesh
from pnnlab.plants.photonics.svd import SVDMesh, svd_settings
from pnnlab.plants.photonics.tolerance import (Reoptimise, fidelity, predicted_infidelity, realised_matrix,
                                               tolerance_analysis)
from pnnlab.testing import check_plant

C128 = torch.complex128
TWO_PI = 2 * math.pi


def _dense(layout, T, psi=None):
    """Reference: the mesh as an explicit product of N x N column matrices (no engine code)."""
    n = layout.n_ports
    U = torch.eye(n, dtype=T.dtype)
    partial = [U]
    for c in range(layout.n_columns):
        C = torch.eye(n, dtype=T.dtype)
        for k in range(layout.n_mzis):
            if int(layout.mzi_column[k]) == c:
                m = int(layout.mzi_top[k])
                C[m:m + 2, m:m + 2] = T[k]
        U = C @ U
        partial.append(U)
    if psi is not None:
        U = torch.diag(torch.exp(1j * psi.to(torch.float64))).to(T.dtype) @ U
    return U, partial


def _random_phases(layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (TWO_PI * torch.rand(layout.n_mzis, generator=g, dtype=torch.float64),
            TWO_PI * torch.rand(layout.n_mzis, generator=g, dtype=torch.float64),
            TWO_PI * torch.rand(layout.n_ports, generator=g, dtype=torch.float64))


def _ideal_plant(n, **kw):
    kw.setdefault("detection", CoherentDetection(detector=Detector.ideal()))
    return MZIMesh(n_ports=n, fabrication=kw.pop("fabrication", MeshFabrication.ideal()),
                   heaters=kw.pop("heaters", Heaters.ideal()), dtype=C128, **kw)


def _field(plant, y):
    p = plant.ports
    return torch.complex(y[:, :p].double(), y[:, p:].double())


# ---- engine -------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout_cls", [Rectangular, Triangular])
@pytest.mark.parametrize("n", [2, 3, 5, 8, 20])  # 20: the blocked U-build
def test_engine_matches_dense_product_both_paths_and_reverse(layout_cls, n):
    lay = layout_cls(n)
    assert lay.n_mzis == n * (n - 1) // 2
    th, ph, psi = _random_phases(lay, n)
    errors = 0.05 * torch.randn(lay.n_mzis, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    T = mzi_transfer(th, ph, coupler_errors=errors, amplitude=0.93, dtype=C128)
    eng = MeshEngine(lay, dtype=C128)
    U_ref, partial = _dense(lay, T, psi)
    assert torch.allclose(eng.matrix(T, psi), U_ref, atol=1e-13)
    x_small = torch.randn(max(1, n - 1), n, dtype=C128, generator=torch.Generator().manual_seed(2))  # batch path
    x_big = torch.randn(n + 3, n, dtype=C128, generator=torch.Generator().manual_seed(3))  # U path
    for x in (x_small, x_big):
        assert torch.allclose(eng.apply(x, T, psi), x @ U_ref.T, atol=1e-13)
        assert torch.allclose(eng.apply(x, T, psi, reverse=True), x @ U_ref, atol=1e-13)  # reciprocity: U^T
    y, fields = eng.apply(x_big, T, psi, monitor=True)
    assert fields.inputs.shape == (lay.n_columns + 1, x_big.shape[0], n)
    for c in range(lay.n_columns + 1):  # the field entering every column
        assert torch.allclose(fields.inputs[c], x_big @ partial[c].T, atol=1e-13)
    # a reverse pass (light from the outputs) is monitored in the forward numbering: boundary c sees
    # the screened input times C_{L-1} ... C_c (row vectors, i.e. the transposed columns)
    _, back = eng.apply(x_big, T, psi, reverse=True, monitor=True)
    screened = x_big * torch.exp(1j * psi)
    for c in range(lay.n_columns + 1):
        R = partial[-1] @ torch.linalg.inv(partial[c])
        assert torch.allclose(back.inputs[c], screened @ R, atol=1e-12)
    # internal (theta) arm field: first half B(a1) D(phi) applied to the MZI's input pair
    inner = eng.internal_fields(fields, first_half(ph, coupler_errors=errors, dtype=C128))
    k = lay.n_mzis - 1
    c, m = int(lay.mzi_column[k]), int(lay.mzi_top[k])
    a, b = fields.inputs[c][:, m], fields.inputs[c][:, m + 1]
    a1 = math.pi / 4 + float(errors[k, 0])
    expect = math.cos(a1) * torch.exp(1j * ph[k]) * a + 1j * math.sin(a1) * b
    assert torch.allclose(inner[:, k], expect, atol=1e-13)


@pytest.mark.parametrize("layout_cls", [Rectangular, Triangular])
def test_engine_analytic_backward_equals_numerical_gradient(layout_cls):
    lay = layout_cls(5)
    th, ph, psi = _random_phases(lay, 4)
    errors = 0.05 * torch.randn(lay.n_mzis, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    eng = MeshEngine(lay, dtype=C128)

    def f(th, ph, psi, xr, big):
        x = xr.to(C128).repeat(3 if big else 1, 1)
        T = mzi_transfer(th, ph, coupler_errors=errors, amplitude=0.9, dtype=C128)
        return eng.apply(x, T, psi).abs().square(), eng.apply(x, T, psi, reverse=True).real

    xr = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    args = [t.clone().requires_grad_(True) for t in (th, ph, psi)]
    for big in (False, True):
        assert torch.autograd.gradcheck(lambda a, b, c, d: f(a, b, c, d, big), (*args, xr))


@pytest.mark.parametrize("layout_cls", [Rectangular, Triangular])
def test_blocked_matrix_gradient_equals_directional_finite_difference(layout_cls):
    lay = layout_cls(20)
    eng = MeshEngine(lay, dtype=C128)
    assert eng._blocks is not None  # the blocked U-build is what this test exercises
    th, ph, psi = _random_phases(lay, 9)
    errors = 0.05 * torch.randn(lay.n_mzis, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    target = random_unitary(20, generator=torch.Generator().manual_seed(10))

    def loss(th, ph, psi):
        U = eng.matrix(mzi_transfer(th, ph, coupler_errors=errors, amplitude=0.95, dtype=C128), psi)
        return (U - target).abs().square().sum()

    args = [t.clone().requires_grad_(True) for t in (th, ph, psi)]
    loss(*args).backward()
    g = torch.Generator().manual_seed(11)
    dirs = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in args]
    analytic = sum(float((a.grad * d).sum()) for a, d in zip(args, dirs))
    h = 1e-6
    plus = loss(*(t + h * d for t, d in zip((th, ph, psi), dirs)))
    minus = loss(*(t - h * d for t, d in zip((th, ph, psi), dirs)))
    assert analytic == pytest.approx(float(plus - minus) / (2 * h), rel=1e-6)


def test_mzi_convention_cross_and_bar_states():
    T = mzi_transfer(torch.tensor([0.0, math.pi], dtype=torch.float64), torch.tensor([0.3, 0.3], dtype=torch.float64), dtype=C128)
    assert torch.allclose(T[0].abs(), torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64), atol=1e-15)  # cross
    assert torch.allclose(T[1].abs(), torch.eye(2, dtype=torch.float64), atol=1e-15)  # bar
    # the closed form of the module docstring
    th, ph = 1.1, 0.4
    t = mzi_transfer(torch.tensor([th], dtype=torch.float64), torch.tensor([ph], dtype=torch.float64), dtype=C128)[0]
    s, c = math.sin(th / 2), math.cos(th / 2)
    pre = 1j * complex(math.cos(th / 2), math.sin(th / 2))
    ep = complex(math.cos(ph), math.sin(ph))
    ref = torch.tensor([[pre * ep * s, pre * c], [pre * ep * c, -pre * s]], dtype=C128)
    assert torch.allclose(t, ref, atol=1e-15)


# ---- ideal physics -------------------------------------------------------------------------------
@pytest.mark.parametrize("layout_cls", [Rectangular, Triangular])
@pytest.mark.parametrize("n", [2, 7, 64])
def test_lossless_ideal_mesh_is_unitary_and_conserves_energy(layout_cls, n):
    lay = layout_cls(n)
    th, ph, psi = _random_phases(lay, n)
    U = MeshEngine(lay, dtype=C128).matrix(mzi_transfer(th, ph, dtype=C128), psi)
    assert torch.allclose(U.conj().T @ U, torch.eye(n, dtype=C128), atol=1e-12)
    plant = _ideal_plant(n, layout=layout_cls, detection=Photodetection(detector=Detector.ideal()))
    x = torch.randn(6, n, dtype=torch.float64)
    controls = {"theta": th, "phi": ph, "psi": psi}
    y = plant(x, controls)
    assert torch.allclose(y.sum(1), x.square().sum(1), rtol=1e-12)  # photodetected power = input power


@pytest.mark.parametrize("layout_cls", [Rectangular, Triangular])
@pytest.mark.parametrize("n", [2, 3, 8, 31, 64])
def test_decompose_round_trip_haar_unitaries(layout_cls, n):
    U = random_unitary(n, generator=torch.Generator().manual_seed(n))
    p = decompose(U, layout=layout_cls(n))
    for v in (p.theta, p.phi, p.psi):
        assert float(v.min()) >= 0.0 and float(v.max()) < TWO_PI
    V = MeshEngine(layout_cls(n), dtype=C128).matrix(mzi_transfer(p.theta, p.phi, dtype=C128), p.psi)
    assert float((V - U).abs().max()) < 1e-12
    # and the plant, programmed with these phases, realises U on the ideal chip
    plant = _ideal_plant(n, layout=layout_cls)
    x = torch.randn(3, n, dtype=torch.float64)
    y = _field(plant, plant(x, {"theta": p.theta, "phi": p.phi, "psi": p.psi}))
    assert torch.allclose(y, x.to(C128) @ U.T, atol=1e-11)


def test_decompose_rejects_non_unitary_and_wrong_layout():
    with pytest.raises(ValueError, match="unitary"):
        decompose(torch.randn(4, 4, dtype=C128))
    with pytest.raises(ValueError, match="ports"):
        decompose(random_unitary(4), layout=Rectangular(5))


# ---- fabrication errors and tolerance -------------------------------------------------------------
def test_coupler_errors_forbid_the_full_cross_state():
    """An MZI with couplers pi/4 + a1, pi/4 + a2 reaches at most cos^2(a1 + a2) cross power, so a mesh
    with splitting errors cannot realise the swap; opposite errors cancel (a2 = -a1 reaches it)."""
    lay = Rectangular(2)
    swap = torch.tensor([[0, 1], [1, 0]], dtype=C128)
    theta = torch.linspace(0, TWO_PI, 2001, dtype=torch.float64)
    for a1, a2, bound in ((0.05, 0.05, math.cos(0.1) ** 2), (0.05, -0.05, 1.0)):
        errors = torch.tensor([[a1, a2]], dtype=torch.float64).expand(len(theta), 2)
        T = mzi_transfer(theta, torch.zeros_like(theta), coupler_errors=errors, dtype=C128)
        cross = T[:, 1, 0].abs().square()
        assert abs(float(cross.max()) - bound) < 1e-6
        best = 0.0  # best fidelity to the swap over theta and the external/screen phases
        for ph in torch.linspace(0, TWO_PI, 13, dtype=torch.float64)[:-1]:
            for d in torch.linspace(0, TWO_PI, 13, dtype=torch.float64)[:-1]:
                V = realised_matrix(lay, theta[:1] * 0 + theta[int(cross.argmax())], ph.reshape(1),
                                    torch.stack([d, torch.zeros(())]), errors[:1])
                best = max(best, float(fidelity(swap, V)))
        assert best <= bound + 1e-9
        if bound < 1:
            assert best < 1 - 5e-3
        else:
            assert best > 1 - 1e-3


def test_uncorrected_infidelity_linear_in_n_and_sigma_squared_monte_carlo():
    """1 - F of an uncorrected mesh: Monte Carlo against the first-order law 2 (N - 1) sigma^2, which is
    linear in N and in sigma^2."""
    res = {(n, s): tolerance_analysis(n_ports=n, coupler_error_std_rad=s, trials=40, seed=n)
           for n in (4, 8, 16) for s in (0.01, 0.02)}
    for (n, s), r in res.items():
        assert r.predicted_uncorrected == pytest.approx(2 * (n - 1) * s ** 2)
        assert abs(r.mean / r.predicted_uncorrected - 1) < 0.2, (n, s, r.mean, r.predicted_uncorrected)
    for n in (4, 8, 16):  # sigma doubled -> 4x
        assert 3.0 < res[(n, 0.02)].mean / res[(n, 0.01)].mean < 5.0
    for s in (0.01, 0.02):  # N 4 -> 16: (N - 1) grows 5x
        assert 4.0 < res[(16, s)].mean / res[(4, s)].mean < 6.3
    tri = tolerance_analysis(n_ports=8, coupler_error_std_rad=0.02, layout=Triangular, trials=40, seed=3)
    assert abs(tri.mean / tri.predicted_uncorrected - 1) < 0.2


def test_correction_by_reoptimisation_removes_most_infidelity():
    raw = tolerance_analysis(n_ports=6, coupler_error_std_rad=0.03, trials=4, seed=1)
    fixed = tolerance_analysis(n_ports=6, coupler_error_std_rad=0.03, trials=4, seed=1, correction=Reoptimise(steps=60))
    assert fixed.corrected and not raw.corrected
    assert fixed.mean < 0.05 * raw.mean
    assert predicted_infidelity(6, 0.0) == 0.0


# ---- the plant: one test per hidden-truth element -------------------------------------------------
def _controls(plant, seed=0):
    return plant.initial_controls(generator=torch.Generator().manual_seed(seed))


def test_ideal_plant_equals_nominal_twin_and_phases_wrap():
    plant = _ideal_plant(5)
    x, c = plant.example_inputs(4).double(), {k: v.double() for k, v in _controls(plant).items()}
    assert torch.allclose(plant(x, c), plant.nominal_twin()(x, c), atol=1e-12)
    assert torch.allclose(plant.true_twin()(x, c), plant.nominal_twin()(x, c), atol=1e-12)
    zero = {k: torch.zeros_like(v) for k, v in c.items()}
    full = {k: torch.full_like(v, TWO_PI) for k, v in c.items()}
    assert torch.allclose(plant(x, zero), plant(x, full), atol=1e-12)  # 2 pi is the phase 0


def test_coupler_errors_in_the_hidden_truth():
    plant = _ideal_plant(2, fabrication=MeshFabrication(coupler_error_std_rad=0.05),
                         detection=Photodetection(detector=Detector.ideal()))
    a1, a2 = (float(v) for v in plant._physics.coupler_errors[0])
    assert abs(a1) + abs(a2) > 0
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    cross = {"theta": torch.zeros(1), "phi": torch.zeros(1), "psi": torch.zeros(2)}
    y = plant(x, cross)
    assert float(y[0, 1]) == pytest.approx(math.cos(a1 + a2) ** 2, abs=1e-12)  # not 1: the cross state leaks
    assert float(plant.nominal_twin()(x, cross)[0, 1]) == pytest.approx(1.0, abs=1e-12)


def test_phase_offsets_in_the_hidden_truth():
    plant = _ideal_plant(4, fabrication=MeshFabrication(phase_offset_std_rad=0.3))
    c = _controls(plant)
    U_true = plant._physics.matrix(c)
    U_nom = plant._design.matrix(c)
    assert float((U_true - U_nom).abs().max()) > 0.05
    assert torch.allclose(U_true.conj().T @ U_true, torch.eye(4, dtype=C128), atol=1e-12)  # still lossless
    shifted = {"theta": c["theta"].double() + plant._physics.theta_offsets, "phi": c["phi"].double() + plant._physics.phi_offsets,
               "psi": c["psi"].double() + plant._physics.psi_offsets}
    assert torch.allclose(U_true, plant._design.matrix(shifted), atol=1e-12)
    x = plant.example_inputs(3).double()
    assert not torch.allclose(plant(x, c), plant.nominal_twin()(x, c), atol=1e-3)


def test_insertion_loss_in_the_hidden_truth():
    plant = _ideal_plant(2, fabrication=MeshFabrication(insertion_loss_db=0.5),
                         detection=Photodetection(detector=Detector.ideal()))
    x = torch.randn(5, 2, dtype=torch.float64)
    y = plant(x, _controls(plant))
    assert torch.allclose(y.sum(1), x.square().sum(1) * 10 ** (-0.05), rtol=1e-12)
    spread = _ideal_plant(6, fabrication=MeshFabrication(insertion_loss_db=0.3, insertion_loss_std_db=0.1))
    amp = spread._physics.amplitude
    assert float(amp.std()) > 0 and float(amp.max()) <= 1.0
    U = spread._physics.matrix(_controls(spread))
    sv = torch.linalg.svdvals(U)
    assert float(sv.max()) < 1.0 and float(sv.max() - sv.min()) > 1e-3  # lossy and not uniformly so


def test_thermal_crosstalk_in_the_hidden_truth():
    kappa = 0.05
    plant = _ideal_plant(6, heaters=Heaters(crosstalk=kappa))
    c = _controls(plant)
    lay = plant.layout
    pos = {(int(cc), int(m)): k for k, (cc, m) in enumerate(zip(lay.mzi_column, lay.mzi_top))}

    def with_neighbours(h):
        out = h.clone()
        for (cc, m), k in pos.items():
            for dm in (-2, 2):
                if (cc, m + dm) in pos:
                    out[k] += kappa * h[pos[(cc, m + dm)]]
        return out
    psi = c["psi"].double()
    psi_eff = psi + kappa * (torch.cat([psi[1:], psi.new_zeros(1)]) + torch.cat([psi.new_zeros(1), psi[:-1]]))
    expected = {"theta": with_neighbours(c["theta"].double()), "phi": with_neighbours(c["phi"].double()), "psi": psi_eff}
    assert torch.allclose(plant._physics.matrix(c), plant._design.matrix(expected), atol=1e-12)
    assert float((plant._physics.matrix(c) - plant._design.matrix(c)).abs().max()) > 1e-2
    # heating one MZI's theta moves the light in its neighbour
    bumped = {k: v.clone() for k, v in c.items()}
    bumped["theta"][pos[(0, 0)]] += 1.0
    d_true = plant._physics.matrix(bumped) - plant._physics.matrix(c)
    d_nom = plant._design.matrix(bumped) - plant._design.matrix(c)
    assert float((d_true - d_nom).abs().max()) > 1e-3


def test_dac_quantises_the_heater_phase():
    bits = 6
    plant = _ideal_plant(4, heaters=Heaters(dac_bits=bits))
    step = TWO_PI / 2 ** bits
    c = {k: (torch.round(v / step) * step).double() for k, v in _controls(plant).items()}  # on the grid
    x = plant.example_inputs(3).double()
    y0 = plant(x, c)
    nudged = {k: v + 0.3 * step for k, v in c.items()}  # within half an LSB: same DAC code
    assert torch.equal(plant(x, nudged), y0)
    assert not torch.allclose(plant.nominal_twin()(x, nudged), y0, atol=1e-6)  # the design would move
    assert torch.allclose(plant.nominal_twin()(x, c), y0, atol=1e-12)  # on the grid they agree


def test_heater_power_is_charged_per_query():
    plant = _ideal_plant(4, heaters=Heaters(p_pi_W=0.02))
    c = {k: torch.full_like(v, math.pi) for k, v in _controls(plant).items()}
    n_heaters = 2 * plant.layout.n_mzis + plant.n_ports
    assert plant.heater_power_W(c) == pytest.approx(0.02 * n_heaters)
    before = plant.meter.joules
    plant(plant.example_inputs(10), c)
    expected = 0.02 * n_heaters * plant.cost.seconds(10) + plant.cost.joules(10)
    assert plant.meter.joules - before == pytest.approx(expected, rel=1e-9)


def test_photodetector_shot_thermal_noise_and_adc():
    n = 4
    photons = 400.0
    shot = _ideal_plant(n, detection=Photodetection(detector=Detector(signal_photons=photons, thermal_noise_photons=0.0,
                                                                      bit_depth=None)))
    c = _controls(shot)
    x = shot.example_inputs(1).double().repeat(4000, 1)
    mean = shot.nominal_twin()(x[:1], c)[0]
    y = shot(x, c, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(y.mean(0), mean, rtol=0.05, atol=1e-3)
    assert torch.allclose(y.var(0), mean / photons, rtol=0.15, atol=2e-6)  # Poisson: var = I / photons
    thermal = _ideal_plant(n, detection=Photodetection(detector=Detector(signal_photons=photons, shot_noise=False,
                                                                         thermal_noise_photons=20.0, bit_depth=None)))
    y = thermal(x, c, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(y.std(0), torch.full((n,), 20.0 / photons, dtype=y.dtype), rtol=0.1)
    adc = _ideal_plant(n, detection=Photodetection(detector=Detector(shot_noise=False, thermal_noise_photons=0.0,
                                                                     bit_depth=4, full_scale=0.5)))
    y = adc(x[:5], c)
    lsb = 0.5 / 15
    assert torch.allclose(y / lsb, torch.round(y / lsb), atol=1e-9) and float(y.max()) <= 0.5 + 1e-12
    assert not torch.allclose(y, adc.nominal_twin()(x[:5], c), atol=1e-6)


def test_coherent_detection_homodyne_noise():
    photons = 1e3
    plant = _ideal_plant(3, detection=CoherentDetection(detector=Detector(signal_photons=photons, thermal_noise_photons=0.0,
                                                                          bit_depth=None)))
    c = _controls(plant)
    x = plant.example_inputs(1).double().repeat(4000, 1)
    y = plant(x, c, generator=torch.Generator().manual_seed(0))
    assert y.shape[1] == 6
    assert torch.allclose(y.mean(0), plant.nominal_twin()(x[:1], c)[0], atol=3e-3)
    assert torch.allclose(y.std(0), torch.full((6,), 0.5 / math.sqrt(photons), dtype=y.dtype), rtol=0.1)


def test_phase_encoding_and_partial_inputs_outputs():
    plant = _ideal_plant(5, in_features=3, encoding=PhaseEncoding(amplitude=0.5),
                         detection=CoherentDetection(detector=Detector.ideal(), ports=2))
    assert (plant.in_features, plant.out_features) == (3, 4)
    c = _controls(plant)
    x = plant.example_inputs(4).double()
    U = plant._physics.matrix(c)
    e = torch.cat([0.5 * torch.exp(1j * x), torch.zeros(4, 2, dtype=C128)], dim=1)
    assert torch.allclose(_field(plant, plant(x, c)), (e @ U.T)[:, :2], atol=1e-12)


def test_default_plant_conforms_and_trains_through_physical_layer():
    for plant in (MZIMesh(n_ports=6), MZIMesh(n_ports=4, layout=Triangular, detection=CoherentDetection())):
        check_plant(plant)
    plant = MZIMesh(n_ports=4)
    layer = PhysicalLayer(plant, twin=plant.nominal_twin())
    from pnnlab.execution import PhysicsAware, executing
    with executing(PhysicsAware()):
        out = layer(plant.example_inputs(8))
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.control_parameters().values())


def test_constructor_errors_name_the_argument():
    with pytest.raises(ValueError, match="in_features"):
        MZIMesh(n_ports=4, in_features=5)
    with pytest.raises(TypeError, match="encoding"):
        MZIMesh(n_ports=4, encoding="amplitude")
    with pytest.raises(ValueError, match="coupler_error_std_rad"):
        MeshFabrication(coupler_error_std_rad=-0.1)
    with pytest.raises(ValueError, match="crosstalk"):
        Heaters(crosstalk=0.7)


# ---- SVD layer ------------------------------------------------------------------------------------
@pytest.mark.parametrize("complex_matrix", [False, True])
def test_svd_layer_realises_any_matrix_up_to_gain(complex_matrix):
    n = 5
    g = torch.Generator().manual_seed(3)
    M = torch.randn(n, n, generator=g, dtype=torch.float64)
    if complex_matrix:
        M = torch.complex(M, torch.randn(n, n, generator=g, dtype=torch.float64))
    controls, gain = svd_settings(M)
    assert gain == pytest.approx(float(torch.linalg.svdvals(M.to(C128))[0]))
    chip = SVDMesh(n_ports=n, fabrication=MeshFabrication.ideal(), heaters=Heaters.ideal(), dtype=C128,
                   detection=CoherentDetection(detector=Detector.ideal()))
    assert torch.allclose(chip.nominal_twin().matrix(controls) * gain, M.to(C128), atol=1e-12)
    x = torch.randn(4, n, dtype=torch.float64)
    y = _field(chip, chip(x, controls)) * gain
    assert torch.allclose(y, x.to(C128) @ M.to(C128).T, atol=1e-11)
    faulty = SVDMesh(n_ports=n, fabrication=MeshFabrication(coupler_error_std_rad=0.03), heaters=Heaters.ideal(),
                     dtype=C128, detection=CoherentDetection(detector=Detector.ideal()))
    err = float((faulty.true_twin().matrix(controls) * gain - M.to(C128)).abs().max())
    assert err > 1e-3  # the chip's coupler errors spoil the programmed matrix


def test_svd_plant_conforms():
    check_plant(SVDMesh(n_ports=3))


# ---- device placement ---------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: MZIMesh(n_ports=5, detection=CoherentDetection()),
                                  lambda: MZIMesh(n_ports=20, layout=Triangular),
                                  lambda: SVDMesh(n_ports=4)], ids=["mzi5_coherent", "mzi20_reck", "svd4"])
def test_mesh_plants_keep_their_results_on_to_cpu_and_move_every_tensor_with_to(make):
    """plant.to("cpu") changes nothing (queries with the same generator, the in-situ passes, both twins);
    plant.to(device) moves every tensor the plant and its twins compute with: the chip's draws, the
    engine's index tensors and diamond plans, the attenuators (checked by moving to "meta", where
    every reachable tensor must land; the layout's integer geometry stays on the CPU by design)."""
    from photonic_devices import off_device

    from pnnlab.plants.capabilities import Reciprocal

    plant = make()
    x = plant.example_inputs(40)  # a batch >= 1.5 N: the U-build route (and its plan) is exercised too
    controls = plant.initial_controls()

    def results():
        out = [plant(x, controls, generator=torch.Generator().manual_seed(3)), plant(x[:2], controls),
               plant.nominal_twin()(x, controls), plant.true_twin()(x, controls)]
        if isinstance(plant, Reciprocal):
            fwd = plant.forward_pass(x[:3], controls, generator=torch.Generator().manual_seed(4))
            adj = plant.adjoint_pass(fwd.port_field, controls, generator=torch.Generator().manual_seed(5))
            out += [fwd.output, fwd.port_field, *fwd.intensities.values(), adj.port_field, *adj.intensities.values()]
        return out

    state = plant._generator.get_state()
    before = results()
    plant._generator.set_state(state)
    assert plant.to("cpu") is plant and plant.device == torch.device("cpu")
    after = results()
    assert len(before) == len(after) and all(torch.equal(a, b) for a, b in zip(before, after))
    assert off_device(plant.nominal_twin(), "cpu") == [] and off_device(plant.true_twin(), "cpu") == []
    plant.to("meta")
    assert plant.device == torch.device("meta")
    for name, obj in (("plant", plant), ("nominal twin", plant.nominal_twin()), ("true twin", plant.true_twin())):
        assert off_device(obj, "meta") == [], name


def test_a_mesh_pickles_after_in_situ_passes_and_the_copy_answers_alike():
    """The monitored passes leave reusable field buffers (with weak references to autograd leases) in
    the engine; checkpoints pickle the plant and its twins, so the engine drops them when pickled."""
    import pickle

    plant = MZIMesh(n_ports=4)
    x, controls = plant.example_inputs(3), plant.initial_controls()
    plant.forward_pass(x, controls)
    assert plant.engine._cache  # the column path's workspace is in use
    copy = pickle.loads(pickle.dumps(plant))
    twin = pickle.loads(pickle.dumps(plant.true_twin()))
    assert torch.equal(copy(x, controls, generator=torch.Generator().manual_seed(1)),
                       plant(x, controls, generator=torch.Generator().manual_seed(1)))
    assert torch.equal(twin(x, controls), plant.true_twin()(x, controls))
