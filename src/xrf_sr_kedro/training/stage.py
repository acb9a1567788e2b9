"""One training stage as the pipelines run it: fit, MLflow-ready history, example figure.

Pretraining and fine-tuning both call :func:`train_stage`; fine-tuning passes the
pretrained checkpoint as the starting point.  Nothing here talks to MLflow: the
returned history is the format of kedro-mlflow's ``MlflowMetricsHistoryDataset``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from xrf_sr_kedro.io.checkpoint import config_from_checkpoint, describe_config_difference, model_from_checkpoint
from xrf_sr_kedro.metrics.image import bicubic_upsample
from xrf_sr_kedro.metrics.plots import plot_side_by_side
from xrf_sr_kedro.models.dual_branch import build_model, config_from_name, count_parameters
from xrf_sr_kedro.training.checkpointing import CheckpointSettings, kept_checkpoint
from xrf_sr_kedro.training.loop import TrainConfig, evaluate, fit
from xrf_sr_kedro.types import PatchPairs

logger = logging.getLogger(__name__)

__all__ = ["StageResult", "example_figure", "fine_tune_stage", "held_out_scores", "pretrain_stage",
           "shipped_pretrained", "train_stage"]

#: (checkpoint, MLflow metric history, example figure)
StageResult = tuple[dict[str, Any], dict[str, list[dict[str, float]]], Figure]


def train_stage(
    pairs: PatchPairs,
    validation_pairs: PatchPairs,
    model: torch.nn.Module,
    train: TrainConfig,
    checkpoints: CheckpointSettings,
    training_data: str,
    init_checkpoint: dict[str, Any] | None = None,
    preset: str | None = None,
    extra_validation: dict[str, PatchPairs] | None = None,
) -> StageResult:
    """Train ``model`` and return (checkpoint, MLflow metric history, example figure).

    Parameters
    ----------
    pairs, validation_pairs : PatchPairs
        Training and held-out patch pairs.
    model : torch.nn.Module
        A DualBranchSR, trained in place.
    train : TrainConfig
    checkpoints : CheckpointSettings
        Directory of ``last.pt`` / ``best.pt`` and whether to resume.
    training_data : str
        Description stored in the checkpoint and used as the figure title.
    init_checkpoint : dict, optional
        Fine-tuning: the pretrained checkpoint whose weights start the run.
    preset : str, optional
        Preset name recorded in the checkpoint.
    extra_validation : dict of str to PatchPairs, optional
        Further held-out sets scored (never used to choose) with the returned
        weights: history entries ``<name>_psnr``, ``<name>_bicubic_psnr`` and
        ``<name>_gain_db`` (dB), at the step of the returned epoch.

    Returns
    -------
    checkpoint : dict
    history : dict of str to list of {"value", "step"}
        Every finite per-epoch entry (step = epoch, from 1), plus ``n_parameters``.
    figure : Figure
        LR input, bicubic, network output and HR truth for a few validation pairs.
    """
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
    checkpoint = kept_checkpoint(checkpoint, checkpoints.directory, checkpoints.keep)
    checkpoint["preset"] = preset
    history = {
        name: [{"value": float(v), "step": step} for step, v in enumerate(values, start=1) if v is not None and np.isfinite(v)]
        for name, values in checkpoint["history"].items()
    }
    history["n_parameters"] = [{"value": float(count_parameters(model)), "step": 0}]
    trained = model_from_checkpoint(checkpoint)
    for name, extra in (extra_validation or {}).items():
        history.update(held_out_scores(trained, extra, name, step=int(checkpoint["epoch"])))
    return checkpoint, history, example_figure(trained, validation_pairs, title=training_data)


def held_out_scores(
    model: torch.nn.Module, pairs: PatchPairs, name: str, step: int
) -> dict[str, list[dict[str, float]]]:
    """MLflow history entries of ``model`` on a held-out set: PSNR, bicubic PSNR, gain (dB)."""
    scores = evaluate(model, pairs, device="cpu")
    logger.info("%s: network %.2f dB, bicubic %.2f dB (%+.2f dB)", name, scores["val_psnr"],
                scores["bicubic_psnr"], scores["val_psnr"] - scores["bicubic_psnr"])
    values = {f"{name}_psnr": scores["val_psnr"], f"{name}_bicubic_psnr": scores["bicubic_psnr"],
              f"{name}_gain_db": scores["val_psnr"] - scores["bicubic_psnr"]}
    return {k: [{"value": float(v), "step": step}] for k, v in values.items()}


def pretrain_stage(
    pairs: PatchPairs,
    validation_pairs: PatchPairs,
    preset: str,
    train: TrainConfig,
    checkpoints: CheckpointSettings,
    extra_validation: dict[str, PatchPairs] | None = None,
) -> StageResult:
    """Stage 1: build preset ``preset`` and train it from scratch on simulated pairs.

    ``validation_pairs`` choose the checkpoint (``checkpoints.keep``);
    ``extra_validation`` sets are only scored (see :func:`train_stage`).
    """
    network = build_model(config_from_name(preset))
    logger.info(
        "Pretraining preset '%s' (%d parameters) on %d pairs",
        preset,
        count_parameters(network),
        len(pairs),
    )
    source = pairs.metadata.get("source", "natural images")
    return train_stage(
        pairs, validation_pairs, network, train, checkpoints,
        training_data=f"pretraining: {source}", preset=preset, extra_validation=extra_validation,
    )


def shipped_pretrained(checkpoint: dict[str, Any], preset: str) -> dict[str, Any]:
    """Stage 1 without training: the pretrained network shipped with the project.

    Returns ``checkpoint`` when its architecture is preset ``preset``'s (field by
    field, so a preset redefined since the file was made is caught too); otherwise
    raises a one-line ``ValueError`` that names the file and says how to pretrain
    the preset asked for (``kedro run --pipeline full``).
    """
    wanted = config_from_name(preset)
    stored = config_from_checkpoint(checkpoint)
    if stored != wanted:
        raise ValueError(
            f"the shipped pretrained network {checkpoint.get('path', '')} is preset "
            f"{checkpoint.get('preset')!r}, not pretraining.model.preset {preset!r} "
            f"({describe_config_difference(stored, wanted)}): run `kedro run --pipeline full` "
            f"(with your --env) to pretrain {preset!r}, or set pretraining.model.preset: "
            f"{checkpoint.get('preset')!r}"
        )
    logger.info("Pretraining skipped: the shipped network %s (preset %r, epoch %s; %s)",
                checkpoint.get("path", ""), preset, checkpoint.get("epoch"),
                checkpoint.get("provenance", "no provenance recorded"))
    return checkpoint


def fine_tune_stage(
    pretrained_model: dict[str, Any],
    pairs: PatchPairs,
    validation_pairs: PatchPairs,
    train: TrainConfig,
    checkpoints: CheckpointSettings,
) -> StageResult:
    """Stage 2: continue from the pretrained weights on experimental pairs."""
    network = model_from_checkpoint(pretrained_model)
    logger.info(
        "Fine-tuning from the pretrained checkpoint (epoch %s) on %d pairs at learning rate %.2g",
        pretrained_model.get("epoch"),
        len(pairs),
        train.learning_rate,
    )
    return train_stage(
        pairs, validation_pairs, network, train, checkpoints,
        training_data=f"fine-tuning: {pairs.lr_pixel_size_nm:.0f} nm / {pairs.hr_pixel_size_nm:.0f} nm scans",
        init_checkpoint=pretrained_model,
        preset=pretrained_model.get("preset"),
    )


def example_figure(model: torch.nn.Module, pairs: PatchPairs, title: str, n: int = 3) -> Figure:
    """LR input, bicubic, network output and HR truth for the first ``n`` pairs."""
    model = model.eval().cpu()
    index = np.linspace(0, len(pairs) - 1, min(n, len(pairs))).astype(int)
    low_res = torch.from_numpy(pairs.lr[index])
    with torch.inference_mode():
        sr = model(low_res).numpy()
    bicubic = bicubic_upsample(low_res, pairs.scale).numpy()
    panels = {}
    for k, i in enumerate(index):
        panels[f"#{i} LR input"] = pairs.lr[i, 0]
        panels[f"#{i} bicubic"] = bicubic[k, 0]
        panels[f"#{i} network"] = sr[k, 0]
        panels[f"#{i} HR truth"] = pairs.hr[i, 0]
    return plot_side_by_side(panels, title=f"{title}: before / after", shared_scale=False, ncols=4,
                             units="normalised intensity [0, 1]")
