"""The plant server: any :class:`~pnnlab.plants.base.Plant` served over gRPC (docs/remote.md).

``serve(plant, port=0, token=...)`` starts a gRPC server in background threads and returns a
:class:`ServerHandle` (``.address``, ``.stop()``). It binds the loopback interface unless told
otherwise, refuses every call without the shared-secret token, validates every query against the
plant's own control specs and the device limits given to it (safety range, ramp limit), serves one
trainer at a time (a lease that expires), and keeps a bounded log of recent replies keyed by the
client's idempotency key, so a retried query is answered from the log and never executed twice.

The plant is called through its ordinary boundary (``plant(x, controls)``, ``plant.relax(...)``), so
its meter, its boundary checks and any recorder attached to it on the server side see every query.
Calls into the plant are serialised by one lock: one device, one query at a time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from concurrent import futures
from dataclasses import asdict
from typing import Callable, Mapping, Sequence

import grpc
import torch

from .._validation import check_batch, check_int, check_positive
from ..plants.base import Plant
from ..plants.capabilities import Capability, EnergyBased, OutputClamp, OutputForce
from ..plants.light_passes import FieldPass, Reciprocal
from . import schema
from .policy import ControlLimit

#: metadata key that carries the shared-secret token on every call
TOKEN_HEADER = "x-pnnlab-token"
#: trailing-metadata key with the meter delta of a query that failed unexpectedly on the server
METER_TRAILER = "x-pnnlab-meter"
#: RPC names of the service (``/pnnlab.remote.v1.PlantService/<name>``)
METHODS = ("Describe", "Meter", "Acquire", "Release", "Query", "Relax", "EnergyGradients", "InitialControls",
           "ExampleInputs", "ForwardPass", "AdjointPass", "InterferencePass", "AdjointSource", "InputGradient")
#: capabilities a remote plant can serve (the others are not declared by the client)
SERVED_CAPABILITIES = (EnergyBased, Reciprocal)

_GRPC_OPTIONS = [("grpc.max_receive_message_length", schema.MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", schema.MAX_MESSAGE_BYTES)]


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, meter: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.meter = code, message, meter


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PlantService:
    """The request handlers of one served plant (used by :func:`serve`; see the module docstring).

    ``executed`` counts device operations actually run on the plant, ``replayed`` the retried ones
    answered from the log."""

    def __init__(self, plant: Plant, *, token: str, limits: Mapping[str, ControlLimit] | None = None,
                 lease_s: float = 60.0, log_size: int = 1024, state_size: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(plant, Plant):
            raise TypeError(f"plant must be a pnnlab Plant (subclass Plant and write _measure), got "
                            f"{type(plant).__name__}.")
        if not isinstance(token, str) or len(token) < 8:
            raise ValueError(f"token must be a shared secret of at least 8 characters, got "
                             f"{'a ' + type(token).__name__ if not isinstance(token, str) else f'{len(token)} characters'}; "
                             f"generate one with secrets.token_urlsafe(32).")
        specs = plant.control_specs()
        limits = dict(limits or {})
        for name, limit in limits.items():
            if name not in specs:
                raise ValueError(f"limits[{name!r}] names no control of {type(plant).__name__}; its controls are "
                                 f"{sorted(specs)}.")
            if not isinstance(limit, ControlLimit):
                raise TypeError(f"limits[{name!r}] must be a ControlLimit(low=, high=, max_step=), got "
                                f"{type(limit).__name__}.")
        self.plant = plant
        self._token = token.encode("utf-8")
        self.limits = limits
        self.lease_s = check_positive("lease_s", lease_s)
        self.log_size = check_int("log_size", log_size)
        self.state_size = check_int("state_size", state_size)
        self._clock = clock
        self.instance = uuid.uuid4().hex
        self.started = time.time()
        self._device_lock = threading.Lock()
        self._lease_lock = threading.Lock()
        self._lease: tuple[str, float] | None = None
        self._log: OrderedDict[str, tuple[str, dict, dict]] = OrderedDict()
        self._states: OrderedDict[str, object] = OrderedDict()
        self._state_counter = 0
        self._last_controls: dict[str, torch.Tensor] | None = None
        self.executed = 0
        self.replayed = 0

    # ---- plumbing -------------------------------------------------------------------------------
    def handler(self) -> grpc.GenericRpcHandler:
        """The generic gRPC handler serving every RPC of :data:`METHODS`."""
        def wrap(name):
            method = getattr(self, f"_rpc_{name}")

            def behaviour(request: bytes, context: grpc.ServicerContext) -> bytes:
                try:
                    self._authenticate(context)
                    try:
                        header, tensors = schema.decode(request)
                    except schema.SchemaError as error:
                        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {error}") from None
                    return method(request, header, tensors)
                except _Abort as abort:
                    if abort.meter is not None:
                        context.set_trailing_metadata(((METER_TRAILER, json.dumps(abort.meter)),))
                    context.abort(abort.code, abort.message)
            return grpc.unary_unary_rpc_method_handler(behaviour, request_deserializer=None,
                                                       response_serializer=None)
        return grpc.method_handlers_generic_handler(schema.SERVICE, {name: wrap(name) for name in METHODS})

    def _authenticate(self, context) -> None:
        sent = dict(context.invocation_metadata()).get(TOKEN_HEADER)
        if sent is None:
            raise _Abort(grpc.StatusCode.UNAUTHENTICATED,
                         f"no token: every call must carry the server's shared secret in the {TOKEN_HEADER!r} "
                         f"metadata (RemotePlant(address, token=...) does this).")
        if not hmac.compare_digest(sent.encode("utf-8") if isinstance(sent, str) else bytes(sent), self._token):
            raise _Abort(grpc.StatusCode.UNAUTHENTICATED,
                         "wrong token: the call's token does not match the server's shared secret "
                         "(read it from the server's --token-file).")

    @staticmethod
    def _client(header: dict) -> str:
        client = header.get("client")
        if not isinstance(client, str) or not client:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "the request names no client id ('client').")
        return client

    def _take_lease(self, client: str) -> None:
        with self._lease_lock:
            now = self._clock()
            if self._lease is not None and self._lease[0] != client and self._lease[1] > now:
                raise _Abort(grpc.StatusCode.FAILED_PRECONDITION,
                             f"the device serves one trainer at a time and is leased to client {self._lease[0]!r} "
                             f"for another {self._lease[1] - now:.1f} s; wait until that trainer releases it "
                             f"(RemotePlant.release()) or its lease expires.")
            self._lease = (client, now + self.lease_s)

    # ---- description ---------------------------------------------------------------------------
    def describe(self) -> dict:
        """Identity, interface, cost model, capabilities, limits and the calibration/state report."""
        plant = self.plant
        capabilities = sorted(c.__name__ for c in type(plant).__mro__
                              if issubclass(c, Capability) and c is not Capability and not issubclass(c, Plant))
        served = [c.__name__ for c in SERVED_CAPABILITIES if isinstance(plant, c)]
        info = {"class": f"{type(plant).__module__}.{type(plant).__qualname__}", "description": plant.describe(),
                "in_features": plant.in_features, "out_features": plant.out_features,
                "control_specs": {k: schema.spec_to_json(v) for k, v in plant.control_specs().items()},
                "cost": asdict(plant.cost), "capabilities": capabilities, "served_capabilities": served,
                "limits": {k: v.to_json() for k, v in self.limits.items()}, "lease_s": self.lease_s,
                "report": self.report(), "identity": _finite_json(plant.identity()),
                "server": {"pnnlab_version": _version(), "schema": schema.SCHEMA_VERSION,
                           "instance": self.instance, "started": self.started}}
        if isinstance(plant, EnergyBased):
            info["force_unit"] = float(plant.force_unit)
        if isinstance(plant, Reciprocal):
            info["ports"] = {"input": int(plant.n_input_ports), "output": int(plant.n_output_ports)}
        return info

    def report(self) -> dict:
        """The calibration/state report: the meter, the device clock where the plant keeps one, and
        whatever the plant's own ``calibration_report()`` (optional, JSON) says."""
        plant = self.plant
        out = {"meter": plant.meter.snapshot()}
        elapsed = getattr(plant, "elapsed_seconds", None)
        if isinstance(elapsed, (int, float)):
            out["elapsed_seconds"] = float(elapsed)
        hook = getattr(plant, "calibration_report", None)
        out["calibration"] = hook() if callable(hook) else None
        return out

    def _rpc_Describe(self, request, header, tensors) -> bytes:
        with self._device_lock:
            return schema.encode({"describe": self.describe()})

    def _rpc_Meter(self, request, header, tensors) -> bytes:
        with self._device_lock:
            return schema.encode({"meter": self.plant.meter.snapshot()})

    def _rpc_Acquire(self, request, header, tensors) -> bytes:
        client = self._client(header)
        self._take_lease(client)
        return schema.encode({"holder": client, "lease_s": self.lease_s, "instance": self.instance})

    def _rpc_Release(self, request, header, tensors) -> bytes:
        client = self._client(header)
        with self._lease_lock:
            if self._lease is not None and self._lease[0] == client:
                self._lease = None
            elif self._lease is not None and self._lease[1] > self._clock():
                raise _Abort(grpc.StatusCode.FAILED_PRECONDITION,
                             f"client {client!r} cannot release a lease held by {self._lease[0]!r}.")
        return schema.encode({"released": True})

    # ---- device operations ----------------------------------------------------------------------
    def _device(self, request: bytes, header: dict, tensors: dict, run) -> bytes:
        """Lease, idempotency log, generator, meter delta and warnings around one device operation."""
        client = self._client(header)
        key = header.get("key")
        if not isinstance(key, str) or not key:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "a device call needs an idempotency key ('key').")
        expected = header.get("instance")
        if expected is not None and expected != self.instance:
            raise _Abort(grpc.StatusCode.ABORTED,
                         f"instance mismatch: this server is instance {self.instance}, the client last verified "
                         f"{expected}; the server restarted (Describe it again before sending device calls).")
        digest = hashlib.sha256(request).hexdigest()
        self._take_lease(client)
        with self._device_lock:
            if key in self._log:
                logged_digest, reply, reply_tensors = self._log[key]
                if logged_digest != digest:
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                                 f"idempotency key {key!r} was already used for a different request; a client "
                                 f"must give every new query a new key.")
                self.replayed += 1
                return schema.encode(reply | {"replayed": True}, reply_tensors)
            generator = None
            if "generator" in tensors:
                generator = torch.Generator()
                try:
                    generator.set_state(tensors["generator"])
                except (RuntimeError, TypeError, ValueError) as error:
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad generator state: {error}") from None
            before = self.plant.meter.snapshot()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    reply, reply_tensors = run(generator)
                except FloatingPointError as error:  # the plant's boundary flagged the measurement
                    reply, reply_tensors = {"reading_error": f"{type(error).__name__}: {error}"}, {}
                except (ValueError, TypeError) as error:
                    meter = _delta(before, self.plant.meter.snapshot())
                    if meter["queries"]:
                        raise _Abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}", meter) from None
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"{type(error).__name__}: {error}") from None
                except _Abort:
                    raise
                except Exception as error:
                    raise _Abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}",
                                 _delta(before, self.plant.meter.snapshot())) from None
            reply = dict(reply)
            reply["meter"] = _delta(before, self.plant.meter.snapshot())
            reply["warnings"] = [{"category": w.category.__name__, "message": str(w.message)} for w in caught]
            reply["replayed"] = False
            if generator is not None:
                reply_tensors = dict(reply_tensors) | {"generator": generator.get_state()}
            self.executed += 1
            self._log[key] = (digest, reply, reply_tensors)
            while len(self._log) > self.log_size:
                self._log.popitem(last=False)
            return schema.encode(reply, reply_tensors)

    def _controls(self, tensors: dict) -> dict:
        controls = {k.removeprefix("control/"): v for k, v in tensors.items() if k.startswith("control/")}
        checked = self.plant.validate_controls(controls)  # the plant's own specs: names, shapes, range
        for name, limit in self.limits.items():
            value = checked[name]
            lo, hi = float(value.min()), float(value.max())
            if lo < limit.low or hi > limit.high:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                             f"controls[{name!r}] must stay within the device's safety limits [{limit.low:g}, "
                             f"{limit.high:g}], got values in [{lo:.4g}, {hi:.4g}]; nothing was executed. Keep the "
                             f"controls inside the limits (clamp them, or narrow the layer's range).")
            if limit.max_step is not None and self._last_controls is not None:
                step = float((value.to(torch.float64) - self._last_controls[name].to(torch.float64)).abs().max())
                if step > limit.max_step:
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                                 f"controls[{name!r}] changed by up to {step:.4g} since the previous query, more "
                                 f"than the device's ramp limit max_step={limit.max_step:g}; nothing was executed. "
                                 f"Move the setting in smaller steps (a lower learning rate, or ramp it over "
                                 f"several queries).")
        return checked

    def _applied(self, controls: dict) -> None:
        self._last_controls = {k: v.clone() for k, v in controls.items()}

    def _rpc_Query(self, request, header, tensors) -> bytes:
        def run(generator):
            x = check_batch("x", _tensor(tensors, "x"), self.plant.in_features)
            controls = self._controls(tensors)
            self._applied(controls)
            y = self.plant(x, controls, generator=generator)
            return {}, {"y": y}
        return self._device(request, header, tensors, run)

    def _rpc_Relax(self, request, header, tensors) -> bytes:
        plant = self.plant
        if not isinstance(plant, EnergyBased):
            raise _Abort(grpc.StatusCode.UNIMPLEMENTED, f"{type(plant).__name__} is not EnergyBased: no relax().")

        def run(generator):
            x = check_batch("x", _tensor(tensors, "x"), plant.in_features)
            kind = header.get("nudge", "free")
            if kind == "free":
                nudge = None
            elif kind in ("force", "clamp"):
                value = _tensor(tensors, "nudge")
                nudge = OutputForce(value) if kind == "force" else OutputClamp(value)
            else:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"nudge must be 'free', 'force' or 'clamp', got {kind!r}.")
            initial = None if header.get("initial") is None else self._state(header["initial"])
            controls = self._controls(tensors)
            self._applied(controls)
            state = plant.relax(x, controls, nudge=nudge, initial=initial, generator=generator)
            state_id = self._hold(state)
            out = {"output": state.output}
            nodes = []
            for i, node in enumerate(state.nodes):
                if isinstance(node, torch.Tensor):
                    out[f"nodes/{i}"] = node
                    nodes.append(i)
            if isinstance(state.power_W, torch.Tensor):
                out["power_W"] = state.power_W
            residual = None if state.residual is None else float(state.residual)
            return {"state": state_id, "nodes": nodes, "n_nodes": len(state.nodes), "residual": residual}, out
        return self._device(request, header, tensors, run)

    def _state(self, state_id):
        state = self._states.get(state_id) if isinstance(state_id, str) else None
        if state is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND,
                         f"state {state_id!r} (an equilibrium or an optical pass) is not held by this server (it "
                         f"keeps the last {self.state_size}; or the server restarted); relax or measure again.")
        return state

    def _rpc_EnergyGradients(self, request, header, tensors) -> bytes:
        if not isinstance(self.plant, EnergyBased):
            raise _Abort(grpc.StatusCode.UNIMPLEMENTED, f"{type(self.plant).__name__} is not EnergyBased.")

        def run(generator):
            grads = self.plant.energy_gradients(self._state(header.get("state")))
            return {}, {f"gradient/{k}": v for k, v in grads.items()}
        return self._device(request, header, tensors, run)

    # ---- reciprocal passes (in-situ adjoint gradients, pnnlab.methods.adjoint) ------------------------
    def _reciprocal(self) -> Reciprocal:
        if not isinstance(self.plant, Reciprocal):
            raise _Abort(grpc.StatusCode.UNIMPLEMENTED, f"{type(self.plant).__name__} is not Reciprocal: it cannot "
                                                        f"send light backwards.")
        return self.plant

    def _hold(self, state) -> str:
        """Keep ``state`` (an equilibrium or a field pass, whose private data stays here) under a new id."""
        self._state_counter += 1
        state_id = f"{self.instance[:12]}-{self._state_counter}"
        self._states[state_id] = state
        while len(self._states) > self.state_size:
            self._states.popitem(last=False)
        return state_id

    def _field_pass_reply(self, result: FieldPass) -> tuple[dict, dict]:
        out = {f"intensity/{k}": v for k, v in result.intensities.items()}
        if result.output is not None:
            out["output"] = result.output
        if result.port_field is not None:
            out["port_field"] = result.port_field
        return {"state": self._hold(result)}, out

    def _field_pass(self, state_id) -> FieldPass:
        state = self._state(state_id)
        if not isinstance(state, FieldPass):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"state {state_id!r} is not an optical pass.")
        return state

    def _rpc_ForwardPass(self, request, header, tensors) -> bytes:
        plant = self._reciprocal()

        def run(generator):
            controls = self._controls(tensors)
            self._applied(controls)
            return self._field_pass_reply(plant.forward_pass(_tensor(tensors, "x"), controls, generator=generator))
        return self._device(request, header, tensors, run)

    def _rpc_AdjointPass(self, request, header, tensors) -> bytes:
        plant = self._reciprocal()

        def run(generator):
            controls = self._controls(tensors)
            self._applied(controls)
            return self._field_pass_reply(plant.adjoint_pass(_tensor(tensors, "adjoint"), controls,
                                                             generator=generator))
        return self._device(request, header, tensors, run)

    def _rpc_InterferencePass(self, request, header, tensors) -> bytes:
        plant = self._reciprocal()

        def run(generator):
            controls = self._controls(tensors)
            self._applied(controls)
            return self._field_pass_reply(plant.interference_pass(_tensor(tensors, "x"), _tensor(tensors, "injected"),
                                                                  controls, generator=generator))
        return self._device(request, header, tensors, run)

    def _rpc_AdjointSource(self, request, header, tensors) -> bytes:
        plant = self._reciprocal()

        def run(generator):  # controller-side arithmetic of the plant: no query
            source = plant.adjoint_source(self._field_pass(header.get("state")), _tensor(tensors, "grad_output"))
            return {}, {"source": source}
        return self._device(request, header, tensors, run)

    def _rpc_InputGradient(self, request, header, tensors) -> bytes:
        plant = self._reciprocal()

        def run(generator):  # controller-side arithmetic of the plant: no query
            grad = plant.input_gradient(_tensor(tensors, "x"), self._field_pass(header.get("state")))
            return {}, {"grad": grad}
        return self._device(request, header, tensors, run)

    def _rpc_InitialControls(self, request, header, tensors) -> bytes:
        def run(generator):
            controls = self.plant.initial_controls(generator)
            return {}, {f"control/{k}": v for k, v in controls.items()}
        return self._device(request, header, tensors, run)

    def _rpc_ExampleInputs(self, request, header, tensors) -> bytes:
        def run(generator):
            batch = check_int("batch", header.get("batch"))
            return {}, {"x": self.plant.example_inputs(batch, generator)}
        return self._device(request, header, tensors, run)


def _tensor(tensors: dict, name: str) -> torch.Tensor:
    if name not in tensors:
        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request carries no tensor {name!r}.")
    return tensors[name]


def _delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in before}


def _finite_json(value):
    """``value`` with infinite and NaN floats written as the strings "inf", "-inf", "nan" (the schema's
    JSON is strict; an identity's control specs hold infinite bounds)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


def _version() -> str:
    from .. import __version__
    return __version__


class ServerHandle:
    """A running plant server: ``address`` ("host:port"), ``port``, ``service`` (the
    :class:`PlantService`), ``stop()``, ``wait()``; a context manager that stops on exit."""

    def __init__(self, server: grpc.Server, service: PlantService, host: str, port: int) -> None:
        self._server, self.service, self.host, self.port = server, service, host, port
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def stop(self, grace: float | None = None) -> None:
        """Stop serving (in-flight calls get ``grace`` seconds to finish) and free the port."""
        self._server.stop(grace).wait()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or ``timeout`` seconds pass)."""
        return self._server.wait_for_termination(timeout)

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ServerHandle({self.address}, plant={self.service.plant.describe()})"


def serve(plant: Plant, *, token: str, port: int = 0, host: str = "127.0.0.1", allow_remote: bool = False,
          limits: Mapping[str, ControlLimit] | None = None, lease_s: float = 60.0, log_size: int = 1024,
          state_size: int = 256, max_workers: int = 4,
          interceptors: Sequence[grpc.ServerInterceptor] = ()) -> ServerHandle:
    """Serve ``plant`` on ``host:port`` (``port=0``: an ephemeral port; read ``handle.address``).

    ``token``: the shared secret every call must carry. ``host`` is the loopback interface unless
    ``allow_remote=True`` (then a warning says that the traffic is not encrypted: reach the server
    through an SSH tunnel or a trusted network). ``limits``: device limits per control name
    (:class:`~pnnlab.remote.policy.ControlLimit`). ``lease_s``: a trainer's lease lasts this long after
    its last call. ``log_size``: replies kept for idempotent retries; ``state_size``: equilibrium states
    (warm starts, energy gradients) and optical passes (adjoint sources, input gradients) kept. ``interceptors``: gRPC server interceptors (logging, or
    fault injection in tests).
    """
    if not isinstance(host, str) or not host:
        raise TypeError(f"host must be an interface address such as '127.0.0.1', got {host!r}.")
    if not _is_loopback(host):
        if not allow_remote:
            raise ValueError(f"host={host!r} is not a loopback address; the plant server binds 127.0.0.1 by "
                             f"default. To accept connections from other machines pass allow_remote=True "
                             f"(pnnlab serve --allow-remote) and protect the link (SSH tunnel, trusted network).")
        warnings.warn(f"the plant server listens on {host!r}, reachable from other machines; its traffic (token "
                      f"included) is not encrypted. Prefer 127.0.0.1 with an SSH tunnel.", UserWarning, stacklevel=2)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer in [0, 65535] (0: an ephemeral port), got {port!r}.")
    service = PlantService(plant, token=token, limits=limits, lease_s=lease_s, log_size=log_size,
                           state_size=state_size)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=check_int("max_workers", max_workers)),
                         handlers=[service.handler()], interceptors=list(interceptors), options=_GRPC_OPTIONS)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(target)
    except RuntimeError as error:
        raise OSError(f"cannot bind the plant server to {target} ({error}); is the port in use?") from None
    if not bound:
        raise OSError(f"cannot bind the plant server to {target}; is the port in use?")
    server.start()
    return ServerHandle(server, service, host, bound)
