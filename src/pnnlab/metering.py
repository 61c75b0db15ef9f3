"""Honest accounting of what training costs the hardware: queries, samples, device time, energy.

Every plant owns a :class:`Meter` and a :class:`CostModel`. A *query* is one call of the plant
(one batch sent to the hardware); *samples* counts the inputs in those batches. Device seconds and
joules come from the plant's cost model, whose constants each plant documents and cites.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._validation import check_nonnegative


@dataclass(frozen=True)
class CostModel:
    """Cost of using a physical system.

    Time of a query = ``seconds_per_query`` (fixed overhead: programming controls, settling) +
    ``seconds_per_sample`` x batch size. Energy = ``joules_per_query`` + ``joules_per_sample`` x batch.
    ``source`` states where the constants come from (paper, datasheet, or "assumed").
    """

    seconds_per_query: float = 0.0
    seconds_per_sample: float = 0.0
    joules_per_query: float = 0.0
    joules_per_sample: float = 0.0
    source: str = "assumed"

    def __post_init__(self) -> None:
        for name in ("seconds_per_query", "seconds_per_sample", "joules_per_query", "joules_per_sample"):
            check_nonnegative(f"CostModel.{name}", getattr(self, name))

    def seconds(self, samples: int) -> float:
        return self.seconds_per_query + self.seconds_per_sample * samples

    def joules(self, samples: int) -> float:
        return self.joules_per_query + self.joules_per_sample * samples


@dataclass
class Meter:
    """Running totals for one plant. ``snapshot()`` returns a plain dict for logging."""

    queries: int = 0
    samples: int = 0
    device_seconds: float = 0.0
    joules: float = 0.0
    history: list = field(default_factory=list, repr=False)

    def record(self, cost: CostModel, samples: int) -> None:
        self.queries += 1
        self.samples += samples
        self.device_seconds += cost.seconds(samples)
        self.joules += cost.joules(samples)

    def charge(self, *, seconds: float = 0.0, joules: float = 0.0) -> None:
        """Add device time and energy spent outside a query (for example programming pulses)."""
        self.device_seconds += check_nonnegative("seconds", seconds)
        self.joules += check_nonnegative("joules", joules)

    def snapshot(self) -> dict:
        return {"queries": self.queries, "samples": self.samples,
                "device_seconds": self.device_seconds, "joules": self.joules}

    def reset(self) -> None:
        self.queries = self.samples = 0
        self.device_seconds = self.joules = 0.0


def total_usage(plants) -> dict:
    """Sum the meters of several plants (for example every physical layer of a model)."""
    total = {"queries": 0, "samples": 0, "device_seconds": 0.0, "joules": 0.0}
    for plant in plants:
        for key, value in plant.meter.snapshot().items():
            total[key] += value
    return total
