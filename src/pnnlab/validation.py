"""Argument checks for your own components (plants, twins, models, methods).

The built-in components validate every constructor argument with these helpers; a plant you write
for your instrument should too, so that a negative noise level or a zero bandwidth fails at
construction with a message naming the argument, the value, the reason and the fix::

    from pnnlab.validation import check_nonnegative, check_positive

    class MyPlant(pnnlab.Plant, pnnlab.Simulated):
        def __init__(self, *, read_noise=0.01, bandwidth_Hz=1e9, seed=0):
            ...
            self._read_noise = check_nonnegative("read_noise", read_noise)  # 0 switches it off
            self._bandwidth = check_positive("bandwidth_Hz", bandwidth_Hz)

Each helper returns the checked value (as ``float`` or ``int``) and raises ``TypeError`` for a wrong
type, ``ValueError`` for a wrong value. ``check_output`` is what :class:`pnnlab.Plant` applies to
every measurement coming back from ``_measure``; you do not need to call it in ``_measure`` yourself.
"""

from ._validation import (check_batch, check_finite_float, check_generator, check_in_range, check_int,
                          check_nonnegative, check_output, check_positive, make_generator)

__all__ = ["check_batch", "check_finite_float", "check_generator", "check_in_range", "check_int",
           "check_nonnegative", "check_output", "check_positive", "make_generator"]
