"""A plant served over the network (issue 11, section 2; docs/remote.md).

``serve(plant, port=0, token=...)`` (or ``pnnlab serve``) exposes any :class:`~pnnlab.plants.base.Plant`
as a gRPC service; :class:`RemotePlant` is the client, a ``Plant`` like any other, so every training
method works unchanged against a remote device. Needs the optional dependency ``grpcio``
(``pip install "pnnlab[remote]"``); importing :mod:`pnnlab` itself never imports it.
"""

try:
    import grpc  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only without grpcio
    raise ImportError('pnnlab.remote needs the gRPC runtime: pip install "pnnlab[remote]" (or pip install grpcio).'
                      ) from error

from .client import RemoteEnergyBasedPlant, RemotePlant, RemoteReciprocalPlant
from .errors import (AuthenticationError, BadReading, BatchDropped, ControlRefused, DeviceBusy, DeviceUnavailable,
                     RemoteError, RemotePlantError, StateExpired)
from .policy import ControlLimit, DropBadBatches, DropBatch, ReadingCheck, ReadingPolicy, Retry, RetryPolicy, Stop
from .schema import SCHEMA_VERSION, SERVICE
from .server import PlantService, ServerHandle, serve

__all__ = [
    "AuthenticationError", "BadReading", "BatchDropped", "ControlLimit", "ControlRefused", "DeviceBusy",
    "DeviceUnavailable", "DropBadBatches", "DropBatch", "PlantService", "ReadingCheck", "ReadingPolicy",
    "RemoteEnergyBasedPlant", "RemoteError", "RemotePlant", "RemoteReciprocalPlant", "RemotePlantError", "Retry", "RetryPolicy",
    "SCHEMA_VERSION", "SERVICE", "ServerHandle", "StateExpired", "Stop", "serve",
]
