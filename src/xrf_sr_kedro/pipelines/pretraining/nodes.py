"""Pretraining nodes: stage 1, the network trained from scratch on simulated pairs.

MLflow logging happens through the catalog: the node returns the per-epoch history
(an ``MlflowMetricsHistoryDataset``), the checkpoint and an example figure
(``MlflowArtifactDataset`` entries).  The stage itself is
:func:`xrf_sr_kedro.training.stage.pretrain_stage`.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.training.checkpointing import CheckpointSettings
from xrf_sr_kedro.training.loop import TrainConfig
from xrf_sr_kedro.training.stage import pretrain_stage, shipped_pretrained
from xrf_sr_kedro.types import PatchPairs

TrainParams = validated(TrainConfig)
CheckpointParams = validated(CheckpointSettings)


@validated
class ModelParams:
    """Which network to build: a preset name from ``xrf_sr_kedro.models.dual_branch.PRESETS``."""

    preset: str = "small"


def pretrain(
    pairs: PatchPairs,
    validation_region_pairs: PatchPairs,
    natural_validation_pairs: PatchPairs,
    model: ModelParams,
    train: TrainParams,
    checkpoints: CheckpointParams,
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]], Figure]:
    """Stage 1: train from scratch; checkpoint chosen on the validation region,
    natural-image validation logged as ``natural_val_*`` (gain over bicubic, dB)."""
    return pretrain_stage(
        pairs, validation_region_pairs, model.preset, train, checkpoints,
        extra_validation={"natural_val": natural_validation_pairs},
    )


def use_shipped_network(shipped_checkpoint: dict[str, Any], model: ModelParams) -> dict[str, Any]:
    """Stage 1 without training (``kedro run``): the shipped pretrained network,
    checked against ``pretraining.model.preset`` and written as ``pretrained_model``."""
    return shipped_pretrained(shipped_checkpoint, model.preset)
