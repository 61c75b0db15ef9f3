"""Physics-aware training (PAT): Wright, Onodera, Stein, Wang, Xie, Hu, Wang & McMahon,
"Deep physical neural networks trained with backpropagation", Nature 601, 549-555 (2022),
doi:10.1038/s41586-021-04223-6.

Forward pass on the plant, backward pass through the twin's vector-Jacobian product evaluated at
the plant's measured activations (see :class:`pnnlab.execution.PhysicsAware`):

    y_l = f_p(y_{l-1}, theta_l)                    (physical forward, measured)
    g_{l-1} = (d f_m / d y)(y_{l-1}, theta_l)^T g_l   (digital backward, at the measured y_{l-1})
    dL/dtheta_l = (d f_m / d theta)(y_{l-1}, theta_l)^T g_l

With a perfect twin (f_m = f_p) it equals backpropagation exactly.
"""

from __future__ import annotations

from ..execution import PhysicsAware
from .base import BackpropThrough, NeedsTwin


class PhysicsAwareTraining(BackpropThrough):
    name = "pat"
    summary = "physics-aware training: plant forward pass, twin backward pass (Wright et al. 2022)"
    requirements = (NeedsTwin(),)
    plant_queries_per_step = "1 forward query per physical layer per batch"
    execution = PhysicsAware()
