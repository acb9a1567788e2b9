"""Fine-tuning nodes: experimental (coarse, fine) scan pairs and the second training stage."""

from __future__ import annotations

import functools
from typing import Any

from matplotlib.figure import Figure

from xrf_sr_kedro.physics.application_pairs import ApplicationPairsSettings, application_training_pairs
from xrf_sr_kedro.physics.dose_matched import DoseMatchedSettings, dose_matched_pairs
from xrf_sr_kedro.physics.pairs import pairs_from_scans
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.training.adaptation import AdaptationSettings, adapt_to_counts
from xrf_sr_kedro.training.checkpointing import CheckpointSettings
from xrf_sr_kedro.training.fine_scan import FineScanSettings, fine_tune_on_fine_scan
from xrf_sr_kedro.training.loop import TrainConfig
from xrf_sr_kedro.training.selection import fine_tuning_data, select_checkpoint
from xrf_sr_kedro.training.stage import fine_tune_stage
from xrf_sr_kedro.types import PatchPairs, ProbeIntensity, XRFStack

TrainParams = validated(TrainConfig)
CheckpointParams = validated(CheckpointSettings)
DoseMatchedParams = validated(DoseMatchedSettings)
AdaptationParams = validated(AdaptationSettings)
FineScanParams = validated(FineScanSettings)
ApplicationPairsParams = validated(ApplicationPairsSettings)


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
    return pairs_from_scans(
        coarse, fine, lr_patch_px=pairs.lr_patch_px, stride_px=pairs.stride_px,
        validation_every=pairs.validation_every,
    )


def choose_fine_tuning_data(
    scan_pairs: PatchPairs,
    scan_validation_pairs: PatchPairs,
    natural_pairs: PatchPairs,
    validation_region_pairs: PatchPairs,
    raw_xrf: XRFStack,
    probe_intensity: ProbeIntensity,
    data: str,
    application_pairs: ApplicationPairsParams,
    dose_matched: DoseMatchedParams,
) -> tuple[PatchPairs, PatchPairs]:
    """``fine_tuning.data``: the paper's scan pairs, the pretraining's application-scale
    pairs (``simulation.application_pairs``), or packing pairs at the measured data's
    dose; the last two are made only when chosen (of the measurement only its dose is
    read), so a run that does not pretrain never makes the pretraining set."""
    return fine_tuning_data(
        data, scan_pairs, scan_validation_pairs,
        functools.partial(application_training_pairs, application_pairs, probe_intensity, natural_pairs),
        validation_region_pairs,
        functools.partial(dose_matched_pairs, raw_xrf, probe_intensity, dose_matched),
    )


def select_model(
    pretrained_model: dict[str, Any],
    fine_tuned_model: dict[str, Any],
    validation_region_pairs: PatchPairs,
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """The network the 3-D chain and the enhancement use: the better of the two on
    the validation region (PSNR), never on the evaluation truth."""
    return select_checkpoint(
        {"pretrained": pretrained_model, "fine_tuned": fine_tuned_model}, validation_region_pairs
    )


def tune_on_fine_scan(
    region_selected_model: dict[str, Any],
    coarse: XRFStack,
    fine: XRFStack,
    probe_intensity: ProbeIntensity,
    settings: FineScanParams,
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """The network chosen on the validation region, fine-tuned on a coarse and a fine
    scan of a second region through the probe when ``fine_tuning.fine_scan.steps`` > 0,
    kept only if it explains the region's held-out frames better."""
    return fine_tune_on_fine_scan(region_selected_model, coarse, fine, probe_intensity, settings)


def adapt_to_measurement(
    chosen_model: dict[str, Any],
    raw_xrf: XRFStack,
    probe_intensity: ProbeIntensity,
    settings: AdaptationParams,
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """``selected_model``: the network chosen on the validation region (after the
    fine-scan stage), adapted to the
    measured counts by binomial thinning when ``fine_tuning.self_supervised.steps`` > 0
    and kept only if it explains held-out projections better (no truth used)."""
    return adapt_to_counts(chosen_model, raw_xrf, probe_intensity, settings)


def fine_tune(
    pretrained_model: dict[str, Any],
    pairs: PatchPairs,
    validation_pairs: PatchPairs,
    train: TrainParams,
    checkpoints: CheckpointParams,
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]], Figure]:
    """Stage 2: continue from the pretrained weights on experimental pairs (learning rate / 10)."""
    return fine_tune_stage(pretrained_model, pairs, validation_pairs, train, checkpoints)
