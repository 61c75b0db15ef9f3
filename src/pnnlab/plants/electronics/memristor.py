"""Memristor device model: conductances stored in analog resistive-switching devices and changed by
programming pulses.

Device physics implemented (per device, all vectorised over the array)
-----------------------------------------------------------------------
Normalised state ``w = (G - G_min) / (G_max - G_min)`` in [0, 1].

* **Soft bounds (nonlinear, asymmetric pulse response).** One potentiating (SET) pulse moves
  ``w <- w + a_up (1 - w)``, one depressing (RESET) pulse ``w <- w - a_down w``: the step shrinks as
  the device approaches its bound, and ``a_up != a_down`` makes potentiation and depression
  asymmetric. This is the soft-bounds model of Fuller et al., Science 364, 570 (2019) and of the IBM
  analog hardware kit (Rasch et al., IEEE AICAS 2021, doi:10.1109/AICAS51828.2021.9458494), and the
  exponential pulse-response curves measured on TaOx/HfOx devices (Prezioso et al., Nature 521, 61
  (2015), doi:10.1038/nature14441; Li et al., Nat. Commun. 9, 2385 (2018),
  doi:10.1038/s41467-018-04484-2).
  ``step_up``/``step_down`` are the steps at mid-range as a fraction of the range, so
  ``a = 2 * step``.
* **Cycle-to-cycle noise.** Each pulse adds an independent Gaussian error of standard deviation
  ``cycle_noise * step`` (in units of the range).
* **Vectorised pulse statistics (exact).** The n-pulse update is a linear recurrence
  ``w_{k+1} = (1 - a) w_k + c + eps_k`` (c = a for SET, 0 for RESET), so after n pulses
  ``w_n = c/a + (1 - a)^n (w_0 - c/a) + N(0, s^2 (1 - (1 - a)^(2n)) / (1 - (1 - a)^2))``
  exactly (s the per-pulse noise). Every device's n pulses are therefore drawn in O(1), instead
  of simulating pulses one by one.
* **Device-to-device variation.** Each device's ``a_up``, ``a_down`` are log-normally spread by
  ``step_spread``; drift exponents by ``drift_nu_spread``.
* **Programming (write) noise.** The first write of a target (write-verify) lands within
  ``write_noise`` (standard deviation, fraction of the range) of it.
* **Read noise.** Every read multiplies G by ``1 + read_noise * N(0, 1)`` (fresh each read).
* **Power-law drift (retention).** After programming at time t_p, the conductance relaxes towards
  G_min as ``G(t) - G_min = (G(t_p) - G_min) (1 + (t - t_p) / t0)^(-nu)``; this is the power-law
  drift law of phase-change and filamentary devices (Ielmini et al., IEEE TED 54, 308 (2007),
  doi:10.1109/TED.2006.888752) written relative to G_min so that the bounds hold.
* **Stuck devices.** A fraction ``stuck_fraction`` of devices is stuck at G_min or G_max (half
  each); pulses do not move them.

Programming from a requested target (the controller)
----------------------------------------------------
The trainer asks for target conductances; the controller keeps a digital copy of what its pulses
*should* have done (the nominal conductance, assuming the linear mid-range step) and sends
``n = round((target - nominal) / step)`` pulses, so sub-step requests accumulate until they are worth
a pulse. This is the mixed-precision scheme of Nandakumar et al., Front. Neurosci. 14, 406 (2020),
doi:10.3389/fnins.2020.00406. Programming is open loop: the real conductance drifts away from the
nominal one (soft bounds, asymmetry, noise) and nothing tells the trainer.

Simplifications: pulses have one fixed amplitude and width; the state is one variable per device
(no second-order memristor dynamics); drift and read noise do not depend on the conductance level.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..._validation import check_nonnegative, check_positive

__all__ = ["MemristorArray", "MemristorDevice", "HFOX_LI_2018", "IDEAL_DEVICE", "TAOX_YI_2023"]


@dataclass(frozen=True)
class MemristorDevice:
    """Parameters of one memristor technology (SI units). See the module docstring for the model."""

    g_min_S: float = 1e-6
    g_max_S: float = 1e-4
    step_up: float = 0.01
    step_down: float = 0.01
    step_spread: float = 0.0
    cycle_noise: float = 0.0
    write_noise: float = 0.0
    read_noise: float = 0.0
    drift_nu: float = 0.0
    drift_nu_spread: float = 0.0
    drift_t0_s: float = 1.0
    stuck_fraction: float = 0.0
    pulse_energy_J: float = 1e-12
    pulse_duration_s: float = 1e-7
    name: str = "custom"
    source: str = "assumed"

    def __post_init__(self) -> None:
        check_positive("g_min_S", self.g_min_S)
        check_positive("g_max_S", self.g_max_S)
        if not self.g_min_S < self.g_max_S:
            raise ValueError(f"g_min_S must be < g_max_S, got g_min_S={self.g_min_S}, g_max_S={self.g_max_S}; "
                             f"the conductance range is [g_min_S, g_max_S].")
        for name in ("step_up", "step_down"):
            value = check_positive(name, getattr(self, name))
            if value >= 0.5:
                raise ValueError(f"{name} must be < 0.5 (a pulse moves at most the whole range from the "
                                 f"opposite bound), got {value}; typical analog devices have 0.001 to 0.05.")
        for name in ("step_spread", "cycle_noise", "write_noise", "read_noise", "drift_nu",
                     "drift_nu_spread", "pulse_energy_J", "pulse_duration_s"):
            check_nonnegative(name, getattr(self, name))
        check_positive("drift_t0_s", self.drift_t0_s)
        if not 0.0 <= self.stuck_fraction <= 1.0:
            raise ValueError(f"stuck_fraction must lie in [0, 1], got {self.stuck_fraction}.")

    @property
    def range_S(self) -> float:
        return self.g_max_S - self.g_min_S

    @property
    def levels(self) -> float:
        """About how many pulses take the device across its range at mid-range step size."""
        return 1.0 / (0.5 * (self.step_up + self.step_down))

    def ideal(self) -> "MemristorDevice":
        """The same device without any noise, spread, drift or stuck devices (still pulsed and
        soft-bounded)."""
        return replace(self, step_spread=0.0, cycle_noise=0.0, write_noise=0.0, read_noise=0.0,
                       drift_nu=0.0, drift_nu_spread=0.0, stuck_fraction=0.0, name=self.name + " (ideal)")


#: noise-free, symmetric, fine-grained device (1000 levels): the limit in which pulsed programming
#: approaches exact float writes.
IDEAL_DEVICE = MemristorDevice(g_min_S=1e-6, g_max_S=1e-4, step_up=1e-3, step_down=1e-3,
                               pulse_energy_J=1e-12, pulse_duration_s=1e-7, name="ideal",
                               source="idealised reference device (no published counterpart)")

#: TaOx analog memristor of the kind used for in-situ energy-minimisation training by Yi et al.,
#: Nature Electronics 6, 45 (2023), doi:10.1038/s41928-022-00869-w. The numerical values are
#: representative of analog TaOx devices (tens of microsiemens, ~100 levels, SET steps larger than
#: RESET steps, a few % cycle-to-cycle noise); they are assumed, not fitted to that paper's data.
TAOX_YI_2023 = MemristorDevice(g_min_S=5e-6, g_max_S=1e-4, step_up=0.012, step_down=0.008,
                               step_spread=0.2, cycle_noise=0.3, write_noise=0.01, read_noise=0.005,
                               drift_nu=0.005, drift_nu_spread=0.002, drift_t0_s=1.0,
                               stuck_fraction=0.005, pulse_energy_J=1e-12, pulse_duration_s=5e-8,
                               name="TaOx (Yi et al. 2023)",
                               source="Yi et al., Nat. Electron. 6, 45 (2023), doi:10.1038/s41928-022-00869-w "
                                      "(device class); values assumed, representative of analog TaOx")

#: Ta/HfO2 1T1R device of the in-situ trained 128x64 array of Li et al., Nat. Commun. 9, 2385
#: (2018), doi:10.1038/s41467-018-04484-2. Values are representative (hundreds of microsiemens,
#: stronger nonlinearity and noise than TaOx), assumed rather than fitted.
HFOX_LI_2018 = MemristorDevice(g_min_S=5e-5, g_max_S=8e-4, step_up=0.02, step_down=0.015,
                               step_spread=0.3, cycle_noise=0.5, write_noise=0.02, read_noise=0.01,
                               drift_nu=0.01, drift_nu_spread=0.005, drift_t0_s=1.0,
                               stuck_fraction=0.01, pulse_energy_J=5e-12, pulse_duration_s=2e-8,
                               name="HfOx (Li et al. 2018)",
                               source="Li et al., Nat. Commun. 9, 2385 (2018), doi:10.1038/s41467-018-04484-2 "
                                      "(device class); values assumed, representative of Ta/HfO2 1T1R cells")


class MemristorArray:
    """The hidden physical state of an array of memristors of one technology.

    Holds the true normalised states, the per-device spreads, the stuck devices and the
    programming times. Plants own one array per conductance control and keep it private; training
    methods reach it only through the plant (programming by sending targets, reading through
    measurements).
    """

    def __init__(self, shape: tuple[int, ...], device: MemristorDevice, *, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32) -> None:
        if not isinstance(device, MemristorDevice):
            raise TypeError(f"device must be a MemristorDevice (for example TAOX_YI_2023), got "
                            f"{type(device).__name__}.")
        self.shape = tuple(shape)
        self.device = device
        self.dtype = dtype
        d, g = device, generator

        def lognormal(spread):
            if spread == 0:
                return torch.ones(self.shape, dtype=dtype)
            return torch.exp(spread * torch.randn(self.shape, generator=g, dtype=dtype) - 0.5 * spread ** 2)

        self._a_up = (2 * d.step_up * lognormal(d.step_spread)).clamp(max=0.99)
        self._a_down = (2 * d.step_down * lognormal(d.step_spread)).clamp(max=0.99)
        self._nu = (d.drift_nu + d.drift_nu_spread * torch.randn(self.shape, generator=g, dtype=dtype)).clamp_min(0)
        stuck = torch.rand(self.shape, generator=g, dtype=dtype) < d.stuck_fraction
        self._stuck = stuck
        self._stuck_value = (torch.rand(self.shape, generator=g, dtype=dtype) < 0.5).to(dtype)
        self._w = torch.zeros(self.shape, dtype=dtype)
        self._t_programmed = torch.zeros(self.shape, dtype=dtype)
        self._clock_s = 0.0
        self._nominal: torch.Tensor | None = None  # controller's digital copy (siemens)
        #: counters for energy accounting (public: they are what the programming circuit counts)
        self.pulses = 0
        self.programming_energy_J = 0.0
        self.programming_seconds = 0.0

    # ---- time ---------------------------------------------------------------------------------
    @property
    def clock_s(self) -> float:
        return self._clock_s

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of wall time pass (drift)."""
        self._clock_s += check_nonnegative("seconds", seconds)

    def _drifted_w(self) -> torch.Tensor:
        if self.device.drift_nu == 0 and self.device.drift_nu_spread == 0:
            w = self._w
        else:
            elapsed = (self._clock_s - self._t_programmed).clamp_min(0)
            w = self._w * (1 + elapsed / self.device.drift_t0_s).pow(-self._nu)
        return torch.where(self._stuck, self._stuck_value, w)

    # ---- state --------------------------------------------------------------------------------
    def conductance(self) -> torch.Tensor:
        """The true conductance now (drift included, no read noise), in siemens."""
        return self.device.g_min_S + self.device.range_S * self._drifted_w()

    def read(self, generator: torch.Generator) -> torch.Tensor:
        """One read of every device: true conductance times (1 + read noise)."""
        g = self.conductance()
        if self.device.read_noise:
            g = g * (1 + self.device.read_noise * torch.randn(self.shape, generator=generator, dtype=self.dtype))
        return g

    @property
    def nominal(self) -> torch.Tensor | None:
        """What the controller believes it has programmed (siemens); None before the first write."""
        return self._nominal

    # ---- programming --------------------------------------------------------------------------
    def write(self, target_S: torch.Tensor, generator: torch.Generator) -> None:
        """Initial write-verify to ``target_S``: lands within the write noise of it."""
        d = self.device
        w = (target_S.to(self.dtype) - d.g_min_S) / d.range_S
        if d.write_noise:
            w = w + d.write_noise * torch.randn(self.shape, generator=generator, dtype=self.dtype)
        self._w = w.clamp(0, 1)
        self._t_programmed = torch.full(self.shape, self._clock_s, dtype=self.dtype)
        self._nominal = target_S.to(self.dtype).clone()

    def program(self, target_S: torch.Tensor, generator: torch.Generator) -> dict:
        """Send the pulses that move the controller's nominal conductance to ``target_S``.

        Returns ``{"pulses", "energy_J", "seconds"}`` for this programming round (row-parallel
        programming: all devices of a row at once, rows one after another).
        """
        if self._nominal is None:
            self.write(target_S, generator)
            return {"pulses": 0, "energy_J": 0.0, "seconds": 0.0}
        d = self.device
        delta = target_S.to(self.dtype) - self._nominal
        up_S, down_S = d.step_up * d.range_S, d.step_down * d.range_S
        n = torch.where(delta >= 0, torch.round(delta / up_S), -torch.round(-delta / down_S))
        if not bool((n != 0).any()):
            return {"pulses": 0, "energy_J": 0.0, "seconds": 0.0}
        self._nominal = self._nominal + torch.where(n > 0, n * up_S, n * down_S)
        self.apply_pulses(n, generator)
        count = int(n.abs().sum())
        rows = self.shape[0] if len(self.shape) > 1 else 1
        per_row = n.abs().reshape(rows, -1).amax(dim=1)
        seconds = float(per_row.sum()) * d.pulse_duration_s
        energy = count * d.pulse_energy_J
        self.pulses += count
        self.programming_energy_J += energy
        self.programming_seconds += seconds
        return {"pulses": count, "energy_J": energy, "seconds": seconds}

    def apply_pulses(self, n: torch.Tensor, generator: torch.Generator) -> None:
        """Apply ``n`` pulses to every device (n > 0 SET, n < 0 RESET), with the exact n-pulse
        statistics of the soft-bounds model (module docstring)."""
        d = self.device
        n = n.to(self.dtype)
        moved = (n != 0) & ~self._stuck
        w0 = self._drifted_w()  # drift up to now is frozen into the state at programming
        up = n > 0
        a = torch.where(up, self._a_up, self._a_down)
        c_over_a = up.to(self.dtype)                       # fixed point: 1 for SET, 0 for RESET
        decay = (1 - a).pow(n.abs())
        w = c_over_a + decay * (w0 - c_over_a)
        if d.cycle_noise:
            step = torch.where(up, torch.full_like(a, d.step_up), torch.full_like(a, d.step_down))
            s = d.cycle_noise * step
            one_minus = (1 - a) ** 2
            var = s ** 2 * (1 - decay ** 2) / (1 - one_minus).clamp_min(1e-12)
            w = w + var.sqrt() * torch.randn(self.shape, generator=generator, dtype=self.dtype)
        w = w.clamp(0, 1)
        # devices that received pulses start a new retention period; the others keep their stored
        # (undrifted) state and programming time, so their drift continues undisturbed
        self._w = torch.where(moved, w, self._w)
        self._t_programmed = torch.where(moved, torch.full_like(self._t_programmed, self._clock_s),
                                         self._t_programmed)

    def __repr__(self) -> str:
        return f"MemristorArray(shape={self.shape}, device={self.device.name!r})"


def program_arrays(pairs, generator: torch.Generator, meter) -> dict:
    """Program each ``(array, target_S)`` pair, charge the pulses' time and energy to ``meter`` and
    return the totals ``{"pulses", "energy_J", "seconds"}``."""
    total = {"pulses": 0, "energy_J": 0.0, "seconds": 0.0}
    for array, target in pairs:
        stats = array.program(target, generator)
        for key in total:
            total[key] += stats[key]
    meter.charge(seconds=total["seconds"], joules=total["energy_J"])
    return total


def soft_bounds_after(w0: torch.Tensor, n: int, a_up: float, a_down: float) -> torch.Tensor:
    """Deterministic state after ``n`` identical pulses (reference formula for tests)."""
    if n >= 0:
        return 1 - (1 - a_up) ** n * (1 - w0)
    return (1 - a_down) ** (-n) * w0

