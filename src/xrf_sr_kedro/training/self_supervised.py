"""Self-supervised fine-tuning on measured counts by binomial thinning (issue 13 experiment).

No truth and no simulated pairs: the network is adapted to the user's own sample
through the exact fly-scan operator ``A``.  For Poisson counts ``y``,
``y1 ~ Binomial(y, p)`` and ``y2 = y - y1`` are independent Poisson counts with means
``p A x`` and ``(1 - p) A x``.  The network enhances ``y1 / p`` (normalised by its own
range, as the engine normalises a measured map); its output, fly-scanned again, is
compared with ``y2 / (1 - p)``:

    E || A f(y1 / p) - y2 / (1 - p) ||^2 = || A f(y1 / p) - A x ||^2 + const,

an unbiased loss for what the measurement determines (:func:`thinning_loss`).  A fresh
split every step gives an endless supply of pairs from one scan
(:func:`fine_tune_on_counts`); :func:`scale_equivariance_loss` optionally adds detail
the fly-scan removes.  Measured on the default run (``benchmarks/self_supervised_2d.py``,
docs/models.md): every 2-D column improves, not to the 65 nm target.  The pipeline stage
that uses it, with a held-out keep-or-discard test, is :mod:`.adaptation`.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xrf_sr_kedro.normalisation import minmax_range, normalise
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.progress import Progress
from xrf_sr_kedro.training.precision import training_autocast

logger = logging.getLogger(__name__)

__all__ = ["SelfSupervisedSettings", "thin", "thinning_loss", "fine_tune_on_counts"]


@dataclass(frozen=True)
class SelfSupervisedSettings:
    """Steps, batch of ``crop_px`` LR crops, border ``margin_px`` left out of the loss,
    input fraction ``p`` of the counts, Adam learning rate, seed."""

    steps: int = 1000
    batch: int = 8
    crop_px: int = 32
    margin_px: int = 4
    p: float = 0.8
    learning_rate: float = 5e-4
    seed: int = 0
    equivariance_weight: float = 0.0
    equivariance_factor: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.p < 1.0:
            raise ValueError(f"p must be in (0, 1), got {self.p!r}")
        if not 0 <= 2 * self.margin_px < self.crop_px:
            raise ValueError(f"margin_px ({self.margin_px}) must leave part of crop_px ({self.crop_px})")
        if self.equivariance_weight < 0:
            raise ValueError(f"equivariance_weight must be >= 0, got {self.equivariance_weight!r}")
        if int(self.steps) < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps!r}")
        for name in ("batch", "crop_px", "equivariance_factor"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")


def thin(counts: np.ndarray, p: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split integer counts into ``(y1, y2)``, ``y1 ~ Binomial(counts, p)``, ``y2 = counts - y1``."""
    y = np.asarray(counts)
    if not np.issubdtype(y.dtype, np.integer) or np.any(y < 0):
        raise ValueError("counts must be non-negative integers (round measured counts first)")
    y1 = rng.binomial(y, p)
    return y1, y - y1


def thinning_loss(
    model: nn.Module, y1: np.ndarray, y2: np.ndarray, p: float, probe: torch.Tensor, scale: int,
    margin_px: int = 0, autocast_dtype: torch.dtype | None = None, return_fine: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``mean(((A f(y1 / p) - y2 / (1 - p)) / range)^2)`` over the crops' interiors.

    ``y1``, ``y2``: (n, h, w) counts; each input ``y1 / p`` is normalised by its own
    min/max (:func:`~xrf_sr_kedro.normalisation.minmax_range`, ``range = hi - lo``), and the network's output is mapped back to counts
    before the fly-scan ``A`` (``probe`` on the fine grid, ``scale`` fine pixels a step).
    """
    inp = np.asarray(y1, dtype=np.float64) / p
    lo, hi = minmax_range(inp)  # the engine's normalisation of a measured map
    span = hi - lo
    x = torch.from_numpy(normalise(inp, lo, hi))[:, None]
    lo_t = torch.from_numpy(lo.astype(np.float32))[:, None]
    span_t = torch.from_numpy(span.astype(np.float32))[:, None]
    target = torch.from_numpy((np.asarray(y2, dtype=np.float64) / (1 - p)).astype(np.float32))[:, None]
    with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
        out = model(x)
    fine = out.float() * span_t + lo_t
    pred = flyscan(fine, probe, scale)
    h, w = pred.shape[-2:]
    m = int(margin_px)
    loss = ((((pred - target) / span_t)[..., m:h - m, m:w - m]) ** 2).mean()
    if return_fine:
        return loss, fine
    return loss


def scale_equivariance_loss(
    model: nn.Module, fine: torch.Tensor, p: float, probe: torch.Tensor, scale: int, factor: int,
    margin_px: int, generator: torch.Generator, autocast_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """The network should recover its own output zoomed out by ``factor`` from its scan.

    ``fine``: (n, 1, H, W) enhanced crops in counts (no gradient is taken through
    them).  ``x' = avgpool(fine, factor)`` is the same structure ``factor`` times
    smaller; it is fly-scanned, given Poisson noise at the input's dose
    (``Poisson(p A x') / p``), normalised like a measured map and enhanced; the loss is
    ``mean(((f(y') - x') / range')^2)`` over the interior.  For a sample whose
    structures come in many sizes (scale-invariant statistics) this teaches detail
    the fly-scan removes (its null space), which the thinning loss cannot see
    (equivariant imaging with a scale transform: Scanvic et al., 2023).
    """
    target = torch.nn.functional.avg_pool2d(fine.detach().clamp_min(0), factor)
    mean = flyscan(target, probe, scale).clamp_min(0)
    noisy = torch.poisson(p * mean.double(), generator=generator) / p
    inp = noisy[:, 0].numpy()
    lo, hi = minmax_range(inp)
    span = torch.from_numpy((hi - lo).astype(np.float32))[:, None]  # (n, 1, 1, 1)
    lo_t = torch.from_numpy(lo.astype(np.float32))[:, None]
    x = torch.from_numpy(normalise(inp, lo, hi))[:, None]
    with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
        out = model(x)
    err = (out.float() * span + lo_t - target) / span
    h, w = err.shape[-2:]
    m = int(margin_px) * scale
    return (err[..., m:h - m, m:w - m] ** 2).mean()


def fine_tune_on_counts(
    model: nn.Module, counts: np.ndarray, probe: torch.Tensor, scale: int,
    settings: SelfSupervisedSettings = SelfSupervisedSettings(),
) -> tuple[nn.Module, list[float]]:
    """A copy of ``model`` fine-tuned on measured ``counts`` (n, h, w) by thinning.

    Each step draws ``batch`` random crops (and random flips along y, which commute
    with an x fly-scan), splits their counts anew and takes one Adam step on
    :func:`thinning_loss`.  Returns the tuned copy (eval mode) and the per-step losses.
    """
    y = np.rint(np.clip(np.asarray(counts), 0, None)).astype(np.int64)
    n, h, w = y.shape
    c = settings.crop_px
    if c > min(h, w):
        raise ValueError(f"crop_px ({c}) is larger than the maps ({h} x {w})")
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    tuned = copy.deepcopy(model).train()
    autocast_dtype, _ = training_autocast(True, torch.device("cpu"))
    opt = torch.optim.Adam(tuned.parameters(), lr=settings.learning_rate)
    losses = []
    with Progress(settings.steps, "self-supervised fine-tuning", unit="step") as bar:
        for step in range(settings.steps):
            idx = rng.integers(0, n, settings.batch)
            ys, xs = rng.integers(0, h - c + 1, settings.batch), rng.integers(0, w - c + 1, settings.batch)
            crops = np.stack([y[i, a:a + c, b:b + c] for i, a, b in zip(idx, ys, xs)])
            flip = rng.random(settings.batch) < 0.5
            crops = np.where(flip[:, None, None], crops[:, ::-1, :], crops)
            y1, y2 = thin(crops, settings.p, rng)
            opt.zero_grad(set_to_none=True)
            loss, fine = thinning_loss(tuned, y1, y2, settings.p, probe, scale, settings.margin_px,
                                       autocast_dtype, return_fine=True)
            if settings.equivariance_weight > 0:
                loss = loss + settings.equivariance_weight * scale_equivariance_loss(
                    tuned, fine, settings.p, probe, scale, settings.equivariance_factor,
                    max(1, settings.margin_px // settings.equivariance_factor), gen, autocast_dtype)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if (step + 1) % 100 == 0:
                logger.info("self-supervised step %d/%d: loss %.5f", step + 1, settings.steps,
                            float(np.mean(losses[-100:])))
            bar.update()
    return tuned.eval(), losses
