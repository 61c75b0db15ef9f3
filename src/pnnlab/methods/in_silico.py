"""In-silico training: backpropagation through the digital twin only, then deployment.

The plant is never queried during training (0 queries per step); every accuracy is measured after
deployment on the plant, where the sim-to-real gap shows (Lin et al., Science 361, 1004 (2018);
Wright et al., Nature 601, 549 (2022), Fig. 3).
"""

from __future__ import annotations

from ..execution import OnTwin
from .base import BackpropThrough, NeedsTwin


class InSilico(BackpropThrough):
    name = "in_silico"
    summary = "backpropagation through the twin only; deployed to and evaluated on the plant"
    requirements = (NeedsTwin(),)
    plant_queries_per_step = "0"
    execution = OnTwin()
