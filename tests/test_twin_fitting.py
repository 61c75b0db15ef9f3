"""Twins fitted from measurements: learned, residual and calibrated twins, fit_twin, the acoustic loader."""

import math

import pytest
import torch

from pnnlab.data.acoustic import default_path, load_acoustic_pairs
from pnnlab.plants.optics.shg import SHGMismatch, SHGPlant, SpectralPhase
from pnnlab.plants.toy.power_law import PowerLawPlant
from pnnlab.twins.calibrated import CalibratedTwin, Constant, SHGCalibratableTwin
from pnnlab.twins.fit import FromPlant, fit_twin, relative_error
from pnnlab.twins.learned import LearnedTwin, ResidualTwin


def _power_law_sampler(batch=16):
    def sample(gen):
        return 0.5 + torch.rand(batch, 1, generator=gen), {"exponent": 0.5 + 1.5 * torch.rand(1, generator=gen)}
    return sample


def test_learned_twin_fits_a_known_smooth_function_of_inputs_and_controls():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(600, 2, generator=gen, dtype=torch.float64)
    c = torch.rand(600, 1, generator=gen, dtype=torch.float64)
    y = torch.stack([torch.sin(3 * x[:, 0]) * c[:, 0], x[:, 1] ** 2 + c[:, 0]], dim=1)
    twin = LearnedTwin(in_features=2, out_features=2, control_shapes={"c": (1,)}, hidden=(32, 32))
    twin, report = fit_twin(twin, (x, {"c": c}, y), epochs=150, lr=1e-2, patience=30, batch_size=64)
    assert report.val_error < 0.03 < report.initial_val_error
    # it learned the dependence on the control, not just on x: changing c changes the prediction correctly
    xq = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    for cv in (0.2, 0.8):
        truth = torch.tensor([[math.sin(1.5) * cv, 0.25 + cv]], dtype=torch.float64)
        assert torch.allclose(twin(xq, {"c": torch.tensor([cv], dtype=torch.float64)}), truth, atol=0.05)


def test_residual_twin_starts_equal_to_the_nominal_and_then_corrects_it():
    plant = PowerLawPlant(coefficient=2.0, twin_coefficient=2.3)
    nominal = plant.nominal_twin()
    twin = ResidualTwin.around(nominal, control_shapes={"exponent": (1,)}, hidden=(16,))
    x, c = 0.5 + torch.rand(8, 1), {"exponent": torch.tensor([1.3])}
    assert torch.equal(twin(x, c), nominal(x, c))
    twin.prepare(x, {"exponent": c["exponent"].expand(8, 1)}, plant(x, c))
    assert torch.equal(twin(x, c), nominal(x, c))  # the normalisation does not move the start
    twin, report = fit_twin(twin, FromPlant(plant, _power_law_sampler()), budget=40, epochs=200, lr=1e-2,
                            patience=40)
    assert report.val_error < 0.2 * report.initial_val_error  # nominal alone is 15 % off
    with pytest.raises(ValueError, match="zero_output"):
        ResidualTwin(nominal, LearnedTwin(in_features=1, out_features=1))


def test_calibrated_twin_recovers_the_true_coefficient_of_the_power_law_plant():
    plant = PowerLawPlant(coefficient=2.0, twin_coefficient=2.3)  # the truth differs only in c
    twin = CalibratedTwin(plant.nominal_twin(), constants=[Constant("coefficient", positive=True)])
    twin, report = fit_twin(twin, FromPlant(plant, _power_law_sampler()), budget=30, epochs=300, lr=0.05,
                            patience=30)
    assert float(twin.values()["coefficient"]) == pytest.approx(2.0, rel=1e-3)
    assert report.val_error < 1e-3
    assert plant.nominal_twin().coefficient == 2.3  # the wrapped twin was copied, not changed


def test_calibrated_shg_twin_recovers_a_hidden_dispersion():
    truth = SHGMismatch(dispersion=SpectralPhase(group_delay_dispersion_fs2=300.0))
    plant = SHGPlant(n_inputs=4, n_outputs=4, mismatch=truth)
    base = SHGCalibratableTwin.from_layout(plant)
    x, c = plant.example_inputs(6), plant.initial_controls()
    assert torch.allclose(base(x, c), plant.nominal_twin()(x, c), rtol=1e-10, atol=0)  # design values = SHGTwin
    twin = CalibratedTwin(base, constants=[Constant("group_delay_dispersion_fs2", scale=100.0)])

    def sample(gen):
        return torch.rand(8, 4, generator=gen), plant.initial_controls(gen)
    twin, report = fit_twin(twin, FromPlant(plant, sample), budget=30, epochs=150, lr=0.05, patience=20)
    assert float(twin.values()["group_delay_dispersion_fs2"]) == pytest.approx(300.0, rel=0.03)
    assert report.val_error < 0.1 * report.initial_val_error


def test_calibrated_shg_saturation_level_is_read_at_forward_time():
    plant = SHGPlant(n_inputs=4, n_outputs=4)
    lin = SHGCalibratableTwin.from_layout(plant)
    sat = SHGCalibratableTwin.from_layout(plant, saturation_level=0.05)
    x, c = plant.example_inputs(6), plant.initial_controls()
    assert torch.allclose(sat(x, c), 0.05 * torch.tanh(lin(x, c) / 0.05))
    cal = CalibratedTwin(sat, constants=[Constant("saturation_level", positive=True)])
    cal.raw["saturation_level"].data.fill_(math.log(2.0))
    assert torch.allclose(cal(x, c), 0.1 * torch.tanh(lin(x, c) / 0.1))


def test_fit_twin_spends_exactly_the_budget_and_reports_it():
    plant = PowerLawPlant()
    plant(torch.ones(2, 1), {"exponent": torch.tensor([1.0])})  # queries made before the fit are not counted
    before = plant.meter.queries
    twin = LearnedTwin(in_features=1, out_features=1, control_shapes={"exponent": (1,)}, hidden=(8,))
    _, report = fit_twin(twin, FromPlant(plant, _power_law_sampler(batch=5)), budget=37, epochs=3, lr=1e-2)
    assert plant.meter.queries - before == 37 == report.queries
    assert report.samples == 37 * 5 == report.n_train + report.n_val
    assert report.n_val % 5 == 0  # whole queries stay on one side of the split
    with pytest.raises(ValueError, match="budget is required"):
        fit_twin(twin, FromPlant(plant, _power_law_sampler()), epochs=1)
    with pytest.raises(ValueError, match="live fitting"):
        fit_twin(twin, (torch.ones(4, 1), torch.ones(4, 1)), budget=3, epochs=1)


def test_fit_twin_stops_early_and_keeps_the_best_validation_epoch():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(200, 3, generator=gen), torch.randn(200, 2, generator=gen)  # nothing to learn: noise
    twin = LearnedTwin(in_features=3, out_features=2, hidden=(64, 64))
    twin, report = fit_twin(twin, (x, y), epochs=500, lr=3e-2, patience=5, batch_size=32)
    assert report.stopped_early and report.epochs_run < 500
    assert report.epochs_run == report.best_epoch + 5 or report.best_epoch == 0
    assert report.val_error == min([report.initial_val_error] + [h["val_error"] for h in report.history])
    assert report.train_error < 1.0 and report.n_val == 40


def test_calibrated_twin_rejects_unknown_or_non_numeric_constants():
    twin = PowerLawPlant().nominal_twin()
    with pytest.raises(ValueError, match="no constant 'gain'"):
        CalibratedTwin(twin, constants=["gain"])
    with pytest.raises(TypeError, match="in_features"):
        CalibratedTwin(twin, constants=["in_features"])


def test_acoustic_loader_shapes_and_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks"):
        load_acoustic_pairs(tmp_path)
    (tmp_path / "x_data.csv").write_text("0,0\n0.5,0.25\n")
    (tmp_path / "y_data.csv").write_text("0,0\n1.0,0.5\n")
    pairs = load_acoustic_pairs(tmp_path)
    assert pairs.x.shape == (2, 2) and float(pairs.y[1, 0]) == 1.0
    if default_path() is None:
        pytest.skip("shared/data/phyll_acoustic is not beside this checkout")
    real = load_acoustic_pairs()
    assert real.x.shape == real.y.shape == (10001, 20)
    assert float(real.x[0].abs().sum()) == 0.0 and 0.0 <= float(real.x.min()) and float(real.x.max()) < 1.0
    assert real.split("test")[0].shape == (701, 20) and real.split("val")[0].shape == (300, 20)


def test_fit_twin_uses_an_explicit_validation_recording():
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(120, 2, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64) + 1.0
    x_va = torch.rand(30, 2, generator=gen, dtype=torch.float64)
    y_va = x_va @ torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64) + 1.0
    twin = LearnedTwin(in_features=2, out_features=2, hidden=(16,))
    twin, report = fit_twin(twin, (x, y), val_data=(x_va, y_va), epochs=40, lr=1e-2, batch_size=32)
    assert (report.n_train, report.n_val) == (120, 30)  # every record trains; the given set validates
    assert report.val_error == pytest.approx(relative_error(twin, x_va, {}, y_va))


def test_calibrated_shg_twin_recovers_the_extra_spot_blur():
    from pnnlab.plants.optics.shg import ShaperError
    plant = SHGPlant(n_inputs=4, n_outputs=4, mismatch=SHGMismatch(shaper=ShaperError(extra_blur_pixels=0.3)))
    twin = CalibratedTwin(SHGCalibratableTwin.from_layout(plant), constants=[Constant("resolution_pixels", positive=True)])

    def sample(gen):
        return torch.rand(8, 4, generator=gen), plant.initial_controls(gen)
    twin, report = fit_twin(twin, FromPlant(plant, sample), budget=30, epochs=150, lr=0.05, patience=20)
    # the blurs add in quadrature: sqrt(0.3^2 + 0.3^2)
    assert float(twin.values()["resolution_pixels"]) == pytest.approx(math.hypot(0.3, 0.3), rel=0.02)


def test_a_twin_is_fitted_from_a_recording_of_the_plant_without_new_queries(tmp_path):
    from pnnlab.recording import Recording, record
    plant = PowerLawPlant(coefficient=2.0, twin_coefficient=2.3)
    sample, gen = _power_law_sampler(), torch.Generator().manual_seed(3)
    with record(plant, tmp_path / "queries.sqlite"):
        for _ in range(30):
            x, controls = sample(gen)
            plant(x, controls)
    queries_before = plant.meter.queries
    recording = Recording(tmp_path / "queries.sqlite")
    twin = CalibratedTwin(plant.nominal_twin(), constants=[Constant("coefficient", positive=True)])
    twin, report = fit_twin(twin, recording, epochs=300, lr=0.05, patience=30)
    assert float(twin.values()["coefficient"]) == pytest.approx(2.0, rel=1e-3)
    assert plant.meter.queries == queries_before and report.queries == 0  # fitting spent no new queries
    # the dataset keeps which query each sample came from, so the validation split holds whole queries
    dataset = recording.to_dataset()
    assert dataset.seq.unique().numel() == 30 and dataset.x.shape[0] == 30 * 16
    with pytest.raises(ValueError, match="budget applies to live fitting"):
        fit_twin(twin, dataset, budget=10)


def test_grouped_controls_evaluate_per_sample_settings_query_by_query():
    from pnnlab.plants.mechanics.oscillators import CoupledOscillatorPlant
    from pnnlab.twins import GroupedControls
    plant = CoupledOscillatorPlant(n_oscillators=3)
    shapes = {k: s.shape for k, s in plant.control_specs().items()}
    twin = GroupedControls(plant.nominal_twin(), control_shapes=shapes)
    gen = torch.Generator().manual_seed(0)
    settings = [plant.initial_controls(gen) for _ in range(3)]
    x = torch.randn(9, 3, generator=gen)
    order = torch.tensor([2, 0, 1, 0, 2, 1, 1, 0, 0])  # unequal groups (the loop), interleaved: order kept
    per_sample = {k: torch.stack([settings[int(i)][k] for i in order]) for k in shapes}
    expected = torch.cat([plant.nominal_twin()(x[i:i + 1], settings[int(order[i])]) for i in range(9)])
    assert torch.allclose(twin(x, per_sample), expected, atol=1e-6)
    assert torch.equal(twin(x, settings[0]), plant.nominal_twin()(x, settings[0]))  # shared: passed through
    with pytest.raises(ValueError, match="one per sample"):
        twin(x, {"coupling": per_sample["coupling"], "drive": settings[0]["drive"][None].expand(4, 3)})


def test_calibrated_twin_fits_a_complex_transmission_matrix():
    from pnnlab.plants.optics.fibre import Camera, FibrePlant, SLM
    plant = FibrePlant(in_features=3, out_features=4, n_modes=8, slm=SLM.ideal(), camera=Camera.ideal(), seed=2)
    twin = CalibratedTwin(plant.nominal_twin(), constants=[Constant("tm")])
    assert twin.raw["tm"].is_complex()

    def sample(gen):
        return plant.example_inputs(16, gen), plant.initial_controls(gen)

    twin, report = fit_twin(twin, FromPlant(plant, sample), budget=60, epochs=300, lr=0.02, patience=40)
    # ideal SLM and camera: the TM is the whole truth, so the fit goes well below the crude twin's 30 % error
    assert report.initial_val_error > 0.2 and report.val_error < 0.05
    with pytest.raises(ValueError, match="complex"):
        CalibratedTwin(plant.nominal_twin(), constants=[Constant("tm", positive=True)])


def test_fit_twin_without_prepare_keeps_the_normalisation():
    twin = LearnedTwin(in_features=1, out_features=1, hidden=(8,))
    x = torch.rand(64, 1, dtype=torch.float64)
    fit_twin(twin, (x, 3 * x + 1), epochs=2, lr=1e-3)
    assert twin.prepared
    mean = twin.in_mean.clone()
    fit_twin(twin, (x + 5, 3 * x + 16), epochs=2, lr=1e-3, prepare=False)
    assert torch.equal(twin.in_mean, mean)
    fit_twin(twin, (x + 5, 3 * x + 16), epochs=2, lr=1e-3)
    assert not torch.equal(twin.in_mean, mean)


def test_learned_twin_does_not_blow_up_a_control_held_nearly_fixed():
    twin = LearnedTwin(in_features=1, out_features=1, control_shapes={"c": (1,)}, hidden=(8,))
    x = torch.rand(32, 1, dtype=torch.float64)
    c = torch.full((32, 1), 0.7, dtype=torch.float64) + 1e-9 * torch.randn(32, 1, dtype=torch.float64)
    twin.prepare(x, {"c": c}, x)
    assert float(twin.in_scale[1]) == pytest.approx(0.07)  # 10 % of the magnitude, not the 1e-9 spread


def test_grouped_controls_vectorised_path_equals_the_loop_with_gradients():
    from pnnlab.plants.mechanics.oscillators import CoupledOscillatorPlant
    from pnnlab.twins import GroupedControls
    plant = CoupledOscillatorPlant(n_oscillators=3)
    shapes = {k: s.shape for k, s in plant.control_specs().items()}
    twin = GroupedControls(plant.nominal_twin(), control_shapes=shapes)
    gen = torch.Generator().manual_seed(1)
    settings = [plant.initial_controls(gen) for _ in range(4)]
    order = torch.tensor([3, 1, 0, 2, 2, 0, 1, 3])  # equal groups of 2: the vmap path
    x = torch.randn(8, 3, generator=gen, requires_grad=True)
    per_sample = {k: torch.stack([settings[int(i)][k] for i in order]) for k in shapes}
    expected = torch.cat([plant.nominal_twin()(x[i:i + 1], settings[int(order[i])]) for i in range(8)])
    got = twin(x, per_sample)
    assert torch.allclose(got, expected, atol=1e-6)
    (g_got,) = torch.autograd.grad(got.sum(), x)
    (g_exp,) = torch.autograd.grad(expected.sum(), x)
    assert torch.allclose(g_got, g_exp, atol=1e-6)
