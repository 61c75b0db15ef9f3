"""A plant served over the network (pnnlab.remote, issue 11 section 2): the remote plant is the local
plant bit for bit, methods train unchanged against it, and the server's security, validation, lease,
idempotency, reading policies and lost-connection handling each do what docs/remote.md says.

Servers run in-process on 127.0.0.1 with ephemeral ports (one subprocess for the command line);
every loop is bounded in count and time."""

import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
import torch
from torch import nn

from pnnlab import (ChannelAffine, CoupledLearning, EquilibriumPropagation, IdealBackprop, MethodRequirementError, PhysicalLayer,
                    PhysicsAwareTraining, SPSA, Simulated, EnergyBased, train)
from pnnlab.data.base import TaskData
from pnnlab.plants.capabilities import OutputClamp
from pnnlab.plants.electronics import ResistiveNetworkPlant
from pnnlab.remote import (AuthenticationError, BadReading, BatchDropped, ControlLimit, ControlRefused, DeviceBusy,
                           DeviceUnavailable, DropBadBatches, DropBatch, ReadingCheck, RemotePlant, Retry,
                           RetryPolicy, Stop, schema, serve)
from pnnlab.remote.client import _Connection
from pnnlab.testing import check_plant

from toy_plants import TanhPlant, TanhTwin

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-0123456789"
FAST = RetryPolicy(attempts=3, initial_backoff_s=0.02, max_backoff_s=0.1, total_s=2.0)


class ChargingPlant(TanhPlant):
    """Charges energy inside each query (as programming pulses do), and counts its executions."""

    executions = 0

    def _measure(self, x, controls, generator):
        self.executions += 1
        self.meter.charge(seconds=0.25, joules=3e-6)
        return super()._measure(x, controls, generator)


class ScriptedPlant(TanhPlant):
    """Returns NaN, or a saturated or impossible value, on the query numbers listed in ``bad``."""

    def __init__(self, *, bad=(), value=float("nan"), delay_first_s=0.0, **kw):
        super().__init__(**kw)
        self.bad, self.value, self.delay_first_s, self.executions = set(bad), value, delay_first_s, 0

    def _measure(self, x, controls, generator):
        self.executions += 1
        if self.executions == 1 and self.delay_first_s:
            time.sleep(self.delay_first_s)
        y = super()._measure(x, controls, generator)
        return torch.full_like(y, self.value) if self.executions in self.bad else y


@pytest.fixture
def served():
    handles = []

    def start(plant, **kw):
        handle = serve(plant, token=TOKEN, port=kw.pop("port", 0), **kw)
        handles.append(handle)
        return handle
    yield start
    for handle in handles:
        handle.stop()


def _client(handle, **kw):
    kw.setdefault("retries", FAST)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("wait_for_device_s", 2.0)
    return RemotePlant(handle.address, token=kw.pop("token", TOKEN), **kw)


def _task(seed=0, n=48, features=3, classes=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return TaskData(name="toy", x_train=x[:32], y_train=y[:32], x_val=x[32:40], y_val=y[32:40], x_test=x[40:],
                    y_test=y[40:], n_classes=classes)


# ---- the wire format ----------------------------------------------------------------------------
def test_schema_round_trip_is_bit_identical_and_malformed_messages_are_refused():
    tensors = {"a": torch.tensor([1.5, float("nan"), -0.0], dtype=torch.float64),
               "b": torch.randn(2, 3).to(torch.bfloat16), "c": torch.tensor([True, False]),
               "d": torch.arange(6, dtype=torch.int64).reshape(2, 3), "e": torch.empty(0, 4)}
    header, out = schema.decode(schema.encode({"hello": [1, 2]}, tensors))
    assert header == {"hello": [1, 2]}
    for k, t in tensors.items():
        assert out[k].dtype == t.dtype and out[k].shape == t.shape
        assert torch.equal(out[k].view(torch.uint8) if t.dtype != torch.bool else out[k],
                           t.view(torch.uint8) if t.dtype != torch.bool else t)  # NaN bits and -0.0 kept
    good = schema.encode({}, {"x": torch.ones(3)})
    n = int.from_bytes(good[:4], "little")
    bad_version = json.loads(good[4:4 + n]) | {"schema": 99}
    text = json.dumps(bad_version).encode()
    for message, why in ((good[:3], "too short"), (good[:-1], "does not match"),
                         (len(text).to_bytes(4, "little") + text + good[4 + n:], "schema 99"),
                         (b"\xff\xff\xff\x7f" + good[4:], "does not fit")):
        with pytest.raises(schema.SchemaError, match=why):
            schema.decode(message)


def test_importing_pnnlab_does_not_import_grpc():
    code = "import sys, pnnlab; assert 'grpc' not in sys.modules; import pnnlab.remote; assert 'grpc' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


# ---- the remote plant is the local plant ----------------------------------------------------------
def test_remote_plant_answers_bit_identically_to_the_local_plant_and_mirrors_its_meter(served):
    local = ChargingPlant(error_std=0.3, noise_std=0.1, seed=4)
    handle = served(ChargingPlant(error_std=0.3, noise_std=0.1, seed=4))
    remote = _client(handle)
    assert isinstance(remote, RemotePlant) and not isinstance(remote, (Simulated, EnergyBased))
    assert remote.control_specs() == local.control_specs() and remote.cost == local.cost
    assert (remote.in_features, remote.out_features) == (3, 2)
    assert "ChargingPlant" in remote.describe() and remote.server_info["capabilities"] == ["Simulated"]
    assert remote.server_info["server"]["schema"] == schema.SCHEMA_VERSION
    assert torch.equal(remote.example_inputs(4), local.example_inputs(4))
    c_local, c_remote = local.initial_controls(), remote.initial_controls()  # drawn from the plant's generator
    assert all(torch.equal(c_local[k], c_remote[k]) for k in c_local)
    g = torch.Generator().manual_seed(11)
    for i, dtype in enumerate((torch.float32, torch.float64, torch.float32)):
        x = torch.randn(5, 3, generator=g, dtype=dtype)
        c = {k: v.to(dtype) for k, v in c_local.items()}
        assert torch.equal(remote(x, c), local(x, c))  # the served plant's own noise stream
        ga, gb = torch.Generator().manual_seed(i), torch.Generator().manual_seed(i)
        y_remote, y_local = remote(x, c, generator=ga), local(x, c, generator=gb)  # the caller's noise stream
        assert y_remote.dtype == dtype and torch.equal(y_remote, y_local)
        assert torch.equal(ga.get_state(), gb.get_state())
    snap_local, snap_remote = local.meter.snapshot(), remote.meter.snapshot()
    assert snap_remote["queries"] == snap_local["queries"] == 6 and snap_remote["samples"] == 30
    # the energy charged inside each query comes across, not just the cost model
    assert snap_remote["device_seconds"] == pytest.approx(snap_local["device_seconds"], rel=1e-12)
    assert snap_remote["joules"] == pytest.approx(snap_local["joules"], rel=1e-12)
    assert remote.remote_meter() == handle.service.plant.meter.snapshot()
    check_plant(remote)  # the hardware-boundary contract, through the network


def test_pat_against_a_remote_plant_trains_exactly_as_locally_and_capabilities_are_honest(served):
    def model(plant):
        return nn.Sequential(PhysicalLayer(plant, twin=TanhTwin(3, 2)), ChannelAffine(2, scale=2.0))
    local = model(TanhPlant(error_std=0.3, noise_std=0.05, seed=2))
    remote_plant = _client(served(TanhPlant(error_std=0.3, noise_std=0.05, seed=2)))
    remote = model(remote_plant)
    data = _task()
    h_local = train(local, PhysicsAwareTraining(), data, epochs=2, batch_size=8, lr=0.05, seed=3)
    h_remote = train(remote, PhysicsAwareTraining(), data, epochs=2, batch_size=8, lr=0.05, seed=3)
    for (name, a), (_, b) in zip(local.state_dict().items(), remote.state_dict().items()):
        assert torch.equal(a, b), name
    strip = lambda h: [{k: v for k, v in r.items() if k != "wall_seconds"} for r in h.records]  # noqa: E731
    assert strip(h_local) == strip(h_remote)
    # a remote plant is not Simulated: the ideal bound (true physics) is refused, as for a real instrument
    with pytest.raises(MethodRequirementError, match="Simulated"):
        IdealBackprop().check(remote)


def test_a_zeroth_order_method_against_a_remote_plant_trains_exactly_as_locally(served):
    def model(plant):
        return nn.Sequential(PhysicalLayer(plant), ChannelAffine(2, scale=2.0))
    local = model(TanhPlant(error_std=0.2, noise_std=0.02, seed=5))
    remote = model(_client(served(TanhPlant(error_std=0.2, noise_std=0.02, seed=5))))
    data = _task(seed=1)
    kw = dict(epochs=1, batch_size=16, lr=0.05, seed=0)
    train(local, SPSA(epsilon=0.05, n_perturbations=2, seed=7), data, **kw)
    train(remote, SPSA(epsilon=0.05, n_perturbations=2, seed=7), data, **kw)
    for (name, a), (_, b) in zip(local.state_dict().items(), remote.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.filterwarnings("ignore:a nudge drove resistive-network nodes:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:a clamp drove resistive-network nodes:RuntimeWarning")
def test_equilibrium_propagation_on_a_remote_resistive_network_matches_local(served):
    def plant():
        return ResistiveNetworkPlant(in_features=3, out_features=2, hidden=(4,), dtype=torch.float64, seed=1)

    def model(p):
        return nn.Sequential(PhysicalLayer(p), ChannelAffine(2, scale=25.0))
    handle = served(plant())
    remote_plant = _client(handle)
    assert isinstance(remote_plant, EnergyBased) and remote_plant.force_unit == plant().force_unit
    local, remote = model(plant()), model(remote_plant)
    data = _task(seed=2)
    # one EP step: the gradient estimates (free and warm-started nudged relaxations, energy gradients
    # measured on the server) are bit-identical
    # (and coupled learning's clamped relaxations likewise)
    for method in (EquilibriumPropagation(beta=0.1), CoupledLearning(eta=0.1)):
        for net in (local, remote):
            method.step(net, data.x_train[:8], data.y_train[:8], nn.functional.cross_entropy)
        for (name, a), (_, b) in zip(local.named_parameters(), remote.named_parameters()):
            assert a.grad is not None and torch.equal(a.grad, b.grad), (method, name)
            a.grad = b.grad = None
    kw = dict(epochs=1, batch_size=16, lr=1e-6, seed=0)
    h_local = train(local, EquilibriumPropagation(beta=0.1), data, **kw)
    h_remote = train(remote, EquilibriumPropagation(beta=0.1), data, **kw)
    for (name, a), (_, b) in zip(local.state_dict().items(), remote.state_dict().items()):
        assert torch.equal(a, b), name
    assert [r["loss"] for r in h_local.records if r["kind"] == "step"] == \
           [r["loss"] for r in h_remote.records if r["kind"] == "step"]
    # relax, warm starts (held on the server by state id) and energy gradients came across
    assert remote_plant.meter.queries == local[0].plant.meter.queries > 0
    assert remote_plant.meter.joules == pytest.approx(local[0].plant.meter.joules, rel=1e-9)
    state = remote_plant.relax(data.x_val, {k: v.detach() for k, v in remote[0].control_values().items()})
    assert state.residual is not None and len(state.nodes) == 2 and state.power_W.shape == (len(data.y_val),)
    # the plant's warnings on the server reach the trainer with their category and text
    controls = {k: v.detach() for k, v in remote[0].control_values().items()}
    with pytest.warns(RuntimeWarning, match="a clamp drove resistive-network nodes outside the read range"):
        remote_plant.relax(data.x_val, controls, nudge=OutputClamp(torch.full((len(data.y_val), 2), 1.0,
                                                                              dtype=torch.float64)), initial=state)


# ---- security and server-side validation ----------------------------------------------------------
def test_calls_without_the_token_or_with_a_wrong_one_are_refused(served):
    plant = ChargingPlant()
    handle = served(plant)
    channel = grpc.insecure_channel(handle.address)
    try:
        for method in ("Describe", "Query", "Acquire"):
            call = channel.unary_unary(f"/{schema.SERVICE}/{method}")
            with pytest.raises(grpc.RpcError) as info:
                call(schema.encode({"client": "x", "key": "x:0"}), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED and "no token" in info.value.details()
            with pytest.raises(grpc.RpcError) as info:
                call(schema.encode({"client": "x"}), timeout=5, metadata=(("x-pnnlab-token", TOKEN + "x"),))
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED and "wrong token" in info.value.details()
    finally:
        channel.close()
    with pytest.raises(AuthenticationError, match="wrong token"):
        RemotePlant(handle.address, token="not-the-token", retries=FAST)
    assert plant.executions == 0 and plant.meter.queries == 0
    with pytest.raises(ValueError, match="loopback"):
        serve(ChargingPlant(), token=TOKEN, host="0.0.0.0")
    with pytest.raises(ValueError, match="at least 8"):
        serve(ChargingPlant(), token="short")
    with pytest.warns(UserWarning, match="not encrypted"):
        exposed = serve(ChargingPlant(), token=TOKEN, host="0.0.0.0", allow_remote=True)
    exposed.stop()


def _raw(handle, client="raw"):
    return _Connection(handle.address, token=TOKEN, timeout=5.0, retries=FAST, wait_for_device_s=1.0,
                       client_id=client)


def test_the_server_validates_controls_itself_with_safety_and_ramp_limits(served):
    plant = ChargingPlant()
    handle = served(plant, limits={"weight": ControlLimit(low=-1.0, high=1.0, max_step=0.2)})
    raw = _raw(handle)
    x = torch.randn(2, 3)
    ok = {"weight": torch.zeros(2, 3), "bias": torch.zeros(2)}
    tensors = lambda c: {"x": x} | {f"control/{k}": v for k, v in c.items()}  # noqa: E731
    # outside the plant's own range (-3, 3): a client that skips local validation is still refused
    with pytest.raises(ControlRefused, match=r"controls\['bias'\] must lie in \[-1.0, 1.0\]"):
        raw.call("Query", {}, tensors(ok | {"bias": torch.full((2,), 5.0)}), device=True)
    # inside the plant's range, outside the device's safety limits
    with pytest.raises(ControlRefused, match=r"controls\['weight'\].*safety limits \[-1, 1\]"):
        raw.call("Query", {}, tensors(ok | {"weight": torch.full((2, 3), 1.5)}), device=True)
    assert plant.executions == 0
    raw.call("Query", {}, tensors(ok), device=True)  # sets the ramp reference
    with pytest.raises(ControlRefused, match=r"controls\['weight'\] changed by up to 0.5.*max_step=0.2"):
        raw.call("Query", {}, tensors(ok | {"weight": torch.full((2, 3), 0.5)}), device=True)
    raw.call("Query", {}, tensors(ok | {"weight": torch.full((2, 3), 0.15)}), device=True)
    raw.call("Query", {}, tensors(ok | {"weight": torch.full((2, 3), 0.3)}), device=True)  # ramped in steps
    assert plant.executions == 3 and plant.meter.queries == 3
    # a remote plant's own client gets the same refusal as a ControlRefused (a ValueError)
    raw.call("Release")
    remote = _client(handle, client_id="trainer")
    with pytest.raises(ValueError, match="ramp limit"):
        remote(x, ok | {"weight": torch.full((2, 3), -0.6)})
    raw.close()


def test_one_trainer_at_a_time_with_a_lease_that_expires(served):
    handle = served(ChargingPlant(), lease_s=1.0)
    first = _client(handle, client_id="first")
    with pytest.raises(DeviceBusy, match="leased to client 'first'"):
        _client(handle, client_id="second")
    onlooker = _client(handle, client_id="second", acquire=False)  # may describe, may not query
    assert onlooker.calibration_report()["meter"]["queries"] == 0
    x, c = torch.randn(2, 3), ChargingPlant().initial_controls()
    with pytest.raises(DeviceBusy):
        onlooker(x, c)
    first(x, c)  # the holder's calls renew its lease
    first.release()
    onlooker(x, c)  # released: the next trainer takes it
    with pytest.raises(DeviceBusy, match="leased to client 'second'"):
        first(x, c)
    time.sleep(1.1)  # the lease expires without a release
    first(x, c)
    assert handle.service.plant.executions == 3


# ---- faults ---------------------------------------------------------------------------------------
class DropFirstResponse(grpc.ServerInterceptor):
    """Fault injection: let the first Query execute on the plant, then lose its response."""

    def __init__(self):
        self.dropped = 0

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if not details.method.endswith("/Query"):
            return handler

        def behaviour(request, context):
            reply = handler.unary_unary(request, context)
            if self.dropped == 0:
                self.dropped += 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "injected fault: the response was lost")
            return reply
        return grpc.unary_unary_rpc_method_handler(behaviour)


def test_a_retried_query_whose_first_attempt_executed_is_answered_from_the_log(served):
    fault = DropFirstResponse()
    plant = ChargingPlant(noise_std=0.1, seed=3)
    handle = served(plant, interceptors=[fault])
    remote, local = _client(handle), ChargingPlant(noise_std=0.1, seed=3)
    x, c = torch.randn(4, 3), local.initial_controls()
    remote.initial_controls()  # keep the two noise streams aligned
    assert torch.equal(remote(x, c), local(x, c))
    assert fault.dropped == 1 and plant.executions == 1  # executed once, although sent twice
    assert handle.service.replayed == 1 and any(e["kind"] == "transient" for e in remote.events)
    assert remote.meter.snapshot() == pytest.approx(local.meter.snapshot())  # counted once
    # a key reused for a different request is refused, never answered with another query's result
    raw = _raw(handle, client=remote.client_id)
    raw.sequence = remote._connection.sequence - 1
    with pytest.raises(ControlRefused, match="already used for a different request"):
        raw.call("Query", {}, {"x": x + 1} | {f"control/{k}": v for k, v in c.items()}, device=True)
    raw.close()


def test_a_query_past_its_deadline_is_retried_without_executing_twice(served):
    plant = ScriptedPlant(delay_first_s=0.4)
    handle = served(plant)
    remote = _client(handle, timeout=0.25)
    x, c = torch.randn(2, 3), TanhPlant().initial_controls()
    y = remote(x, c)
    assert torch.equal(y, TanhPlant()(x, c))
    assert plant.executions == 1 and handle.service.replayed >= 1
    assert any("DEADLINE_EXCEEDED" in e["detail"] for e in remote.events)


def test_reading_policies_retry_stop_and_drop(served):
    x, c = torch.randn(3, 3), TanhPlant().initial_controls()
    # NaN on the 1st and 2nd query: Retry(attempts=2) measures a third time and succeeds
    plant = ScriptedPlant(bad={1, 2})
    remote = _client(served(plant), on_bad_reading=Retry(attempts=2))
    assert torch.equal(remote(x, c), TanhPlant()(x, c))
    assert plant.executions == 3 and [f["action"] for f in remote.flagged] == ["retry", "retry"]
    assert remote.meter.queries == plant.meter.queries == 3  # every attempt is a metered query
    remote.close()
    # Retry exhausted, then Stop
    plant = ScriptedPlant(bad={1, 2})
    remote = _client(served(plant), on_bad_reading=Retry(attempts=1, then=Stop()))
    with pytest.raises(BadReading, match="NaN"):
        remote(x, c)
    assert plant.executions == 2
    remote.close()
    # saturated (client-side check): Stop names the problem
    remote = _client(served(ScriptedPlant(bad={1}, value=1.0)), reading_check=ReadingCheck(saturation_level=0.999))
    with pytest.raises(BadReading, match="saturated"):
        remote(x, c)
    assert not isinstance(BadReading("x"), BatchDropped)
    remote.close()
    # out of range, then fine: retried
    plant = ScriptedPlant(bad={1}, value=-5.0)
    remote = _client(served(plant), reading_check=ReadingCheck(valid_range=(-1.0, 1.0)), on_bad_reading=Retry())
    remote(x, c)
    assert "outside valid_range" in remote.flagged[0]["problem"] and plant.executions == 2
    remote.close()


def test_drop_batch_skips_the_training_step_and_training_goes_on(served):
    def model(plant):
        return nn.Sequential(PhysicalLayer(plant, twin=TanhTwin(3, 2)), ChannelAffine(2, scale=2.0))
    plant = ScriptedPlant(bad={3}, error_std=0.2, seed=1)  # the 3rd plant query (step 3) reads NaN
    remote = _client(served(plant), on_bad_reading=DropBatch())
    net = model(remote)
    seen = []
    method = DropBadBatches(PhysicsAwareTraining())
    train(net, method, _task(), epochs=1, batch_size=8, lr=0.05, seed=0,
          callback=lambda r: seen.append({k: v.clone() for k, v in net.state_dict().items()})
          if r["kind"] == "step" else None)
    assert method.dropped == [3] and len(seen) == 4  # every step ran; training went on after the drop
    changed = [not all(torch.equal(a[k], b[k]) for k in a) for a, b in zip(seen, seen[1:])]
    assert changed == [True, False, True]  # step 3 made no update, steps 2 and 4 did
    # without the wrapper the same policy stops with the reason
    plant.bad.add(plant.executions + 1)
    with pytest.raises(BatchDropped, match="wrap the method in DropBadBatches"):
        remote(torch.randn(2, 3), TanhPlant().initial_controls())


class PerturbThenDrop(PhysicsAwareTraining):
    """A method that leaves the model perturbed and gradients behind when a reading is dropped."""

    drop_on = ()
    calls = 0

    def step(self, model, x, y, loss_fn):
        self.calls += 1
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        if self.calls in self.drop_on:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(1.0)
            raise BatchDropped("injected")
        return 0.5 + self.calls


def test_drop_bad_batches_restores_the_model_clears_gradients_and_bounds_the_drops():
    net = nn.Sequential(nn.Linear(2, 2))
    inner = PerturbThenDrop()
    inner.drop_on = (2, 3, 4)
    method = DropBadBatches(inner, max_dropped=2)
    assert method.name == "pat" and method.evaluation is inner.evaluation
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert method.step(net, None, None, None) == 1.5
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    assert method.step(net, None, None, None) == 1.5  # the previous step's loss is reported
    assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items())  # perturbation undone
    assert all(p.grad is None for p in net.parameters())  # the optimizer skips every parameter
    assert method.step(net, None, None, None) == 1.5 and method.dropped == [2, 3]
    with pytest.raises(BadReading, match="more than max_dropped=2"):
        method.step(net, None, None, None)
    first = PerturbThenDrop()
    first.drop_on = (1,)
    with pytest.raises(BadReading, match="first training step"):
        DropBadBatches(first).step(net, None, None, None)
    assert before.keys() == saved.keys()


def test_a_lost_device_pauses_training_and_resumes_when_it_returns(served):
    plant = ChargingPlant(seed=2)
    handle = served(plant)
    port = handle.port
    remote = _client(handle, wait_for_device_s=8.0)
    x, c = torch.randn(2, 3), TanhPlant().initial_controls()
    remote(x, c)
    handle.stop()
    restarted = []
    timer = threading.Timer(1.0, lambda: restarted.append(served(plant, port=port)))
    timer.start()
    try:
        t0 = time.monotonic()
        y = remote(x, c)  # blocks while the server is down, resumes when it is back
        waited = time.monotonic() - t0
    finally:
        timer.join(5)
    assert restarted and 0.9 < waited < 8.0
    assert torch.equal(y, TanhPlant(seed=2)(x, c)) and plant.executions == 2
    kinds = [e["kind"] for e in remote.events]
    assert "paused" in kinds and "restarted" in kinds and kinds[-1] == "resumed"
    # restarted between two calls (no failed call to notice it): the instance check catches it
    restarted[0].stop()
    restarted.append(served(plant, port=port))
    assert torch.equal(remote(x, c), TanhPlant(seed=2)(x, c)) and plant.executions == 3
    assert remote.events[-1]["kind"] == "restarted"
    # back with a different plant on the same address: refused, not trained on
    restarted[1].stop()
    other = served(TanhPlant(features_in=4), port=port)
    with pytest.raises(DeviceUnavailable, match="different plant"):
        remote(x, c)
    # gone for good: a clear error after the wait, not a hang
    other.stop()
    t0 = time.monotonic()
    remote._connection.wait_for_device_s = 0.5
    with pytest.raises(DeviceUnavailable, match="did not answer Query"):
        remote(x, c)
    assert time.monotonic() - t0 < 4.0


# ---- the command line -----------------------------------------------------------------------------
def test_pnnlab_serve_serves_a_registered_plant_on_loopback(tmp_path):
    token_file = tmp_path / "token"
    proc = subprocess.Popen([sys.executable, "-m", "pnnlab.cli", "serve", "--plant", "power_law", "--plant-args",
                             '{"features": 2}', "--token-file", str(token_file), "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        address = None
        deadline = time.monotonic() + 60
        while address is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("address: "):
                address = line.split(": ", 1)[1].strip()
        assert address is not None and address.startswith("127.0.0.1:"), proc.stderr.read() if proc.poll() else ""
        token = token_file.read_text().strip()
        assert len(token) >= 32 and (token_file.stat().st_mode & 0o777) == 0o600
        from pnnlab.plants.toy.power_law import PowerLawPlant
        remote = RemotePlant(address, token=token, retries=FAST)
        local = PowerLawPlant(features=2)
        x = local.example_inputs(3)
        assert torch.equal(remote(x, remote.initial_controls()), local(x, local.initial_controls()))
        remote.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    refused = subprocess.run([sys.executable, "-m", "pnnlab.cli", "serve", "--plant", "power_law", "--token-file",
                              str(token_file), "--host", "0.0.0.0"], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2 and "allow-remote" in refused.stderr


def test_serve_helpers_load_a_user_plant_class_and_parse_limits(tmp_path):
    from pnnlab.remote.launch import load_plant, parse_limits, read_token_file
    plant = load_plant("toy_plants:TanhPlant", '{"features_in": 4, "seed": 1}')
    assert isinstance(plant, TanhPlant) and plant.in_features == 4
    with pytest.raises(ValueError, match="cannot import"):
        load_plant("toy_plants:NoSuchPlant")
    with pytest.raises(ValueError, match="not a pnnlab Plant"):
        load_plant("toy_plants:TanhTwin")
    with pytest.raises(ValueError, match="JSON object"):
        load_plant("power_law", "{seed: 0}")
    limits = parse_limits('{"weight": {"high": 1.0, "max_step": 0.1}}')
    assert limits["weight"] == ControlLimit(low=-math.inf, high=1.0, max_step=0.1)
    with pytest.raises(ValueError, match="keys among low, high, max_step"):
        parse_limits('{"weight": {"ramp": 0.1}}')
    (tmp_path / "t").write_text("short\n")
    with pytest.raises(ValueError, match="at least 8"):
        read_token_file(tmp_path / "t")
    token, created = read_token_file(tmp_path / "new")
    assert created and read_token_file(tmp_path / "new") == (token, False)


def test_a_bad_relaxation_reading_follows_the_policy_too(served):
    from pnnlab.plants.hopfield import HopfieldPlant

    class GlitchyHopfield(HopfieldPlant):
        relaxations = 0

        def _relax(self, x, controls, nudge, initial, generator):
            self.relaxations += 1
            state = super()._relax(x, controls, nudge, initial, generator)
            if self.relaxations == 1:
                state.output = state.output * float("nan")
            return state
    plant = GlitchyHopfield(sizes=(3, 4, 2))
    remote = _client(served(plant), on_bad_reading=Retry(attempts=1))
    x = torch.randn(5, 3)
    controls = remote.initial_controls()
    state = remote.relax(x, controls)
    local = HopfieldPlant(sizes=(3, 4, 2))
    local.initial_controls()
    expected = local.relax(x, controls)
    assert plant.relaxations == 2 and remote.flagged[0]["kind"] == "relax" and "NaN" in remote.flagged[0]["problem"]
    assert torch.equal(state.output, expected.output)
    grads, local_grads = remote.energy_gradients(state), local.energy_gradients(expected)
    assert grads.keys() == local_grads.keys() and all(torch.equal(grads[k], local_grads[k]) for k in grads)
    assert remote.meter.queries == plant.meter.queries == 2


# ---- a served reciprocal chip: the in-situ adjoint method over the network -----------------------------
def test_in_situ_adjoint_training_on_a_served_mzi_mesh_matches_local(served):
    from pnnlab import AdjointInSitu
    from pnnlab.plants.light_passes import Reciprocal
    from pnnlab.plants.photonics.mzi_mesh import MZIMesh
    from pnnlab.remote import RemoteReciprocalPlant

    def plant():  # typical fabrication errors and detector noise: the passes are noisy and non-ideal
        return MZIMesh(n_ports=4, seed=3)

    def model(p):
        return nn.Sequential(PhysicalLayer(p, initial_controls=plant().initial_controls()), ChannelAffine(4, scale=5.0))
    handle = served(plant())
    remote_plant = _client(handle)
    assert isinstance(remote_plant, RemoteReciprocalPlant) and isinstance(remote_plant, Reciprocal)
    assert (remote_plant.n_input_ports, remote_plant.n_output_ports) == (4, 4)
    assert "Reciprocal" in remote_plant.server_info["served_capabilities"]
    local, remote = model(plant()), model(remote_plant)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 4, generator=g), torch.randint(0, 4, (8,), generator=g)
    for passes in (3, 4):  # forward, adjoint, interference (and the extra pass of the 4-pass scheme)
        method = AdjointInSitu(passes=passes)
        losses = [method.step(net, x, y, nn.functional.cross_entropy) for net in (local, remote)]
        assert losses[0] == losses[1]
        for (name, a), (_, b) in zip(local.named_parameters(), remote.named_parameters()):
            assert a.grad is not None and torch.equal(a.grad, b.grad), (passes, name)
            a.grad = b.grad = None
    # every pass was one metered query on the server, mirrored by the client
    assert remote_plant.meter.queries == local[0].plant.meter.queries == remote_plant.remote_meter()["queries"] > 0
    # an optical pass from another plant is refused by name
    other = local[0].plant.forward_pass(x, {k: v.detach() for k, v in local[0].control_values().items()})
    with pytest.raises(TypeError, match="FieldPass was not returned by this remote plant"):
        remote_plant.adjoint_source(other, torch.zeros(8, 4))
    remote_plant.close()
