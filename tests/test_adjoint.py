"""The in-situ adjoint method (Hughes 2018 / Pai 2023) on reciprocal plants.

The toy below is a minimal reciprocal mesh written for these tests only (columns of phase shifters
and fixed 2x2 couplers with splitting errors and loss), so the method is checked independently of
the MZI-mesh engine; tests of the real MZIMesh plant follow where it exists.
"""

import math

import pytest
import torch
from torch import nn

from pnnlab import ChannelAffine, PhysicalLayer
from pnnlab.methods.adjoint import AdjointInSitu
from pnnlab.metering import CostModel
from pnnlab.plants.base import ControlSpec, Plant
from pnnlab.plants.capabilities import FieldPass, Reciprocal, Simulated
from pnnlab.twins.base import Twin

TWO_PI = 2 * math.pi


def _coupler(n, column, split_error):
    """Fixed couplers between waveguides (2j, 2j+1) (even columns) or (2j+1, 2j+2) (odd columns):
    [[cos a, i sin a], [i sin a, cos a]] with a = pi/4 + error (a symmetric matrix: reciprocal)."""
    m = torch.eye(n, dtype=torch.complex128)
    start = column % 2
    for j, top in enumerate(range(start, n - 1, 2)):
        a = math.pi / 4 + float(split_error[column, top])
        m[top, top] = m[top + 1, top + 1] = math.cos(a)
        m[top, top + 1] = m[top + 1, top] = 1j * math.sin(a)
    return m


class ToyMesh:
    def __init__(self, n, columns, split_sigma=0.0, offset_sigma=0.0, loss_db=0.0, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.n, self.columns = n, columns
        split = split_sigma * torch.randn(columns, n, generator=g, dtype=torch.float64)
        self.offsets = offset_sigma * torch.randn(columns, n, generator=g, dtype=torch.float64)
        self.couplers = [_coupler(n, c, split) for c in range(columns)]
        self.amplitude = 10 ** (-loss_db / 20)  # per column, every waveguide

    def run(self, field, phase, record=False):
        fields = []
        for c in range(self.columns):
            field = field * torch.exp(1j * (phase[c] + self.offsets[c]).to(torch.complex128))
            fields.append(field)
            field = (field @ self.couplers[c].T) * self.amplitude
        return (field, torch.stack(fields, 1)) if record else field

    def run_backward(self, field):
        fields = [None] * self.columns
        for c in reversed(range(self.columns)):
            field = (field * self.amplitude) @ self.couplers[c]  # transpose of (x @ C.T) is (. @ C)
            fields[c] = field
            # the phase screen is diagonal: its transpose is itself
        return fields

    def run_backward_with_phase(self, field, phase):
        fields = [None] * self.columns
        for c in reversed(range(self.columns)):
            field = (field * self.amplitude) @ self.couplers[c]
            fields[c] = field
            field = field * torch.exp(1j * (phase[c] + self.offsets[c]).to(torch.complex128))
        return field, torch.stack(fields, 1)


class ToyTwin(Twin):
    def __init__(self, mesh, coherent):
        super().__init__(in_features=mesh.n, out_features=2 * mesh.n if coherent else mesh.n)
        self.mesh, self.coherent = mesh, coherent

    def forward(self, x, controls):
        y = self.mesh.run(x.to(torch.complex128), controls["phase"].double())
        out = torch.cat([y.real, y.imag], 1) if self.coherent else y.abs().square()
        return out.to(x.dtype)


class ToyReciprocalMesh(Plant, Simulated, Reciprocal):
    """Amplitude-encoded inputs, coherent (re/im) or intensity outputs, monitors with optional noise."""

    def __init__(self, *, n=4, columns=4, split_sigma=0.0, offset_sigma=0.0, loss_db=0.0,
                 coherent=True, monitor_noise=0.0, seed=0):
        super().__init__(in_features=n, out_features=2 * n if coherent else n,
                         cost=CostModel(seconds_per_query=1e-3), seed=seed)
        self.n_input_ports = self.n_output_ports = n
        self.coherent, self.monitor_noise = coherent, monitor_noise
        self._truth = ToyMesh(n, columns, split_sigma, offset_sigma, loss_db, seed=seed + 1)
        self._design = ToyMesh(n, columns)

    def control_specs(self):
        return {"phase": ControlSpec((self._truth.columns, self._truth.n), 0.0, TWO_PI, unit="rad")}

    def _features(self, y):
        return torch.cat([y.real, y.imag], 1) if self.coherent else y.abs().square()

    def _noisy(self, power, gen):
        if not self.monitor_noise:
            return power
        return power + self.monitor_noise * torch.randn(power.shape, generator=gen, dtype=power.dtype)

    def _measure(self, x, controls, generator):
        return self._features(self._truth.run(x.double().to(torch.complex128), controls["phase"].double())).to(x.dtype)

    def _forward_pass(self, x, controls, gen):
        y, fields = self._truth.run(x.double().to(torch.complex128), controls["phase"].double(), record=True)
        return FieldPass(intensities={"phase": self._noisy(fields.abs().square(), gen).to(x.dtype)},
                         output=self._features(y).to(x.dtype), port_field=y)

    def _adjoint_pass(self, adjoint, controls, gen):
        a_in, fields = self._truth.run_backward_with_phase(adjoint.to(torch.complex128), controls["phase"].double())
        return FieldPass(intensities={"phase": self._noisy(fields.abs().square(), gen)}, port_field=a_in)

    def _interference_pass(self, x, injected, controls, gen):
        field = x.double().to(torch.complex128) + injected.to(torch.complex128)
        _, fields = self._truth.run(field, controls["phase"].double(), record=True)
        return FieldPass(intensities={"phase": self._noisy(fields.abs().square(), gen).to(x.dtype)})

    def adjoint_source(self, forward, grad_output):
        g = grad_output.double()
        if self.coherent:
            grad_field = torch.complex(g[:, :self.n_output_ports], g[:, self.n_output_ports:])
        else:
            grad_field = 2 * forward.port_field * g
        return grad_field.conj()

    def input_gradient(self, x, adjoint):
        return adjoint.port_field.real.to(x.dtype)  # amplitude encoding: field = x

    def nominal_twin(self):
        return ToyTwin(self._design, self.coherent)

    def true_twin(self):
        return ToyTwin(self._truth, self.coherent)


def _model(plant, seed=0):
    torch.manual_seed(seed)
    layer = PhysicalLayer(plant, initial_controls=plant.initial_controls(torch.Generator().manual_seed(seed)))
    return nn.Sequential(layer, nn.Tanh(), nn.Linear(plant.out_features, 3).double())


def _grads(model, x, y, method=None, execution_model=None):
    for p in model.parameters():
        p.grad = None
    if method is not None:
        method.step(model, x, y, nn.functional.cross_entropy)
    else:
        from pnnlab.execution import executing
        with executing(execution_model):
            nn.functional.cross_entropy(model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


def _data(n, batch=16, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, n, generator=g, dtype=torch.float64), torch.randint(0, 3, (batch,), generator=g)


@pytest.mark.parametrize("coherent", [True, False])
def test_adjoint_equals_autograd_on_an_ideal_mesh(coherent):
    from pnnlab.execution import OnTrueTwin
    plant = ToyReciprocalMesh(n=4, columns=4, coherent=coherent)
    model = _model(plant).double()
    x, y = _data(4)
    measured = _grads(model, x, y, method=AdjointInSitu())
    exact = _grads(model, x, y, execution_model=OnTrueTwin())
    for a, b in zip(measured, exact):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def _two_layer(plant1, plant2):
    return nn.Sequential(PhysicalLayer(plant1, initial_controls=plant1.initial_controls(torch.Generator().manual_seed(1))),
                         nn.Linear(plant1.out_features, plant2.in_features).double(), nn.Tanh(),
                         PhysicalLayer(plant2, initial_controls=plant2.initial_controls(torch.Generator().manual_seed(2))),
                         ChannelAffine(plant2.out_features).double()).double()


def test_adjoint_chains_through_digital_layers_and_two_meshes():
    """The input gradient measured at the input ports (pass 2) carries the error to earlier layers."""
    from pnnlab.execution import OnTrueTwin
    torch.manual_seed(0)
    model = _two_layer(ToyReciprocalMesh(n=4, columns=3, split_sigma=0.1, offset_sigma=0.3, seed=4),
                       ToyReciprocalMesh(n=4, columns=3, coherent=False, split_sigma=0.1, offset_sigma=0.3, seed=5))
    x = torch.rand(8, 4, dtype=torch.float64)
    target = torch.randn(8, 4, dtype=torch.float64)
    grads = []
    for execution in ("adjoint", OnTrueTwin()):
        for p in model.parameters():
            p.grad = None
        if execution == "adjoint":
            AdjointInSitu().step(model, x, target, nn.functional.mse_loss)
        else:
            from pnnlab.execution import executing
            with executing(execution):
                nn.functional.mse_loss(model(x), target).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_adjoint_follows_the_true_hardware_not_the_nominal_twin():
    """With fabrication errors (splitting errors, phase offsets) and noisy monitors, the measured
    gradient equals the true hardware gradient within the monitor noise and differs from the gradient
    of the nominal twin (the one in-silico training would follow)."""
    from pnnlab.execution import OnTrueTwin, OnTwin
    noise = 1e-4
    plant = ToyReciprocalMesh(n=4, columns=6, split_sigma=0.15, offset_sigma=0.5, monitor_noise=noise, seed=7)
    model = _model(plant).double()
    model[0].set_twin(plant.nominal_twin())
    x, y = _data(4, batch=32)
    measured = _grads(model, x, y, method=AdjointInSitu())[0]
    true = _grads(model, x, y, execution_model=OnTrueTwin())[0]
    nominal = _grads(model, x, y, execution_model=OnTwin())[0]
    error = float((measured - true).norm())
    nominal_gap = float((nominal - true).norm())
    # noise budget: each phase gradient is half a sum of 3 noisy monitor readings per sample, divided by
    # the adjoint scale; bound it generously at 10x its rms
    assert error < 0.1 * nominal_gap, (error, nominal_gap)
    noiseless = ToyReciprocalMesh(n=4, columns=6, split_sigma=0.15, offset_sigma=0.5, seed=7)
    model_nl = _model(noiseless).double()
    exact = _grads(model_nl, x, y, method=AdjointInSitu())[0]
    torch.testing.assert_close(exact, true, rtol=1e-8, atol=1e-10)  # noise off: exact
    assert error > 0  # the noise is really there (the test above would pass trivially otherwise)


def test_three_queries_per_reciprocal_layer_per_step_and_the_meter_confirms():
    model = _two_layer(ToyReciprocalMesh(n=4, columns=2), ToyReciprocalMesh(n=4, columns=2, coherent=False))
    plants = [model[0].plant, model[3].plant]
    x = torch.rand(5, 4, dtype=torch.float64)
    before = [p.meter.snapshot() for p in plants]
    AdjointInSitu().step(model, x, torch.randn(5, 4, dtype=torch.float64), nn.functional.mse_loss)
    for p, b in zip(plants, before):
        assert p.meter.queries - b["queries"] == 3
        assert p.meter.samples - b["samples"] == 15
        assert p.meter.device_seconds - b["device_seconds"] == pytest.approx(3e-3)


def test_loss_breaks_time_reversal_and_the_error_grows_with_loss():
    """Insertion loss leaves reciprocity (T^T) intact but breaks the time reversal of the third pass:
    the measured gradient departs from the true one, more with more loss; lossless it is exact."""
    from pnnlab.execution import OnTrueTwin
    x, y = _data(4, batch=16)
    errors = []
    for loss_db in (0.0, 0.1, 0.5):
        plant = ToyReciprocalMesh(n=4, columns=6, split_sigma=0.05, loss_db=loss_db, seed=2)
        model = _model(plant).double()
        measured = _grads(model, x, y, method=AdjointInSitu())[0]
        true = _grads(model, x, y, execution_model=OnTrueTwin())[0]
        errors.append(float((measured - true).norm() / true.norm()))
    assert errors[0] < 1e-8
    assert 1e-3 < errors[1] < errors[2]


def test_adjoint_requires_a_reciprocal_plant():
    from pnnlab.methods.base import MethodRequirementError
    from toy_plants import TanhPlant  # a non-reciprocal plant
    plant = TanhPlant()
    model = nn.Sequential(PhysicalLayer(plant), ChannelAffine(plant.out_features))
    with pytest.raises(MethodRequirementError, match="Reciprocal"):
        AdjointInSitu().check(model)


def test_reciprocal_passes_are_validated_at_the_boundary():
    plant = ToyReciprocalMesh(n=4, columns=2)
    controls = plant.initial_controls()
    with pytest.raises(TypeError, match="complex"):
        plant.adjoint_pass(torch.zeros(2, 4), controls)
    with pytest.raises(ValueError, match="shape"):
        plant.adjoint_pass(torch.zeros(2, 5, dtype=torch.complex64), controls)
    with pytest.raises(ValueError, match="samples"):
        plant.interference_pass(torch.zeros(2, 4), torch.zeros(3, 4, dtype=torch.complex64), controls)


# ---- the MZI mesh plant ---------------------------------------------------------------------------
from pnnlab.plants.photonics.mzi_mesh import (CoherentDetection, Detector, Heaters, MeshFabrication, MZIMesh,  # noqa: E402
                                              PhaseEncoding, Photodetection, Triangular)


def _mesh(n=4, *, fabrication=MeshFabrication.ideal(), heaters=Heaters.ideal(), detector=Detector.ideal(),
          coherent=False, seed=0, **kwargs):
    detection = (CoherentDetection if coherent else Photodetection)(detector=detector)
    return MZIMesh(n_ports=n, detection=detection, fabrication=fabrication, heaters=heaters,
                   dtype=torch.complex128, seed=seed, **kwargs)


def _mesh_grads(model, x, y, execution=None, loss_fn=nn.functional.cross_entropy, method=None):
    from pnnlab.execution import executing
    for p in model.parameters():
        p.grad = None
    if execution is None:
        (method or AdjointInSitu()).step(model, x, y, loss_fn)
    else:
        with executing(execution):
            loss_fn(model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


def _mesh_model(plant, seed=0):
    torch.manual_seed(seed)
    layer = PhysicalLayer(plant, twin=plant.nominal_twin(),
                          initial_controls=plant.initial_controls(torch.Generator().manual_seed(seed)))
    return nn.Sequential(layer, nn.Linear(plant.out_features, 3)).double()


@pytest.mark.parametrize("kind", ["photo", "coherent", "phase_encoding", "triangular"])
def test_mzi_mesh_adjoint_equals_autograd_when_ideal(kind):
    kwargs = {"coherent": kind == "coherent"}
    if kind == "phase_encoding":
        kwargs["encoding"] = PhaseEncoding()
    if kind == "triangular":
        kwargs["layout"] = Triangular
    plant = _mesh(4, **kwargs)
    model = _mesh_model(plant)
    x = plant.example_inputs(12).double()
    y = torch.randint(0, 3, (12,), generator=torch.Generator().manual_seed(1))
    from pnnlab.execution import OnTrueTwin
    for a, b in zip(_mesh_grads(model, x, y), _mesh_grads(model, x, y, OnTrueTwin())):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)


def test_mzi_mesh_adjoint_follows_the_fabricated_chip_within_detector_noise():
    """Coupler errors and random phase offsets (no loss, no crosstalk): the measured gradient equals the
    chip's true gradient within the shot/thermal noise of the monitors, and differs from the nominal
    twin's (in-silico) gradient by far more."""
    from pnnlab.execution import OnTrueTwin, OnTwin
    fab = MeshFabrication(coupler_error_std_rad=0.05, phase_offset_std_rad=math.pi)
    noisy = _mesh(6, fabrication=fab, detector=Detector(signal_photons=1e8, thermal_noise_photons=10.0,
                                                        bit_depth=None), seed=3)
    model = _mesh_model(noisy)
    x = noisy.example_inputs(64).double()
    y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(2))
    measured = torch.cat([g.flatten() for g in _mesh_grads(model, x, y)[:3]])
    true = torch.cat([g.flatten() for g in _mesh_grads(model, x, y, OnTrueTwin())[:3]])
    nominal = torch.cat([g.flatten() for g in _mesh_grads(model, x, y, OnTwin())[:3]])
    error = float((measured - true).norm() / true.norm())
    gap = float((nominal - true).norm() / true.norm())
    assert 0 < error < 0.05, error
    assert gap > 0.5, gap
    # with the detector noise off the same chip gives the true gradient exactly
    quiet = _mesh(6, fabrication=fab, seed=3)
    model_q = _mesh_model(quiet)
    exact = torch.cat([g.flatten() for g in _mesh_grads(model_q, x, y)[:3]])
    torch.testing.assert_close(exact, true, rtol=1e-7, atol=1e-10)


def test_mzi_mesh_three_queries_per_step():
    plant = MZIMesh(n_ports=4, seed=0)  # the default (typical) chip, float32
    model = nn.Sequential(PhysicalLayer(plant), ChannelAffine(plant.out_features))
    x = plant.example_inputs(10)
    before = plant.meter.snapshot()
    AdjointInSitu().step(model, x, torch.randn(10, plant.out_features), nn.functional.mse_loss)
    after = plant.meter.snapshot()
    assert after["queries"] - before["queries"] == 3
    assert after["samples"] - before["samples"] == 30
    assert after["device_seconds"] - before["device_seconds"] == pytest.approx(3 * plant.cost.seconds(10))
    assert after["joules"] - before["joules"] >= 3 * plant.heater_power_W(model[0].control_values()) * plant.cost.seconds(10) * 0.999


def test_mzi_mesh_heater_crosstalk_biases_the_measured_gradient():
    """The light measures dL/d(effective phase); with thermal crosstalk between heaters the gradient with
    respect to the commanded phases differs (by C^T): a documented limit, not hidden."""
    from pnnlab.execution import OnTrueTwin
    x = None
    errors = {}
    for crosstalk in (0.0, 0.05):
        plant = _mesh(6, fabrication=MeshFabrication(coupler_error_std_rad=0.02), heaters=Heaters(crosstalk=crosstalk),
                      seed=4)
        model = _mesh_model(plant)
        x = plant.example_inputs(16).double()
        y = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(3))
        m = torch.cat([g.flatten() for g in _mesh_grads(model, x, y)[:3]])
        t = torch.cat([g.flatten() for g in _mesh_grads(model, x, y, OnTrueTwin())[:3]])
        errors[crosstalk] = float((m - t).norm() / t.norm())
    assert errors[0.0] < 1e-7
    assert errors[0.05] > 1e-3


def gradient_error_vs_loss(loss_db_values=(0.0, 0.05, 0.1, 0.2, 0.5, 1.0), *, n=8, seeds=(0, 1, 2), batch=32,
                           passes=3):
    """Relative error |g_adjoint - g_true| / |g_true| of the phase gradients on an n-port rectangular mesh
    with coupler errors (0.02 rad) and random phase offsets, noise off, vs the insertion loss per MZI.
    Returns {loss_db: (mean, std, mean cosine with the true gradient)} over chips (seeds). Used by
    docs/methods/adjoint.md."""
    from pnnlab.execution import OnTrueTwin
    out = {}
    for loss_db in loss_db_values:
        errs, cosines = [], []
        for seed in seeds:
            fab = MeshFabrication(coupler_error_std_rad=0.02, phase_offset_std_rad=math.pi, insertion_loss_db=loss_db)
            plant = _mesh(n, fabrication=fab, seed=seed)
            model = _mesh_model(plant, seed=seed)
            x = plant.example_inputs(batch, generator=torch.Generator().manual_seed(seed)).double()
            y = torch.randint(0, 3, (batch,), generator=torch.Generator().manual_seed(seed))
            m = torch.cat([g.flatten() for g in _mesh_grads(model, x, y, method=AdjointInSitu(passes=passes))[:3]])
            t = torch.cat([g.flatten() for g in _mesh_grads(model, x, y, OnTrueTwin())[:3]])
            errs.append(float((m - t).norm() / t.norm()))
            cosines.append(float(torch.nn.functional.cosine_similarity(m, t, dim=0)))
        e = torch.tensor(errs)
        out[loss_db] = (float(e.mean()), float(e.std()), sum(cosines) / len(cosines))
    return out


def test_insertion_loss_breaks_time_reversal_on_the_mesh_and_a_fourth_pass_removes_the_offset():
    """Mutation-proof on both sides: lossless, both schemes are exact; with loss the 3-pass error grows
    with the loss, and measuring the time-reversed field's own power (4 passes) cuts it several-fold."""
    three = gradient_error_vs_loss((0.0, 0.1, 0.5), n=6, seeds=(0, 1), batch=16)
    four = gradient_error_vs_loss((0.0, 0.1, 0.5), n=6, seeds=(0, 1), batch=16, passes=4)
    assert three[0.0][0] < 1e-7 and four[0.0][0] < 1e-7
    assert 1e-3 < three[0.1][0] < three[0.5][0]
    assert four[0.1][0] < 0.3 * three[0.1][0] and four[0.5][0] < 0.3 * three[0.5][0]
    assert four[0.1][0] > 1e-4  # the remaining scale error a^(2k) is real


def test_four_passes_cost_four_queries():
    plant = _mesh(4)
    model = _mesh_model(plant)
    x = plant.example_inputs(5).double()
    AdjointInSitu(passes=4).step(model, x, torch.randint(0, 3, (5,)), nn.functional.cross_entropy)
    assert plant.meter.queries == 4
    with pytest.raises(ValueError, match="passes"):
        AdjointInSitu(passes=5)


if __name__ == "__main__":  # prints the table of docs/methods/adjoint.md (a few seconds)
    torch.set_num_threads(1)
    three, four = gradient_error_vs_loss(), gradient_error_vs_loss(passes=4)
    print("8-port rectangular mesh, coupler errors 0.02 rad, random phase offsets, noise off, batch 32, "
          "3 chips (seeds 0, 1, 2)")
    print("loss per MZI (dB) | whole mesh (dB, 8 columns) | rel. error, 3 passes | cosine | rel. error, 4 passes "
          "| cosine")
    for loss_db in three:
        print(f"{loss_db:>5.2f} | {8 * loss_db:>5.2f} | {three[loss_db][0]:.3f} ± {three[loss_db][1]:.3f} | "
              f"{three[loss_db][2]:.3f} | {four[loss_db][0]:.3f} ± {four[loss_db][1]:.3f} | {four[loss_db][2]:.3f}")


def test_reciprocal_passes_are_recorded_at_the_boundary(tmp_path):
    """Every optical pass is a query at the plant boundary: a recorder sees forward, adjoint and
    interference queries, with the meter's time."""
    from pnnlab.recording import Recording, record
    plant = _mesh(4)
    model = _mesh_model(plant)
    x = plant.example_inputs(5).double()
    with record({"mesh": plant}, tmp_path / "q.sqlite"):
        AdjointInSitu().step(model, x, torch.randint(0, 3, (5,)), nn.functional.cross_entropy)
    kinds = [q.kind for q in Recording(tmp_path / "q.sqlite").queries("mesh")]
    assert kinds == ["forward", "adjoint", "interference"]
