"""Errors a remote plant raises (each says what happened and what to do)."""

from __future__ import annotations


class RemotePlantError(RuntimeError):
    """Base class of the errors of :mod:`pnnlab.remote`."""


class AuthenticationError(RemotePlantError, PermissionError):
    """The server refused the call: no token, or a wrong one (gRPC ``UNAUTHENTICATED``)."""


class DeviceBusy(RemotePlantError):
    """Another trainer holds the device's lease (gRPC ``FAILED_PRECONDITION``)."""


class DeviceUnavailable(RemotePlantError):
    """The device did not answer: retries and the wait for it to come back are spent."""


class ControlRefused(ValueError):
    """The server refused the inputs or controls (the plant's own checks, its safety or ramp limits;
    gRPC ``INVALID_ARGUMENT``). Nothing was executed on the device."""


class StateExpired(RemotePlantError, KeyError):
    """An equilibrium state id the server no longer holds (evicted from its bounded store, or the
    server restarted): relax again."""


class RemoteError(RemotePlantError):
    """The plant raised an unexpected error on the server (gRPC ``INTERNAL``); the text is the server's."""


class BadReading(FloatingPointError):
    """A measurement flagged as NaN, saturated or out of range, and the reading policy stops."""


class BatchDropped(BadReading):
    """A flagged measurement under the :class:`~pnnlab.remote.policy.DropBatch` policy: the training step
    that made it is abandoned (:class:`~pnnlab.remote.policy.DropBadBatches` catches this)."""
