"""The client plant: :class:`RemotePlant` is a :class:`~pnnlab.plants.base.Plant` whose queries go to a
plant server (``pnnlab serve``, :func:`pnnlab.remote.serve`) over gRPC.

It is built from the server's ``Describe`` reply: the same feature counts, control specs, cost model
and, where the served plant is energy-based, the :class:`~pnnlab.plants.capabilities.EnergyBased`
capability (relax and energy gradients, with warm starts held on the server behind an opaque state
id). It declares exactly the capabilities it can serve: a served plant's ``Simulated`` twins are not
sent over the network (pass a twin to ``PhysicalLayer`` yourself), so ``method.check(model)`` refuses
the methods that need them, as it would for a real instrument.

Every query is validated locally (the ordinary plant boundary) and again on the server. The
client's meter mirrors the server's meter deltas (queries, samples, device seconds, joules charged
inside a query). Faults: see :mod:`pnnlab.remote.policy` and docs/remote.md.
"""

from __future__ import annotations

import builtins
import collections
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Mapping

import grpc
import torch

from .._validation import check_int, check_nonnegative, check_positive
from ..metering import CostModel
from ..plants.base import ControlSpec, Plant
from ..plants.capabilities import EnergyBased, Equilibrium, OutputClamp, OutputForce
from ..plants.light_passes import FieldPass, Reciprocal
from . import schema
from .errors import (AuthenticationError, BadReading, BatchDropped, ControlRefused, DeviceBusy, DeviceUnavailable,
                     RemoteError, StateExpired)
from .policy import DropBatch, ReadingCheck, ReadingPolicy, Retry, RetryPolicy, Stop
from .server import METER_TRAILER, TOKEN_HEADER, _GRPC_OPTIONS

log = logging.getLogger("pnnlab.remote")

_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_ERRORS = {grpc.StatusCode.UNAUTHENTICATED: AuthenticationError, grpc.StatusCode.INVALID_ARGUMENT: ControlRefused,
           grpc.StatusCode.FAILED_PRECONDITION: DeviceBusy, grpc.StatusCode.NOT_FOUND: StateExpired}


@dataclass(frozen=True)
class _RemoteState:
    """What a remote Equilibrium carries in ``private``: the server instance and its state id."""

    instance: str
    state_id: str


class _Connection:
    """Channel, token, deadlines, retries, the wait for a lost device, idempotency keys."""

    def __init__(self, address: str, *, token: str, timeout: float, retries: RetryPolicy,
                 wait_for_device_s: float, client_id: str | None) -> None:
        if not isinstance(address, str) or ":" not in address:
            raise ValueError(f"address must be 'host:port' as printed by `pnnlab serve`, got {address!r}.")
        if not isinstance(token, str) or not token:
            raise ValueError("token must be the server's shared secret (a non-empty str; read it from the "
                             "server's --token-file).")
        if not isinstance(retries, RetryPolicy):
            raise TypeError(f"retries must be a RetryPolicy(...), got {type(retries).__name__}.")
        self.address = address
        self.timeout = check_positive("timeout", timeout)
        self.retries = retries
        self.wait_for_device_s = check_nonnegative("wait_for_device_s", wait_for_device_s)
        if client_id is None:
            client_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        if not isinstance(client_id, str) or not client_id or ":" in client_id:
            raise ValueError(f"client_id must be a non-empty str without ':', got {client_id!r}.")
        self.client_id = client_id
        self.sequence = 0
        self._lock = threading.Lock()
        self.events: collections.deque = collections.deque(maxlen=1000)
        backoff_ms = max(1, int(1000 * retries.initial_backoff_s))
        options = _GRPC_OPTIONS + [("grpc.initial_reconnect_backoff_ms", backoff_ms),
                                   ("grpc.min_reconnect_backoff_ms", backoff_ms),
                                   ("grpc.max_reconnect_backoff_ms", max(backoff_ms, int(1000 * retries.max_backoff_s)))]
        self._channel = grpc.insecure_channel(address, options=options)
        self._metadata = ((TOKEN_HEADER, token),)
        self._stubs = {}
        self.instance: str | None = None
        self.identity: dict | None = None

    def _stub(self, method: str):
        if method not in self._stubs:
            self._stubs[method] = self._channel.unary_unary(f"/{schema.SERVICE}/{method}",
                                                            request_serializer=None, response_deserializer=None)
        return self._stubs[method]

    def event(self, kind: str, detail: str) -> None:
        self.events.append({"time": time.time(), "kind": kind, "detail": detail})
        log.info("%s: %s", kind, detail)

    def close(self) -> None:
        self._channel.close()

    # ---- one call -----------------------------------------------------------------------------
    def call(self, method: str, header: dict | None = None, tensors: dict | None = None, *,
             device: bool = False) -> tuple[dict, dict]:
        """Send one request (a device call gets the next idempotency key, reused by its retries)."""
        header = dict(header or {})
        header["client"] = self.client_id
        if device:
            with self._lock:
                header["key"] = f"{self.client_id}:{self.sequence}"
                self.sequence += 1
            header["instance"] = self.instance
        request = schema.encode(header, tensors)
        start, retry, ambiguous, pause_deadline = time.monotonic(), 0, False, None
        while True:
            try:
                reply = self._stub(method)(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as error:
                code = error.code()
                if code == grpc.StatusCode.ABORTED and device and retry + 1 < self.retries.attempts:
                    # the server restarted between two calls: check it is the same plant, then resend
                    self._reverify(self.describe_raw(), method, ambiguous=ambiguous)
                    header["instance"] = self.instance
                    request = schema.encode(header, tensors)
                    retry += 1
                    continue
                if code not in _TRANSIENT:
                    raise self._error(error, method) from None
                details = error.details() or ""
                # a refused connection never reached the server; anything else may have executed there
                ambiguous = ambiguous or code == grpc.StatusCode.DEADLINE_EXCEEDED or "failed to connect" not in details.lower()
                self.event("transient", f"{method}: {code.name} ({details}), attempt {retry + 1}")
                wait = self.retries.backoff(retry)
                if retry + 1 < self.retries.attempts and time.monotonic() - start + wait <= self.retries.total_s:
                    time.sleep(wait)
                    retry += 1
                    continue
                if pause_deadline is None:
                    pause_deadline = time.monotonic() + self.wait_for_device_s
                self._wait_for_device(method, code, details, pause_deadline, ambiguous=ambiguous and device)
                if device:  # addressed to the instance just verified (a restarted server would refuse the old one)
                    header["instance"] = self.instance
                    request = schema.encode(header, tensors)
                start, retry = time.monotonic(), 0
                continue
            try:
                return schema.decode(reply)
            except schema.SchemaError as error:
                raise RemoteError(f"the server at {self.address} sent a malformed reply to {method}: {error}") from None

    def _error(self, error: grpc.RpcError, method: str) -> Exception:
        code, details = error.code(), error.details() or ""
        where = f"{method} at {self.address}: {details}"
        if code == grpc.StatusCode.UNIMPLEMENTED:
            result = RemoteError(f"{where} (the server does not serve this call: an energy-based call to a plant that "
                                 f"is not, or a server speaking another schema than {schema.SERVICE})")
        else:
            result = _ERRORS.get(code, RemoteError)(where if code != grpc.StatusCode.INVALID_ARGUMENT else details)
        meter = None
        for key, value in (error.trailing_metadata() or ()):
            if key == METER_TRAILER:
                meter = json.loads(value)
        result.meter = meter
        return result

    def _wait_for_device(self, method, code, details, deadline, *, ambiguous: bool) -> None:
        """Pause: poll the server with backoff until it answers (then check it is the same plant and take
        the lease again) or ``deadline`` passes (then raise :class:`DeviceUnavailable`)."""
        self.event("paused", f"{method}: {code.name} after {self.retries.attempts} attempts; waiting up to "
                             f"{max(0.0, deadline - time.monotonic()):.1f} s for the device")
        poll = 0
        while True:
            if time.monotonic() >= deadline:
                self.event("unavailable", f"{method}: gave up waiting for the device")
                raise DeviceUnavailable(
                    f"the device at {self.address} did not answer {method} ({code.name}: {details}) within "
                    f"wait_for_device_s={self.wait_for_device_s:g} s (after {self.retries.attempts} attempts with "
                    f"timeout={self.timeout:g} s each); training stops here. Restart the server (`pnnlab serve`) "
                    f"and resume, or raise wait_for_device_s.")
            try:
                reply = self._stub("Describe")(schema.encode({"client": self.client_id}),
                                               timeout=min(self.timeout, max(0.01, deadline - time.monotonic())),
                                               metadata=self._metadata)
            except grpc.RpcError as error:
                if error.code() not in _TRANSIENT:
                    raise self._error(error, "Describe") from None
                time.sleep(min(self.retries.backoff(poll), max(0.0, deadline - time.monotonic())))
                poll += 1
                continue
            self._reverify(schema.decode(reply)[0]["describe"], method, ambiguous=ambiguous)
            self.event("resumed", f"{method}: the device answers again")
            return

    def _reverify(self, info: dict, method: str, *, ambiguous: bool) -> None:
        """The server answers again: refuse a different plant; note a restart; take the lease again."""
        self._check_identity(info)
        if info["server"]["instance"] != self.instance:
            self.event("restarted", f"the server restarted (instance {self.instance} -> "
                                    f"{info['server']['instance']}); its reply log and held states are gone")
            if ambiguous:
                warnings.warn(f"the plant server at {self.address} restarted while {method} was in flight; that "
                              f"query may have executed on the device before the restart, and the new server "
                              f"cannot tell. It is sent again.", RuntimeWarning, stacklevel=6)
            self.instance = info["server"]["instance"]
        self.call("Acquire")

    def describe_raw(self) -> dict:
        """The server's Describe reply, without adopting its identity."""
        return self.call("Describe")[0]["describe"]

    def describe(self) -> dict:
        info = self.call("Describe")[0]["describe"]
        if self.identity is None:
            self.identity = _identity(info)
            self.instance = info["server"]["instance"]
        return info

    def _check_identity(self, info: dict) -> None:
        if self.identity is not None and _identity(info) != self.identity:
            raise DeviceUnavailable(f"the server at {self.address} came back serving a different plant "
                                    f"({info['description']}; expected {self.identity['class']} with the same "
                                    f"features and controls); refusing to continue training on it.")


def _identity(info: dict) -> dict:
    return {k: info[k] for k in ("class", "in_features", "out_features", "control_specs")}


_CONNECTION_ARGS = ("token", "timeout", "retries", "wait_for_device_s", "client_id")


class RemotePlant(Plant):
    """A plant served over the network (``pnnlab serve``; docs/remote.md).

    Parameters
    ----------
    address: ``"host:port"`` as the server printed it.
    token: the server's shared secret (sent with every call).
    timeout: deadline of every call, seconds.
    retries: :class:`~pnnlab.remote.policy.RetryPolicy` for transient errors (each retry reuses the
        call's idempotency key, so the device never executes a query twice).
    wait_for_device_s: when retries are spent on a lost connection, wait (pause) this long for the
        device to come back, polling with backoff, then raise :class:`DeviceUnavailable`.
    reading_check: :class:`~pnnlab.remote.policy.ReadingCheck` (saturation, valid range) or None; NaN and
        infinite readings are always flagged, by the plant's boundary on the server.
    on_bad_reading: :class:`~pnnlab.remote.policy.Retry`, ``DropBatch`` or ``Stop`` (default).
    client_id: this trainer's id (lease holder and idempotency-key prefix; default host-pid-random).
    acquire: take the device's lease now (a busy device then fails here, not at the first query).

    ``RemotePlant(...)`` returns a :class:`RemoteEnergyBasedPlant` when the served plant is energy-based.
    """

    summary = "a plant served over the network by `pnnlab serve` (gRPC client)"

    def __new__(cls, address: str, **kwargs):
        connection = _Connection(address, token=kwargs.get("token"), timeout=kwargs.get("timeout", 30.0),
                                 retries=kwargs.get("retries", RetryPolicy()),
                                 wait_for_device_s=kwargs.get("wait_for_device_s", 60.0),
                                 client_id=kwargs.get("client_id"))
        try:
            info = connection.describe()
        except Exception:
            connection.close()
            raise
        target = cls
        if cls is RemotePlant and "EnergyBased" in info["served_capabilities"]:
            target = RemoteEnergyBasedPlant
        elif cls is RemotePlant and "Reciprocal" in info["served_capabilities"]:
            target = RemoteReciprocalPlant
        self = super().__new__(target)
        self._boot = (connection, info)
        return self

    def __init__(self, address: str, *, token: str, timeout: float = 30.0, retries: RetryPolicy | None = None,
                 wait_for_device_s: float = 60.0, reading_check: ReadingCheck | None = None,
                 on_bad_reading: ReadingPolicy | None = None, client_id: str | None = None,
                 acquire: bool = True) -> None:
        connection, info = self.__dict__.pop("_boot")
        if reading_check is not None and not isinstance(reading_check, ReadingCheck):
            raise TypeError(f"reading_check must be a ReadingCheck(...) or None, got {type(reading_check).__name__}.")
        on_bad_reading = Stop() if on_bad_reading is None else on_bad_reading
        if not isinstance(on_bad_reading, (Retry, DropBatch, Stop)):
            raise TypeError(f"on_bad_reading must be Retry(...), DropBatch() or Stop(), got {on_bad_reading!r}.")
        super().__init__(in_features=info["in_features"], out_features=info["out_features"],
                         cost=CostModel(**info["cost"]), seed=0)
        self._connection = connection
        self.server_info = info
        self._specs = {k: schema.spec_from_json(v) for k, v in info["control_specs"].items()}
        self.reading_check = reading_check
        self.on_bad_reading = on_bad_reading
        #: every flagged reading: {"kind", "problem", "action", "time"}
        self.flagged: list[dict] = []
        if acquire:
            try:
                connection.call("Acquire")
            except Exception:
                connection.close()
                raise

    # ---- identity ------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return self._connection.address

    @property
    def client_id(self) -> str:
        return self._connection.client_id

    @property
    def events(self) -> list[dict]:
        """Transport events (transient errors, pauses, restarts, resumes), oldest first."""
        return list(self._connection.events)

    def control_specs(self) -> dict[str, ControlSpec]:
        return dict(self._specs)

    def describe(self) -> str:
        return f"RemotePlant({self.server_info['description']} at {self.address})"

    def calibration_report(self) -> dict:
        """The server's current calibration/state report (a fresh Describe)."""
        return self._connection.describe()["report"]

    def identity(self) -> dict:
        """The served device's identity (what ``Plant.identity()`` says on the server: its class,
        description, interface, cost model, and serial and calibration where the instrument reports
        them), not the address: a run resumed against the same device on another port is accepted, a
        run resumed against another device is refused (``pnnlab run --resume``)."""
        served = self.server_info.get("identity")
        return {"remote": served if served is not None else _identity(self.server_info)}

    def state_dict(self) -> dict:
        """The client's side of the device state: the next idempotency-key number. The device holds its
        own physical state. Restoring the number (``pnnlab run --resume`` does, with the same
        ``client_id``) makes a query that the device executed but the killed trainer never recorded
        come back from the server's reply log instead of running twice."""
        return {"sequence": int(self._connection.sequence)}

    def load_state_dict(self, state) -> None:
        if not isinstance(state, dict) or not isinstance(state.get("sequence"), int):
            raise TypeError(f"state must be the dict RemotePlant.state_dict() returned, got {state!r}.")
        with self._connection._lock:
            self._connection.sequence = state["sequence"]

    def remote_meter(self) -> dict:
        """The served plant's own meter (all its queries, by every client)."""
        return self._connection.call("Meter")[0]["meter"]

    # ---- lease ---------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take (or renew) the device's lease; :class:`DeviceBusy` if another trainer holds it."""
        self._connection.call("Acquire")

    def release(self) -> None:
        """Give the device back so another trainer can use it."""
        self._connection.call("Release")

    def close(self) -> None:
        """Release the lease (if the server answers) and close the channel."""
        try:
            self._connection.call("Release")
        except Exception:  # the lease expires on its own
            pass
        self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __deepcopy__(self, memo):
        return self  # one physical device: a copied model shares it

    def __reduce__(self):
        raise TypeError("a RemotePlant is a connection to a device and cannot be pickled; save the model's "
                        "state_dict() instead.")

    # ---- queries -------------------------------------------------------------------------------
    def _state_id(self, state) -> str:
        """The server's id of a state (an Equilibrium or a FieldPass) this plant returned."""
        private = getattr(state, "private", None)
        kind = type(state).__name__
        if not isinstance(private, _RemoteState):
            raise TypeError(f"this {kind} was not returned by this remote plant; pass the state it returned.")
        if private.instance != self._connection.instance:
            raise StateExpired(f"this {kind} was measured on an earlier instance of the server at {self.address} "
                               f"(it restarted since); relax or measure again.")
        return private.state_id

    def _generator_tensors(self, generator) -> dict:
        # the base class passes its own generator when the call gave none: then the server's plant uses its own
        return {} if generator is None or generator is self._generator else {"generator": generator.get_state()}

    def _device_call(self, method: str, header: dict, tensors: dict, generator) -> tuple[dict, dict]:
        tensors = dict(tensors) | self._generator_tensors(generator)
        try:
            reply, out = self._connection.call(method, header, tensors, device=True)
        except RemoteError as error:
            if getattr(error, "meter", None):
                self._mirror(error.meter, base_records=False)
            raise
        if "generator" in out:
            generator.set_state(out.pop("generator"))
        for w in reply.get("warnings", ()):
            category = getattr(builtins, w["category"], None)
            category = category if isinstance(category, type) and issubclass(category, Warning) else UserWarning
            warnings.warn(w["message"], category, stacklevel=5)
        return reply, out

    def _mirror(self, delta: dict, *, base_records: bool, batch: int | None = None) -> None:
        """Make this meter follow the server's: the base class records the cost model of a returned
        query; what the server charged beyond it (energy inside the query) is charged here."""
        if delta.get("queries", 0) and not base_records:
            self.meter.record(self.cost, int(delta["samples"]))
        samples = int(delta.get("samples", 0))
        counted_s = self.cost.seconds(samples) if delta.get("queries", 0) else 0.0
        counted_j = self.cost.joules(samples) if delta.get("queries", 0) else 0.0
        self.meter.charge(seconds=max(0.0, delta.get("device_seconds", 0.0) - counted_s),
                          joules=max(0.0, delta.get("joules", 0.0) - counted_j))

    def _with_policy(self, kind: str, attempt):
        """Run ``attempt()`` (-> reply, result, output tensor) under the reading policy."""
        policy = self.on_bad_reading
        retries_left = policy.attempts if isinstance(policy, Retry) else 0
        while True:
            reply, result, output = attempt()
            problem = reply.get("reading_error")
            if problem is None and self.reading_check is not None and output is not None:
                # the check reads outputs; an adjoint or interference pass has only monitor powers
                problem = self.reading_check.problem(output)
            if problem is None:
                self._mirror(reply["meter"], base_records=True)
                return result
            self._mirror(reply["meter"], base_records=False)
            final = policy.then if isinstance(policy, Retry) else policy
            action = "retry" if retries_left else ("drop the batch" if isinstance(final, DropBatch) else "stop")
            self.flagged.append({"kind": kind, "problem": problem, "action": action, "time": time.time()})
            self._connection.event("bad reading", f"{kind}: {problem}; {action}")
            if retries_left:
                retries_left -= 1
                continue
            tried = f" (after {policy.attempts} retries)" if isinstance(policy, Retry) else ""
            message = f"{self.describe()}: a {kind} reading was flagged{tried}: {problem}"
            if isinstance(final, DropBatch):
                raise BatchDropped(message + "; the batch is dropped (wrap the method in DropBadBatches(...) to "
                                             "skip the step and continue training).")
            raise BadReading(message + "; the reading policy is Stop(): training stops here. Check the device, or "
                                       "choose on_bad_reading=Retry(...) or DropBatch().")

    def _measure(self, x, controls, generator):
        tensors = {"x": x} | {f"control/{k}": v for k, v in controls.items()}

        def attempt():
            reply, out = self._device_call("Query", {}, tensors, generator)
            y = out.get("y")
            return reply, y, y
        return self._with_policy("query", attempt)

    def initial_controls(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The served plant's ``initial_controls`` (drawn on the server, from its own generator unless
        ``generator`` is given)."""
        reply, out = self._device_call("InitialControls", {}, {}, generator)
        self._mirror(reply["meter"], base_records=False)
        return {k.removeprefix("control/"): v for k, v in out.items()}

    def example_inputs(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The served plant's ``example_inputs``."""
        reply, out = self._device_call("ExampleInputs", {"batch": check_int("batch", batch)}, {}, generator)
        self._mirror(reply["meter"], base_records=False)
        return out["x"]


class RemoteEnergyBasedPlant(RemotePlant, EnergyBased):
    """A remote plant whose served plant is :class:`~pnnlab.plants.capabilities.EnergyBased`: ``relax`` runs
    on the server, which keeps the equilibrium (for warm starts and energy gradients) under an opaque
    state id; the client's :class:`Equilibrium` carries the measured output, nodes, power and residual."""

    def __init__(self, address: str, **kwargs) -> None:
        super().__init__(address, **kwargs)
        self.force_unit = float(self.server_info["force_unit"])

    def _relax(self, x, controls, nudge, initial, generator) -> Equilibrium:
        header = {"nudge": "free" if nudge is None else "force" if isinstance(nudge, OutputForce) else "clamp",
                  "initial": None if initial is None else self._state_id(initial)}
        tensors = {"x": x} | {f"control/{k}": v for k, v in controls.items()}
        if isinstance(nudge, OutputForce):
            tensors["nudge"] = nudge.force.detach()
        elif isinstance(nudge, OutputClamp):
            tensors["nudge"] = nudge.value.detach()

        def attempt():
            reply, out = self._device_call("Relax", header, tensors, generator)
            if reply.get("reading_error") is not None:
                return reply, None, None
            present = set(reply["nodes"])
            nodes = tuple(out.get(f"nodes/{i}") if i in present else None for i in range(reply["n_nodes"]))
            state = Equilibrium(output=out["output"], nodes=nodes, power_W=out.get("power_W"),
                                residual=reply["residual"],
                                private=_RemoteState(self._connection.instance, reply["state"]))
            return reply, state, state.output
        return self._with_policy("relax", attempt)

    def energy_gradients(self, state: Equilibrium) -> dict[str, torch.Tensor]:
        """dE/d(control) measured on the server for ``state`` (a state this plant's ``relax`` returned)."""
        reply, out = self._device_call("EnergyGradients", {"state": self._state_id(state)}, {}, None)
        self._mirror(reply["meter"], base_records=False)
        return {k.removeprefix("gradient/"): v for k, v in out.items()}


class RemoteReciprocalPlant(RemotePlant, Reciprocal):
    """A remote plant whose served plant is :class:`~pnnlab.plants.light_passes.Reciprocal` (an MZI mesh, a
    microring bank...): the forward, adjoint and interference passes run on the server, each one metered
    query, which keeps every pass (with its private data) under an opaque state id; the plant's
    controller-side arithmetic (``adjoint_source``, ``input_gradient``) runs there too, on the pass it
    names, without a query. So :class:`~pnnlab.methods.adjoint.AdjointInSitu` trains a served chip exactly
    as a local one."""

    def __init__(self, address: str, **kwargs) -> None:
        super().__init__(address, **kwargs)
        ports = self.server_info["ports"]
        self.n_input_ports, self.n_output_ports = int(ports["input"]), int(ports["output"])

    def _pass(self, kind: str, method: str, tensors: dict, generator) -> FieldPass:
        def attempt():
            reply, out = self._device_call(method, {}, tensors, generator)
            if reply.get("reading_error") is not None:
                return reply, None, None
            result = FieldPass(intensities={k.removeprefix("intensity/"): v for k, v in out.items()
                                            if k.startswith("intensity/")},
                               output=out.get("output"), port_field=out.get("port_field"),
                               private=_RemoteState(self._connection.instance, reply["state"]))
            return reply, result, result.output
        return self._with_policy(kind, attempt)

    def _forward_pass(self, x, controls, generator) -> FieldPass:
        return self._pass("forward pass", "ForwardPass", {"x": x} | _controls(controls), generator)

    def _adjoint_pass(self, adjoint, controls, generator) -> FieldPass:
        return self._pass("adjoint pass", "AdjointPass", {"adjoint": adjoint} | _controls(controls), generator)

    def _interference_pass(self, x, injected, controls, generator) -> FieldPass:
        return self._pass("interference pass", "InterferencePass",
                          {"x": x, "injected": injected} | _controls(controls), generator)

    def adjoint_source(self, forward: FieldPass, grad_output: torch.Tensor) -> torch.Tensor:
        """The served plant's ``adjoint_source`` for a forward pass this plant returned (no query)."""
        reply, out = self._device_call("AdjointSource", {"state": self._state_id(forward)},
                                       {"grad_output": grad_output.detach()}, None)
        self._mirror(reply["meter"], base_records=False)
        return out["source"].to(grad_output.device)

    def input_gradient(self, x: torch.Tensor, adjoint: FieldPass) -> torch.Tensor:
        """The served plant's ``input_gradient`` for an adjoint pass this plant returned (no query)."""
        reply, out = self._device_call("InputGradient", {"state": self._state_id(adjoint)}, {"x": x.detach()}, None)
        self._mirror(reply["meter"], base_records=False)
        return out["grad"].to(x.device)


def _controls(controls: dict) -> dict:
    return {f"control/{k}": v for k, v in controls.items()}
