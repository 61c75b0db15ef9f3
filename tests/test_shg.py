"""Broadband SHG plant and the SHG classifier: physics limits, hidden truth, validation, and
physics-aware training with a perfect plant equal to backpropagation."""

import math

import numpy as np
import pytest
import torch

import pnnlab
from pnnlab import InSilico, PhysicsAwareTraining
from pnnlab.layers import physical_layers
from pnnlab.models.digital_baselines import build_matched_mlp, trainable_parameter_count
from pnnlab.models.shg_classifier import (MISMATCH_PRESETS, RECOMMENDED_TRAINING, TYPICAL_NOISE,
                                          RandomQuadraticPower, build_shg_classifier, build_shg_random_features)
from pnnlab.plants.optics.shg import (DetectorNoise, DetectorSaturation, SHGMismatch, SHGPlant, SHGTwin,
                                      ShaperError, SpectralPhase, second_harmonic_field)
from pnnlab.testing import check_method, check_plant


def controls_for(plant, seed=0):
    return plant.initial_controls(torch.Generator().manual_seed(seed))


def flat_phase(plant, amplitude=0.7):
    specs = plant.control_specs()
    return {"amplitude": torch.full(specs["amplitude"].shape, amplitude),
            "phase": torch.zeros(specs["phase"].shape)}


# ---- conformance ----------------------------------------------------------------------------

def test_plant_conforms_ideal_and_with_full_truth():
    check_plant(SHGPlant(n_inputs=3, n_outputs=2))
    check_plant(SHGPlant(n_inputs=4, n_outputs=3, mismatch=SHGMismatch.typical(),
                         noise=DetectorNoise(read_noise=1e-4, shot_noise=1e-3), seed=3))


def test_registry_entries_build():
    entry = pnnlab.PLANTS.get("shg")
    check_plant(pnnlab.PLANTS.build("shg", **entry.example))
    model = pnnlab.MODELS.build("shg_classifier", in_features=12, n_classes=7, hidden_bins=[5],
                                mismatch="typical", noise="typical")
    assert len(physical_layers(model)) == 2
    plant = physical_layers(model)[0].plant
    assert plant._mismatch == SHGMismatch.typical() and plant._noise == TYPICAL_NOISE


# ---- physics --------------------------------------------------------------------------------

def test_self_convolution_matches_direct_sum():
    gen = torch.Generator().manual_seed(0)
    e = torch.complex(torch.randn(2, 37, generator=gen, dtype=torch.float64),
                      torch.randn(2, 37, generator=gen, dtype=torch.float64))
    sh = second_harmonic_field(e)
    for row in range(2):
        direct = np.convolve(e[row].numpy(), e[row].numpy())
        np.testing.assert_allclose(sh[row].numpy(), direct, rtol=1e-10, atol=1e-10)


def test_single_narrow_line_gives_sh_only_at_twice_its_frequency():
    k, index = 64, 23
    e = torch.zeros(1, k, dtype=torch.complex128)
    e[0, index] = 0.8 * torch.exp(torch.tensor(0.3j, dtype=torch.complex128))
    power = second_harmonic_field(e).abs() ** 2
    assert power.shape[-1] == 2 * k - 1
    nonzero = torch.nonzero(power[0] > 1e-20).flatten().tolist()
    assert nonzero == [2 * index]  # sum frequency omega + omega
    assert float(power[0, 2 * index]) == pytest.approx(0.8 ** 4)


def test_noiseless_mismatch_free_plant_equals_twin():
    plant = SHGPlant(n_inputs=5, n_outputs=4, seed=7)
    twin = plant.nominal_twin()
    x = plant.example_inputs(16)
    controls = controls_for(plant)
    torch.testing.assert_close(plant(x, controls), twin(x, controls), rtol=1e-6, atol=0.0)
    assert plant.true_twin()(x, controls).shape == (16, 4)


def test_true_twin_is_the_noiseless_truth_and_differs_from_the_nominal_twin():
    # same seed, same per-pixel gain draw; the noisy plant's true twin is its noise-free copy
    noisy = SHGPlant(n_inputs=5, n_outputs=4, mismatch=SHGMismatch.typical(),
                     noise=DetectorNoise(read_noise=1e-3, shot_noise=1e-2), seed=7)
    quiet = SHGPlant(n_inputs=5, n_outputs=4, mismatch=SHGMismatch.typical(), seed=7)
    x, controls = quiet.example_inputs(16), controls_for(quiet)
    truth = noisy.true_twin()
    torch.testing.assert_close(truth(x, controls), quiet(x, controls), rtol=1e-6, atol=0.0)
    assert not torch.allclose(noisy(x, controls), quiet(x, controls))
    nominal = noisy.nominal_twin()(x, controls)
    assert float(((truth(x, controls) - nominal).abs() / nominal.abs()).max()) > 0.1
    xg = x.clone().requires_grad_(True)
    cg = {k: v.clone().requires_grad_(True) for k, v in controls.items()}
    truth(xg, cg).sum().backward()
    assert all(bool(torch.isfinite(t.grad).all()) and float(t.grad.abs().max()) > 0 for t in (xg, *cg.values()))


def test_shaper_is_passive_transmission_never_exceeds_one():
    """With flat phases every SH bin is a sum of non-negative products of pixel amplitudes, so a pulse
    through a passive shaper (every transmission <= 1) is nowhere brighter than the fully open,
    transform-limited one. A gain error that let a pixel exceed 1 breaks this."""
    common = dict(n_inputs=6, n_outputs=8, detector_span=1.0)
    open_ = SHGPlant(**common)
    gains = SHGPlant(**common, mismatch=SHGMismatch(shaper=ShaperError(gain_error_std=0.3)), seed=1)
    assert float(gains._physics.gains.max()) > 1.2  # some pixels have a high gain (the hidden truth)
    full = flat_phase(open_, amplitude=1.0)
    y_open, y_gain = open_(torch.ones(1, 6), full), gains(torch.ones(1, 6), full)
    assert bool((y_gain <= y_open * (1 + 1e-9)).all())
    assert float(y_gain.max()) <= 1.0 + 1e-9  # P_ref is the brightest bin of the open pulse
    # and the gains do act (below saturation, a pixel of gain > 1 transmits more than commanded)
    half = flat_phase(open_, amplitude=0.5)
    assert not torch.allclose(gains(torch.full((1, 6), 0.5), half), open_(torch.full((1, 6), 0.5), half))


def test_phase_stroke_error_scales_every_phase():
    """phi_true = (1 + e) phi: the plant with only a stroke error equals the design physics at the
    scaled phases, and not at the commanded ones."""
    e = 0.05
    plant = SHGPlant(n_inputs=4, n_outputs=5, mismatch=SHGMismatch(shaper=ShaperError(phase_scale_error=e)))
    twin = plant.nominal_twin()
    x, controls = plant.example_inputs(8), controls_for(plant, seed=3)
    controls["phase"] = 2.0 * controls["phase"]  # larger phases: the stroke error then matters more
    scaled = {"amplitude": controls["amplitude"], "phase": (1 + e) * controls["phase"]}
    y = plant(x, controls)
    torch.testing.assert_close(y, twin(x, scaled), rtol=1e-6, atol=0.0)
    assert float(((y - twin(x, controls)).abs() / y).max()) > 1e-3
    torch.testing.assert_close(plant.true_twin()(x, controls), y, rtol=1e-6, atol=0.0)


@pytest.mark.parametrize("dispersion", [SpectralPhase(group_delay_dispersion_fs2=500.0),
                                        SpectralPhase(third_order_dispersion_fs3=60000.0)])
def test_flat_phase_maximises_sh_power(dispersion):
    # |sum_k A_k A_{W-k} exp(i(phi_k + phi_{W-k}))| <= sum_k A_k A_{W-k}: at every SH frequency the
    # transform-limited pulse is brightest, so dispersion lowers every bin and the total.
    common = dict(n_inputs=4, n_outputs=6, detector_span=1.0)
    flat = SHGPlant(**common)
    dispersed = SHGPlant(**common, mismatch=SHGMismatch(dispersion=dispersion))
    x = flat.example_inputs(8)
    controls = flat_phase(flat)
    y_flat, y_disp = flat(x, controls), dispersed(x, controls)
    assert bool((y_disp <= y_flat * (1 + 1e-9)).all())
    assert float(y_disp.sum()) < 0.95 * float(y_flat.sum())


def test_transform_limited_full_pulse_brightest_bin_is_the_reference():
    plant = SHGPlant(n_inputs=6, n_outputs=5)
    y = plant(torch.ones(1, 6), flat_phase(plant, amplitude=1.0))
    assert float(y.max()) == pytest.approx(1.0, rel=1e-6)


def test_sh_power_is_quartic_in_the_field_amplitude():
    twin = SHGTwin(n_inputs=4, n_outputs=3)
    plant = SHGPlant(n_inputs=4, n_outputs=3)
    x = plant.example_inputs(6)
    controls = controls_for(plant)
    half = {"amplitude": 0.5 * controls["amplitude"], "phase": controls["phase"]}
    torch.testing.assert_close(twin(0.5 * x, half), twin(x, controls) / 16, rtol=1e-5, atol=0.0)


def test_truth_is_hidden_and_drawn_per_plant():
    a = SHGPlant(n_inputs=4, n_outputs=3, mismatch=SHGMismatch.typical(), seed=1)
    b = SHGPlant(n_inputs=4, n_outputs=3, mismatch=SHGMismatch.typical(), seed=2)
    clean = SHGPlant(n_inputs=4, n_outputs=3)
    x, controls = clean.example_inputs(5), controls_for(clean)
    # the twins follow the design values only: identical whatever the truth
    torch.testing.assert_close(a.nominal_twin()(x, controls), clean.nominal_twin()(x, controls))
    # each plant has its own per-pixel gain errors, so the two true plants differ
    assert not torch.allclose(a(x, controls), b(x, controls))
    assert not torch.allclose(a(x, controls), clean(x, controls))


def test_detector_saturation_bounds_the_output():
    level = 0.01
    plant = SHGPlant(n_inputs=4, n_outputs=3, mismatch=SHGMismatch(detector=DetectorSaturation(level=level)))
    y = plant(torch.ones(3, 4), flat_phase(plant, amplitude=1.0))
    assert float(y.max()) <= level
    assert float(y.max()) > 0.99 * level  # the bright transform-limited pulse saturates it


def test_detector_noise_has_the_stated_mean_and_variance():
    noise = DetectorNoise(read_noise=2e-3, shot_noise=5e-2)
    plant = SHGPlant(n_inputs=3, n_outputs=2, noise=noise, seed=4)
    clean = SHGPlant(n_inputs=3, n_outputs=2)
    controls = controls_for(clean)
    x = torch.full((20000, 3), 0.8)
    y, y0 = plant(x, controls), clean(x[:1], controls)[0]
    expected_std = torch.sqrt(noise.read_noise ** 2 + noise.shot_noise ** 2 * y0)
    torch.testing.assert_close(y.mean(0), y0, atol=float(4 * expected_std.max() / math.sqrt(20000)), rtol=0)
    torch.testing.assert_close(y.std(0), expected_std, rtol=0.05, atol=0)


def test_meter_counts_device_time_and_energy():
    plant = SHGPlant(n_inputs=3, n_outputs=2)
    plant(plant.example_inputs(5), controls_for(plant))
    cost = SHGPlant.default_cost()
    assert plant.meter.queries == 1 and plant.meter.samples == 5
    assert plant.meter.device_seconds == pytest.approx(5 * cost.seconds_per_sample)
    assert plant.meter.joules == pytest.approx(5 * cost.joules_per_sample)
    assert "assumed" in cost.source


# ---- validation -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, words", [
    (dict(n_inputs=0, n_outputs=2), ValueError, "n_inputs"),
    (dict(n_inputs=3, n_outputs=2.5), TypeError, "n_outputs"),
    (dict(n_inputs=3, n_outputs=2, detector_span=1.5), ValueError, "detector_span"),
    (dict(n_inputs=3, n_outputs=2, laser_fwhm_THz=-1.0), ValueError, "laser_fwhm_THz"),
    (dict(n_inputs=3, n_outputs=2, mismatch="atypical"), ValueError, "is not a preset"),
    (dict(n_inputs=3, n_outputs=2, mismatch=1), TypeError, "SHGMismatch.typical()"),
    (dict(n_inputs=3, n_outputs=2, noise={"read_noise": 0.1}), TypeError, "DetectorNoise"),
])
def test_bad_constructor_arguments_are_named(kwargs, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        SHGPlant(**kwargs)


def test_bad_recipe_values_are_named():
    with pytest.raises(ValueError, match="phase_scale_error"):
        ShaperError(phase_scale_error=-1.5)
    with pytest.raises(ValueError, match="gain_error_std"):
        ShaperError(gain_error_std=-0.1)
    with pytest.raises(ValueError, match="read_noise"):
        DetectorNoise(read_noise=-1.0)
    with pytest.raises(TypeError, match="SpectralPhase"):
        SHGMismatch(dispersion={"group_delay_dispersion_fs2": 100.0})


def test_inputs_outside_the_amplitude_range_are_refused():
    plant = SHGPlant(n_inputs=3, n_outputs=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plant(torch.full((2, 3), 1.5), controls_for(plant))


def test_builder_arguments_are_checked():
    with pytest.raises(TypeError, match="booleans are no longer accepted"):
        build_shg_classifier(in_features=4, n_classes=3, mismatch=True)
    with pytest.raises(TypeError, match="SHGMismatch"):
        build_shg_classifier(in_features=4, n_classes=3, mismatch={"dispersion": {"gdd": 1.0}})
    with pytest.raises(ValueError, match="not a preset"):
        build_shg_classifier(in_features=4, n_classes=3, mismatch="wobbly")
    with pytest.raises(TypeError, match="DetectorNoise"):
        build_shg_classifier(in_features=4, n_classes=3, noise={"read_noise": 1e-5})
    with pytest.raises(TypeError, match="hidden_bins"):
        build_shg_classifier(in_features=4, n_classes=3, hidden_bins="12")
    with pytest.raises(ValueError, match="n_classes"):
        build_shg_classifier(in_features=4, n_classes=1)


def test_builder_takes_recipe_objects_and_presets():
    recipe = SHGMismatch(dispersion=SpectralPhase(group_delay_dispersion_fs2=200.0),
                         shaper=ShaperError(gain_error_std=0.05), detector=DetectorSaturation(level=0.1))
    model = build_shg_classifier(in_features=4, n_classes=3, hidden_bins=[5], mismatch=recipe,
                                 noise=DetectorNoise(read_noise=1e-5), seed=3)
    plants = [layer.plant for layer in physical_layers(model)]
    assert [p.in_features for p in plants] == [4, 5] and [p.out_features for p in plants] == [5, 3]
    assert plants[0]._mismatch is recipe and plants[0]._noise.read_noise == 1e-5
    # each layer has its own hidden truth (its own per-pixel gains)
    assert not torch.equal(plants[0]._physics.gains[:5], plants[1]._physics.gains[:5])
    for layer in physical_layers(model):
        assert layer.twin is not None and layer.twin is not layer.plant
    # the default is the ideal plant; the preset names map explicitly to the recipe objects
    ideal = physical_layers(build_shg_classifier(in_features=4, n_classes=3))[0].plant
    assert not ideal._mismatch.active and not ideal._noise.active
    assert set(MISMATCH_PRESETS) == {"typical"}
    typical = physical_layers(build_shg_classifier(in_features=4, n_classes=3, mismatch="typical"))[0].plant
    assert typical._mismatch == SHGMismatch.typical()


# ---- training -------------------------------------------------------------------------------

@pytest.mark.parametrize("hidden", [None, [6]])
def test_pat_with_a_perfect_plant_equals_backprop_through_the_twin(hidden):
    def gradients(method):
        model = build_shg_classifier(in_features=5, n_classes=3, hidden_bins=hidden, mismatch=None,
                                     noise=None, seed=2)
        gen = torch.Generator().manual_seed(0)
        x, y = torch.randn(12, 5, generator=gen), torch.randint(0, 3, (12,), generator=gen)
        model.zero_grad()
        method.step(model, x, y, torch.nn.functional.cross_entropy)
        return [p.grad.clone() for p in model.parameters()]

    pat, backprop = gradients(PhysicsAwareTraining()), gradients(InSilico())
    assert len(pat) == len(backprop) > 0
    for a, b in zip(pat, backprop):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_methods_run_one_step_on_the_mismatched_noisy_model():
    model = build_shg_classifier(in_features=6, n_classes=3, mismatch="typical", noise="typical", seed=1)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    for method in (PhysicsAwareTraining(), InSilico(), pnnlab.IdealBackprop()):
        check_method(method, model, x, y)


def test_random_feature_control_is_frozen_quartic_and_trains_only_the_readout():
    control = build_shg_random_features(in_features=12, n_classes=7, hidden_bins=[9], seed=1)
    assert not physical_layers(control)
    assert trainable_parameter_count(control) == 2 * 7
    assert control(torch.randn(4, 12)).shape == (4, 7)
    # same nonlinearity class as SHG: quartic in the amplitudes, and it mixes them
    layer = RandomQuadraticPower(5, 3, seed=0)
    a = torch.rand(6, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(0.5 * a), layer(a) / 16)
    single = torch.zeros(1, 5, dtype=torch.float64)
    single[0, 1] = 1.0
    pair = single.clone()
    pair[0, 3] = 1.0
    only3 = torch.zeros(1, 5, dtype=torch.float64)
    only3[0, 3] = 1.0
    assert not torch.allclose(layer(pair), layer(single) + layer(only3))  # cross terms a_1 a_3
    # seeded: another seed is another map
    assert not torch.allclose(RandomQuadraticPower(5, 3, seed=1)(a), layer(a))


def test_trainable_parameters_of_the_physical_model_and_the_matched_mlp():
    model = build_shg_classifier(in_features=12, n_classes=7)
    # 24 control-pixel amplitudes, 36 pixel phases, per-class scale and offset
    assert trainable_parameter_count(model) == 24 + 36 + 14
    mlp = build_matched_mlp(in_features=12, n_classes=7, parameters=74, seed=0)
    assert trainable_parameter_count(mlp) == 67  # 12 -> 3 -> 7, the closest MLP to 74
    torch.testing.assert_close(build_matched_mlp(in_features=12, n_classes=7, parameters=74, seed=0)[0].weight,
                               mlp[0].weight)


def test_recommended_training_is_plain_values():
    assert set(RECOMMENDED_TRAINING) == {"epochs", "lr", "batch_size"}
    assert all(isinstance(v, (int, float)) for v in RECOMMENDED_TRAINING.values())


@pytest.mark.slow
def test_pat_beats_in_silico_on_the_mismatched_plant():
    from pnnlab.data.vowels import load_vowels
    data = load_vowels(seed=1)
    accuracy = {}
    for method in (PhysicsAwareTraining(), InSilico()):
        model = build_shg_classifier(in_features=12, n_classes=7, mismatch="typical", noise="typical", seed=1)
        history = pnnlab.train(model, method, data, seed=1, evaluate_every=1000, **RECOMMENDED_TRAINING)
        accuracy[method.name] = history.final["test_accuracy"]
    assert accuracy["pat"] >= 0.88
    assert accuracy["pat"] > accuracy["in_silico"] + 0.15


def test_preset_names_build_the_preset_physics():
    # `pnnlab serve --plant shg --plant-args '{"mismatch": "typical", "noise": "typical"}'` relies on it
    by_name = SHGPlant(n_inputs=3, n_outputs=2, mismatch="typical", noise="typical", seed=4)
    by_object = SHGPlant(n_inputs=3, n_outputs=2, mismatch=SHGMismatch.typical(), noise=TYPICAL_NOISE, seed=4)
    x = by_name.example_inputs(5).sigmoid()
    controls = by_name.initial_controls(torch.Generator().manual_seed(0))
    assert torch.equal(by_name(x, controls), by_object(x, controls))
    ideal = SHGPlant(n_inputs=3, n_outputs=2, seed=4)
    assert not torch.equal(by_name.true_twin()(x, controls), ideal.true_twin()(x, controls))
