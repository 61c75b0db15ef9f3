"""Memristor device model: conductances stored in analog resistive-switching devices and changed by
programming pulses.

Device physics implemented (per device, all vectorised over the array)
-----------------------------------------------------------------------
Normalised state ``w = (G - G_min,ij) / (G_max,ij - G_min,ij)`` in [0, 1], with each device's own
bounds (device-to-device variation, below).

* **Soft bounds (nonlinear, asymmetric pulse response).** One potentiating (SET) pulse moves
  ``w <- w + a_up (1 - w)``, one depressing (RESET) pulse ``w <- w - a_down w``: the step shrinks as
  the device approaches its bound, and ``a_up != a_down`` makes potentiation and depression
  asymmetric. This is the soft-bounds model of Fuller et al., Science 364, 570 (2019) and of the IBM
  analog hardware kit (aihwkit ``SoftBoundsDevice``; Rasch et al., IEEE AICAS 2021,
  doi:10.1109/AICAS51828.2021.9458494), and the exponential pulse-response curves measured on
  TaOx/HfOx devices (Prezioso et al., Nature 521, 61 (2015), doi:10.1038/nature14441; Li et al.,
  Nat. Commun. 9, 2385 (2018), doi:10.1038/s41467-018-04484-2).
  ``step_up``/``step_down`` are the steps at mid-range as a fraction of the range, so
  ``a = 2 * step``.
* **Cycle-to-cycle noise**, standard deviation ``sigma = cycle_noise`` in units of the step, in one of
  the two forms of aihwkit's ``LinearStepDevice``/``SoftBoundsDevice`` (``mult_noise``; aihwkit
  ``src/aihwkit/simulator/configs/devices.py``, where ``dw_min_std`` is ``sigma``):

  - *multiplicative* (``multiplicative_cycle_noise=True``, the default, as in aihwkit's
    ``SoftBoundsDevice``): each pulse's soft-bounded step is scaled by ``(1 + sigma xi)``,
    ``w <- w + a_up (1 - w)(1 + sigma xi)``, so the noise shrinks with the step near a bound;
  - *additive*: ``w <- w + a_up (1 - w) + sigma step xi``, a noise of fixed size even where the mean
    step has vanished.

  Multiplicative is the default because it is aihwkit's default for the soft-bounds model used here,
  and because with additive noise a device at its soft bound would keep jittering by a full
  mid-range step per pulse although its mean response there is zero.
* **Vectorised pulse statistics.** n identical pulses are drawn in O(1) per device, instead of
  simulating pulses one by one.

  - Additive: the recurrence ``w_{k+1} = (1 - a) w_k + c + eps_k`` (c = a for SET, 0 for RESET)
    gives, exactly, ``w_n = c/a + (1 - a)^n (w_0 - c/a) + N(0, s^2 (1 - (1 - a)^(2n)) / (1 - (1 - a)^2))``
    (s = sigma step).
  - Multiplicative: the distance to the pulse's fixed point, ``u = 1 - w`` (SET) or ``u = w``
    (RESET), follows ``u_{k+1} = u_k (1 - a - a sigma xi_k)``, so ``E[u_n] = u_0 (1 - a)^n`` and
    ``E[u_n^2] = u_0^2 ((1 - a)^2 + a^2 sigma^2)^n`` exactly; ``u_n`` is drawn log-normal with exactly
    this mean and variance (the log of a product of n factors tends to a Gaussian; for one pulse the
    factor's relative spread is ``a sigma / (1 - a)``, below 1 %, where Gaussian and log-normal agree).
* **Device-to-device variation** (aihwkit ``PulsedDevice``'s ``dw_min_dtod``, ``up_down_dtod``,
  ``w_min_dtod``, ``w_max_dtod``): each device's step scale is log-normal with relative spread
  ``step_spread`` (common to both directions); its up/down balance is ``a_up (1 + beta)``,
  ``a_down (1 - beta)`` with ``beta ~ N(0, up_down_spread)``; its bounds are
  ``G_min,ij = g_min_S * LN(g_min_spread)``, ``G_max,ij = g_max_S * LN(g_max_spread)`` (log-normal
  factors of mean 1, the range kept at least 10 % of the design range); power-law drift exponents
  vary by ``drift_nu_spread``.
* **Programming (write) noise.** The first write-verify of a target lands within ``write_noise``
  (standard deviation, fraction of the range) of it, inside the device's own bounds.
* **Read noise.** Every read multiplies G by ``1 + read_noise * N(0, 1)`` (fresh each read, drawn
  from the caller's generator: it is measurement noise).
* **Retention.** Two laws, each off when its constants are zero, both measured from the device's
  last programming time ``t_p`` on the device clock (:meth:`MemristorArray.advance`):

  - RRAM conductance relaxation (:class:`LogTimeRelaxation`, used by the TaOx/HfOx presets): a
    level-independent mean decrease and a spread that both grow with ``log t`` (Falcone et al.,
    arXiv:2502.04524 (2025), CMO/HfOx ReRAM, as implemented in aihwkit's ``ReRamCMONoiseModel``);
  - power-law drift (phase-change memory; Ielmini et al., IEEE TED 54, 308 (2007),
    doi:10.1109/TED.2006.888752): ``w(t) = w(t_p) (1 + (t - t_p) / t0)^(-nu)``, written relative to
    ``G_min`` so that the bounds hold. It is a PCM law and is off in the RRAM presets.
* **Stuck devices.** A fraction ``stuck_fraction`` of devices is stuck at its own G_min or G_max
  (half each); pulses do not move them.

Randomness: the device-to-device draws come from the generator passed at construction; programming
noise (write noise, cycle-to-cycle noise) and the per-device relaxation draws are *device state* and
come from a generator the array owns (seeded from the construction generator), never from a
measurement's generator, so evaluating a model cannot change its training. Read noise is measurement
noise and uses the generator of the read.

Programming from a requested target (the controller)
----------------------------------------------------
The trainer asks for target conductances; the controller keeps a digital copy of what its pulses
*should* have done (the nominal conductance, assuming the linear mid-range step of the design
range) and sends ``n = round((target - nominal) / step)`` pulses, so sub-step requests accumulate
until they are worth a pulse. This is the mixed-precision scheme of Nandakumar et al., Front.
Neurosci. 14, 406 (2020), doi:10.3389/fnins.2020.00406. Programming is open loop: the real
conductance departs from the nominal one (soft bounds, asymmetry, noise, bounds, relaxation) and
nothing tells the trainer.

Simplifications: pulses have one fixed amplitude and width; the state is one variable per device
(no second-order memristor dynamics); read noise does not depend on the level; all devices of a
programming round are programmed at the same instant of the device clock; relaxation of a device
restarts from its state at its latest pulse.

Code layout: this module holds the array state and its programming (:class:`MemristorArray`,
:func:`program_arrays`, :func:`soft_bounds_after`); the technology parameters and presets
(:class:`MemristorDevice`, ``IDEAL_DEVICE``, ``TAOX_YI_2023``, ``HFOX_LI_2018``) are in
:mod:`pnnlab.plants.electronics.memristor_devices` and the retention laws (:class:`LogTimeRelaxation`,
the power-law drift) in :mod:`pnnlab.plants.electronics.memristor_retention`; all are re-exported here.
"""

from __future__ import annotations

import torch

from ... import devices as _devices
from ..._validation import check_nonnegative
from .memristor_devices import HFOX_LI_2018, IDEAL_DEVICE, TAOX_YI_2023, MemristorDevice
from .memristor_retention import LogTimeRelaxation, power_law_drift, relax

__all__ = ["HFOX_LI_2018", "IDEAL_DEVICE", "LogTimeRelaxation", "MemristorArray", "MemristorDevice",
           "TAOX_YI_2023", "program_arrays", "soft_bounds_after"]


#: above this fraction of pulsed devices, apply_pulses computes every device (cheaper than gather/scatter)
_DENSE_FRACTION = 0.5


def _seed_from(generator: torch.Generator) -> int:
    return int(_devices.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device))


class MemristorArray:
    """The hidden physical state of an array of memristors of one technology.

    Holds the true normalised states, the per-device spreads and bounds, the stuck devices, the
    programming times and the device clock. Plants own one array per conductance control and keep it
    private; training methods reach it only through the plant (programming by sending targets,
    reading through measurements).

    ``generator`` draws the device-to-device variation at construction and seeds the array's own
    generator, which draws every programming-noise and relaxation sample afterwards.

    ``device_model`` is the :class:`MemristorDevice` (the technology; the constructor keyword is
    ``device=``); the array's tensors live on one torch device (:attr:`torch_device`, CPU at
    construction) and move with :meth:`to` (a plant's ``to`` moves its arrays). Its own generator stays
    on the CPU, so the programming-noise draws are the same numbers on every torch device.
    """

    _device_state = True  # pnnlab.devices.move: this object holds tensors and moves them with to()

    def __init__(self, shape: tuple[int, ...], device: MemristorDevice, *, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32) -> None:
        if not isinstance(device, MemristorDevice):
            raise TypeError(f"device must be a MemristorDevice (for example TAOX_YI_2023), got "
                            f"{type(device).__name__}.")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}; "
                            f"create one with torch.Generator().manual_seed(0).")
        self.shape = tuple(shape)
        self.device_model = device  # the memristor technology (not a torch device)
        self.dtype = dtype
        d, g = device, generator
        here = g.device  # built where the generator draws (the CPU); moved later with to()

        def normal():
            return _devices.randn(self.shape, generator=g, device=here, dtype=dtype)

        def uniform():
            return _devices.rand(self.shape, generator=g, device=here, dtype=dtype)

        def lognormal(spread):
            if spread == 0:
                return torch.ones(self.shape, dtype=dtype, device=here)
            return torch.exp(spread * normal() - 0.5 * spread ** 2)

        scale = lognormal(d.step_spread)
        beta = (d.up_down_spread * normal() if d.up_down_spread
                else torch.zeros(self.shape, dtype=dtype, device=here))
        self._a_up = (2 * d.step_up * scale * (1 + beta)).clamp(1e-9, 0.99)
        self._a_down = (2 * d.step_down * scale * (1 - beta)).clamp(1e-9, 0.99)
        # per-device constants of the n-pulse draw: ln(1 - a) and, for multiplicative noise,
        # c = ln(1 + (a sigma / (1 - a))^2), the log-variance added per pulse
        self._log_keep_up, self._log_keep_down = torch.log1p(-self._a_up), torch.log1p(-self._a_down)
        sigma = d.cycle_noise
        self._c_up = torch.log1p((self._a_up * sigma / (1 - self._a_up)) ** 2)
        self._c_down = torch.log1p((self._a_down * sigma / (1 - self._a_down)) ** 2)
        self._nu = (d.drift_nu + d.drift_nu_spread * normal()).clamp_min(0)
        self._g_min = d.g_min_S * lognormal(d.g_min_spread)
        self._g_max = torch.maximum(d.g_max_S * lognormal(d.g_max_spread), self._g_min + 0.1 * d.range_S)
        self._g_range = self._g_max - self._g_min
        stuck = uniform() < d.stuck_fraction
        self._stuck = stuck
        self._any_stuck = bool(stuck.any())
        self._stuck_value = (uniform() < 0.5).to(dtype)
        self._own_generator = torch.Generator().manual_seed(_seed_from(g))
        self._w = torch.zeros(self.shape, dtype=dtype, device=here)
        self._relax_xi = torch.zeros(self.shape, dtype=dtype, device=here)
        self._t_programmed = torch.zeros(self.shape, dtype=dtype, device=here)
        self._clock_s = 0.0
        # controller's digital copy (siemens), kept in float64 so that the sub-step residual it carries
        # is exact and a repeated request never triggers a spurious pulse through rounding
        self._nominal: torch.Tensor | None = None
        #: counters for energy accounting (public: they are what the programming circuit counts)
        self.pulses = 0
        self.programming_energy_J = 0.0
        self.programming_seconds = 0.0

    # ---- torch device ---------------------------------------------------------------------------
    @property
    def torch_device(self) -> torch.device:
        """The torch device the array's state tensors are on."""
        return self._w.device

    def to(self, device) -> "MemristorArray":
        """Move every state tensor (conductance states, per-device constants, programming times, the
        controller's nominal copy) to ``device``; the array's own generator stays where it is (its draws
        are moved, see :mod:`pnnlab.devices`). Returns the array."""
        _devices.move(self, device)
        return self

    # ---- time ---------------------------------------------------------------------------------
    @property
    def clock_s(self) -> float:
        """The device clock: seconds since the array was made (drift and relaxation follow it)."""
        return self._clock_s

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of device time pass (drift, relaxation)."""
        self._clock_s += check_nonnegative("seconds", seconds)

    def state(self) -> torch.Tensor:
        """True normalised state now (drift and relaxation at the current clock, stuck devices at their
        bound), in [0, 1] of each device's own range."""
        return self._state_of(None)

    def _state_of(self, idx: torch.Tensor | None) -> torch.Tensor:
        """``state()`` of all devices (``idx`` None) or of the devices at flat indices ``idx`` (1-D)."""
        def take(t):
            return t if idx is None else t.reshape(-1)[idx]

        d = self.device_model
        w = take(self._w)
        drifting = d.drift_nu != 0 or d.drift_nu_spread != 0
        relaxing = d.relaxation is not None and not d.relaxation.off()
        if drifting or relaxing:
            elapsed = (self._clock_s - take(self._t_programmed)).clamp_min(0)
            if drifting:
                w = power_law_drift(w, elapsed, take(self._nu), d.drift_t0_s)
            if relaxing:
                w = relax(w, elapsed, d.relaxation, take(self._relax_xi))
        if self._any_stuck:
            w = torch.where(take(self._stuck), take(self._stuck_value), w)
        return w.clone() if w is self._w else w

    _drifted_w = state  # former private name

    @property
    def bounds_S(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each device's own (G_min, G_max) in siemens (hidden truth: diagnostics only)."""
        return self._g_min, self._g_max

    # ---- state --------------------------------------------------------------------------------
    def conductance(self) -> torch.Tensor:
        """The true conductance now (drift and relaxation included, no read noise), in siemens."""
        return torch.addcmul(self._g_min, self._g_range, self.state())

    def read(self, generator: torch.Generator) -> torch.Tensor:
        """One read of every device: true conductance times (1 + read noise), the noise drawn from the
        caller's ``generator`` (measurement noise)."""
        g = self.conductance()
        if self.device_model.read_noise:
            noise = _devices.randn(self.shape, generator=generator, device=g.device, dtype=self.dtype)
            g = g.addcmul_(g, noise, value=self.device_model.read_noise)
        return g

    @property
    def nominal(self) -> torch.Tensor | None:
        """What the controller believes it has programmed (siemens); None before the first write."""
        return self._nominal

    def pulse_counts(self, target_S: torch.Tensor) -> torch.Tensor:
        """The signed pulse counts (float64) the controller would send to reach ``target_S`` (needs a
        first write)."""
        d = self.device_model
        delta = target_S.detach().double() - self._nominal
        up_S, down_S = d.step_up * d.range_S, d.step_down * d.range_S
        return torch.where(delta >= 0, torch.round(delta / up_S), -torch.round(-delta / down_S))

    def programmed_conductance(self, target_S: torch.Tensor) -> torch.Tensor:
        """The conductance the devices would hold right after programming towards ``target_S`` now,
        with all programming noise off (the true physics, noise switched off).

        Differentiable in ``target_S``: the integer pulse count ``n`` is passed straight through
        (``n + (n_c - n_c.detach())`` with ``n_c`` the unrounded count), so the gradient is the
        devices' soft-bounded response to one more pulse, per siemens requested. Before the first
        write it is the noise-free write-verify (the target clipped to each device's bounds).
        Stuck devices give their stuck conductance and no gradient.
        """
        d = self.device_model
        target = target_S.to(self.dtype)
        g_lo, g_hi = self._g_min, self._g_max
        if self._nominal is None:
            w = ((target - g_lo) / (g_hi - g_lo)).clamp(0, 1)
        else:
            delta = (target.double() - self._nominal).to(self.dtype)
            up_S, down_S = d.step_up * d.range_S, d.step_down * d.range_S
            up = delta.detach() >= 0
            n_c = torch.where(up, delta / up_S, delta / down_S)       # signed, continuous
            n = self.pulse_counts(target).to(self.dtype)
            n = n + (n_c - n_c.detach())
            w0 = self.state()
            a = torch.where(up, self._a_up, self._a_down)
            fixed = up.to(self.dtype)                                  # 1 for SET, 0 for RESET
            k = torch.where(up, n, -n)                                 # number of pulses, >= 0
            w = fixed + torch.exp(k * torch.log1p(-a)) * (w0 - fixed)
        w = torch.where(self._stuck, self._stuck_value, w)
        return g_lo + (g_hi - g_lo) * w

    # ---- programming --------------------------------------------------------------------------
    def write(self, target_S: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Initial write-verify to ``target_S``: lands within the write noise of it (inside each
        device's own bounds). The noise comes from the array's own generator unless one is given."""
        d = self.device_model
        gen = generator if generator is not None else self._own_generator
        w = (target_S.to(self.dtype) - self._g_min) / (self._g_max - self._g_min)
        if d.write_noise:
            w = w + d.write_noise * _devices.randn(self.shape, generator=gen, device=w.device, dtype=self.dtype)
        self._w = w.clamp(0, 1)
        self._t_programmed = torch.full(self.shape, self._clock_s, dtype=self.dtype, device=w.device)
        self._relax_xi = self._relaxation_draw(gen)
        self._nominal = target_S.detach().double().clone()

    def _relaxation_draw(self, generator):
        r = self.device_model.relaxation
        where = self._w.device
        if r is None or (r.spread_log == 0 and r.spread_fast == 0):
            return torch.zeros(self.shape, dtype=self.dtype, device=where)
        return _devices.randn(self.shape, generator=generator, device=where, dtype=self.dtype)

    def program(self, target_S: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """Send the pulses that move the controller's nominal conductance to ``target_S``.

        Returns ``{"pulses", "energy_J", "seconds"}`` for this programming round (row-parallel
        programming: all devices of a row at once, rows one after another). Programming noise comes
        from the array's own generator unless one is given.
        """
        if self._nominal is None:
            self.write(target_S, generator)
            return {"pulses": 0, "energy_J": 0.0, "seconds": 0.0}
        d = self.device_model
        n = self.pulse_counts(target_S)
        if not bool((n != 0).any()):
            return {"pulses": 0, "energy_J": 0.0, "seconds": 0.0}
        up_S, down_S = d.step_up * d.range_S, d.step_down * d.range_S
        self._nominal = self._nominal + torch.where(n > 0, n * up_S, n * down_S)   # float64
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

    def apply_pulses(self, n: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Apply ``n`` pulses to every device (n > 0 SET, n < 0 RESET), with the n-pulse statistics of
        the soft-bounds model (module docstring). The noise comes from the array's own generator
        unless one is given. Only the devices that receive pulses are computed."""
        d = self.device_model
        gen = generator if generator is not None else self._own_generator
        n = n.to(self.dtype).reshape(-1)
        moved = n != 0
        if self._any_stuck:
            moved &= ~self._stuck.reshape(-1)
        count = int(moved.sum())
        if count == 0:
            return
        # many moved devices: compute all of them densely; few: only those (gather / scatter)
        idx = None if count > _DENSE_FRACTION * moved.numel() else moved.nonzero().squeeze(1)

        def take(t):
            return t.reshape(-1) if idx is None else t.reshape(-1)[idx]

        n = take(n)
        w0 = self._state_of(idx).reshape(-1)  # drift and relaxation up to now are frozen into the state
        up = n > 0
        fixed = up.to(self.dtype)                      # fixed point: 1 for SET, 0 for RESET
        k = n.abs()

        def pick(up_values, down_values):
            return torch.where(up, take(up_values), take(down_values))

        log_decay = k * pick(self._log_keep_up, self._log_keep_down)   # ln (1 - a)^k
        sigma = d.cycle_noise
        if sigma and d.multiplicative_cycle_noise:
            # u = |fixed - w| is multiplied by k i.i.d. factors (1 - a - a sigma xi): exact mean and
            # variance, log-normal shape: u_k = u_0 (1 - a)^k exp(sqrt(k c) xi - k c / 2)
            s2 = k * pick(self._c_up, self._c_down)
            xi = _devices.randn(n.shape, generator=gen, device=n.device, dtype=self.dtype)
            factor = torch.exp(log_decay.sub_(s2, alpha=0.5).addcmul_(s2.sqrt_(), xi))
            w = (w0 - fixed).mul_(factor).add_(fixed)
        else:
            decay = torch.exp(log_decay)
            w = fixed + decay * (w0 - fixed)
            if sigma:
                a = pick(self._a_up, self._a_down)
                step = torch.where(up, d.step_up, d.step_down).to(self.dtype)
                var = (sigma * step) ** 2 * (1 - decay ** 2) / (1 - (1 - a) ** 2).clamp_min(1e-12)
                w = w + var.sqrt() * _devices.randn(n.shape, generator=gen, device=n.device, dtype=self.dtype)
        w = w.clamp_(0, 1)
        # devices that received pulses start a new retention period; the others keep their stored
        # state, programming time and relaxation draw, so their drift continues undisturbed
        r = d.relaxation
        relax_draw = r is not None and (r.spread_log or r.spread_fast)
        if idx is None:
            m = moved.reshape(self.shape)
            self._w = torch.where(m, w.reshape(self.shape), self._w)
            self._t_programmed = self._t_programmed.masked_fill(m, self._clock_s)
            if relax_draw:
                self._relax_xi = torch.where(m, _devices.randn(self.shape, generator=gen, device=m.device,
                                                               dtype=self.dtype), self._relax_xi)
        else:
            for name in ("_w", "_t_programmed", "_relax_xi"):
                setattr(self, name, getattr(self, name).contiguous())
            self._w.view(-1)[idx] = w
            self._t_programmed.view(-1)[idx] = self._clock_s
            if relax_draw:
                self._relax_xi.view(-1)[idx] = _devices.randn(idx.shape, generator=gen, device=idx.device,
                                                              dtype=self.dtype)

    def __repr__(self) -> str:
        return f"MemristorArray(shape={self.shape}, device={self.device_model.name!r})"


def program_arrays(pairs, generator: torch.Generator | None, meter) -> dict:
    """Program each ``(array, target_S)`` pair, charge the pulses' time and energy to ``meter`` and
    return the totals ``{"pulses", "energy_J", "seconds"}``. ``generator`` None lets each array draw its
    programming noise from its own generator (recommended: programming noise is device state)."""
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
