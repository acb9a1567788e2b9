"""The training loop shared by pretraining and fine-tuning.

L1 (or L2) loss, Adam, a step learning-rate schedule, random flip (or dihedral)
augmentation,
validation against bicubic upsampling, an atomic checkpoint every epoch, exact
resume, mixed precision where the hardware computes it natively (:func:`~xrf_sr_kedro.training.precision.training_autocast`),
channels-last activations on CPU and DistributedDataParallel under ``torchrun``.
The caller logs to MLflow from the returned history (or live through
``on_epoch_end``); this module imports no tracking or pipeline framework.
What a checkpoint holds and how a run resumes live in
:mod:`xrf_sr_kedro.training.checkpointing`; :mod:`xrf_sr_kedro.training.stage` runs
one pipeline stage (fit, history, example figure).  ``lr`` names low-resolution
data only; the learning rate is spelled out (history key ``"lr"`` excepted, kept
for checkpoint compatibility).

The paper's schedule (section 3B): Adam(0.9, 0.999), learning rate 1e-4 halved
after the first 100 epochs and then every 50 epochs, 250 epochs; fine-tuning at a
tenth of the learning rate for 50 epochs (:data:`TRAIN_PRESETS`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from xrf_sr_kedro.device import resolve_device
from xrf_sr_kedro.io.checkpoint import save_checkpoint
from xrf_sr_kedro.metrics.image import bicubic_upsample, psnr, ssim
from xrf_sr_kedro.models.dual_branch import DualBranchConfig
from xrf_sr_kedro.progress import Progress
from xrf_sr_kedro.training.checkpointing import (
    BEST_NAME,
    HISTORY_KEYS,
    LAST_NAME,
    make_checkpoint,
    resume_or_initialise,
)
from xrf_sr_kedro.training.data import AUGMENTATIONS, PatchPairDataset, make_train_loader
from xrf_sr_kedro.training.precision import training_autocast, training_memory_format
from xrf_sr_kedro.training.distributed import (
    DistributedContext,
    all_reduce_sum,
    barrier,
    broadcast_from_main,
    init_distributed,
    shutdown_distributed,
)
from xrf_sr_kedro.types import PatchPairs

logger = logging.getLogger(__name__)

#: ``TrainConfig.loss`` name -> the loss function.
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss,
    "l2": F.mse_loss,
}



@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one training run.

    Attributes
    ----------
    epochs : int
        Total epochs (a resumed run continues up to this number).
    batch_size : int
        Global batch size (split evenly across ranks under ``torchrun``).
    learning_rate : float
        Initial Adam learning rate.
    betas : (float, float)
        Adam coefficients.
    lr_first_decay_epoch : int
        The learning rate is multiplied by ``lr_gamma`` after this many epochs ...
    lr_decay_every : int
        ... and again after every further ``lr_decay_every`` epochs.
    lr_gamma : float
    val_every : int
        Validate every this many epochs (and after the last epoch).
    seed : int
        Seed of shuffling and augmentation.
    amp : bool
        Mixed precision where the hardware computes it natively
        (:func:`~xrf_sr_kedro.training.precision.training_autocast`): bf16 autocast on a GPU that supports it (else
        fp16 with a gradient scaler) and on a CPU with native bf16 (AVX-512 BF16 or
        AMX, :func:`~xrf_sr_kedro.inference.precision.resolve_precision`); float32
        elsewhere, where bf16 is emulated and slower.  Weights, optimiser state and
        the loss stay float32.
    max_train_batches_per_epoch : int or None
        Cap on optimiser steps per epoch (quick runs); ``None`` for full epochs.
    num_threads : int or None
        ``torch.set_num_threads`` during training; ``None`` leaves it alone.
    augmentation : {"flips", "dihedral"}
        Random transforms of the pairs: ``"flips"`` (along x, y, both; the default)
        are the ones that commute with the fly-scan (its motion blur is along x);
        ``"dihedral"`` adds quarter turns and transposes (the usual SR recipe), which
        put the motion blur on the slow axis for half the pairs.
    loss : {"l1", "l2"}
        Pixel loss: mean absolute (the paper) or mean squared error.
    """

    epochs: int = 250
    batch_size: int = 16
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    lr_first_decay_epoch: int = 100
    lr_decay_every: int = 50
    lr_gamma: float = 0.5
    val_every: int = 1
    seed: int = 0
    amp: bool = True
    max_train_batches_per_epoch: int | None = None
    num_threads: int | None = None
    augmentation: Literal["flips", "dihedral"] = "flips"
    loss: Literal["l1", "l2"] = "l1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        for name in ("epochs", "batch_size", "lr_first_decay_epoch", "lr_decay_every", "val_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {value!r}")
        for name in ("max_train_batches_per_epoch", "num_threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(
                    f"TrainConfig.{name} must be None or a positive int, got {value!r}"
                )
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(
                f"augmentation must be one of {sorted(AUGMENTATIONS)}, got {self.augmentation!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        if not (0 < self.lr_gamma <= 1):
            raise ValueError(f"lr_gamma must be in (0, 1], got {self.lr_gamma}")


#: The paper's schedules: pretraining (250 epochs) and fine-tuning (a tenth of the
#: learning rate, 50 epochs, so the step decay never triggers).  The paper does
#: not state its batch size; 16 is the RCAN/MSRN default.
TRAIN_PRESETS: dict[str, TrainConfig] = {
    "paper": TrainConfig(epochs=250, batch_size=16, learning_rate=1e-4),
    "paper_fine_tuning": TrainConfig(epochs=50, batch_size=16, learning_rate=1e-5),
}


def learning_rate_factor(epoch: int, cfg: TrainConfig) -> float:
    """Learning-rate multiplier during 0-based ``epoch`` (1, then ``lr_gamma**k``)."""
    if epoch < cfg.lr_first_decay_epoch:
        return 1.0
    return cfg.lr_gamma ** (1 + (epoch - cfg.lr_first_decay_epoch) // cfg.lr_decay_every)


def _check_model(model: nn.Module) -> DualBranchConfig:
    config = getattr(model, "config", None)
    if not isinstance(config, DualBranchConfig):
        raise TypeError(
            "model must be a DualBranchSR (an nn.Module with a DualBranchConfig `config` "
            f"attribute), got {type(model).__name__}"
        )
    return config


def _check_pairs(pairs: PatchPairs, name: str, config: DualBranchConfig) -> None:
    if not isinstance(pairs, PatchPairs):
        raise TypeError(f"{name} must be PatchPairs, got {type(pairs).__name__}")
    if len(pairs) == 0:
        raise ValueError(f"{name} is empty")
    if pairs.scale != config.scale or pairs.lr.shape[1] != config.in_channels:
        raise ValueError(
            f"{name} has scale {pairs.scale} and {pairs.lr.shape[1]} channel(s) but the model "
            f"expects scale {config.scale} and {config.in_channels} channel(s)"
        )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    pairs: PatchPairs,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
    include_bicubic: bool = True,
) -> dict[str, float]:
    """PSNR/SSIM (dB / unitless, data range 1) of the model and of bicubic upsampling.

    Predictions are clamped to [0, 1]; PSNR and SSIM are computed per image and
    averaged.

    Returns
    -------
    dict
        ``val_psnr``, ``val_ssim`` and, with ``include_bicubic``,
        ``bicubic_psnr``, ``bicubic_ssim``.
    """
    device = resolve_device(device)
    scale = pairs.scale
    was_training = model.training
    model.eval()
    sums = {"val_psnr": 0.0, "val_ssim": 0.0, "bicubic_psnr": 0.0, "bicubic_ssim": 0.0}
    try:
        for start in range(0, len(pairs), batch_size):
            low_res = torch.from_numpy(pairs.lr[start : start + batch_size]).to(device)
            high_res = torch.from_numpy(pairs.hr[start : start + batch_size])
            with torch.autocast(
                device.type,
                dtype=autocast_dtype or torch.bfloat16,
                enabled=autocast_dtype is not None,
            ):
                sr = model(low_res)
            sr = sr.float().clamp_(0, 1).cpu()
            bic = bicubic_upsample(low_res.cpu(), scale).clamp_(0, 1) if include_bicubic else None
            for i in range(high_res.shape[0]):
                sums["val_psnr"] += psnr(sr[i], high_res[i])
                sums["val_ssim"] += ssim(sr[i : i + 1], high_res[i : i + 1])
                if bic is not None:
                    sums["bicubic_psnr"] += psnr(bic[i], high_res[i])
                    sums["bicubic_ssim"] += ssim(bic[i : i + 1], high_res[i : i + 1])
    finally:
        model.train(was_training)
    n = len(pairs)
    out = {k: v / n for k, v in sums.items()}
    if not include_bicubic:
        out = {k: v for k, v in out.items() if not k.startswith("bicubic")}
    return out


def fit(
    model: nn.Module,
    train: PatchPairs,
    val: PatchPairs | None,
    cfg: TrainConfig,
    checkpoint_dir: str | os.PathLike,
    resume: bool = False,
    init_checkpoint: dict[str, Any] | None = None,
    device: str | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    training_data: str = "",
) -> dict[str, Any]:
    """Train ``model`` in place and return the final checkpoint.

    Parameters
    ----------
    model : DualBranchSR
        The network (freshly initialised; its initial weights are the caller's
        choice of seed).  Trained in place and left on ``device``.
    train : PatchPairs
        Training pairs; shuffled and dihedrally augmented each epoch.
    val : PatchPairs or None
        Validation pairs, evaluated every ``cfg.val_every`` epochs and after the
        last one (model and bicubic PSNR/SSIM).  Without them no ``best.pt`` is written.
    cfg : TrainConfig
    checkpoint_dir : path
        ``last.pt`` is written there atomically after every epoch, ``best.pt``
        whenever the validation PSNR improves.
    resume : bool
        Continue from ``checkpoint_dir/last.pt`` if it exists (weights, optimiser,
        schedule, history, RNG states); on CPU the result is bit-identical to an
        uninterrupted run with the same seed.  Starts afresh (with a warning) when
        there is no ``last.pt``.  Takes precedence over ``init_checkpoint``.
    init_checkpoint : dict, optional
        Fine-tuning: a pretrained checkpoint whose weights (only) initialise the
        model; its config must equal the model's.  Recorded as ``"parent"``
        (:func:`~xrf_sr_kedro.training.checkpointing.checkpoint_label`).  The learning rate is ``cfg.learning_rate``.
    device : str, optional
        Defaults to CUDA when available, else CPU (under ``torchrun`` with GPUs,
        ``cuda:LOCAL_RANK``).
    on_epoch_end : callable, optional
        ``on_epoch_end(completed_epochs, metrics)`` after each epoch's checkpoint is
        saved, on rank 0 only; ``metrics`` holds this epoch's history entries.
    training_data : str
        Description of ``train`` stored in the checkpoint.

    Returns
    -------
    dict
        The final checkpoint (see :mod:`xrf_sr_kedro.io.checkpoint`), with
        ``history`` lists keyed by
        :data:`~xrf_sr_kedro.training.checkpointing.HISTORY_KEYS`.

    Notes
    -----
    Under ``torchrun`` (``WORLD_SIZE > 1``) the process group is joined, the model
    wrapped in DistributedDataParallel, each rank trains on its shard with
    ``cfg.batch_size // world_size`` patches a step, and only rank 0 validates and
    writes files (see :mod:`xrf_sr_kedro.training.distributed`).  On CPU,
    ``torch.use_deterministic_algorithms(True)`` is on during training.
    """
    config = _check_model(model)
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    _check_pairs(train, "train", config)
    if val is not None:
        _check_pairs(val, "val", config)
    dev = resolve_device(device)
    ctx = init_distributed(use_cuda=dev.type == "cuda")
    if ctx.enabled and dev.type == "cuda":
        dev = torch.device("cuda", ctx.local_rank)
    if cfg.batch_size % ctx.world_size:
        shutdown_distributed(ctx)
        raise ValueError(
            f"batch_size {cfg.batch_size} is not divisible by the world size {ctx.world_size}"
        )
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_det_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        if dev.type == "cpu":
            torch.use_deterministic_algorithms(True)
        return _fit(
            model, config, train, val, cfg, Path(checkpoint_dir), resume, init_checkpoint,
            dev, on_epoch_end, training_data, ctx,
        )
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_det_warn)
        shutdown_distributed(ctx)


def _fit(
    model: nn.Module,
    config: DualBranchConfig,
    train: PatchPairs,
    val: PatchPairs | None,
    cfg: TrainConfig,
    checkpoint_dir: Path,
    resume: bool,
    init_checkpoint: dict[str, Any] | None,
    dev: torch.device,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None,
    training_data: str,
    ctx: DistributedContext,
) -> dict[str, Any]:
    model.to(dev, memory_format=training_memory_format(dev))
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=cfg.betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: learning_rate_factor(e, cfg))
    autocast_dtype, needs_scaler = training_autocast(cfg.amp, dev)
    scaler: torch.amp.GradScaler | None = torch.amp.GradScaler("cuda") if needs_scaler else None
    if ctx.is_main:
        logger.info("training precision: %s (amp=%s on %s)",
                    "float32" if autocast_dtype is None else str(autocast_dtype).removeprefix("torch."),
                    cfg.amp, dev)

    last_path = checkpoint_dir / LAST_NAME
    best_path = checkpoint_dir / BEST_NAME

    state = resume_or_initialise(
        model, config, optimizer, scheduler, scaler, cfg, last_path, resume, init_checkpoint
    )
    if state.finished is not None:
        model.to(memory_format=torch.contiguous_format)
        return state.finished
    history, start_epoch, parent = state.history, state.start_epoch, state.parent

    net: nn.Module = model
    if ctx.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    dataset = PatchPairDataset(train, augment=True, seed=cfg.seed,
                               transforms=AUGMENTATIONS[cfg.augmentation])
    loader, sampler = make_train_loader(
        dataset, cfg.batch_size // ctx.world_size, ctx.world_size, ctx.rank, cfg.seed
    )
    best_psnr = max((v for v in history["val_psnr"] if not math.isnan(v)), default=-math.inf)
    bicubic_cache: dict[str, float] | None = None
    checkpoint: dict[str, Any] = {}

    epochs_bar = Progress(
        cfg.epochs - start_epoch, "training epochs", unit="epoch", enabled=ctx.is_main
    )
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        learning_rate_now = float(optimizer.param_groups[0]["lr"])
        train_l1 = _train_one_epoch(
            net, loader, optimizer, scaler, autocast_dtype, dev, cfg, ctx, epoch
        )
        scheduler.step()
        completed = epoch + 1
        metrics = {"val_psnr": math.nan, "val_ssim": math.nan,
                   "bicubic_psnr": math.nan, "bicubic_ssim": math.nan}
        if val is not None and (completed % cfg.val_every == 0 or completed == cfg.epochs):
            if ctx.is_main:
                # float32 whatever the training precision: the scores that pick the
                # checkpoint are the ones a rebuilt network reproduces
                result = evaluate(
                    model, val, cfg.batch_size, dev, None,
                    include_bicubic=bicubic_cache is None,
                )
                if bicubic_cache is None:
                    bicubic_cache = {k: result[k] for k in ("bicubic_psnr", "bicubic_ssim")}
                metrics = {**result, **bicubic_cache}
            metrics = broadcast_from_main(metrics, ctx)
        # history key "lr" is the learning rate (kept for checkpoint and MLflow compatibility)
        entry = {"epoch": float(completed), "train_l1": train_l1, "lr": learning_rate_now, **metrics,
                 "epoch_time_s": time.perf_counter() - t0}
        for k in HISTORY_KEYS:
            history[k].append(float(entry[k]))

        improved = not math.isnan(entry["val_psnr"]) and entry["val_psnr"] > best_psnr
        if improved:
            best_psnr = entry["val_psnr"]
        checkpoint = make_checkpoint(
            model, config, optimizer, scheduler, scaler, completed, history, cfg,
            training_data, parent, best_psnr,
        )
        if ctx.is_main:
            save_checkpoint(last_path, checkpoint)
            if improved:
                save_checkpoint(best_path, checkpoint)
            logger.info(
                "epoch %d/%d: train %s loss %.5f, val PSNR %.2f dB (bicubic %.2f dB), %.1f s",
                completed, cfg.epochs, cfg.loss.upper(), train_l1, entry["val_psnr"], entry["bicubic_psnr"],
                entry["epoch_time_s"],
            )
            if on_epoch_end is not None:
                on_epoch_end(completed, dict(entry))
        barrier(ctx)
        epochs_bar.update(1)
    epochs_bar.close()
    model.to(memory_format=torch.contiguous_format)  # as a rebuilt network: same kernels, same outputs
    return checkpoint


def _train_one_epoch(
    net: nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    autocast_dtype: torch.dtype | None,
    dev: torch.device,
    cfg: TrainConfig,
    ctx: DistributedContext,
    epoch: int,
) -> float:
    """One pass over this rank's shard; returns the global mean training loss."""
    n_batches = len(loader)
    if cfg.max_train_batches_per_epoch is not None:
        n_batches = min(n_batches, cfg.max_train_batches_per_epoch)
    total = torch.zeros(2, dtype=torch.float64)
    bar = Progress(
        n_batches, f"epoch {epoch + 1}/{cfg.epochs} batches", unit="batch",
        enabled=ctx.is_main, quiet=True,
    )
    try:
        for step, (low_res, high_res) in enumerate(loader):
            if step >= n_batches:
                break
            low_res = low_res.to(dev, non_blocking=True, memory_format=training_memory_format(dev))
            high_res = high_res.to(dev, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(
                dev.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None
            ):
                out = net(low_res)
            loss = LOSSES[cfg.loss](out.float(), high_res)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            n = low_res.shape[0]
            total[0] += float(loss.detach()) * n
            total[1] += n
            bar.update(1)
    finally:
        bar.close()
    all_reduce_sum(total, ctx)
    return float(total[0] / max(total[1], 1.0))


