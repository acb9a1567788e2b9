"""Fine-tuning nodes: experimental (coarse, fine) scan pairs and the second training stage."""

from __future__ import annotations

import logging
from typing import Any

from matplotlib.figure import Figure

from xrf_sr_kedro.io.checkpoint import model_from_checkpoint
from xrf_sr_kedro.physics.pairs import pairs_from_maps
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.pipelines.pretraining.nodes import CheckpointParams, TrainParams, train_model
from xrf_sr_kedro.types import PatchPairs, XRFStack

logger = logging.getLogger(__name__)


@validated
class FineTunePairsParams:
    """Patch pairs from a coarse and a fine scan of the same region.

    ``validation_every`` frames (e.g. every 5th projection) are held out for
    validation.
    """

    lr_patch_px: int = 16
    stride_px: int = 2
    validation_every: int = 5


def make_fine_tuning_pairs(
    coarse: XRFStack, fine: XRFStack, pairs: FineTunePairsParams
) -> tuple[PatchPairs, PatchPairs]:
    """Normalised (coarse, fine) patch pairs, split by frame into training and validation."""
    scale = coarse.pixel_size_nm / fine.pixel_size_nm
    if coarse.data.shape[:2] != fine.data.shape[:2]:
        raise ValueError(
            f"coarse scan has (elements, frames) {coarse.data.shape[:2]} but the fine scan "
            f"has {fine.data.shape[:2]}: they must cover the same frames"
        )
    if abs(scale - round(scale)) > 1e-3 or fine.shape_hw != tuple(round(scale) * n for n in coarse.shape_hw):
        raise ValueError(
            f"fine scan {fine.shape_hw} at {fine.pixel_size_nm} nm is not an integer zoom of the "
            f"coarse scan {coarse.shape_hw} at {coarse.pixel_size_nm} nm"
        )
    frames = coarse.n_frames
    held_out = [f for f in range(frames) if f % pairs.validation_every == pairs.validation_every - 1]
    kept = [f for f in range(frames) if f not in held_out]

    def build(index: list[int]) -> PatchPairs:
        lr = coarse.data[:, index].reshape(-1, *coarse.shape_hw)
        hr = fine.data[:, index].reshape(-1, *fine.shape_hw)
        return pairs_from_maps(
            lr, hr, pairs.lr_patch_px, coarse.pixel_size_nm, fine.pixel_size_nm,
            stride_px=pairs.stride_px,
        )

    return build(kept), build(held_out)


def fine_tune(
    pretrained_model: dict[str, Any],
    pairs: PatchPairs,
    validation_pairs: PatchPairs,
    train: TrainParams,
    checkpoints: CheckpointParams,
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]], Figure]:
    """Stage 2: continue from the pretrained weights on experimental pairs (lr / 10)."""
    network = model_from_checkpoint(pretrained_model)
    logger.info(
        "Fine-tuning from the pretrained checkpoint (epoch %s) on %d pairs at lr %.2g",
        pretrained_model.get("epoch"),
        len(pairs),
        train.learning_rate,
    )
    return train_model(
        pairs, validation_pairs, network, train, checkpoints,
        training_data=f"fine-tuning: {pairs.lr_pixel_size_nm:.0f} nm / {pairs.hr_pixel_size_nm:.0f} nm scans",
        init_checkpoint=pretrained_model,
        preset=pretrained_model.get("preset"),
    )
