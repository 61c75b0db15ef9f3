"""Memristor technologies: the parameter set of one device technology (:class:`MemristorDevice`, the
constants of the model described in :mod:`pnnlab.plants.electronics.memristor`) and the device presets.

Presets:

* ``IDEAL_DEVICE``: noise-free, symmetric, fine-grained reference device (no published counterpart);
* ``TAOX_YI_2023``: analog TaOx of the device class of Yi et al., Nature Electronics 6, 45 (2023),
  doi:10.1038/s41928-022-00869-w;
* ``HFOX_LI_2018``: Ta/HfO2 1T1R cells of Li et al., Nat. Commun. 9, 2385 (2018),
  doi:10.1038/s41467-018-04484-2.

Their values are assumed, representative of the device class, not fitted to those papers' data; the
cycle-to-cycle noise default follows aihwkit (``dw_min_std``; Rasch et al., IEEE AICAS 2021,
doi:10.1109/AICAS51828.2021.9458494) and the RRAM relaxation is the CMO/HfOx fit of Falcone et al.,
arXiv:2502.04524 (2025) (:class:`~pnnlab.plants.electronics.memristor_retention.LogTimeRelaxation`),
scaled to each range.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..._validation import check_nonnegative, check_positive
from .memristor_retention import LogTimeRelaxation

__all__ = ["HFOX_LI_2018", "IDEAL_DEVICE", "MemristorDevice", "TAOX_YI_2023"]


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
    #: cycle-to-cycle noise form: True = multiplicative (aihwkit SoftBoundsDevice default), False = additive
    multiplicative_cycle_noise: bool = True
    #: device-to-device relative spread of the up/down balance (aihwkit ``up_down_dtod``)
    up_down_spread: float = 0.0
    #: device-to-device relative spread of the bounds (aihwkit ``w_min_dtod``, ``w_max_dtod``)
    g_min_spread: float = 0.0
    g_max_spread: float = 0.0
    #: RRAM conductance relaxation (None: none)
    relaxation: LogTimeRelaxation | None = None

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
                     "drift_nu_spread", "pulse_energy_J", "pulse_duration_s", "up_down_spread",
                     "g_min_spread", "g_max_spread"):
            check_nonnegative(name, getattr(self, name))
        if self.up_down_spread >= 0.5:
            raise ValueError(f"up_down_spread must be < 0.5 (a larger spread makes some devices' steps "
                             f"negative), got {self.up_down_spread}; aihwkit's default up_down_dtod is 0.01.")
        if not isinstance(self.multiplicative_cycle_noise, bool):
            raise TypeError(f"multiplicative_cycle_noise must be True (multiplicative, aihwkit's default) or "
                            f"False (additive), got {self.multiplicative_cycle_noise!r}.")
        if self.relaxation is not None and not isinstance(self.relaxation, LogTimeRelaxation):
            raise TypeError(f"relaxation must be a LogTimeRelaxation (for example "
                            f"LogTimeRelaxation.falcone2025()) or None, got {type(self.relaxation).__name__}.")
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
        """The same device without any noise, spread, drift, relaxation or stuck devices (still pulsed
        and soft-bounded)."""
        return replace(self, step_spread=0.0, cycle_noise=0.0, write_noise=0.0, read_noise=0.0,
                       drift_nu=0.0, drift_nu_spread=0.0, stuck_fraction=0.0, up_down_spread=0.0,
                       g_min_spread=0.0, g_max_spread=0.0, relaxation=None, name=self.name + " (ideal)")


#: noise-free, symmetric, fine-grained device (1000 levels): the limit in which pulsed programming
#: approaches exact float writes.
IDEAL_DEVICE = MemristorDevice(g_min_S=1e-6, g_max_S=1e-4, step_up=1e-3, step_down=1e-3,
                               pulse_energy_J=1e-12, pulse_duration_s=1e-7, name="ideal",
                               source="idealised reference device (no published counterpart)")

#: TaOx analog memristor of the kind used for in-situ energy-minimisation training by Yi et al.,
#: Nature Electronics 6, 45 (2023), doi:10.1038/s41928-022-00869-w. The numerical values are
#: representative of analog TaOx devices (tens of microsiemens, ~100 levels, SET steps larger than
#: RESET steps); they are assumed, not fitted to that paper's data. The cycle-to-cycle noise 0.3 is
#: aihwkit's default ``dw_min_std``; the relaxation is the CMO/HfOx fit of Falcone et al. (2025)
#: scaled to this range (assumed to carry over to TaOx).
TAOX_YI_2023 = MemristorDevice(g_min_S=5e-6, g_max_S=1e-4, step_up=0.012, step_down=0.008,
                               step_spread=0.2, up_down_spread=0.05, g_min_spread=0.1, g_max_spread=0.1,
                               cycle_noise=0.3, write_noise=0.01, read_noise=0.005,
                               relaxation=LogTimeRelaxation.falcone2025(range_uS=95.0),
                               stuck_fraction=0.005, pulse_energy_J=1e-12, pulse_duration_s=5e-8,
                               name="TaOx (Yi et al. 2023)",
                               source="Yi et al., Nat. Electron. 6, 45 (2023), doi:10.1038/s41928-022-00869-w "
                                      "(device class); values assumed, representative of analog TaOx; "
                                      "cycle noise 0.3 = aihwkit default dw_min_std; relaxation from "
                                      "Falcone et al., arXiv:2502.04524 (2025), scaled")

#: Ta/HfO2 1T1R device of the in-situ trained 128x64 array of Li et al., Nat. Commun. 9, 2385
#: (2018), doi:10.1038/s41467-018-04484-2. Values are representative (hundreds of microsiemens,
#: stronger nonlinearity and noise than TaOx), assumed rather than fitted; relaxation as for TaOx.
HFOX_LI_2018 = MemristorDevice(g_min_S=5e-5, g_max_S=8e-4, step_up=0.02, step_down=0.015,
                               step_spread=0.3, up_down_spread=0.1, g_min_spread=0.15, g_max_spread=0.15,
                               cycle_noise=0.5, write_noise=0.02, read_noise=0.01,
                               relaxation=LogTimeRelaxation.falcone2025(range_uS=750.0),
                               stuck_fraction=0.01, pulse_energy_J=5e-12, pulse_duration_s=2e-8,
                               name="HfOx (Li et al. 2018)",
                               source="Li et al., Nat. Commun. 9, 2385 (2018), doi:10.1038/s41467-018-04484-2 "
                                      "(device class); values assumed, representative of Ta/HfO2 1T1R cells; "
                                      "relaxation from Falcone et al., arXiv:2502.04524 (2025), scaled")
