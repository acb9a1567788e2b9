"""Fine-tuning on a fine scan of a second region, compared through the probe (issue 13).

The paper fine-tunes on a coarse and a fine scan of a second region of the sample and
compares the network's output with the fine scan.  A fine scan is the sample *seen
through the probe*: at the application's 7.5 nm step the 40 nm probe (with its
zone-plate tails) blurs it, so that comparison teaches the network to output the blur
(measured: 29.1 dB against 31.2 for the pretrained network).  Here the network's
output is scanned by the probe at the fine scan's own step before it is compared:

    loss = mean(((P f(c) - y_fine) / range)^2)

``c`` the coarse map normalised like a measured map (its own min/max, ``range`` =
max - min), ``f`` the network, ``P`` the fly-scan at the fine step on the network's
output grid (:func:`~xrf_sr_kedro.physics.flyscan.flyscan`, step 1), ``y_fine`` the
fine map brought to the coarse map's scale by the ratio of the two maps' means (a
fly-scan with a unit-sum probe keeps the mean; the two scans may differ in dwell).
The fine scan's noise is independent of the coarse scan's and has zero mean, so a
short-dwell fine scan still gives an unbiased loss: measured on the default run, a
fine scan at 1/16 of the coarse scan's dwell per point (the same dose and beam time
per area) tuned as well as one at the full dwell (69.5 vs 69.1 nm); at 1/64 it did not
(72.9 nm).  Detail the probe removes (its null space) comes from the pretraining.

Every ``holdout_every``-th frame of the region (all elements) is held out; the base
and the tuned network are scored by the same loss on those whole maps and the tuned
one is kept only if it is lower (no truth of the evaluated sample is used: the region
is a different part of the sample).  Measured in the default run with 500 steps
(docs/models.md, "A fine scan of a second region"): 2-D FRC against the truth 74.5 ->
69.5 nm, 3-D axial FSC 43.2 -> 38.9 nm.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xrf_sr_kedro.io.checkpoint import config_from_checkpoint, model_from_checkpoint
from xrf_sr_kedro.normalisation import minmax_range, normalise
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.progress import Progress
from xrf_sr_kedro.training.precision import training_autocast
from xrf_sr_kedro.training.selection import keep_if_better
from xrf_sr_kedro.types import ProbeIntensity, XRFStack

logger = logging.getLogger(__name__)

__all__ = ["FineScanSettings", "fine_scan_maps", "through_probe_loss", "fine_tune_on_fine_scan"]


@dataclass(frozen=True)
class FineScanSettings:
    """``steps`` Adam steps (0: off) on batches of ``batch`` random ``crop_px`` coarse
    crops; ``margin_px`` fine pixels at the crop border left out of the loss; every
    ``holdout_every``-th frame held out for the keep-or-discard test."""

    steps: int = 500
    batch: int = 8
    crop_px: int = 32
    margin_px: int = 8
    learning_rate: float = 5e-4
    holdout_every: int = 5
    fast_axis: Literal["x", "y"] = "x"
    seed: int = 0

    def __post_init__(self) -> None:
        if int(self.steps) < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps!r}")
        for name in ("batch", "crop_px"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if int(self.margin_px) < 0:
            raise ValueError(f"margin_px must be >= 0, got {self.margin_px!r}")
        if int(self.holdout_every) < 2:
            raise ValueError("holdout_every must be >= 2 (every n-th frame is held out), "
                             f"got {self.holdout_every!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")


def fine_scan_maps(coarse: XRFStack, fine: XRFStack, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(coarse, fine)`` maps (n, h, w) and (n, h*scale, w*scale), normalised by each
    coarse map's min/max; each fine map first brought to its coarse map's scale by the
    ratio of their means.  Refuses, naming the stacks, scans that are not the same
    elements and frames on grids ``scale`` apart, or that hold NaN."""
    if tuple(coarse.elements) != tuple(fine.elements) or coarse.n_frames != fine.n_frames:
        raise ValueError(
            f"fine_scan_coarse_xrf has elements {list(coarse.elements)} x {coarse.n_frames} frames but "
            f"fine_scan_fine_xrf has {list(fine.elements)} x {fine.n_frames}: the two scans must "
            "cover the same elements and projections")
    zoom = coarse.pixel_size_nm / fine.pixel_size_nm
    h, w = coarse.shape_hw
    if abs(zoom - scale) > 1e-3 * scale or tuple(fine.shape_hw) != (h * scale, w * scale):
        raise ValueError(
            f"fine_scan_fine_xrf ({fine.shape_hw[0]} x {fine.shape_hw[1]} px of {fine.pixel_size_nm:g} nm) "
            f"is not a {scale}x zoom of fine_scan_coarse_xrf ({h} x {w} px of "
            f"{coarse.pixel_size_nm:g} nm), the network's scale: scan the region at the "
            "network's output pixel size, or set fine_tuning.fine_scan.steps: 0")
    c = np.asarray(coarse.data, dtype=np.float64).reshape(-1, h, w)
    f = np.asarray(fine.data, dtype=np.float64).reshape(-1, h * scale, w * scale)
    for name, x in (("fine_scan_coarse_xrf", c), ("fine_scan_fine_xrf", f)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name}: the maps contain NaN or infinite values; "
                             "fine_tuning.fine_scan.steps: 0 to skip the stage")
    mean_c, mean_f = c.mean(axis=(-2, -1), keepdims=True), f.mean(axis=(-2, -1), keepdims=True)
    ratio = np.where(mean_f > 0, mean_c / np.where(mean_f > 0, mean_f, 1.0), 1.0)
    lo, hi = minmax_range(c)
    return normalise(c, lo, hi), normalise(f * ratio, lo, hi)


def through_probe_loss(
    model: nn.Module, coarse: torch.Tensor, fine: torch.Tensor, probe: torch.Tensor,
    margin_px: int, fast_axis: str = "x", autocast_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``mean((P f(coarse) - fine)^2)`` over the interior, ``P`` the fly-scan at step 1.

    ``coarse`` (n, 1, h, w) and ``fine`` (n, 1, h*s, w*s), normalised by
    :func:`fine_scan_maps`.  The output is extended by reflection by half the probe
    before the scan (so crops are not darkened by zero padding); ``margin_px`` fine
    pixels at each border are left out.
    """
    with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
        out = model(coarse)
    out = out.float()
    pad = min(probe.shape[-1] // 2, out.shape[-1] - 1, out.shape[-2] - 1)
    pred = flyscan(F.pad(out, (pad, pad, pad, pad), mode="reflect"), probe, 1, fast_axis)
    pred = pred[..., pad:pred.shape[-2] - pad, pad:pred.shape[-1] - pad]
    m = int(margin_px)
    h, w = pred.shape[-2:]
    return ((pred - fine)[..., m:h - m, m:w - m] ** 2).mean()


def _held_out_loss(model: nn.Module, coarse: np.ndarray, fine: np.ndarray, probe: torch.Tensor,
                   settings: FineScanSettings) -> float:
    """Mean :func:`through_probe_loss` over whole held-out maps, one at a time."""
    model.eval()
    with torch.no_grad():
        return float(np.mean([
            float(through_probe_loss(model, torch.from_numpy(coarse[k:k + 1, None]),
                                     torch.from_numpy(fine[k:k + 1, None]), probe,
                                     settings.margin_px, settings.fast_axis))
            for k in range(len(coarse))]))


def _tune(model: nn.Module, coarse: np.ndarray, fine: np.ndarray, probe: torch.Tensor,
          scale: int, settings: FineScanSettings) -> tuple[nn.Module, list[float]]:
    """A copy of ``model`` after ``settings.steps`` Adam steps on random crops (flipped
    together with the probe along y and x, so the forward model stays exact)."""
    n, h, w = coarse.shape
    c = int(settings.crop_px)
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    tuned = copy.deepcopy(model).train()
    autocast_dtype, _ = training_autocast(True, torch.device("cpu"))
    opt = torch.optim.Adam(tuned.parameters(), lr=settings.learning_rate)
    coarse_t, fine_t = torch.from_numpy(coarse), torch.from_numpy(fine)
    losses: list[float] = []
    with Progress(settings.steps, "fine-scan fine-tuning", unit="step") as bar:
        for step in range(settings.steps):
            idx = rng.integers(0, n, settings.batch)
            ys, xs = rng.integers(0, h - c + 1, settings.batch), rng.integers(0, w - c + 1, settings.batch)
            x = torch.stack([coarse_t[i, a:a + c, b:b + c] for i, a, b in zip(idx, ys, xs)])[:, None]
            y = torch.stack([fine_t[i, a * scale:(a + c) * scale, b * scale:(b + c) * scale]
                             for i, a, b in zip(idx, ys, xs)])[:, None]
            pr = probe
            for axis in (-2, -1):
                if rng.random() < 0.5:
                    x, y, pr = x.flip(axis), y.flip(axis), pr.flip(axis)
            opt.zero_grad(set_to_none=True)
            loss = through_probe_loss(tuned, x, y, pr, settings.margin_px, settings.fast_axis, autocast_dtype)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if (step + 1) % 100 == 0:
                logger.info("fine-scan step %d/%d: loss %.6f", step + 1, settings.steps,
                            float(np.mean(losses[-100:])))
            bar.update()
    return tuned.eval(), losses


def fine_tune_on_fine_scan(
    checkpoint: dict[str, Any], coarse: XRFStack, fine: XRFStack, probe_intensity: ProbeIntensity,
    settings: FineScanSettings,
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """``checkpoint`` fine-tuned on a (coarse, fine) scan of a second region through the
    probe, if that explains the region's held-out frames better.

    Returns the checkpoint to use (with a ``"fine_scan"`` record: steps, held-out losses,
    kept) and MLflow metric histories.  ``settings.steps == 0`` returns it unchanged.
    """
    if settings.steps == 0:
        out = dict(checkpoint)
        out["fine_scan"] = {"steps": 0, "kept": False}
        return out, {}
    scale = int(config_from_checkpoint(checkpoint).scale)
    c, f = fine_scan_maps(coarse, fine, scale)
    h, w = coarse.shape_hw
    if settings.crop_px > min(h, w):
        raise ValueError(f"fine_tuning.fine_scan.crop_px ({settings.crop_px}) is larger than the "
                         f"coarse maps of fine_scan_coarse_xrf ({h} x {w} px): lower it")
    frames = np.arange(coarse.n_frames)
    held = np.tile(frames % settings.holdout_every == settings.holdout_every - 1, len(coarse.elements))
    if held.all() or not held.any():
        raise ValueError(f"fine_scan_coarse_xrf: {coarse.n_frames} frame(s) cannot be split for "
                         f"held-out scoring (every {settings.holdout_every}th held out): scan more "
                         "projections of the region or set fine_tuning.fine_scan.steps: 0")
    probe = torch.from_numpy(resample_probe(probe_intensity, fine.pixel_size_nm).intensity.astype(np.float32))
    logger.info("fine-scan fine-tuning: %d steps on %d maps of the second region (%g -> %g nm), %d held out",
                settings.steps, int((~held).sum()), coarse.pixel_size_nm, fine.pixel_size_nm, int(held.sum()))
    base = model_from_checkpoint(checkpoint)
    tuned, losses = _tune(base, c[~held], f[~held], probe, scale, settings)
    before = _held_out_loss(base, c[held], f[held], probe, settings)
    after = _held_out_loss(tuned, c[held], f[held], probe, settings)
    out, metrics, kept = keep_if_better(checkpoint, tuned, before, after, losses, "fine-scan", "tuned")
    out["fine_scan"] = {"steps": int(settings.steps), "kept": bool(kept),
                        "held_out_loss_before": before, "held_out_loss_after": after,
                        "coarse_pixel_size_nm": float(coarse.pixel_size_nm),
                        "fine_pixel_size_nm": float(fine.pixel_size_nm), "settings": asdict(settings)}
    return out, metrics
