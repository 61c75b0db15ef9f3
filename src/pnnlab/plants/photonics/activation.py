"""Electro-optic nonlinear activation between coherent photonic layers.

Williamson, Hughes, Minkov, Bartlett, Pai & Fan, "Reprogrammable electro-optic nonlinear activation
functions for optical neural networks", IEEE JSTQE 26, 7700412 (2020), doi:10.1109/JSTQE.2019.2930455.
A directional coupler taps a fraction ``alpha`` of each channel's power onto a photodiode; the
photocurrent, amplified, drives a Mach-Zehnder intensity modulator (with a bias voltage) that acts
on the remaining light, delayed to meet its own photocurrent. For an input field z the output is

    f(z) = i sqrt(1 - alpha) exp(-i (g |z|^2 + phi_b) / 2) cos((g |z|^2 + phi_b) / 2) z,

with the feedforward phase gain ``g = pi alpha G R / V_pi`` (G transimpedance gain, R photodiode
responsivity, fields normalised so that |z|^2 is power in units of one channel's reference power)
and the bias phase ``phi_b = pi V_b / V_pi``. (The same expression as the authors' neuroptica
``ElectroOpticActivation.forward_pass``.) Depending on phi_b the response is ReLU-like or saturating.

Two forms, one formula (:func:`eo_activation`):

* :class:`ElectroOpticNonlinearity`: the activation computed by the controller on measured fields
  (the digital nonlinearity between layers of Pai et al., Science 380, 398 (2023)): an ordinary
  ``nn.Module`` with the design values, differentiated by autograd.
* :class:`ElectroOpticActivationPlant`: the on-chip circuit, a plant whose hidden truth departs from
  the design: per-channel tap fraction, gain (photodiode responsivity x amplifier) and bias-voltage
  errors, and photodiode noise (which enters the modulator phase, so it is multiplicative on the
  light). Its controls are the per-channel bias phases (reprogrammable). Fields enter and leave as
  ``[Re z_1..Re z_N, Im z_1..Im z_N]`` features. It is channel-wise (:class:`ChannelWise`): every
  output channel depends only on the same input channel and bias, so its Jacobian can be measured by
  dithering all channels at once (the in-situ adjoint method does this, see
  :mod:`pnnlab.methods.adjoint`).

Simplifications: the photodiode-amplifier is instantaneous (no bandwidth limit, Williamson's
"instantaneous" regime), the delay line is perfect, the tap is wavelength-independent, the
modulator is a push-pull MZI with no insertion loss beyond the tap. Typical values (Williamson 2020's
examples, gain expressed as phase gain): alpha = 0.1, g = pi / 2 .. pi at unit power; phi_b = pi gives
the ReLU-like regime (no transmission at low power), phi_b = 0 a saturating one (full transmission at
low power, falling with power). The bias control spans [-pi, pi) (bias voltage -V_pi .. V_pi) and
starts at 0; f is 2 pi-periodic in phi_b, so the control is periodic (a bias of pi + 0.1 acts as
-pi + 0.1). Mismatch magnitudes below are ASSUMED (a few percent of tap and gain, 0.05 rad of bias).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ... import devices
from ..._validation import check_in_range, check_int, check_nonnegative, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Capability, Simulated

TWO_PI = 2.0 * math.pi

#: ASSUMED cost: 1 ns per sample (GHz photodiode/modulator), 1 us to set the bias voltages per query.
ACTIVATION_COST = CostModel(seconds_per_query=1e-6, seconds_per_sample=1e-9,
                            source="assumed: 1 us bias settling per query, 1 ns per sample")


class ChannelWise(Capability):
    """Output channel c (features c and c + N, re and im) depends only on input channel c (features c
    and c + N) and on entry c of every control (shape ``(N,)``): the Jacobian of all channels can be
    measured at once by dithering every channel together (2 queries per direction)."""

    offers = "a channel-wise response (its Jacobian measurable by dithering all channels at once)"

    n_channels: int


def eo_activation(z: torch.Tensor, *, alpha, gain, bias) -> torch.Tensor:
    """Williamson 2020's transfer function on complex fields ``z`` (``(batch, N)``); ``alpha``,
    ``gain`` (phase gain g per unit power) and ``bias`` (phi_b) broadcast over channels."""
    phase = 0.5 * (gain * z.abs().square() + bias)
    amp = torch.sqrt(1.0 - torch.as_tensor(alpha, dtype=phase.dtype, device=phase.device)) * torch.cos(phase)
    # amp * exp(-i phase) spelled out: torch.polar's backward is wrong for a negative magnitude
    return 1j * z * torch.complex(amp * torch.cos(phase), -amp * torch.sin(phase))


def _to_complex(x: torch.Tensor, n: int) -> torch.Tensor:
    return torch.complex(x[:, :n], x[:, n:])


def _to_features(z: torch.Tensor) -> torch.Tensor:
    return torch.cat([z.real, z.imag], dim=1)


@dataclass(frozen=True)
class EODesign:
    """Design values: tap fraction ``alpha``, phase gain ``gain_rad`` (radians of modulator phase per
    unit input power) and the bias phase range is the control."""

    alpha: float = 0.1
    gain_rad: float = math.pi

    def __post_init__(self) -> None:
        check_in_range("EODesign.alpha", self.alpha, 0.0, 1.0, inclusive=False)
        check_positive("EODesign.gain_rad", self.gain_rad)


@dataclass(frozen=True)
class EOMismatch:
    """Hidden truth: relative rms errors of each channel's tap fraction and gain, rms bias-phase
    error (rad), and photodiode noise (rms, in units of the reference power, entering the modulator
    phase through the gain). ASSUMED magnitudes."""

    alpha_rel_sigma: float = 0.05
    gain_rel_sigma: float = 0.05
    bias_sigma_rad: float = 0.05
    photodiode_noise: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("alpha_rel_sigma", "gain_rel_sigma", "bias_sigma_rad", "photodiode_noise"):
            check_nonnegative(f"EOMismatch.{name}", getattr(self, name))

    @classmethod
    def ideal(cls) -> "EOMismatch":
        return cls(alpha_rel_sigma=0.0, gain_rel_sigma=0.0, bias_sigma_rad=0.0, photodiode_noise=0.0)


class ElectroOpticNonlinearity(nn.Module):
    """The activation applied digitally by the controller to measured fields in the
    ``[Re, Im]`` feature layout, with fixed design values (and a fixed bias ``bias_rad``)."""

    def __init__(self, n_channels: int, *, design: EODesign = EODesign(), bias_rad: float = 0.0) -> None:
        super().__init__()
        self.n_channels = check_int("n_channels", n_channels)
        if not isinstance(design, EODesign):
            raise TypeError(f"design must be an EODesign(...), got {type(design).__name__}.")
        self.design, self.bias_rad = design, float(bias_rad)

    def forward(self, x):
        z = _to_complex(x, self.n_channels)
        out = eo_activation(z, alpha=self.design.alpha, gain=self.design.gain_rad, bias=self.bias_rad)
        return _to_features(out).to(x.dtype)


class EOTwin(Twin):
    """Differentiable activation with given per-channel constants."""

    def __init__(self, *, n_channels: int, alpha, gain, bias_offset, device=None) -> None:
        super().__init__(in_features=2 * n_channels, out_features=2 * n_channels)
        self.n_channels = n_channels
        device = torch.device("cpu") if device is None else devices.as_device(device)

        def constant(value):  # a number or a plant tensor, one per channel, on the plant's device
            return torch.as_tensor(value, dtype=torch.float64, device=device).expand(n_channels).clone()
        self.register_buffer("alpha", constant(alpha))
        self.register_buffer("gain", constant(gain))
        self.register_buffer("bias_offset", constant(bias_offset))

    def forward(self, x, controls):
        z = _to_complex(x, self.n_channels)
        real = z.real.dtype
        out = eo_activation(z, alpha=self.alpha.to(real), gain=self.gain.to(real),
                            bias=controls["bias_rad"].to(real) + self.bias_offset.to(real))
        return _to_features(out).to(x.dtype)


class ElectroOpticActivationPlant(Plant, Simulated, ChannelWise):
    """The on-chip electro-optic activation of ``n_channels`` channels (see the module docstring);
    features ``[Re z, Im z]`` in and out, controls ``bias_rad`` (one bias phase per channel)."""

    summary = "electro-optic nonlinear activation of coherent fields (Williamson et al. 2020)"

    def __init__(self, *, n_channels: int = 4, design: EODesign = EODesign(), mismatch: EOMismatch = EOMismatch(),
                 cost: CostModel = ACTIVATION_COST, seed: int = 0) -> None:
        n_channels = check_int("n_channels", n_channels)
        if not isinstance(design, EODesign):
            raise TypeError(f"design must be an EODesign(...), got {type(design).__name__}.")
        if not isinstance(mismatch, EOMismatch):
            raise TypeError(f"mismatch must be an EOMismatch(...) (or EOMismatch.ideal()), got "
                            f"{type(mismatch).__name__}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        super().__init__(in_features=2 * n_channels, out_features=2 * n_channels, cost=cost, seed=seed)
        self.n_channels, self.design, self.mismatch = n_channels, design, mismatch
        fab = torch.Generator().manual_seed(104_729 * (seed + 1))
        draw = lambda: torch.randn(n_channels, generator=fab, dtype=torch.float64)
        self._alpha = (design.alpha * (1.0 + mismatch.alpha_rel_sigma * draw())).clamp(1e-4, 0.999)
        self._gain = design.gain_rad * (1.0 + mismatch.gain_rel_sigma * draw())
        self._bias_offset = mismatch.bias_sigma_rad * draw()

    def control_specs(self):
        return {"bias_rad": ControlSpec((self.n_channels,), -math.pi, math.pi, unit="rad", periodic=True,
                                        description="modulator bias phase phi_b = pi V_b / V_pi per channel "
                                                    "(bias voltage -V_pi .. V_pi)")}

    def initial_controls(self, generator=None):
        """Bias 0: full transmission at low power, falling with power (a saturating response); in the
        middle of the control range, so a sigmoid-mapped parameter starts with a useful gradient."""
        return {"bias_rad": torch.zeros(self.n_channels, device=self.device)}

    def example_inputs(self, batch, generator=None):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return 0.7 * torch.randn(batch, 2 * self.n_channels, generator=gen)

    def _measure(self, x, controls, generator):
        z = _to_complex(x.double(), self.n_channels)
        bias = controls["bias_rad"].double() + self._bias_offset
        if self.mismatch.photodiode_noise:
            # the photocurrent noise moves the modulator phase: gain x (power noise)
            noise = self.mismatch.photodiode_noise * devices.randn(z.shape, generator=generator, device=z.device,
                                                                   dtype=torch.float64)
            bias = bias + self._gain * noise
        out = eo_activation(z, alpha=self._alpha, gain=self._gain, bias=bias)
        return _to_features(out).to(x.dtype)

    def nominal_twin(self) -> EOTwin:
        return EOTwin(n_channels=self.n_channels, alpha=self.design.alpha, gain=self.design.gain_rad, bias_offset=0.0,
                      device=self.device)

    def true_twin(self) -> EOTwin:
        return EOTwin(n_channels=self.n_channels, alpha=self._alpha, gain=self._gain, bias_offset=self._bias_offset,
                      device=self.device)

    def describe(self):
        return f"ElectroOpticActivationPlant(n_channels={self.n_channels})"
