"""Capabilities of optical plants whose gradients are measured with light (see
:mod:`pnnlab.plants.capabilities` for the others, which re-exports these).

- :class:`Reciprocal`: a reciprocal plant (an MZI mesh) also sends light backwards from its outputs and
  reports the interference intensity at every phase shifter (Hughes et al. 2018, Pai et al. 2023);
  used by the ``adjoint`` method.
- :class:`ForwardSymmetric`: free-space optics run the error pass forward through the same optics and
  measure the fields at every mask plane (Xue et al. 2024); used by the ``ffm`` method.

Every pass is one metered query at the hardware boundary (:meth:`pnnlab.plants.base.Plant._query`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from .capabilities import Capability


@dataclass
class FieldPass:
    """What one optical pass through a reciprocal plant reports (see :class:`Reciprocal`).

    ``intensities`` holds, for every control of the plant, the optical power measured at that phase
    shifter, shape ``(batch, *control_shape)`` (a monitor tap beside every shifter, as in Pai et al.
    2023). ``output`` is the measured output features (forward pass only, the same as ``plant(x)``);
    ``port_field`` the complex field leaving the plant at the far end of the pass, measured by coherent
    detection: at the output ports for the forward pass, at the input ports for the adjoint pass
    (``None`` for the interference pass). ``private`` is opaque plant data; methods never read it.
    """

    intensities: dict
    output: torch.Tensor | None = None
    port_field: torch.Tensor | None = None
    private: Any = field(default=None, repr=False)


class Reciprocal(Capability):
    """A linear, reciprocal photonic plant that can also be driven *backwards* and that reports the
    optical power at every phase shifter (for the in-situ adjoint gradients of Hughes, Minkov, Shi &
    Fan, Optica 5, 864 (2018), doi:10.1364/OPTICA.5.000864, demonstrated by Pai et al., Science 380,
    398 (2023), doi:10.1126/science.ade8450; see :mod:`pnnlab.methods.adjoint`).

    Hardware operations, each ONE metered query of ``batch`` samples (the plant's cost model):

    * ``forward_pass(x, controls)``: the ordinary forward pass, also reading the power monitor at
      every phase shifter and the complex output field (coherent detection at the outputs);
    * ``adjoint_pass(adjoint, controls)``: light ``adjoint`` (complex, ``(batch, n_output_ports)``)
      injected into the *output* ports runs backwards through the plant (by reciprocity it sees the
      transpose T^T of the forward transfer matrix); the monitors read its power at every phase
      shifter and the field leaving the input ports is measured coherently;
    * ``interference_pass(x, injected, controls)``: the encoded input ``x`` plus the complex field
      ``injected`` (``(batch, n_input_ports)``, e.g. the time-reversed adjoint field) sent forward
      together; the monitors read the power of their interference at every phase shifter.

    An in-situ gradient therefore costs 3 queries per reciprocal layer per batch. Controller-side
    arithmetic (no query), which only the plant can do because it knows its detection and encoding:

    * ``adjoint_source(forward, grad_output)``: the field to inject at the outputs, conj(dL/dy*)
      for the measured output field y, given dL/d(output features);
    * ``input_gradient(x, adjoint)``: dL/dx for the plant's input encoding, from the field the
      adjoint pass measured at the input ports.

    A plant implements ``_forward_pass``, ``_adjoint_pass``, ``_interference_pass`` (called on
    validated, detached tensors under ``torch.no_grad()``), ``adjoint_source`` and
    ``input_gradient``, plus ``n_input_ports`` / ``n_output_ports``.
    """

    offers = ("forward_pass / adjoint_pass / interference_pass: light sent forwards, backwards from the "
              "outputs and both at once, with the power read at every phase shifter (3 queries per gradient)")

    n_input_ports: int
    n_output_ports: int

    def forward_pass(self, x: torch.Tensor, controls: Mapping[str, torch.Tensor], *,
                     generator: torch.Generator | None = None) -> FieldPass:
        """Forward pass with every monitor read (one metered query)."""
        from .._validation import check_batch, check_generator
        x = check_batch("x", x, self.in_features).detach().to(self.device)
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator

        def check(result):
            _check_field_pass(self, result, x.shape[0], "_forward_pass", self.n_output_ports)
            self.check_measurement(result.output, x, call="_forward_pass")
            return result
        return self._query("forward", x, controls, lambda: self._forward_pass(x, controls, gen), check,
                                 generator=generator)

    def adjoint_pass(self, adjoint: torch.Tensor, controls: Mapping[str, torch.Tensor], *,
                     generator: torch.Generator | None = None) -> FieldPass:
        """Light ``adjoint`` sent backwards from the output ports (one metered query)."""
        from .._validation import check_generator
        adjoint = _check_field("adjoint", adjoint, self.n_output_ports).to(self.device)
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator
        record_x = torch.view_as_real(adjoint).reshape(adjoint.shape[0], -1)

        def check(result):
            _check_field_pass(self, result, adjoint.shape[0], "_adjoint_pass", self.n_input_ports)
            return result
        return self._query("adjoint", record_x, controls,
                                 lambda: self._adjoint_pass(adjoint, controls, gen), check, generator=generator)

    def interference_pass(self, x: torch.Tensor, injected: torch.Tensor, controls: Mapping[str, torch.Tensor],
                          *, generator: torch.Generator | None = None) -> FieldPass:
        """Input ``x`` and the extra field ``injected`` sent forward together (one metered query)."""
        from .._validation import check_batch, check_generator
        x = check_batch("x", x, self.in_features).detach().to(self.device)
        injected = _check_field("injected", injected, self.n_input_ports).to(self.device)
        if injected.shape[0] != x.shape[0]:
            raise ValueError(f"injected has {injected.shape[0]} samples but x has {x.shape[0]}; pass one "
                             f"injected field per input sample.")
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator

        def check(result):
            _check_field_pass(self, result, x.shape[0], "_interference_pass", None)
            return result
        return self._query("interference", x, controls,
                                 lambda: self._interference_pass(x, injected, controls, gen), check,
                                 generator=generator)

    @abc.abstractmethod
    def _forward_pass(self, x, controls, generator) -> FieldPass:
        """Forward pass on validated inputs: output features, output field and monitor powers."""

    @abc.abstractmethod
    def _adjoint_pass(self, adjoint, controls, generator) -> FieldPass:
        """Backward pass from the outputs: monitor powers and the field leaving the input ports."""

    @abc.abstractmethod
    def _interference_pass(self, x, injected, controls, generator) -> FieldPass:
        """Forward pass of encode(x) + injected: monitor powers."""

    @abc.abstractmethod
    def adjoint_source(self, forward: FieldPass, grad_output: torch.Tensor) -> torch.Tensor:
        """The complex field to send backwards from the outputs for dL/d(output features)."""

    @abc.abstractmethod
    def input_gradient(self, x: torch.Tensor, adjoint: FieldPass) -> torch.Tensor:
        """dL/dx (batch, in_features) from the adjoint field measured at the input ports."""


def _check_field(name: str, value, ports: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or not torch.is_complex(value):
        raise TypeError(f"{name} must be a complex tensor of shape (batch, {ports}) (an optical field), got "
                        f"{type(value).__name__}{'' if not isinstance(value, torch.Tensor) else ' ' + str(value.dtype)}.")
    if value.ndim != 2 or value.shape[1] != ports:
        raise ValueError(f"{name} must have shape (batch, {ports}), got {tuple(value.shape)}.")
    if not bool(torch.isfinite(torch.view_as_real(value)).all()):
        raise ValueError(f"{name} contains NaN or infinite values; no laser can emit them.")
    return value.detach()


def _check_per_control(owner: str, specs: dict, reported: dict, batch: int, *, what: str, key: str,
                       complex_: bool) -> None:
    """One finite tensor of shape (batch, *control_shape) for every control (``what``: the error's words for
    the quantity, ``key``: the attribute name shown, ``complex_``: whether it must be a complex field)."""
    if set(reported) != set(specs):
        raise ValueError(f"{owner} must report {what} every control {sorted(specs)}, got {sorted(reported)}.")
    for name, spec in specs.items():
        value = reported[name]
        shape = (batch, *spec.shape)
        if not isinstance(value, torch.Tensor) or (complex_ and not torch.is_complex(value)) \
                or tuple(value.shape) != shape:
            kind = "a complex tensor of shape " if complex_ else ""
            raise ValueError(f"{owner} reported {key}[{name!r}] of shape {tuple(getattr(value, 'shape', ()))}, "
                             f"expected {kind}{shape}.")
        if not bool(torch.isfinite(torch.view_as_real(value) if complex_ else value).all()):
            raise FloatingPointError(f"{owner} returned NaN or infinite {key} for {name!r}.")


def _check_measured_field(owner: str, value, shape: tuple, what: str) -> None:
    """A finite complex tensor of ``shape`` (a coherently measured field)."""
    if not isinstance(value, torch.Tensor) or not torch.is_complex(value) or tuple(value.shape) != shape:
        raise ValueError(f"{owner} must return the measured complex {what} of shape {shape}.")
    if not bool(torch.isfinite(torch.view_as_real(value)).all()):
        raise FloatingPointError(f"{owner} returned a NaN or infinite {what}.")


def _check_field_pass(plant, result, batch: int, call: str, ports: int | None) -> None:
    """The boundary check of a reciprocal pass: every control monitored, finite powers of shape
    (batch, *control_shape), and (where the pass measures one) a finite complex field."""
    owner = f"{type(plant).__name__}.{call}"
    if not isinstance(result, FieldPass):
        raise TypeError(f"{owner} returned {type(result).__name__}, not a FieldPass.")
    _check_per_control(owner, plant.control_specs(), result.intensities, batch, what="a monitor power for",
                       key="intensities", complex_=False)
    if ports is not None:
        _check_measured_field(owner, result.port_field, (batch, ports), "field")


# ---- fully forward mode (free-space optics) ----------------------------------------------------------

@dataclass(frozen=True)
class PhaseModulated:
    """Each entry of the control is a phase ``phi`` (radians) that multiplies the field at its pixel by
    ``exp(i phi)``: dL/dphi = -2 Im(e u) from the data field ``u`` leaving the pixel and the error field ``e``
    arriving at it from the output side (see :mod:`pnnlab.methods.fully_forward`)."""


@dataclass(frozen=True)
class AmplitudeModulated:
    """Each entry of the control is a real amplitude transmission ``A > 0`` that multiplies the field at its
    pixel: dL/dA = 2 Re(e u) / A (same fields as :class:`PhaseModulated`)."""


@dataclass
class PlaneFields:
    """What one pass of light through a :class:`ForwardSymmetric` plant reports.

    ``fields`` holds, for every control, the complex field measured at the pixels it modulates, shape
    ``(batch, *control_shape)``: for the *data* pass the field leaving each pixel (after its modulation),
    for the *error* pass the error field arriving at each pixel from the output side (before it passes the
    pixel). ``output`` is the measured output features (data pass only, the same as ``plant(x)``),
    ``output_field`` the complex field at the output (detector) plane (data pass) and ``input_field`` the
    error field reaching the input plane (error pass), both ``(batch, *field_shape)``. ``private`` is opaque
    plant data; methods never read it.
    """

    fields: dict
    output: torch.Tensor | None = None
    output_field: torch.Tensor | None = None
    input_field: torch.Tensor | None = None
    private: Any = field(default=None, repr=False)


class ForwardSymmetric(Capability):
    """A linear, reciprocal free-space optical system whose error-propagation pass can be run *through
    the same optics* and whose fields are measured at every modulating plane: the fully forward mode
    (FFM) of Xue, Zhou, ..., Dai & Fang, "Fully forward mode training for optical neural networks",
    Nature 632, 280 (2024), doi:10.1038/s41586-024-07687-4, and the in-situ optical backpropagation of
    Zhou, Lin, Wu, ..., Dai, Photon. Res. 8, 940 (2020), doi:10.1364/PRJ.389553.

    Hardware operations, each one *pass* of light of ``batch`` samples that costs ``frames_per_pass``
    metered queries (1 for a single-shot field measurement such as off-axis holography, 4 for
    four-step phase-shifting holography with intensity cameras: 4 exposures per pass):

    * ``data_pass(x, controls)``: the ordinary forward pass; the field is measured at every modulating
      plane (a beam splitter and a camera imaging each plane, registered to its pixels) and at the output
      plane; returns a :class:`PlaneFields` with ``output`` and ``output_field``;
    * ``error_pass(error, controls)``: the error field ``error`` (complex, ``(batch, *field_shape)``,
      displayed by a modulator at the output plane) is sent through the same optics towards the input;
      by reciprocity it sees the transpose of the forward operator, which a spatially symmetric system
      realises as a *forward* propagation (Xue 2024); the field is measured at every modulating plane
      and at the input plane.

    A gradient therefore costs 2 passes per physical layer per batch = ``2 * frames_per_pass`` queries.
    Controller-side arithmetic (no query), which only the plant can do because it knows its detection
    and encoding:

    * ``error_source(data, grad_output)``: the error field to display at the output plane for
      dL/d(output features), conj(dL/d(output field)*) for the measured output field;
    * ``input_gradient(x, error)``: dL/dx for the plant's input encoding, from the error field measured
      at the input plane;
    * ``modulation()``: for every control a :class:`PhaseModulated` or :class:`AmplitudeModulated`.

    A plant implements ``_data_pass`` and ``_error_pass`` (called on validated, detached tensors under
    ``torch.no_grad()``; they record the ``frames_per_pass - 1`` extra exposures on the meter themselves),
    ``error_source``, ``input_gradient``, ``modulation`` and sets ``field_shape`` and ``frames_per_pass``.
    """

    offers = ("data_pass / error_pass: the data and the error field sent through the same optics, the field "
              "measured at every modulating plane (2 passes per gradient, frames_per_pass queries each)")

    field_shape: tuple
    frames_per_pass: int = 1

    def data_pass(self, x: torch.Tensor, controls: Mapping[str, torch.Tensor], *,
                  generator: torch.Generator | None = None) -> PlaneFields:
        """Forward pass with the field measured at every plane (``frames_per_pass`` queries)."""
        from .._validation import check_batch, check_generator
        x = check_batch("x", x, self.in_features).detach().to(self._device)  # as Plant.__call__
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator

        def check(result):
            _check_plane_fields(self, result, x.shape[0], "_data_pass", "output_field")
            self.check_measurement(result.output, x, call="_data_pass")
            return result
        return self._query("data", x, controls, lambda: self._data_pass(x, controls, gen), check,
                                 generator=generator)

    def error_pass(self, error: torch.Tensor, controls: Mapping[str, torch.Tensor], *,
                   generator: torch.Generator | None = None) -> PlaneFields:
        """The error field sent from the output plane through the optics (``frames_per_pass`` queries)."""
        from .._validation import check_generator
        shape = tuple(self.field_shape)
        if not isinstance(error, torch.Tensor) or not torch.is_complex(error) or error.ndim != 1 + len(shape) \
                or tuple(error.shape[1:]) != shape:
            raise ValueError(f"error must be a complex tensor of shape (batch, {', '.join(map(str, shape))}) (the "
                             f"field displayed at the output plane), got "
                             f"{getattr(error, 'dtype', type(error).__name__)} {tuple(getattr(error, 'shape', ()))}.")
        if not bool(torch.isfinite(torch.view_as_real(error)).all()):
            raise ValueError("error contains NaN or infinite values; no modulator can display them.")
        error = error.detach().to(self._device)  # displayed by the plant's own modulator
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator
        record_x = torch.view_as_real(error).reshape(error.shape[0], -1)

        def check(result):
            _check_plane_fields(self, result, error.shape[0], "_error_pass", "input_field")
            return result
        return self._query("error", record_x, controls, lambda: self._error_pass(error, controls, gen),
                                 check, generator=generator)

    @abc.abstractmethod
    def _data_pass(self, x, controls, generator) -> PlaneFields:
        """Forward pass on validated inputs: output features, output field, field at every plane."""

    @abc.abstractmethod
    def _error_pass(self, error, controls, generator) -> PlaneFields:
        """Error field from the output plane: field at every plane and at the input plane."""

    @abc.abstractmethod
    def error_source(self, data: PlaneFields, grad_output: torch.Tensor) -> torch.Tensor:
        """The complex error field to display at the output plane for dL/d(output features)."""

    @abc.abstractmethod
    def input_gradient(self, x: torch.Tensor, error: PlaneFields) -> torch.Tensor:
        """dL/dx (batch, in_features) from the error field measured at the input plane."""

    @abc.abstractmethod
    def modulation(self) -> dict:
        """For every control, :class:`PhaseModulated` or :class:`AmplitudeModulated`."""


def _check_plane_fields(plant, result, batch: int, call: str, plane: str) -> None:
    """The boundary check of a forward-symmetric pass: a finite complex field for every control, of shape
    (batch, *control_shape), and the finite field at the far plane."""
    owner = f"{type(plant).__name__}.{call}"
    if not isinstance(result, PlaneFields):
        raise TypeError(f"{owner} returned {type(result).__name__}, not PlaneFields.")
    _check_per_control(owner, plant.control_specs(), result.fields, batch, what="the field at the pixels of",
                       key="fields", complex_=True)
    _check_measured_field(owner, getattr(result, plane), (batch, *tuple(plant.field_shape)), plane)
