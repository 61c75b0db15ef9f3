"""Recording and replay at the plant boundary (pnnlab.recording, issue 11 section 3)."""

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import pnnlab
from pnnlab import ChannelAffine, PhysicalLayer, PhysicsAwareTraining
from pnnlab.data.base import TaskData
from pnnlab.plants.capabilities import OutputForce
from pnnlab.plants.hopfield import HopfieldPlant
from pnnlab.recording import (PlantRecorder, Recording, ReplayMismatchError, ReplayPlant, record)

from toy_plants import TanhPlant

ROOT = Path(__file__).resolve().parents[1]


class ChargingPlant(TanhPlant):
    """Charges programming energy inside the query, as a memristor plant does with its pulses."""

    def _measure(self, x, controls, generator):
        self.meter.charge(seconds=0.5, joules=2e-6)
        return super()._measure(x, controls, generator)


class FlakyPlant(TanhPlant):
    """Returns NaN on its second query (a detector dropout)."""

    calls = 0

    def _measure(self, x, controls, generator):
        self.calls += 1
        y = super()._measure(x, controls, generator)
        return y * float("nan") if self.calls == 2 else y


def _controls(plant, dtype=torch.float32):
    return {k: v.to(dtype) for k, v in plant.initial_controls(torch.Generator().manual_seed(3)).items()}


def test_every_query_is_recorded_bit_identically_with_its_meter_delta(tmp_path):
    plant = ChargingPlant(features_in=3, features_out=2, error_std=0.3, noise_std=0.1, seed=4)
    path = tmp_path / "run" / "queries.sqlite"
    sent = []
    with record(plant, path, metadata={"config": {"lr": 0.05}}) as rec:
        for batch, dtype in ((5, torch.float32), (1, torch.float64), (7, torch.float32)):
            x = torch.randn(batch, 3, dtype=dtype)
            c = _controls(plant, dtype)
            sent.append((x, c, plant(x, c)))
        rec.commit()
        assert rec.queries == 3
    # detached on close: later queries are not recorded (and do not fail on a closed database)
    plant(torch.randn(2, 3), _controls(plant))
    with Recording(path) as recording:
        assert len(recording) == 3
        assert recording.meta["status"] == "closed" and recording.meta["user"] == {"config": {"lr": 0.05}}
        info = recording.plants["0"]
        assert info["class"].endswith("ChargingPlant") and info["description"] == plant.describe()
        assert info["control_specs"] == plant.control_specs() and info["cost"] == plant.cost
        for (x, c, y), q in zip(sent, recording.queries()):
            assert q.kind == "call" and q.batch == x.shape[0] and q.metered and q.error is None
            assert q.x.dtype == x.dtype and torch.equal(q.x, x)  # float64 stays float64, bit for bit
            assert q.controls.keys() == c.keys() and all(torch.equal(q.controls[k], c[k]) for k in c)
            assert torch.equal(q.output, y)
            # meter delta of this query: the cost model plus the energy charged inside the query
            assert q.device_seconds == pytest.approx(plant.cost.seconds(x.shape[0]) + 0.5)
            assert q.joules == pytest.approx(plant.cost.joules(x.shape[0]) + 2e-6)
        assert [q.seq for q in recording.queries()] == [0, 1, 2]


def test_a_failed_measurement_is_recorded_with_its_error_and_still_raises(tmp_path):
    plant = FlakyPlant(features_in=3, features_out=2)
    with record(plant, tmp_path / "q.sqlite"):
        plant(torch.randn(4, 3), _controls(plant))
        with pytest.raises(FloatingPointError, match="FlakyPlant"):
            plant(torch.randn(4, 3), _controls(plant))
        plant(torch.randn(4, 3), _controls(plant))
    assert plant.meter.queries == 3
    with Recording(tmp_path / "q.sqlite") as recording:
        queries = list(recording.queries())
        assert [q.error is None for q in queries] == [True, False, True]
        assert "FloatingPointError" in queries[1].error and queries[1].output is None and queries[1].metered
        assert len(recording.to_dataset().y) == 8  # the failed batch is not a training pair


def test_relax_queries_are_recorded_with_nudge_nodes_and_power(tmp_path):
    plant = HopfieldPlant(sizes=(3, 5, 2), seed=1)
    controls = plant.initial_controls(torch.Generator().manual_seed(0))
    x = torch.rand(4, 3)
    with record({"hopfield": plant}, tmp_path / "q.sqlite"):
        free = plant.relax(x, controls)
        force = 0.1 * torch.randn(4, 2)
        nudged = plant.relax(x, controls, nudge=OutputForce(force), initial=free)
    with Recording(tmp_path / "q.sqlite") as recording:
        q0, q1 = recording.queries("hopfield", kind="relax")
        assert torch.equal(q0.output, free.output) and torch.equal(q1.output, nudged.output)
        assert q0.info["nudge"] == "free" and not q0.info["warm_start"]
        assert q1.info["nudge"] == "force" and q1.info["warm_start"] and torch.equal(q1.extra["force"], force)
        tensor_nodes = [n for n in free.nodes if isinstance(n, torch.Tensor)]
        assert tensor_nodes and all(torch.equal(q0.extra[f"nodes.{i}"], n) for i, n in enumerate(free.nodes)
                                    if isinstance(n, torch.Tensor))
        assert q0.device_seconds == pytest.approx(plant.cost.seconds(4))
        with pytest.raises(ValueError, match="no successful queries"):
            recording.to_dataset()  # relax queries are not input-output pairs of __call__


def test_every_query_is_durable_before_it_returns_even_when_the_process_is_killed(tmp_path):
    path = tmp_path / "q.sqlite"
    script = textwrap.dedent(f"""
        import os, sys, torch
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        from toy_plants import TanhPlant
        from pnnlab.recording import PlantRecorder
        plant = TanhPlant(noise_std=0.1)
        rec = PlantRecorder({str(path)!r}, plant)
        c = plant.initial_controls()
        for step in range(3):
            plant(torch.randn(2, 3), c)
            plant(torch.randn(2, 3), c)
        y = plant(torch.randn(2, 3), c)   # no commit, no close: the query returned, so it is on file
        sys.stdout.write(repr(y.tolist()))
        sys.stdout.flush()
        os._exit(9)                    # killed: no close, no exception handling, no atexit
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 9, done.stderr
    with Recording(path) as recording:
        assert len(recording) == 7 and recording.meta["status"] == "open"
        assert all(q.output is not None for q in recording.queries())
        assert list(recording.queries())[-1].output.tolist() == eval(done.stdout)


def test_an_exception_in_the_trainer_keeps_every_query_and_records_how_the_run_ended(tmp_path):
    plant = TanhPlant()
    with pytest.raises(KeyboardInterrupt):
        with record(plant, tmp_path / "q.sqlite"):
            plant(torch.randn(2, 3), _controls(plant))
            plant(torch.randn(2, 3), _controls(plant))  # not committed explicitly
            raise KeyboardInterrupt("stopped")
    with Recording(tmp_path / "q.sqlite") as recording:
        assert len(recording) == 2 and recording.meta["status"].startswith("failed: KeyboardInterrupt")
    assert plant._recorders == ()


def test_to_dataset_gives_per_sample_controls_for_twin_fitting(tmp_path):
    plant = TanhPlant(noise_std=0.05)
    a, b = _controls(plant), {k: v * 0.5 for k, v in _controls(plant).items()}
    xa, xb = torch.randn(3, 3), torch.randn(2, 3)
    with record(plant, tmp_path / "q.sqlite"):
        ya, yb = plant(xa, a), plant(xb, b)
    with Recording(tmp_path / "q.sqlite") as recording:
        x, controls, y, seq = recording.to_dataset()
    assert torch.equal(x, torch.cat([xa, xb])) and torch.equal(y, torch.cat([ya, yb]))
    assert seq.tolist() == [0, 0, 0, 1, 1]
    assert controls["weight"].shape == (5, 2, 3)
    assert torch.equal(controls["weight"][2], a["weight"]) and torch.equal(controls["weight"][3], b["weight"])


def _model(plants, twins):
    torch.manual_seed(0)
    return nn.Sequential(PhysicalLayer(plants[0], twin=twins[0]), PhysicalLayer(plants[1], twin=twins[1]),
                         ChannelAffine(2))


def _task():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(60, 3, generator=g)
    y = (x[:, 0] - 0.5 * x[:, 2] > 0).long()
    return TaskData("toy", x[:36], y[:36], x[36:48], y[36:48], x[48:], y[48:], 2)


def test_replaying_a_recorded_pat_run_gives_identical_parameters_without_the_device(tmp_path):
    real = [TanhPlant(features_in=3, features_out=4, error_std=0.3, noise_std=0.1, seed=1),
            TanhPlant(features_in=4, features_out=2, error_std=0.3, noise_std=0.1, seed=2)]
    twins = [p.nominal_twin() for p in real]
    data = _task()
    model = _model(real, twins)
    start = {k: v.clone() for k, v in model.state_dict().items()}  # what a checkpoint would restore
    path = tmp_path / "q.sqlite"
    with record(pnnlab.plants_of(model), path) as rec:  # 36 samples / batch 12 = 3 PAT steps, then eval
        history = pnnlab.train(model, PhysicsAwareTraining(), data, epochs=1, batch_size=12, lr=0.05,
                               callback=rec.step_callback)
    assert len(history.steps()) == 3
    device_queries = [p.meter.queries for p in real]

    with Recording(path) as recording:
        replay = [ReplayPlant(recording, plant="0"), ReplayPlant(recording, plant="1")]
        assert replay[0].control_specs() == real[0].control_specs()
        replayed = _model(replay, twins)
        replayed.load_state_dict(start)
        again = pnnlab.train(replayed, PhysicsAwareTraining(), data, epochs=1, batch_size=12, lr=0.05)
        assert [p.meter.queries for p in real] == device_queries  # the device was not asked again
        for a, b in zip(model.parameters(), replayed.parameters()):
            assert torch.equal(a, b)
        assert [r["loss"] for r in again.steps()] == [r["loss"] for r in history.steps()]
        assert again.final["test_accuracy"] == history.final["test_accuracy"]
        assert again.steps()[-1]["train_joules"] == pytest.approx(history.steps()[-1]["train_joules"])
        assert [p.position for p in replay] == device_queries  # every recorded query was served once

        # a different run (another data order) is caught at its first query, naming the sequence number
        other = _model([ReplayPlant(recording, plant="0"), ReplayPlant(recording, plant="1")], twins)
        other.load_state_dict(start)
        with pytest.raises(ReplayMismatchError, match=r"plant '0', query 0 \(recorded seq 0\): x differs"):
            pnnlab.train(other, PhysicsAwareTraining(), data, epochs=1, batch_size=12, lr=0.05, seed=1)


def test_replay_mismatch_and_exhaustion_say_what_differs(tmp_path):
    plant = TanhPlant(noise_std=0.1)
    x, c = torch.randn(2, 3), _controls(plant)
    with record(plant, tmp_path / "q.sqlite"):
        y = plant(x, c)
    replay = ReplayPlant(tmp_path / "q.sqlite")
    moved = {"weight": c["weight"].clone(), "bias": c["bias"]}
    moved["weight"][1, 2] += 1e-3
    with pytest.raises(ReplayMismatchError, match=r"controls\['weight'\] differs .*at index \(1, 2\)"):
        replay(x, moved)
    assert torch.equal(replay(x, c), y)  # a refused query does not consume the recorded one
    tolerant = ReplayPlant(tmp_path / "q.sqlite", atol=1e-2)
    assert torch.equal(tolerant(x, moved), y)
    with pytest.raises(ReplayMismatchError, match="has shape"):
        ReplayPlant(tmp_path / "q.sqlite")(x.double(), c)
    exact = ReplayPlant(tmp_path / "q.sqlite")
    assert torch.equal(exact(x, c), y) and exact.meter.queries == 1
    with pytest.raises(ReplayMismatchError, match="only 1 call queries"):
        exact(x, c)


def test_recorder_arguments_are_validated(tmp_path):
    plant = TanhPlant()
    PlantRecorder(tmp_path / "q.sqlite", plant).close()
    with pytest.raises(FileExistsError, match="never overwritten"):
        PlantRecorder(tmp_path / "q.sqlite", plant)
    with pytest.raises(TypeError, match="plants_of"):
        PlantRecorder(tmp_path / "r.sqlite", "plant")
    with pytest.raises(ValueError, match="twice"):
        PlantRecorder(tmp_path / "s.sqlite", [plant, plant])
    with pytest.raises(TypeError, match="on_query"):
        plant.attach_recorder(object())
    with pytest.raises(FileNotFoundError):
        Recording(tmp_path / "missing.sqlite")
    two = tmp_path / "two.sqlite"
    PlantRecorder(two, [TanhPlant(), TanhPlant()]).close()
    with Recording(two) as recording, pytest.raises(ValueError, match="pass plant="):
        recording.to_dataset()
    with sqlite3.connect(two) as db:  # the layout is plain SQLite, readable by any client
        assert json.loads(db.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()[0]) == 2


def test_recording_does_not_change_what_the_plant_measures_or_meters(tmp_path):
    plain, recorded = (ChargingPlant(error_std=0.2, noise_std=0.1, seed=8) for _ in range(2))
    hop_plain, hop_recorded = HopfieldPlant(sizes=(3, 4, 2), seed=2), HopfieldPlant(sizes=(3, 4, 2), seed=2)
    x, hx = torch.randn(6, 3), torch.rand(2, 3)
    c, hc = _controls(plain), hop_plain.initial_controls(torch.Generator().manual_seed(1))
    with record({"tanh": recorded, "hop": hop_recorded}, tmp_path / "q.sqlite") as rec:
        for _ in range(2):
            assert torch.equal(plain(x, c), recorded(x, c))
            assert torch.equal(hop_plain.relax(hx, hc).output, hop_recorded.relax(hx, hc).output)
        assert rec.queries == 4
    assert plain.meter.snapshot() == recorded.meter.snapshot()
    assert hop_plain.meter.snapshot() == hop_recorded.meter.snapshot()


def _ep_setup(seed=0):
    from pnnlab.data.tabular import load_iris
    from pnnlab.models.resistive_classifier import build_resistive_classifier
    data = load_iris(seed=seed)
    return data, lambda: build_resistive_classifier(in_features=data.in_features, n_classes=data.n_classes,
                                                    hidden=(4,), seed=seed)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # EP's nudges may leave the 0.2 V read range on purpose
def test_replaying_a_recorded_ep_run_serves_relax_and_energy_gradients_without_the_device(tmp_path):
    from pnnlab import EquilibriumPropagation
    from pnnlab.plants.capabilities import EnergyBased
    from pnnlab.recording import EnergyReplayPlant
    data, build = _ep_setup()
    model = build()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "ep.sqlite"
    with record(pnnlab.plants_of(model), path):
        history = pnnlab.train(model, EquilibriumPropagation(beta=0.1), data, epochs=1, batch_size=32, lr=0.01)
    with Recording(path) as recording:
        relaxes = list(recording.queries("0", kind="relax"))
        assert relaxes and all("energy_gradient.conductance_0" in q.extra for q in relaxes if q.info["nudge"] != "free")
        replay = ReplayPlant(recording, plant="0")
        assert isinstance(replay, EnergyReplayPlant) and isinstance(replay, EnergyBased)
        assert replay.force_unit == model[0].plant.force_unit
        again = build()
        again.load_state_dict(start)
        again[0].plant = replay  # the same model, with the device replaced by its recording
        replayed = pnnlab.train(again, EquilibriumPropagation(beta=0.1), data, epochs=1, batch_size=32, lr=0.01)
        assert all(torch.equal(model.state_dict()[k], again.state_dict()[k]) for k in start)
        assert [r["loss"] for r in replayed.steps()] == [r["loss"] for r in history.steps()]
        assert replayed.final["test_accuracy"] == history.final["test_accuracy"]
        assert replay.meter.queries == model[0].plant.meter.queries
        # a different nudge is refused, and names what differs
        third = build()
        third.load_state_dict(start)
        third[0].plant = ReplayPlant(recording, plant="0")
        with pytest.raises(ReplayMismatchError, match="force nudge differs"):
            pnnlab.train(third, EquilibriumPropagation(beta=0.2), data, epochs=1, batch_size=32, lr=0.01)
        # a state the replay did not return has no recorded read-out
        with pytest.raises(ReplayMismatchError, match="did not return"):
            replay.energy_gradients(relaxes[0])
