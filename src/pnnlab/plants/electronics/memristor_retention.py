"""Retention laws of memristor devices: how a programmed conductance changes with time since its last
programming (used by :class:`~pnnlab.plants.electronics.memristor.MemristorArray`).

Both laws act on the normalised state ``w`` in [0, 1] of each device's own range, with the elapsed
time ``dt = t - t_p`` since the device's last programming on the array's device clock:

* RRAM conductance relaxation (:class:`LogTimeRelaxation`, used by the TaOx/HfOx presets): a
  level-independent mean decrease and a spread that both grow with ``log t`` (Falcone et al.,
  arXiv:2502.04524 (2025), CMO/HfOx ReRAM, as implemented in aihwkit's ``ReRamCMONoiseModel``,
  ``src/aihwkit/inference/noise/reram.py``); applied by :func:`relax`;
* power-law drift (phase-change memory; Ielmini et al., IEEE TED 54, 308 (2007),
  doi:10.1109/TED.2006.888752): ``w(t) = w(t_p) (1 + dt / t0)^(-nu)``, written relative to ``G_min``
  so that the bounds hold (:func:`power_law_drift`). It is a PCM law and is off in the RRAM presets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..._validation import check_nonnegative, check_positive

__all__ = ["LogTimeRelaxation", "power_law_drift", "relax"]


@dataclass(frozen=True)
class LogTimeRelaxation:
    """RRAM conductance relaxation after programming, in units of the device's conductance range.

    A device programmed to ``w_p`` at device time ``t_p`` holds, ``dt = t - t_p`` later,

        w(t) = w_p - mean_shift * L + (spread_fast * (1 - exp(-dt / t0_s)) + spread_log * L) * xi,
        L = ln(1 + dt / t0_s),

    clipped to [0, 1], with ``xi ~ N(0, 1)`` drawn once per device and programming event (each device
    relaxes along its own trajectory; the array's own generator draws it). For ``dt >> t0_s`` this is
    the law fitted by Falcone et al., arXiv:2502.04524 (2025) on analog CMO/HfOx ReRAM (8-90 uS) and
    implemented in aihwkit's ``ReRamCMONoiseModel`` (``src/aihwkit/inference/noise/reram.py``):
    mean ``G_prog - 0.089 uS ln t``, standard deviation ``0.042 uS ln t + 0.412 uS`` (t in seconds),
    level independent. The fast part (``spread_fast``, the relaxation "within a few seconds" of that
    work) is made to grow over ``t0_s`` instead of appearing at once, so that the law is continuous
    at ``dt = 0``; that smoothing is an assumption.
    """

    mean_shift: float
    spread_log: float
    spread_fast: float = 0.0
    t0_s: float = 1.0
    source: str = "assumed"

    def __post_init__(self) -> None:
        for name in ("mean_shift", "spread_log", "spread_fast"):
            check_nonnegative(f"LogTimeRelaxation.{name}", getattr(self, name))
        check_positive("LogTimeRelaxation.t0_s", self.t0_s)

    @classmethod
    def falcone2025(cls, *, range_uS: float = 82.0) -> "LogTimeRelaxation":
        """The CMO/HfOx fit of Falcone et al. (2025) (constants in uS, as in aihwkit's
        ``ReRamCMONoiseModel``) expressed as fractions of a device range of ``range_uS`` microsiemens
        (their devices span 8-90 uS, i.e. 82 uS)."""
        range_uS = check_positive("range_uS", range_uS)
        return cls(mean_shift=0.08900206 / range_uS, spread_log=0.04201137 / range_uS,
                   spread_fast=0.41183342 / range_uS, t0_s=1.0,
                   source=f"Falcone et al., arXiv:2502.04524 (2025), CMO/HfOx ReRAM fit (aihwkit "
                          f"ReRamCMONoiseModel: -0.089 uS ln t, 0.042 uS ln t + 0.412 uS), scaled to a "
                          f"{range_uS:g} uS range; t0 = 1 s smoothing assumed")

    def mean(self, dt: torch.Tensor) -> torch.Tensor:
        """Mean change of ``w`` after ``dt`` seconds (negative)."""
        return -self.mean_shift * torch.log1p(dt / self.t0_s)

    def spread(self, dt: torch.Tensor) -> torch.Tensor:
        """Standard deviation of the device-to-device relaxation after ``dt`` seconds."""
        return self.spread_fast * (-torch.expm1(-dt / self.t0_s)) + self.spread_log * torch.log1p(dt / self.t0_s)

    def off(self) -> bool:
        return self.mean_shift == 0 and self.spread_log == 0 and self.spread_fast == 0


def power_law_drift(w: torch.Tensor, elapsed: torch.Tensor, nu: torch.Tensor, t0_s: float) -> torch.Tensor:
    """PCM power-law drift: the state ``w`` programmed ``elapsed`` seconds ago, with per-device
    exponents ``nu``, is now ``w (1 + elapsed / t0_s)^(-nu)`` (Ielmini et al. 2007)."""
    return w * (1 + elapsed / t0_s).pow(-nu)


def relax(w: torch.Tensor, elapsed: torch.Tensor, r: LogTimeRelaxation, xi: torch.Tensor) -> torch.Tensor:
    """The state ``w`` after ``elapsed`` seconds of :class:`LogTimeRelaxation` ``r``, each device along
    its own trajectory ``xi ~ N(0, 1)`` (drawn once per device and programming event), clipped to [0, 1]."""
    log_t = torch.log1p(elapsed / r.t0_s)
    spread = r.spread_log * log_t
    if r.spread_fast:
        spread = spread - r.spread_fast * torch.expm1(-elapsed / r.t0_s)
    return (w - r.mean_shift * log_t).addcmul_(spread, xi).clamp_(0, 1)
