"""Training nodes, shared by the pretraining and fine-tuning pipelines.

Both stages call :func:`train_model`; fine-tuning passes the pretrained checkpoint
as the starting point.  MLflow logging happens through the catalog: the nodes
return the per-epoch history (an ``MlflowMetricsHistoryDataset``), the checkpoint
and an example figure (``MlflowArtifactDataset`` entries).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from xrf_sr_kedro.io.checkpoint import model_from_checkpoint
from xrf_sr_kedro.metrics.image import bicubic_upsample
from xrf_sr_kedro.metrics.plots import plot_side_by_side
from xrf_sr_kedro.models.dual_branch import build_model, config_from_name, count_parameters
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.training.loop import TrainConfig, fit
from xrf_sr_kedro.types import PatchPairs

logger = logging.getLogger(__name__)

TrainParams = validated(TrainConfig)


@validated
class ModelParams:
    """Which network to build: a preset name from ``xrf_sr_kedro.models.dual_branch.PRESETS``."""

    preset: str = "small"


@validated
class CheckpointParams:
    """Where per-epoch checkpoints go, and whether to resume from the last one."""

    directory: str = "data/06_models/pretraining_run"
    resume: bool = False


def train_model(
    pairs: PatchPairs,
    validation_pairs: PatchPairs,
    model: torch.nn.Module,
    train: TrainConfig,
    checkpoints: CheckpointParams,
    training_data: str,
    init_checkpoint: dict[str, Any] | None = None,
    preset: str | None = None,
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]], Figure]:
    """Train ``model`` and return (checkpoint, MLflow metric history, example figure)."""
    checkpoint = fit(
        model,
        pairs,
        validation_pairs,
        train,
        checkpoint_dir=checkpoints.directory,
        resume=checkpoints.resume,
        init_checkpoint=init_checkpoint,
        training_data=training_data,
    )
    checkpoint["preset"] = preset
    history = {
        name: [{"value": float(v), "step": step} for step, v in enumerate(values, start=1) if v is not None and np.isfinite(v)]
        for name, values in checkpoint["history"].items()
    }
    history["n_parameters"] = [{"value": float(count_parameters(model)), "step": 0}]
    trained = model_from_checkpoint(checkpoint)
    return checkpoint, history, example_figure(trained, validation_pairs, title=training_data)


def example_figure(model: torch.nn.Module, pairs: PatchPairs, title: str, n: int = 3) -> Figure:
    """LR input, bicubic, network output and HR truth for the first ``n`` pairs."""
    model = model.eval().cpu()
    index = np.linspace(0, len(pairs) - 1, min(n, len(pairs))).astype(int)
    lr = torch.from_numpy(pairs.lr[index])
    with torch.inference_mode():
        sr = model(lr).numpy()
    bicubic = bicubic_upsample(lr, pairs.scale).numpy()
    panels = {}
    for k, i in enumerate(index):
        panels[f"#{i} LR input"] = pairs.lr[i, 0]
        panels[f"#{i} bicubic"] = bicubic[k, 0]
        panels[f"#{i} network"] = sr[k, 0]
        panels[f"#{i} HR truth"] = pairs.hr[i, 0]
    return plot_side_by_side(panels, title=f"{title}: before / after", shared_scale=False, ncols=4)


def pretrain(
    pairs: PatchPairs,
    validation_pairs: PatchPairs,
    model: ModelParams,
    train: TrainParams,
    checkpoints: CheckpointParams,
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]], Figure]:
    """Stage 1: train the network from scratch on fly-scanned natural images."""
    config = config_from_name(model.preset)
    network = build_model(config)
    logger.info(
        "Pretraining preset '%s' (%d parameters) on %d pairs",
        model.preset,
        count_parameters(network),
        len(pairs),
    )
    source = pairs.metadata.get("source", "natural images")
    return train_model(
        pairs, validation_pairs, network, train, checkpoints,
        training_data=f"pretraining: {source}", preset=model.preset,
    )
