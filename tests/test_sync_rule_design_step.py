"""The synchronisation rule steps from the DESIGN free-running frequency, not from the measured one (issue 10).

pnnlab.methods.sync_rule (Romera et al., Nature 563, 230 (2018)): every current step comes from the error
between the source frequency f_d and the oscillator's design free-running frequency f^design(I) at its present
current. A driven oscillator's measured frequency is pulled by the source (it equals f_d when locked, and sits
between f^design and f_d just outside the locking band), so a rule reverted to the measured error takes a step of
a different size (unlocked, pulled) or sign (locked: the sign of a sub-MHz residual). These tests take one step on
a single oscillator (no coupling partners, thermal noise off, so deterministic) and compare the new current with
the design-based value computed here from the design formulas, and check that the measured-error step of the
same scenario would differ (so the scenario can tell the two rules apart).
"""

import pytest
import torch

from pnnlab.methods.sync_rule import SynchronisationRule
from pnnlab.models.stno_classifier import STNOClassifier
from pnnlab.plants.spintronics import STNOArray, synchronisation_pattern

CURRENT_MA = 6.0


def _design_frequency_ghz(plant: STNOArray, current: float) -> float:
    """w0 + N p0(I), p0 = (zeta - 1) / (zeta + Q), zeta = I / I_th (Slavin & Tiberkevich 2009), from the design
    constants; written out here so that the test does not reuse the rule's own helper."""
    zeta = current / plant.threshold_mA
    p0 = (zeta - 1.0) / (zeta + plant.nonlinear_damping)
    return plant.frequencies_ghz[0] + plant.nonlinear_shift_ghz * p0


def _tunability_ghz_per_mA(plant: STNOArray, current: float, h: float = 1e-4) -> float:
    """Central finite difference of the design curve."""
    return (_design_frequency_ghz(plant, current + h) - _design_frequency_ghz(plant, current - h)) / (2 * h)


def _single_oscillator(locks: bool, rel_detuning: list[float]):
    """One oscillator, one source; its code asks it to lock to the source (``locks``) or to lock to none. The
    batch's drives sit at f^design(6 mA) + rel * (design locking half-width). Returns plant, model, x, drives."""
    plant = STNOArray(n_oscillators=1, n_drives=1)           # default design: half-width ~9.7 MHz at 6 mA, nu ~ 10
    model = STNOClassifier(plant, torch.tensor([[[locks]]]), initial_current_mA=CURRENT_MA)
    current = torch.tensor([CURRENT_MA], dtype=torch.float64)
    f_design = _design_frequency_ghz(plant, CURRENT_MA)
    half = float(plant.design_locking_half_width_ghz(current))
    wanted = f_design + half * torch.tensor(rel_detuning, dtype=torch.float64)
    centre, half_band = float(model.encoder.centre), float(model.encoder.half_width)
    # invert the linear encoder; float32 as the training data (the rule stores its step in the float32 control)
    x = ((wanted - centre) / half_band * model.encoder.z_max).unsqueeze(1).float()
    drives = model.drives(x)
    torch.testing.assert_close(drives[:, 0].double(), wanted, atol=1e-7, rtol=0)
    return plant, model, x, drives


def _step(model, x):
    rule = SynchronisationRule()  # lr = 0.3, repel 2 MHz, lock tolerance 1 MHz (the defaults)
    rule.step(model, x, torch.zeros(x.shape[0], dtype=torch.long), torch.nn.functional.cross_entropy)
    return rule, float(model.physical.control_values()["current"].detach())


@pytest.mark.parametrize("rel", [-1.1, 1.1])
def test_an_unlocked_pulled_oscillator_steps_by_its_design_error_not_its_measured_one(rel):
    """Should lock, does not: the source sits 1.1 half-widths from f^design (below or above), outside the band,
    so the oscillator beats, and its measured mean frequency is pulled toward the source (measured error ~7-8 MHz
    against a design error of ~10.7 MHz). The new current is I + lr (f_d - f^design) / (df/dI)."""
    plant, model, x, drives = _single_oscillator(True, [rel])
    measured = plant(drives, {"current": torch.tensor([CURRENT_MA])})
    assert not bool(synchronisation_pattern(measured, drives).any())  # unlocked, as the scenario needs
    f_d, f_design, f_meas = float(drives), _design_frequency_ghz(plant, CURRENT_MA), float(measured)
    tun = _tunability_ghz_per_mA(plant, CURRENT_MA)
    rule, new = _step(model, x)
    design_step = rule.lr * (f_d - f_design) / tun
    measured_step = rule.lr * (f_d - f_meas) / tun
    # the scenario separates the two rules: the pull shrinks the measured error by more than 15 %
    assert abs(f_d - f_meas) < 0.85 * abs(f_d - f_design), (f_d, f_design, f_meas)
    assert abs(design_step - measured_step) > 0.03  # mA; the tolerance below is 1e-4 mA
    assert new - CURRENT_MA == pytest.approx(design_step, abs=1e-4), (
        f"step {new - CURRENT_MA:+.4f} mA; from the design error {design_step:+.4f} mA, from the measured error "
        f"{measured_step:+.4f} mA")


def test_a_wrongly_locked_oscillator_is_repelled_by_the_side_of_its_design_frequency():
    """Locks, should not: the source sits above f^design (0.1, 0.3 and 0.8 half-widths) inside the band, so the
    oscillator measures f_d to within a sub-MHz residual that here lies ABOVE the source (the pulled oscillator
    overshoots it). The design rule lowers the current by repel / (df/dI) (moving f^design away, down); the
    measured-error rule would follow the residual's sign and raise it, deeper into the band."""
    rel = [0.1, 0.3, 0.8]
    plant, model, x, drives = _single_oscillator(False, rel)
    measured = plant(drives, {"current": torch.tensor([CURRENT_MA])})
    assert bool(synchronisation_pattern(measured, drives).all())  # every sample locked, as the scenario needs
    f_design = _design_frequency_ghz(plant, CURRENT_MA)
    tun = _tunability_ghz_per_mA(plant, CURRENT_MA)
    rule, new = _step(model, x)
    design_step = rule.repel_ghz * torch.sign(f_design - drives[:, 0]).mean().item() / tun
    measured_step = rule.repel_ghz * torch.sign(measured[:, 0] - drives[:, 0]).mean().item() / tun
    assert design_step < -0.1                       # mA: all three sources above f^design, a full repel step down
    assert abs(design_step - measured_step) > 0.1, (  # the scenario separates the two rules
        f"measured residuals {(measured[:, 0] - drives[:, 0]).tolist()} GHz no longer differ in sign from the design "
        f"errors; pick other detunings")
    assert new - CURRENT_MA == pytest.approx(design_step, abs=1e-4), (
        f"step {new - CURRENT_MA:+.4f} mA; from the design error {design_step:+.4f} mA, from the measured error "
        f"{measured_step:+.4f} mA")


def test_a_step_on_float64_inputs_keeps_the_control_dtype():
    """Float64 drives (e.g. a float64 data pipeline) used to fail writing the float64 step back into the
    float32 control."""
    from pnnlab.models.stno_classifier import conformance_sync_rule
    import torch.nn.functional as F

    model, x, y = conformance_sync_rule()
    before = model.physical.control_values()["current"].dtype
    loss = SynchronisationRule().step(model, x.double(), y, F.cross_entropy)
    assert isinstance(loss, float)
    assert model.physical.control_values()["current"].dtype == before
