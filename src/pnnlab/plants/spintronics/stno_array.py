"""An array of coupled spin-torque nano-oscillators driven by microwave inputs (Romera et al. 2018).

Hardware: M. Romera, P. Talatchian, S. Tsunegi, F. Abreu Araujo, V. Cros, P. Bortolotti, J. Trastoy,
K. Yakushiji, A. Fukushima, H. Kubota, S. Yuasa, M. Ernoult, D. Vodenicarevic, T. Hirtzlin, N. Locatelli,
D. Querlioz & J. Grollier, "Vowel recognition with four coupled spin-torque nano-oscillators", Nature 563,
230-234 (2018), doi:10.1038/s41586-018-0632-y: four vortex magnetic tunnel junctions oscillating near
300-400 MHz, electrically coupled through their common microwave line, each with its own DC current (the
trainable knob: it sets the oscillator's frequency); two microwave sources A and B whose frequencies
encode the two formants F1, F2 of a vowel; the output is the synchronisation pattern, which oscillator is
phase-locked to which source, read from the measured oscillator frequencies.

Physics: :mod:`pnnlab.plants.spintronics.auto_oscillator` (the universal auto-oscillator model of Slavin
& Tiberkevich 2009, integrating-factor RK4 in a rotating frame). Input ``x`` (batch, n_drives): the drive frequencies in GHz.
Control ``current`` (N,): the DC currents in mA, in ``current_range_mA``. Output (batch, N): the measured
frequency of every oscillator in GHz (mean over ``window_ns`` after ``transient_ns``);
:func:`synchronisation_pattern` turns it into the locked / not-locked pattern.

Design values (``nominal_twin``): the oscillators' zero-power frequencies w0_i / 2 pi spread evenly so that
their tuning ranges tile the drive band (or, with ``drive_bands_ghz``, ``N / n_drives`` oscillators tuned
into the sub-band of each source), one nonlinear shift N, one threshold current, all-to-all coupling
K_ij = k exp(i beta). The defaults put the injection-locking half-width near 9 MHz at 6 mA, a quarter of
an oscillator's tuning range: with N / 2 pi = 0.15 GHz the amplitude-phase coupling is nu ~ 10 at 6 mA, the
"factor of typically ten" by which STNO locking ranges exceed those of phase (Kuramoto-like) oscillators
(Romera et al., Nat. Commun. 13, 883 (2022), doi:10.1038/s41467-022-28159-1, citing Slavin & Tiberkevich
2009), and vortex STNOs lock over wide ranges because of their large current tunability (Dussaux et al.,
Appl. Phys. Lett. 98, 132506 (2011): locking ranges "of the order of 1/3 of the oscillator frequency").
The values themselves are assumed orders of magnitude for vortex STNOs (see
docs/substrates/spintronic_oscillators.md), not a fit to the devices of Romera et al.

Hidden truth (:class:`STNOMismatch`, each part off by default): device-to-device spread of w0 (MHz std),
of N and of the spin-torque efficiency sigma (relative std, i.e. a spread of threshold currents), a fixed
relative complex error on every coupling, all drawn once from the plant's seed (fabrication); and thermal
noise (eta = k_B T / E_0), drawn on every call from the per-call generator. ``true_twin()`` is the hidden
physics with the thermal noise off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import devices
from ..._validation import check_generator, check_int, check_nonnegative, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Simulated
from .auto_oscillator import TWO_PI, free_running_power, simulate_array

__all__ = ["STNOArray", "STNOArrayTwin", "STNOMismatch", "synchronisation_pattern"]


@dataclass(frozen=True)
class STNOMismatch:
    """What the oscillators do that their design values do not say. Every part is off (zero) by default;
    :meth:`typical` gives assumed, plausible magnitudes for vortex STNOs.

    frequency_spread_mhz: std of the zero-power frequency w0_i / 2 pi between devices (MHz).
    shift_spread: relative std of the nonlinear frequency shift N_i between devices.
    threshold_spread: relative std of the spin-torque efficiency sigma_i (so of the threshold current).
    coupling_error: relative std of a fixed complex Gaussian error on every coupling K_ij.
    thermal_noise: eta = k_B T / E_0, the thermal noise power in units of the model's power scale
        (D = G_G eta); drawn afresh on every call.
    """

    frequency_spread_mhz: float = 0.0
    shift_spread: float = 0.0
    threshold_spread: float = 0.0
    coupling_error: float = 0.0
    thermal_noise: float = 0.0

    def __post_init__(self) -> None:
        for name in ("frequency_spread_mhz", "shift_spread", "threshold_spread", "coupling_error", "thermal_noise"):
            check_nonnegative(f"STNOMismatch.{name}", getattr(self, name))
        if self.threshold_spread >= 0.3 or self.shift_spread >= 0.5:
            raise ValueError(f"STNOMismatch.threshold_spread must be < 0.3 and shift_spread < 0.5 (relative "
                             f"spreads; larger ones push devices below threshold), got {self.threshold_spread} "
                             f"and {self.shift_spread}; typical values are 0.02-0.1.")

    @classmethod
    def typical(cls) -> "STNOMismatch":
        """Assumed magnitudes: w0 spread 2 MHz, N and threshold spread 5 %, coupling error 30 %, eta = 3e-4
        (a free-running linewidth G_G eta (1 + nu^2) / p0 / 2 pi of about 0.5 MHz with the default design, inside
        the 40 kHz - 1 MHz measured on vortex STNOs by Hamadeh et al., PRL 112, 257201 (2014)). Not fitted values."""
        return cls(frequency_spread_mhz=2.0, shift_spread=0.05, threshold_spread=0.05, coupling_error=0.3,
                   thermal_noise=3e-4)


def synchronisation_pattern(frequencies_ghz: torch.Tensor, drives_ghz: torch.Tensor, *,
                            tolerance_ghz: float = 1e-3) -> torch.Tensor:
    """Which oscillator is locked to which drive: ``|f_i - f_d| < tolerance``, a bool tensor of shape
    (batch, N, n_drives) from measured frequencies (batch, N) and drive frequencies (batch, n_drives).
    The default 1 MHz is a few times the frequency error a locked but thermally jittering phase gives over a
    200 ns read-out window (a phase excursion of ~1 rad / (2 pi 200 ns) ~ 0.8 MHz) and well below the locking
    half-width (~9 MHz), where an unlocked oscillator beats at sqrt(detuning^2 - half-width^2)."""
    check_positive("tolerance_ghz", tolerance_ghz)
    return (frequencies_ghz.unsqueeze(2) - drives_ghz.unsqueeze(1)).abs() < tolerance_ghz


class STNOArrayTwin(Twin):
    """Differentiable model of an :class:`STNOArray` with given physical constants (no noise). The
    plant hands out two: the design values (``nominal_twin``) and its hidden truth (``true_twin``)."""

    def __init__(self, *, omega0: torch.Tensor, shift: torch.Tensor, sigma: torch.Tensor, coupling: torch.Tensor,
                 drive_amplitudes: torch.Tensor, damping: float, nonlinear_damping: float, reference_ghz: float,
                 transient_ns: float, window_ns: float, step_ns: float) -> None:
        super().__init__(in_features=drive_amplitudes.shape[0], out_features=omega0.shape[0])
        for name, value in (("omega0", omega0), ("shift", shift), ("sigma", sigma), ("coupling", coupling),
                            ("drive_amplitudes", drive_amplitudes)):
            self.register_buffer(name, value.detach().clone())
        self.damping, self.nonlinear_damping = float(damping), float(nonlinear_damping)
        self.reference_ghz = float(reference_ghz)
        self.transient_ns, self.window_ns, self.step_ns = float(transient_ns), float(window_ns), float(step_ns)

    def forward(self, x, controls):
        return self.simulate(x, controls["current"], noise=0.0, generator=None)

    def simulate(self, x, current, *, noise: float, generator, sources_on: bool = True):
        """The integration (``sources_on=False``: both drives switched off, amplitude 0)."""
        dtype = x.dtype
        amplitudes = self.drive_amplitudes.to(dtype) * (1.0 if sources_on else 0.0)
        return simulate_array(
            x, current.to(dtype), omega0=self.omega0.to(dtype), shift=self.shift.to(dtype),
            sigma=self.sigma.to(dtype), damping=self.damping, nonlinear_damping=self.nonlinear_damping,
            coupling=self.coupling, drive_amplitudes=amplitudes,
            reference_ghz=self.reference_ghz, transient_ns=self.transient_ns, window_ns=self.window_ns,
            step_ns=self.step_ns, noise=noise, generator=generator)


def _default_cost(n: int, seconds_per_sample: float, current_mA: float) -> CostModel:
    resistance = 100.0  # ohm, assumed magnetic-tunnel-junction resistance
    power = n * (current_mA * 1e-3) ** 2 * resistance
    return CostModel(seconds_per_query=1e-3, seconds_per_sample=seconds_per_sample, joules_per_query=0.0,
                     joules_per_sample=power * seconds_per_sample,
                     source=(f"assumed: 1 ms to set the DC current sources per query; per sample the transient plus "
                             f"read-out window ({seconds_per_sample * 1e9:g} ns); Joule power I^2 R of {n} junctions "
                             f"at {current_mA:g} mA, R = 100 ohm (drive sources and amplifiers not counted)"))


class STNOArray(Plant, Simulated):
    """N coupled spin-torque nano-oscillators, DC currents as controls, microwave drive frequencies in,
    measured oscillator frequencies out (see the module docstring).

    Parameters
    ----------
    n_oscillators: N (4 in Romera et al. 2018).
    n_drives: number of microwave sources (2 in Romera et al.: one per formant).
    frequencies_ghz: zero-power frequencies w0_i / 2 pi; default spreads them so the tuning ranges tile
        ``band_ghz`` (or the sub-bands of ``drive_bands_ghz``).
    band_ghz: the drive band (inputs are expected inside it; the rotating frame is at its centre).
    drive_bands_ghz: optional sub-band (low, high) of each source inside ``band_ghz``; the default w0 then
        tunes ``N / n_drives`` oscillators into each source's sub-band (oscillators ``d * N / n_drives`` to
        ``(d + 1) * N / n_drives - 1`` for source d), spread so that their tuning centres split the sub-band
        evenly. Ignored when ``frequencies_ghz`` is given.
    nonlinear_shift_ghz: N / 2 pi, the frequency shift per unit power (vortex STNOs tune up with current).
    damping_ghz: G_G / 2 pi, the linear damping rate.
    nonlinear_damping: Q.
    threshold_mA: the design threshold current I_th = G_G / sigma.
    current_range_mA: physical range of the DC currents.
    drive_amplitude: F of each source (rad/ns), the same at every oscillator.
    coupling: |K_ij| (rad/ns) of the all-to-all electrical coupling, ``coupling_phase`` its phase beta.
    transient_ns, window_ns, step_ns: settling time before the read-out, read-out window, RK4 step.
    mismatch: an :class:`STNOMismatch`, or None for the ideal plant.
    seed: seeds the fabrication draws (device state) and the plant's own noise stream.
    """

    summary = "coupled spin-torque nano-oscillators (auto-oscillator model): DC currents, microwave drives, frequencies"

    def __init__(self, *, n_oscillators: int = 4, n_drives: int = 2, frequencies_ghz: tuple | None = None,
                 band_ghz: tuple[float, float] = (0.30, 0.40), drive_bands_ghz: tuple | None = None,
                 nonlinear_shift_ghz: float = 0.15,
                 damping_ghz: float = 0.005, nonlinear_damping: float = 1.0, threshold_mA: float = 3.0,
                 current_range_mA: tuple[float, float] = (4.0, 9.0), drive_amplitude: float = 0.0035,
                 coupling: float = 0.001, coupling_phase: float = 0.0, transient_ns: float = 150.0,
                 window_ns: float = 250.0, step_ns: float = 1.0, mismatch: STNOMismatch | None = None,
                 cost: CostModel | None = None, seed: int = 0) -> None:
        n = check_int("n_oscillators", n_oscillators)
        n_drives = check_int("n_drives", n_drives)
        band = _check_pair("band_ghz", band_ghz)
        low_i, high_i = _check_pair("current_range_mA", current_range_mA)
        self.threshold_mA = check_positive("threshold_mA", threshold_mA)
        if low_i <= self.threshold_mA * 1.1:
            raise ValueError(f"current_range_mA must start above 1.1 x threshold_mA = {1.1 * self.threshold_mA:g} mA "
                             f"(below threshold an STNO does not oscillate and has no frequency), got "
                             f"{current_range_mA!r}; e.g. (4.0, 9.0) with threshold_mA=3.0.")
        self.nonlinear_shift_ghz = check_positive("nonlinear_shift_ghz", nonlinear_shift_ghz)
        self.damping_ghz = check_positive("damping_ghz", damping_ghz)
        self.nonlinear_damping = check_nonnegative("nonlinear_damping", nonlinear_damping)
        self.drive_amplitude = check_nonnegative("drive_amplitude", drive_amplitude)
        self.coupling = check_nonnegative("coupling", coupling)
        self.coupling_phase = float(coupling_phase)
        self.transient_ns = check_positive("transient_ns", transient_ns)
        self.window_ns = check_positive("window_ns", window_ns)
        self.step_ns = check_positive("step_ns", step_ns)
        self.band_ghz, self.current_range_mA = band, (low_i, high_i)
        if mismatch is None:
            mismatch = STNOMismatch()
        if not isinstance(mismatch, STNOMismatch):
            raise TypeError(f"mismatch must be an STNOMismatch or None, got {type(mismatch).__name__}; write "
                            f"mismatch=STNOMismatch.typical() for the assumed hidden truth.")
        self.drive_bands_ghz = None if drive_bands_ghz is None else _check_sub_bands(drive_bands_ghz, n, n_drives, band)
        if frequencies_ghz is None:
            q = self.nonlinear_damping
            mid_power = 0.5 * (free_running_power(low_i, threshold_mA=self.threshold_mA, nonlinear_damping=q)
                               + free_running_power(high_i, threshold_mA=self.threshold_mA, nonlinear_damping=q))
            if self.drive_bands_ghz is None:
                width = (band[1] - band[0]) / n
                centres = [band[0] + width * (i + 0.5) for i in range(n)]
            else:
                per = n // n_drives
                centres = [lo + (hi - lo) * (j + 1) / (per + 1) for lo, hi in self.drive_bands_ghz for j in range(per)]
            frequencies_ghz = tuple(c - self.nonlinear_shift_ghz * mid_power for c in centres)
        frequencies_ghz = tuple(float(f) for f in frequencies_ghz)
        if len(frequencies_ghz) != n or not all(f > 0 and math.isfinite(f) for f in frequencies_ghz):
            raise ValueError(f"frequencies_ghz must be {n} positive frequencies (one per oscillator), got "
                             f"{frequencies_ghz!r}.")
        self.frequencies_ghz = frequencies_ghz
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        seconds_per_sample = (self.transient_ns + self.window_ns) * 1e-9
        if cost is not None and not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a pnnlab CostModel or None, got {type(cost).__name__}.")
        super().__init__(in_features=n_drives, out_features=n,
                         cost=cost or _default_cost(n, seconds_per_sample, 0.5 * (low_i + high_i)), seed=seed)
        self.n_oscillators, self.n_drives = n, n_drives
        self._mismatch = mismatch
        self._specs = {"current": ControlSpec((n,), low_i, high_i, unit="mA", description="DC current of each STNO")}
        # design values
        damping = TWO_PI * self.damping_ghz
        self._design = dict(
            omega0=TWO_PI * torch.tensor(frequencies_ghz, dtype=torch.float64),
            shift=torch.full((n,), TWO_PI * self.nonlinear_shift_ghz, dtype=torch.float64),
            sigma=torch.full((n,), damping / self.threshold_mA, dtype=torch.float64),
            coupling=self.coupling * complex(math.cos(self.coupling_phase), math.sin(self.coupling_phase))
            * (1.0 - torch.eye(n, dtype=torch.complex128)),
            drive_amplitudes=torch.full((n_drives,), self.drive_amplitude, dtype=torch.float64))
        # hidden truth: fabrication draws from a generator of the plant's own (device state, fixed)
        fab = torch.Generator().manual_seed(7919 * (seed + 1))
        draw = lambda *shape: torch.randn(shape, generator=fab, dtype=torch.float64)  # noqa: E731
        d_w0, d_shift, d_sigma = draw(n), draw(n), draw(n)
        d_coupling = torch.complex(draw(n, n), draw(n, n)) / math.sqrt(2.0)
        self._truth = dict(self._design)
        self._truth["omega0"] = self._design["omega0"] + TWO_PI * 1e-3 * mismatch.frequency_spread_mhz * d_w0
        self._truth["shift"] = self._design["shift"] * (1.0 + mismatch.shift_spread * d_shift).clamp_min(0.1)
        self._truth["sigma"] = self._design["sigma"] * (1.0 + mismatch.threshold_spread * d_sigma).clamp_min(0.5)
        self._truth["coupling"] = self._design["coupling"] * (1.0 + mismatch.coupling_error * d_coupling)
        self._noise = TWO_PI * self.damping_ghz * mismatch.thermal_noise
        self._true = self._twin(self._truth)

    # ---- plant interface ---------------------------------------------------------------------
    def control_specs(self):
        return dict(self._specs)

    def example_inputs(self, batch, generator=None):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        low, high = self.band_ghz
        return low + (high - low) * devices.rand((batch, self.in_features), generator=gen, device=self.device)

    def _measure(self, x, controls, generator):
        self._check_drives(x)
        return self._true.simulate(x, controls["current"], noise=self._noise, generator=generator)

    def _check_drives(self, x):
        centre = 0.5 * (self.band_ghz[0] + self.band_ghz[1])
        worst = float((x - centre).abs().max())
        if TWO_PI * worst * self.step_ns > 1.0:
            raise ValueError(f"drive frequencies must stay within {1.0 / (TWO_PI * self.step_ns):.3g} GHz of the "
                             f"band centre {centre:g} GHz for step_ns={self.step_ns:g} (the RK4 step must resolve "
                             f"the detuning in the rotating frame), got one {worst:.3g} GHz away; map the inputs "
                             f"into band_ghz={self.band_ghz} or use a smaller step_ns.")

    def measure_free_running(self, current_mA: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Measured free-running frequencies (GHz) with both sources switched off: the characterisation an
        experimenter does before training (each device's frequency-vs-current curve, read on a spectrum
        analyser). ``current_mA``: (K, N), K settings of the N DC currents; returns (K, N). One metered query per
        setting (kind "free_running"), with this device's hidden truth and thermal noise, the coupling left on."""
        current_mA = torch.as_tensor(current_mA, dtype=torch.float64)
        if current_mA.dim() != 2 or current_mA.shape[1] != self.n_oscillators:
            raise ValueError(f"current_mA must have shape (K, {self.n_oscillators}) (K settings of the "
                             f"{self.n_oscillators} currents), got {tuple(current_mA.shape)}.")
        gen = check_generator("generator", generator) or self._generator
        centre = 0.5 * (self.band_ghz[0] + self.band_ghz[1])
        x = torch.full((1, self.n_drives), centre, dtype=torch.float64, device=self._device)  # no effect at F = 0
        out = []
        for setting in current_mA:
            controls = self.validate_controls({"current": setting})
            out.append(self._query(
                "free_running", x, controls,
                lambda: self._true.simulate(x, controls["current"], noise=self._noise, generator=gen, sources_on=False),
                lambda y: self.check_measurement(y, x, call="measure_free_running").detach(), generator=generator))
        return torch.cat(out)

    # ---- twins -------------------------------------------------------------------------------
    def _twin(self, values) -> STNOArrayTwin:
        return STNOArrayTwin(damping=TWO_PI * self.damping_ghz, nonlinear_damping=self.nonlinear_damping,
                             reference_ghz=0.5 * (self.band_ghz[0] + self.band_ghz[1]),
                             transient_ns=self.transient_ns, window_ns=self.window_ns, step_ns=self.step_ns, **values)

    def nominal_twin(self) -> STNOArrayTwin:
        """The design values: evenly spread w0, one N, one threshold, uniform coupling; no noise."""
        return self._twin(self._design)

    def true_twin(self) -> STNOArrayTwin:
        """This device's w0, N, sigma and couplings with the thermal noise off (diagnostics, ideal bound)."""
        return self._twin(self._truth)

    # ---- design quantities (known to the experimenter) ---------------------------------------
    def design_frequency_ghz(self, current_mA: torch.Tensor) -> torch.Tensor:
        """Free-running frequency w0_i + N p0(I_i) of every oscillator from the design values (GHz)."""
        p0 = free_running_power(current_mA, threshold_mA=self.threshold_mA, nonlinear_damping=self.nonlinear_damping)
        w0 = torch.tensor(self.frequencies_ghz, dtype=current_mA.dtype, device=current_mA.device)
        return w0 + self.nonlinear_shift_ghz * p0

    def tunability_ghz_per_mA(self, current_mA: torch.Tensor) -> torch.Tensor:
        """d f / d I of the design free-running frequency: N/2pi * I_th (1 + Q) / (I + Q I_th)^2."""
        q, ith = self.nonlinear_damping, self.threshold_mA
        return self.nonlinear_shift_ghz * ith * (1.0 + q) / (current_mA + q * ith) ** 2

    def design_current_mA(self, frequency_ghz: torch.Tensor) -> torch.Tensor:
        """The DC currents that put every oscillator's design free-running frequency at ``frequency_ghz`` (N,)
        (inverse of :meth:`design_frequency_ghz`: p0 = (f - w0) / N, I = I_th (1 + Q p0) / (1 - p0)), clipped
        to the current range."""
        w0 = torch.tensor(self.frequencies_ghz, dtype=frequency_ghz.dtype, device=frequency_ghz.device)
        p0 = ((frequency_ghz - w0) / self.nonlinear_shift_ghz).clamp(0.0, 0.99)
        current = self.threshold_mA * (1.0 + self.nonlinear_damping * p0) / (1.0 - p0)
        return current.clamp(*self.current_range_mA)

    def design_locking_half_width_ghz(self, current_mA: torch.Tensor) -> torch.Tensor:
        """Half-width (GHz) of every oscillator's locking band to one source at the design values,
        F sqrt(1 + nu^2) / sqrt(p0) / 2 pi with nu = N / (G_G Q + sigma I) (Slavin & Tiberkevich 2009, sec. VII);
        coupling between the oscillators and the second source are not included."""
        q, ith = self.nonlinear_damping, self.threshold_mA
        damping = TWO_PI * self.damping_ghz
        p0 = free_running_power(current_mA, threshold_mA=ith, nonlinear_damping=q).clamp_min(1e-6)
        nu = TWO_PI * self.nonlinear_shift_ghz / (damping * q + damping / ith * current_mA)
        return self.drive_amplitude * torch.sqrt(1.0 + nu * nu) / torch.sqrt(p0) / TWO_PI

    def describe(self):
        return (f"STNOArray(n_oscillators={self.n_oscillators}, n_drives={self.n_drives}, "
                f"band_ghz={self.band_ghz})")


def _check_sub_bands(value, n: int, n_drives: int, band) -> tuple:
    try:
        bands = tuple(_check_pair(f"drive_bands_ghz[{d}]", b) for d, b in enumerate(value))
    except TypeError:
        raise TypeError(f"drive_bands_ghz must be one (low, high) pair per source, got {value!r}.") from None
    if len(bands) != n_drives or n % n_drives:
        raise ValueError(f"drive_bands_ghz needs one sub-band per source ({n_drives}) and n_oscillators divisible by "
                         f"n_drives (got {len(bands)} sub-bands, {n} oscillators); e.g. ((0.30, 0.345), (0.355, 0.40)) "
                         f"for 4 oscillators and 2 sources.")
    if any(lo < band[0] or hi > band[1] for lo, hi in bands):
        raise ValueError(f"drive_bands_ghz={value!r} must lie inside band_ghz={band!r} (the band sets the rotating "
                         f"frame and the step check).")
    return bands


def _check_pair(name, value) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high) of numbers, got {value!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        raise ValueError(f"{name} must satisfy 0 < low < high, got {value!r}.")
    return low, high
