"""Adapting the chosen network to the user's own measurement, without truth (issue 13).

:func:`adapt_to_counts` fine-tunes a checkpoint on the measured counts themselves by
binomial thinning (:mod:`.self_supervised`) and keeps the result only if it explains
*held-out* projections better.  Every ``holdout_every``-th projection (all elements)
is left out of the training; on them the base and the adapted network are scored by
the same thinning loss, averaged over ``holdout_splits`` fixed splits of the counts.
That loss estimates ``|| A f(y) - A x ||^2`` up to a constant (``A`` the fly-scan),
so it compares the two networks on what the measurement determines, on this
sample, with no truth; the simulated validation region, which picks between the
pretrained and fine-tuned networks, cannot see a gain specific to this sample.

Measured on the default run's phantom with the stage on (1000 steps, docs/models.md):
2-D 31.23 -> 31.5 dB, FRC 73.6 -> 70.5 nm, finest pair 120 -> 90 nm; 3-D (91 -> 270)
FSC against the truth 48.4 -> 43.0 nm, finest pair 45 -> 90 nm.  The adapted network
has seen the counts of both split halves, so the 3-D split-half FSC stops being
independent (15 nm, Nyquist); a warning says so.  About 2 min on two CPU cores, so the
pipeline runs it only when ``fine_tuning.self_supervised.steps`` is above zero.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from xrf_sr_kedro.io.checks import COUNT_UNITS, FITTED_UNITS
from xrf_sr_kedro.io.checkpoint import config_from_checkpoint, model_from_checkpoint
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.training.selection import keep_if_better
from xrf_sr_kedro.training.self_supervised import (
    SelfSupervisedSettings,
    fine_tune_on_counts,
    thin,
    thinning_loss,
)
from xrf_sr_kedro.types import ProbeIntensity, XRFStack

logger = logging.getLogger(__name__)

__all__ = ["AdaptationSettings", "adapt_to_counts", "held_out_thinning_loss"]


@dataclass(frozen=True)
class AdaptationSettings(SelfSupervisedSettings):
    """The training settings of :class:`SelfSupervisedSettings` (``steps: 0`` turns the
    adaptation off), every ``holdout_every``-th projection held out, scored over
    ``holdout_splits`` fixed thinnings."""

    holdout_every: int = 5
    holdout_splits: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if int(self.holdout_every) < 2:
            raise ValueError("holdout_every must be >= 2 (every n-th projection is held out), "
                             f"got {self.holdout_every!r}")
        if int(self.holdout_splits) < 1:
            raise ValueError(f"holdout_splits must be >= 1, got {self.holdout_splits!r}")


def _counts(stack: XRFStack, name: str) -> np.ndarray:
    """The stack's data as integer counts (rounded, negatives set to 0), or a clear error.

    Fitted XRF maps and simulated ones with readout noise are counts that are not
    integers; rounding them moves each value by at most half a count.  Maps in other
    units (e.g. normalised by the incident flux) are refused: their noise is not Poisson
    in those units.
    """
    data = np.asarray(stack.data, dtype=np.float64)
    if str(stack.units).strip().lower() not in COUNT_UNITS | FITTED_UNITS:
        raise ValueError(f"{name}: the maps are in {stack.units!r}, not detector counts "
                         f"({sorted(COUNT_UNITS | FITTED_UNITS)}); binomial "
                         "thinning needs counts (not maps normalised by the incident flux) - give "
                         "the unnormalised counts or set fine_tuning.self_supervised.steps: 0")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{name}: the maps contain NaN or infinite values; self-supervised "
                         "adaptation needs finite counts (fine_tuning.self_supervised.steps: 0 to skip it)")
    counts = np.rint(np.clip(data, 0, None)).astype(np.int64)
    logger.info("%s: counts rounded to integers for thinning (%.2g %% of the values were negative)",
                name, 100.0 * float(np.mean(data < 0)))
    return counts


def held_out_thinning_loss(
    model: torch.nn.Module, counts: np.ndarray, probe: torch.Tensor, scale: int,
    p: float, margin_px: int, splits: int, seed: int,
) -> float:
    """Mean thinning loss of ``model`` over whole maps ``counts`` (n, h, w), ``splits``
    fixed thinnings (seeded: the same splits for every network scored)."""
    rng = np.random.default_rng(seed)
    total, n = 0.0, 0
    model.eval()
    with torch.no_grad():
        for _ in range(splits):
            y1, y2 = thin(counts, p, rng)
            for k in range(len(counts)):
                total += float(thinning_loss(model, y1[k:k + 1], y2[k:k + 1], p, probe, scale, margin_px))
                n += 1
    return total / max(n, 1)


def adapt_to_counts(
    checkpoint: dict[str, Any], stack: XRFStack, probe_intensity: ProbeIntensity,
    settings: AdaptationSettings, name: str = "raw_xrf",
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """``checkpoint`` adapted to the counts of ``stack``, if that explains held-out projections better.

    Returns the checkpoint to use (with an ``"adaptation"`` record: steps, the held-out
    losses, whether the adapted weights were kept) and MLflow metric histories
    (per-100-step training loss, held-out loss of the base and the adapted network).
    With ``settings.steps == 0`` the checkpoint comes back unchanged (recorded as off).
    """
    if settings.steps == 0:
        out = dict(checkpoint)
        out["adaptation"] = {"steps": 0, "kept": False}
        return out, {}
    counts = _counts(stack, name)
    scale = int(config_from_checkpoint(checkpoint).scale)
    n_elements, n_frames, h, w = counts.shape
    held = np.arange(n_frames) % settings.holdout_every == settings.holdout_every - 1
    if held.all() or not held.any():
        raise ValueError(f"{name}: {n_frames} projection(s) cannot be split for held-out scoring "
                         f"(every {settings.holdout_every}th held out)")
    train_counts = counts[:, ~held].reshape(-1, h, w)
    test_counts = counts[:, held].reshape(-1, h, w)
    probe = torch.from_numpy(
        resample_probe(probe_intensity, stack.pixel_size_nm / scale).intensity.astype(np.float32))
    logger.info("self-supervised adaptation to %s: %d steps on %d maps, %d held out",
                name, settings.steps, len(train_counts), len(test_counts))
    base = model_from_checkpoint(checkpoint)
    tuned, losses = fine_tune_on_counts(base, train_counts, probe, scale, settings)
    score = dict(p=settings.p, margin_px=settings.margin_px, splits=settings.holdout_splits,
                 seed=settings.seed + 1)
    before = held_out_thinning_loss(base, test_counts, probe, scale, **score)
    after = held_out_thinning_loss(tuned, test_counts, probe, scale, **score)
    out, metrics, kept = keep_if_better(checkpoint, tuned, before, after, losses, "thinning", "adapted")
    if kept:
        logger.warning(
            "%s: the adapted network has seen the counts of every projection, so split-half "
            "FSCs of chains that use it are no longer independent (measured: 15 nm, Nyquist, "
            "against 59 nm unadapted); judge it by FSC against a reference, not split halves",
            name)
    out["adaptation"] = {
        "steps": int(settings.steps), "kept": bool(kept), "data": name,
        "split_half_independent": not kept,
        "held_out_loss_before": before, "held_out_loss_after": after,
        "settings": asdict(settings),
    }
    return out, metrics
