"""Memristor crossbar layer: a matrix-vector multiplier whose weights are differential pairs of
memristors, trained in situ with pulsed, asymmetric, noisy updates, read through a DAC/ADC periphery.

Physics (Prezioso et al., Nature 521, 61 (2015), doi:10.1038/nature14441; Li et al., Nat. Commun.
9, 2385 (2018), doi:10.1038/s41467-018-04484-2): a digital input vector ``x`` is scaled per sample
(``x / s``, ``s = max_j |x_j|``: aihwkit's default "abs-max noise management"), converted by the DACs
(quantised, bounded) into column voltages ``V_j = V_read u_j``, the row currents are summed by
Kirchhoff's current law, ``I_i = sum_j (G+_ij - G-_ij) V_j``, and read by transimpedance amplifiers
of gain ``1 / (V_read (G_max - G_min))`` (design range) into ADCs (output noise, quantisation,
bound), after which the digital side multiplies by ``s`` again. With an ideal periphery

    y = x W^T,   W = (G+ - G-) / (G_max - G_min)  in [-1, 1].

The conductances are :class:`~pnnlab.plants.electronics.memristor.MemristorArray` s (hidden truth:
soft-bounded asymmetric pulse response, cycle-to-cycle and device-to-device variation, read noise,
RRAM relaxation or drift, stuck devices). Every change of the requested conductances is turned into
programming pulses by :meth:`MemristorCrossbarPlant.program` (called automatically at each query),
with the vectorised n-pulse statistics of the device model: a 256 x 256 layer is updated in one pass
over the array, not pulse by pulse.

Periphery (:class:`CrossbarPeriphery`): the reference is the IO parameters of the IBM analog
hardware kit (aihwkit ``IOParameters``, ``src/aihwkit/simulator/parameters/io.py``, and its torch
forward pass ``AnalogMVM`` in ``src/aihwkit/simulator/tiles/analog_mvm.py``), whose defaults the
plant uses: ``inp_bound = 1``, ``inp_res = 1/126`` (a step of ``inp_res * 2 inp_bound``: 7 bits plus
sign), ``out_bound = 12``, ``out_res = 1/510`` (step ``out_res * 2 out_bound``: 9 bits plus sign),
``out_noise = 0.06`` (Gaussian, added before the ADC), in the units of ``x W^T`` with
``|W| <= 1`` and ``|u| <= 1``. The bound on the output current is therefore
``out_bound V_read (G_max - G_min)`` (0.23 mA for the TaOx preset at 0.2 V); the output noise is
``0.06 V_read (G_max - G_min)`` referred to the row current. ``CrossbarPeriphery.ideal()`` switches it
all off.

Time: the plant has its own device clock (``elapsed_seconds``): the device seconds of every query
(``read_time_s`` per sample) and of every programming round, plus idle time added with
:meth:`~MemristorCrossbarPlant.advance_time`. Resetting the meter does not reset it. The devices'
relaxation and drift follow it, so they act during training and during idle periods.

Energy: a read dissipates ``sum_ij G_ij V_j^2`` for ``read_time_s`` (assumed 10 ns, the order of an
analog crossbar read cycle), with the DAC voltages ``V_j``; programming costs the device's pulse
energy per pulse. DAC and ADC conversion energy is not included here.

Twins: :meth:`~MemristorCrossbarPlant.nominal_twin` uses the requested conductances and the design
periphery (quantisation and bounds, which are design values, without the output noise);
:meth:`~MemristorCrossbarPlant.true_twin` uses what the devices actually hold (see its docstring).

Simplifications: no wire resistance (IR drop), sneak paths, input noise, output non-linearity or
aihwkit's iterative bound management (an output beyond the bound is clipped, not re-read at a lower
input scale); the TIA is linear; deterministic rounding in both converters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import devices
from ..._validation import check_int, check_nonnegative, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant, load_object_state, object_state
from ..capabilities import Simulated
from .memristor import TAOX_YI_2023, MemristorArray, MemristorDevice, program_arrays

__all__ = ["AIHWKIT_PERIPHERY", "CrossbarPeriphery", "CrossbarTrueTwin", "CrossbarTwin", "MemristorCrossbarPlant"]


def _quantise(v: torch.Tensor, step: float) -> torch.Tensor:
    """Round to a multiple of ``step``; the gradient passes straight through (as in aihwkit's
    ``UniformQuantize``)."""
    if not (v.requires_grad and torch.is_grad_enabled()):
        return torch.round(v / step).mul_(step)
    return v + (torch.round(v / step) * step - v).detach()


def _check_bound(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value <= 0:
        raise ValueError(f"CrossbarPeriphery.{name} must be a positive number or math.inf (no bound), "
                         f"got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class CrossbarPeriphery:
    """DAC, ADC and output line of a crossbar read, in aihwkit's ``IOParameters`` conventions.

    * ``inp_bound``: DAC full scale (inputs, after the per-sample scaling, are clipped to
      ``[-inp_bound, inp_bound]``); ``math.inf`` for none.
    * ``inp_res``: DAC step as a fraction of the full range ``2 inp_bound`` (0: continuous).
    * ``out_bound``: ADC full scale, the bound on the output current in units of
      ``V_read (G_max - G_min)``; ``math.inf`` for none.
    * ``out_res``: ADC step as a fraction of ``2 out_bound`` (0: continuous).
    * ``out_noise``: standard deviation of the Gaussian noise on each output before the ADC.
    * ``noise_management``: scale every input vector by ``1 / max_j |x_j|`` before the DAC and the
      output back by ``max_j |x_j|`` after the ADC (aihwkit's default ``NoiseManagementType.ABS_MAX``).

    The defaults are aihwkit's ``IOParameters`` defaults (see the module docstring).
    """

    inp_bound: float = 1.0
    inp_res: float = 1.0 / (2 ** 7 - 2)
    out_bound: float = 12.0
    out_res: float = 1.0 / (2 ** 9 - 2)
    out_noise: float = 0.06
    noise_management: bool = True
    source: str = ("aihwkit IOParameters defaults (src/aihwkit/simulator/parameters/io.py): inp_bound 1, "
                   "inp_res 1/126, out_bound 12, out_res 1/510, out_noise 0.06, abs-max noise management")

    def __post_init__(self) -> None:
        _check_bound("inp_bound", self.inp_bound)
        _check_bound("out_bound", self.out_bound)
        for name, bound in (("inp_res", self.inp_bound), ("out_res", self.out_bound)):
            value = check_nonnegative(f"CrossbarPeriphery.{name}", getattr(self, name))
            if value >= 1:
                raise ValueError(f"CrossbarPeriphery.{name} is the converter step as a fraction of its full "
                                 f"range and must be < 1, got {value}; for b bits pass 1 / (2**b - 2).")
            if value > 0 and math.isinf(bound):
                raise ValueError(f"CrossbarPeriphery.{name}={value} needs a finite bound to quantise against; "
                                 f"set the bound or {name}=0.")
        check_nonnegative("CrossbarPeriphery.out_noise", self.out_noise)
        if not isinstance(self.noise_management, bool):
            raise TypeError(f"CrossbarPeriphery.noise_management must be True or False, got "
                            f"{self.noise_management!r}.")

    @classmethod
    def ideal(cls) -> "CrossbarPeriphery":
        """No quantisation, no bounds, no output noise, no input scaling: ``y = x W^T`` exactly."""
        return cls(inp_bound=math.inf, inp_res=0.0, out_bound=math.inf, out_res=0.0, out_noise=0.0,
                   noise_management=False, source="ideal periphery")

    @property
    def input_step(self) -> float:
        return self.inp_res * 2 * self.inp_bound if self.inp_res else 0.0

    @property
    def output_step(self) -> float:
        return self.out_res * 2 * self.out_bound if self.out_res else 0.0

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Digital inputs -> DAC levels ``u`` (in units of ``V_read``) and the per-sample scale.
        Differentiable (straight-through rounding, clipping)."""
        scale = None
        u = x
        if self.noise_management:
            scale = x.detach().abs().amax(dim=-1, keepdim=True)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            u = u / scale
        if self.inp_res:
            u = _quantise(u, self.input_step)
        if math.isfinite(self.inp_bound):
            u = u.clamp(-self.inp_bound, self.inp_bound)
        return u, scale

    def decode(self, y: torch.Tensor, scale: torch.Tensor | None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Analog outputs (units of ``V_read (G_max - G_min)``) -> digital outputs: output noise (only
        when a ``generator`` is given), ADC rounding, bound, then the input scale undone."""
        if generator is not None and self.out_noise:
            y = y + self.out_noise * devices.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        if self.out_res:
            y = _quantise(y, self.output_step)
        if math.isfinite(self.out_bound):
            y = y.clamp(-self.out_bound, self.out_bound)
        if scale is not None:
            y = y * scale
        return y

    def apply(self, x: torch.Tensor, weight: torch.Tensor, generator: torch.Generator | None = None):
        """The whole read ``decode(encode(x) @ weight.T)``; returns ``(y, u)`` (u: the DAC levels)."""
        u, scale = self.encode(x)
        return self.decode(u @ weight.T, scale, generator), u


#: the periphery the plant uses by default: aihwkit's IOParameters defaults
AIHWKIT_PERIPHERY = CrossbarPeriphery()


class CrossbarTwin(Twin):
    """y = periphery(x, (G+ - G-) / (G_max - G_min)) with the requested (nominal) conductances and the
    periphery's deterministic design values (no output noise); ``periphery=None`` is the ideal
    ``x W^T``."""

    def __init__(self, *, in_features: int, out_features: int, range_S: float,
                 periphery: CrossbarPeriphery | None = None) -> None:
        super().__init__(in_features=in_features, out_features=out_features)
        if periphery is not None and not isinstance(periphery, CrossbarPeriphery):
            raise TypeError(f"periphery must be a CrossbarPeriphery or None, got {type(periphery).__name__}.")
        self.range_S = range_S
        self.periphery = periphery

    def forward(self, x, controls):
        w = ((controls["g_plus"] - controls["g_minus"]) / self.range_S).to(x.dtype)
        if self.periphery is None:
            return x @ w.T
        return self.periphery.apply(x, w)[0]


class CrossbarTrueTwin(Twin):
    """The plant's true physics with noise off (diagnostics and the ideal bound only).

    A live view of the plant's devices: each call evaluates, for the requested ``controls``, the
    conductances the devices would hold right after the plant programmed them towards those controls
    at the current device time (:meth:`MemristorArray.programmed_conductance`: actual states with
    their programming history, soft bounds, asymmetry, each device's bounds and step sizes, stuck
    devices, relaxation/drift up to now; cycle-to-cycle and write noise off), read without read noise
    through the periphery without output noise. So ``true_twin(x, c)`` equals a noiseless plant's
    ``plant(x, c)`` for any ``c``, before or after the plant is queried with it.

    Controls map as on the hardware: the gradient with respect to a requested conductance is the
    device's soft-bounded response per requested siemens (straight-through for the integer pulse
    count): ``dG/dG_req = (range_ij / range) * 2 (1 - w)`` towards SET, ``2 w`` towards RESET (times
    the device's step scale), zero for stuck devices.
    """

    def __init__(self, plant: "MemristorCrossbarPlant") -> None:
        super().__init__(in_features=plant.in_features, out_features=plant.out_features)
        object.__setattr__(self, "_plant", plant)  # not a submodule: plants are not nn.Modules

    def forward(self, x, controls):
        p = self._plant
        gp = p._plus.programmed_conductance(controls["g_plus"])
        gm = p._minus.programmed_conductance(controls["g_minus"])
        w = ((gp - gm) / p.device_model.range_S).to(x.dtype)
        return p.periphery.apply(x, w)[0]


class MemristorCrossbarPlant(Plant, Simulated):
    """A crossbar of differential memristor pairs computing y = x W^T through a DAC/ADC periphery
    (see the module docstring)."""

    summary = "memristor crossbar, differential pairs, pulsed asymmetric noisy in-situ updates"

    def __init__(self, *, in_features: int, out_features: int, device: MemristorDevice = TAOX_YI_2023,
                 periphery: CrossbarPeriphery = AIHWKIT_PERIPHERY,
                 read_voltage_V: float = 0.2, read_time_s: float = 1e-8,
                 seed: int | torch.Generator | None = 0) -> None:
        in_features = check_int("in_features", in_features)
        out_features = check_int("out_features", out_features)
        if not isinstance(device, MemristorDevice):
            raise TypeError(f"device must be a MemristorDevice such as TAOX_YI_2023, got {type(device).__name__}.")
        if not isinstance(periphery, CrossbarPeriphery):
            raise TypeError(f"periphery must be a CrossbarPeriphery (CrossbarPeriphery() for aihwkit's "
                            f"defaults, CrossbarPeriphery.ideal() for none), got {type(periphery).__name__}.")
        self.read_voltage_V = check_positive("read_voltage_V", read_voltage_V)
        self.read_time_s = check_positive("read_time_s", read_time_s)
        super().__init__(in_features=in_features, out_features=out_features,
                         cost=CostModel(seconds_per_sample=read_time_s,
                                        source="read time assumed (10 ns analog read cycle); read energy "
                                               "sum G V^2 t and pulse energy added directly to the meter"),
                         seed=seed)
        self.device_model = device  # the memristor model (Plant.device is the torch device)
        self.periphery = periphery
        self._elapsed_s = 0.0
        shape = (out_features, in_features)
        self._plus = MemristorArray(shape, device, generator=self._generator)
        self._minus = MemristorArray(shape, device, generator=self._generator)

    def control_specs(self):
        d = self.device_model
        shape = (self.out_features, self.in_features)
        return {"g_plus": ControlSpec(shape, d.g_min_S, d.g_max_S, "S", "positive device of each pair"),
                "g_minus": ControlSpec(shape, d.g_min_S, d.g_max_S, "S", "negative device of each pair")}

    def initial_controls(self, generator=None):
        gen = generator if generator is not None else self._generator
        d = self.device_model
        k = 1.0 / self.in_features ** 0.5
        w = k * (2 * devices.rand((self.out_features, self.in_features), generator=gen, device=self.device) - 1)
        mid = 0.5 * (d.g_min_S + d.g_max_S)
        return {"g_plus": mid + 0.5 * d.range_S * w, "g_minus": mid - 0.5 * d.range_S * w}

    def describe(self):
        return f"MemristorCrossbarPlant({self.in_features} -> {self.out_features}, device={self.device_model.name!r})"

    @property
    def output_current_bound_A(self) -> float:
        """The largest row current the ADC reads (amperes): ``out_bound V_read (G_max - G_min)``."""
        return self.periphery.out_bound * self.read_voltage_V * self.device_model.range_S

    # ---- device time -----------------------------------------------------------------------
    @property
    def elapsed_seconds(self) -> float:
        """The crossbar's own clock (device seconds of every query and programming round, plus idle
        time from :meth:`advance_time`); the devices' relaxation and drift follow it."""
        return self._elapsed_s

    def advance_time(self, seconds: float) -> None:
        """Let ``seconds`` pass with the plant idle (the devices keep relaxing)."""
        seconds = check_nonnegative("seconds", seconds)
        self._elapsed_s += seconds
        self._plus.advance(seconds)
        self._minus.advance(seconds)

    def wait(self, seconds: float) -> None:
        """Same as :meth:`advance_time` (kept for existing code)."""
        self.advance_time(seconds)

    # ---- hardware operations ---------------------------------------------------------------
    def program(self, controls) -> dict:
        """Pulse both arrays towards the requested conductances; returns this round's pulse counts.
        The programming time passes on the device clock."""
        controls = self.validate_controls(controls)
        stats = self._program(controls)
        self.advance_time(stats["seconds"])
        return stats

    def _program(self, controls):
        # generator None: programming noise is device state, drawn from each array's own generator
        return program_arrays(((self._plus, controls["g_plus"]), (self._minus, controls["g_minus"])),
                              None, self.meter)

    @property
    def pulses(self) -> int:
        return self._plus.pulses + self._minus.pulses

    def state_dict(self) -> dict:
        """Generators and clocks (the default) plus both arrays' device state: conductance states,
        relaxation draws, programming times, clocks, pulse and energy counters, own generators."""
        return super().state_dict() | {"arrays": [object_state(a, tensors=True) for a in (self._plus, self._minus)]}

    def load_state_dict(self, state) -> None:
        state = dict(state)
        arrays = state.pop("arrays")
        super().load_state_dict(state)
        for array, saved in zip((self._plus, self._minus), arrays, strict=True):
            load_object_state(array, saved)
            array.to(self.device)  # a saved tensor that replaced one (no copy in place) lands here

    def _measure(self, x, controls, generator):
        stats = self._program(controls)
        gp, gm = self._plus.read(generator), self._minus.read(generator)
        y, u = self.periphery.apply(x, ((gp - gm) / self.device_model.range_S).to(x.dtype), generator)
        v2 = (self.read_voltage_V * u) ** 2
        self.meter.charge(joules=float((v2 @ (gp + gm).sum(0).to(x.dtype)).sum()) * self.read_time_s)
        # programmed and read at the same instant; then the round's and the read's time passes
        self.advance_time(stats["seconds"] + self.cost.seconds(x.shape[0]))
        return y

    def nominal_twin(self):
        """Requested conductances and the design periphery (no output noise)."""
        return CrossbarTwin(in_features=self.in_features, out_features=self.out_features,
                            range_S=self.device_model.range_S, periphery=self.periphery)

    def true_twin(self):
        """What the devices actually hold, noise off (see :class:`CrossbarTrueTwin`): for diagnostics
        and the ideal bound only."""
        return CrossbarTrueTwin(self)
