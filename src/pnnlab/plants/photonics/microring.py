"""Microring weight bank: signed WDM weights from thermally tuned add-drop rings.

Tait, Ferreira de Lima, Zhou, Wu, Nahmias, Shastri & Prucnal, "Neuromorphic photonic networks using
silicon photonic weight banks", Sci. Rep. 7, 7430 (2017), doi:10.1038/s41598-017-07754-z (the weight
bank and its balanced detection); Tait, Wu, Ferreira de Lima, Zhou, Shastri, Nahmias & Prucnal,
"Microring weight banks", IEEE JSTQE 22, 312 (2016), doi:10.1109/JSTQE.2016.2573583 (inter-channel
and thermal crosstalk as the bank's limits).

Physics (vectorised over the batch; ``N = in_features`` WDM channels on one bus, ``M = out_features``
banks, one per output, each fed a copy of the bus):

1. Inputs ``x_j`` are the optical powers of the channels at wavelengths
   ``lambda_j = j * channel_spacing`` (relative to the first), normalised to the modulators' full
   power; a modulator cannot make negative power, so ``x`` is clipped at 0.
2. Ring ``k`` of bank ``m`` is meant for channel ``k``. Its resonance, relative to ``lambda_k``, is
   ``delta_mk = -rest_detuning + offset_mk + eta * H_mk + (dlambda/dT) * dT(t)``, with ``eta`` the
   thermal tuning efficiency (nm/mW), ``H = P + c (P_left + P_right)`` the heat reaching the ring from
   its own heater ``P`` and its neighbours' (thermal crosstalk ``c``), ``offset`` the fabrication
   error of the resonance and ``dT(t)`` the chip temperature drift.
3. Each add-drop ring drops the Lorentzian fraction ``D(d) = A / (1 + (2 d / FWHM)^2)`` of a
   channel detuned by ``d`` from its resonance (peak drop ``A``; lossless, so the rest passes on).
   Channel ``j`` passes every ring of the bank: it reaches the through port with
   ``T_mj = prod_k (1 - D(lambda_j - lambda_res_mk))`` (inter-channel crosstalk: the tails of the
   *neighbouring* rings' resonances also drop part of channel ``j``), the rest reaches the drop port.
4. A balanced photodetector subtracts through from drop: ``y_m = sum_j x_j (1 - 2 T_mj)``, i.e. the
   signed weight ``w_mj = 1 - 2 T_mj`` in [-1, 1] (in units of one channel's full-power
   photocurrent), plus Gaussian detector noise of rms ``detector_noise``.

The nominal twin is the ideal bank of the design: every ring exactly where designed, each channel
seen only by its own ring, no thermal crosstalk, no drift (``T_mj = 1 - D(delta_mj)``).

Simplifications: rings are lossless (no extinction limit, no drop-port re-coupling at later rings);
the thermal crosstalk is nearest-neighbour within a bank; the drift is a common-mode sinusoidal chip
temperature (a lab's temperature cycle), not a thermal model; heaters respond instantly (the settling
time is charged as device time per query); detector noise is additive Gaussian.

Typical values (ASSUMED unless said otherwise; silicon rings of radius ~10 um):
FWHM 0.1 nm (loaded Q ~ 1.5e4 at 1550 nm); channel spacing 1.6 nm (200 GHz grid); tuning efficiency
0.25 nm/mW; thermal resonance shift 0.08 nm/K (silicon's thermo-optic coefficient, the widely quoted
~80 pm/K); fabrication offsets of 0.05 nm rms after coarse trimming; thermal crosstalk 5 % to each
neighbour; heater settling 10 us per query; 1 ns per sample (1 GBd modulation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import devices
from ..._validation import check_in_range, check_int, check_nonnegative, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Simulated

#: Cost of one query: heater settling per query, one symbol per sample. ASSUMED (typical silicon
#: thermal tuners settle in ~10 us; 1 GBd modulators). Heater energy is charged per query from the
#: programmed powers (see MicroringWeightBank._measure).
MICRORING_COST = CostModel(seconds_per_query=10e-6, seconds_per_sample=1e-9,
                           source="assumed: 10 us heater settling per query, 1 ns per sample (1 GBd); "
                                  "heater energy charged from the programmed powers")


@dataclass(frozen=True)
class RingDesign:
    """Design values of the bank (all wavelengths in nm, powers in mW). ASSUMED typical values, see
    the module docstring."""

    fwhm_nm: float = 0.1
    channel_spacing_nm: float = 1.6
    peak_drop: float = 1.0
    rest_detuning_nm: float = 0.3
    tuning_nm_per_mW: float = 0.25

    def __post_init__(self) -> None:
        check_positive("RingDesign.fwhm_nm", self.fwhm_nm)
        check_positive("RingDesign.channel_spacing_nm", self.channel_spacing_nm)
        check_in_range("RingDesign.peak_drop", self.peak_drop, 0.0, 1.0)
        check_positive("RingDesign.rest_detuning_nm", self.rest_detuning_nm)
        check_positive("RingDesign.tuning_nm_per_mW", self.tuning_nm_per_mW)
        if self.channel_spacing_nm < 2 * self.rest_detuning_nm:
            raise ValueError(f"RingDesign.channel_spacing_nm={self.channel_spacing_nm} must be at least twice "
                             f"rest_detuning_nm={self.rest_detuning_nm} so that a ring tuned across its own "
                             f"channel never reaches the next one; widen the spacing.")

    @property
    def max_heater_mW(self) -> float:
        """Heater range: from rest (weight near -1) across resonance (+1) to the same detuning on the
        red side."""
        return 2.0 * self.rest_detuning_nm / self.tuning_nm_per_mW


@dataclass(frozen=True)
class ChipTemperatureDrift:
    """Common-mode chip temperature ``dT(t) = amplitude_K * sin(2 pi t / period_s)`` over the plant's
    device time, shifting every resonance by ``nm_per_K * dT`` (0.08 nm/K: silicon, widely quoted)."""

    amplitude_K: float = 0.5
    period_s: float = 600.0
    nm_per_K: float = 0.08

    def __post_init__(self) -> None:
        check_nonnegative("ChipTemperatureDrift.amplitude_K", self.amplitude_K)
        check_positive("ChipTemperatureDrift.period_s", self.period_s)
        check_nonnegative("ChipTemperatureDrift.nm_per_K", self.nm_per_K)

    def shift_nm(self, seconds: float) -> float:
        return self.nm_per_K * self.amplitude_K * math.sin(2.0 * math.pi * seconds / self.period_s)


@dataclass(frozen=True)
class MicroringMismatch:
    """The bank's hidden truth, every part switchable: fabrication offsets of the resonances (rms,
    nm), thermal crosstalk to each neighbouring heater (fraction), inter-channel crosstalk from the
    neighbouring rings' resonance tails (on/off: it is physics, the ideal bank ignores it), chip
    temperature drift (None = none)."""

    offset_sigma_nm: float = 0.05
    thermal_crosstalk: float = 0.05
    neighbour_resonances: bool = True
    drift: ChipTemperatureDrift | None = ChipTemperatureDrift()

    def __post_init__(self) -> None:
        check_nonnegative("MicroringMismatch.offset_sigma_nm", self.offset_sigma_nm)
        check_in_range("MicroringMismatch.thermal_crosstalk", self.thermal_crosstalk, 0.0, 0.5)
        if not isinstance(self.neighbour_resonances, bool):
            raise TypeError(f"MicroringMismatch.neighbour_resonances must be True or False, got "
                            f"{self.neighbour_resonances!r}.")
        if self.drift is not None and not isinstance(self.drift, ChipTemperatureDrift):
            raise TypeError(f"MicroringMismatch.drift must be a ChipTemperatureDrift(...) or None, got "
                            f"{type(self.drift).__name__}.")

    @classmethod
    def ideal(cls) -> "MicroringMismatch":
        return cls(offset_sigma_nm=0.0, thermal_crosstalk=0.0, neighbour_resonances=False, drift=None)

    @classmethod
    def typical(cls) -> "MicroringMismatch":
        """The defaults: 0.05 nm offsets, 5 % thermal crosstalk, tails on, 0.5 K / 10 min drift (assumed)."""
        return cls()


def _lorentzian(detuning: torch.Tensor, design: RingDesign) -> torch.Tensor:
    return design.peak_drop / (1.0 + (2.0 * detuning / design.fwhm_nm).square())


def bank_weights(heater_mW: torch.Tensor, design: RingDesign, *, offsets_nm: torch.Tensor | None = None,
                 thermal_crosstalk: float = 0.0, neighbour_resonances: bool = False,
                 common_shift_nm: float = 0.0) -> torch.Tensor:
    """Signed weights w (M, N) = 1 - 2 T for heater powers (M, N) (differentiable; the module
    docstring's steps 2-4)."""
    heat = heater_mW
    if thermal_crosstalk:
        left = torch.nn.functional.pad(heater_mW[:, :-1], (1, 0))
        right = torch.nn.functional.pad(heater_mW[:, 1:], (0, 1))
        heat = heater_mW + thermal_crosstalk * (left + right)
    resonance = -design.rest_detuning_nm + design.tuning_nm_per_mW * heat + common_shift_nm
    if offsets_nm is not None:
        resonance = resonance + offsets_nm
    if not neighbour_resonances:
        through = 1.0 - _lorentzian(resonance, design)
    else:
        n = heater_mW.shape[1]
        grid = design.channel_spacing_nm * torch.arange(n, dtype=heater_mW.dtype, device=heater_mW.device)
        ring_wavelength = grid.unsqueeze(0) + resonance  # (M, K): absolute resonance of ring k
        detuning = grid.view(1, n, 1) - ring_wavelength.unsqueeze(1)  # (M, channel j, ring k)
        through = torch.prod(1.0 - _lorentzian(detuning, design), dim=2)
    return 1.0 - 2.0 * through


class MicroringTwin(Twin):
    """Differentiable bank model ``y = relu(x) @ w(P)^T`` with the given (possibly ideal) physics."""

    def __init__(self, *, in_features: int, out_features: int, design: RingDesign,
                 offsets_nm: torch.Tensor | None = None, thermal_crosstalk: float = 0.0,
                 neighbour_resonances: bool = False, common_shift_nm: float = 0.0) -> None:
        super().__init__(in_features=in_features, out_features=out_features)
        self.design = design
        self.register_buffer("offsets_nm", None if offsets_nm is None else offsets_nm.clone())
        self.thermal_crosstalk = float(thermal_crosstalk)
        self.neighbour_resonances = bool(neighbour_resonances)
        self.common_shift_nm = float(common_shift_nm)

    def forward(self, x, controls):
        w = bank_weights(controls["heater_mW"], self.design, offsets_nm=self.offsets_nm,
                         thermal_crosstalk=self.thermal_crosstalk,
                         neighbour_resonances=self.neighbour_resonances, common_shift_nm=self.common_shift_nm)
        return x.clamp_min(0.0) @ w.to(x.dtype).T


class MicroringWeightBank(Plant, Simulated):
    """WDM inputs on one bus, ``out_features`` banks of ``in_features`` thermally tuned add-drop rings,
    balanced photodetection: ``y = x @ w^T`` with signed weights in [-1, 1] (see the module docstring).

    Parameters
    ----------
    in_features, out_features:
        WDM channels (rings per bank) and banks (outputs).
    design:
        :class:`RingDesign` (the nominal twin's physics).
    mismatch:
        :class:`MicroringMismatch` (hidden truth); ``MicroringMismatch.ideal()`` switches it off.
    detector_noise:
        rms additive noise of each balanced detector, in units of one channel's full-power signal.
    seed:
        seeds the fabrication draw (device state) and the plant's measurement-noise generator.
    """

    summary = ("microring weight bank: WDM channels, thermally tuned add-drop rings, balanced detection "
               "(Tait et al. 2017)")

    def __init__(self, *, in_features: int = 4, out_features: int = 2, design: RingDesign = RingDesign(),
                 mismatch: MicroringMismatch = MicroringMismatch(), detector_noise: float = 1e-3,
                 cost: CostModel = MICRORING_COST, seed: int = 0) -> None:
        in_features = check_int("in_features", in_features)
        out_features = check_int("out_features", out_features)
        if not isinstance(design, RingDesign):
            raise TypeError(f"design must be a RingDesign(...), got {type(design).__name__}.")
        if not isinstance(mismatch, MicroringMismatch):
            raise TypeError(f"mismatch must be a MicroringMismatch(...) (or MicroringMismatch.ideal()), got "
                            f"{type(mismatch).__name__}.")
        if not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a pnnlab CostModel, got {type(cost).__name__}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        super().__init__(in_features=in_features, out_features=out_features, cost=cost, seed=seed)
        self.design, self.mismatch = design, mismatch
        self.detector_noise = check_nonnegative("detector_noise", detector_noise)
        self._elapsed_s = 0.0
        # hidden truth (device state, from a generator of its own)
        fab = torch.Generator().manual_seed(7_919 * (seed + 1))
        self._offsets_nm = mismatch.offset_sigma_nm * torch.randn(out_features, in_features, generator=fab)

    def control_specs(self):
        return {"heater_mW": ControlSpec((self.out_features, self.in_features), 0.0, self.design.max_heater_mW,
                                         unit="mW", description="heater power of each ring")}

    def example_inputs(self, batch, generator=None):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return torch.rand(batch, self.in_features, generator=gen)

    def _truth(self) -> MicroringTwin:
        m = self.mismatch
        shift = m.drift.shift_nm(self._elapsed_s) if m.drift is not None else 0.0
        return MicroringTwin(in_features=self.in_features, out_features=self.out_features, design=self.design,
                             offsets_nm=self._offsets_nm, thermal_crosstalk=m.thermal_crosstalk,
                             neighbour_resonances=m.neighbour_resonances, common_shift_nm=shift)

    def _measure(self, x, controls, generator):
        y = self._truth()(x, controls)
        if self.detector_noise:
            y = y + self.detector_noise * devices.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        seconds = self.cost.seconds(x.shape[0])
        self._elapsed_s += seconds
        self.meter.charge(joules=float(controls["heater_mW"].sum()) * 1e-3 * seconds)  # heaters on for the query
        return y

    @property
    def elapsed_seconds(self) -> float:
        """The chip's own clock (device time of every query plus idle time); the drift follows it."""
        return self._elapsed_s

    def advance_time(self, seconds: float) -> None:
        """Let ``seconds`` pass with the plant idle (the chip temperature keeps drifting)."""
        self._elapsed_s += check_nonnegative("seconds", seconds)

    def nominal_twin(self) -> MicroringTwin:
        """The ideal bank of the design: no offsets, no tails of neighbouring rings, no thermal
        crosstalk, no drift."""
        return MicroringTwin(in_features=self.in_features, out_features=self.out_features, design=self.design)

    def true_twin(self) -> MicroringTwin:
        """The hidden physics with the detector noise off, at the chip's current clock (diagnostics and
        the ideal bound only)."""
        return self._truth()

    def describe(self):
        return f"MicroringWeightBank(in_features={self.in_features}, out_features={self.out_features})"
