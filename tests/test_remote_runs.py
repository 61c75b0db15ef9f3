"""Experiment runs against a served device (the ``[remote]`` section, experiments/remote_spec.py), and the
idempotency keys that let a resumed run re-send a query the device already executed."""

import pytest
import torch

pytest.importorskip("grpc")

from pnnlab.experiments import run  # noqa: E402
from pnnlab.experiments.spec import SpecError  # noqa: E402
from pnnlab.plants.optics.shg import SHGPlant  # noqa: E402
from pnnlab.recording import Recording  # noqa: E402
from pnnlab.remote import RemotePlant, serve  # noqa: E402

TOKEN = "a-test-token-of-enough-length"


def _plant(n_outputs=7):
    return SHGPlant(n_inputs=12, n_outputs=n_outputs, mismatch="typical", noise="typical", seed=0)


@pytest.fixture
def server():
    handles = []

    def start(plant):
        handle = serve(plant, token=TOKEN, port=0)
        handles.append(handle)
        return handle
    yield start
    for handle in handles:
        handle.stop()


def _spec(tmp_path, address=None, **remote):
    spec = {"name": "remote", "seed": 0, "data": {"name": "vowels"},
            "model": {"name": "shg_classifier", "mismatch": "typical", "noise": "typical"},
            "methods": [{"name": "pat"}], "train": {"epochs": 1, "batch_size": 32, "lr": 0.005}}
    if address is not None:
        (tmp_path / "token.txt").write_text(TOKEN + "\n")
        spec["remote"] = {"address": address, "token_file": str(tmp_path / "token.txt"), **remote}
    return spec


def test_a_run_against_the_served_device_equals_the_local_run_and_records_every_device_query(tmp_path, server):
    plant = _plant()
    handle = server(plant)
    remote = run(_spec(tmp_path, handle.address), out_dir=tmp_path / "remote", warm_up=False)
    local = run(_spec(tmp_path), out_dir=tmp_path / "local", warm_up=False)
    # the served plant is the model's plant (same class, arguments, seed), so the runs agree bit for bit
    a = torch.load(remote.folder / "params-pat.pt")
    b = torch.load(local.folder / "params-pat.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert remote.summary["results"][0]["plant_queries"] == local.summary["results"][0]["plant_queries"]
    with Recording(remote.folder / "queries.sqlite") as recording:
        assert len(recording) == plant.meter.queries > 0  # the device ran exactly the recorded queries
        assert "RemotePlant" in recording.plants["pat/0"]["description"]
    assert (remote.folder / "remote.json").is_file()
    # the lease went back when the run ended: another trainer can take the device
    RemotePlant(handle.address, token=TOKEN).close()


def test_the_ideal_bound_is_refused_against_a_served_device(tmp_path, server):
    handle = server(_plant())
    spec = _spec(tmp_path, handle.address)
    spec["methods"] = [{"name": "ideal"}]
    with pytest.raises(Exception, match="(?i)simulated|true"):
        run(spec, out_dir=tmp_path / "runs", warm_up=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_device_with_another_interface_is_refused_before_any_folder_exists(tmp_path, server):
    handle = server(_plant(n_outputs=5))
    with pytest.raises(SpecError, match="does not have the interface"):
        run(_spec(tmp_path, handle.address), out_dir=tmp_path / "runs", warm_up=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("remote, message", [({"token_file": "missing.txt"}, "token_file"),
                                             ({"colour": "red"}, "unknown \\[remote\\] key"),
                                             ({"timeout": -1}, "timeout must be a positive")])
def test_bad_remote_sections_are_refused(tmp_path, remote, message):
    spec = _spec(tmp_path, "127.0.0.1:1")
    spec["remote"] = {**spec["remote"], **remote}
    with pytest.raises(SpecError, match=message):
        run(spec, out_dir=tmp_path / "runs", warm_up=False)


def test_a_restored_key_sequence_gets_an_executed_query_from_the_log_not_from_the_device(server):
    plant = _plant()
    handle = server(plant)
    x = plant.example_inputs(4)
    controls = plant.initial_controls(torch.Generator().manual_seed(1))
    first = RemotePlant(handle.address, token=TOKEN, client_id="run-a")
    first(x, controls)
    saved = first.state_dict()  # what a checkpoint stores after the first query
    answered = first(x, controls)  # executed on the device; imagine the trainer killed before recording it
    first._connection.close()  # the killed process: its lease is still held by "run-a"
    assert plant.meter.queries == 2
    resumed = RemotePlant(handle.address, token=TOKEN, client_id="run-a")  # same holder: takes the lease at once
    resumed.load_state_dict(saved)
    again = resumed(x, controls)  # the same key as the lost answer
    assert plant.meter.queries == 2, "the device executed the re-sent query a second time"
    assert torch.equal(again, answered)
    fresh = resumed(x, controls)  # the next key runs on the device
    assert plant.meter.queries == 3 and not torch.equal(fresh, answered)
    resumed.close()


def test_remote_identity_is_the_device_not_the_address(server):
    a, b = server(_plant()), server(_plant())
    with RemotePlant(a.address, token=TOKEN) as one, RemotePlant(b.address, token=TOKEN) as two:
        assert one.identity() == two.identity()
        assert one.identity()["remote"]["class"].endswith("SHGPlant")
    c = server(_plant(n_outputs=5))
    with RemotePlant(c.address, token=TOKEN) as three:
        assert three.identity() != one.identity()
    with pytest.raises(TypeError, match="state must be"):
        RemotePlant(a.address, token=TOKEN).load_state_dict({"sequence": "x"})
