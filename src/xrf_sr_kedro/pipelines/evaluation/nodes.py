"""Evaluation nodes: resolution by FSC, error against the ground truth, baselines, report.

Every method is evaluated on exactly the same input and compared with the truth on
the truth's grid.  Method outputs are in counts while the truth is in
concentration, so each output is first matched to the truth by a least-squares
gain and offset (:func:`xrf_sr_kedro.metrics.image.match_intensity`); PSNR uses the
truth's range.  See docs/evaluation.md.
"""

from __future__ import annotations

import base64
import io
import logging
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from xrf_sr_kedro.inference.engine import enhance_maps
from xrf_sr_kedro.io.checkpoint import load_checkpoint, model_from_checkpoint
from xrf_sr_kedro.metrics.fsc import fourier_shell_correlation, resolution_nm
from xrf_sr_kedro.metrics.image import bicubic_upsample, match_intensity, psnr, ssim
from xrf_sr_kedro.metrics.plots import plot_fsc, plot_side_by_side
from xrf_sr_kedro.physics.deconvolution import richardson_lucy_sr
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.tomo.recon import ReconSettings, reconstruct_stack
from xrf_sr_kedro.types import ProbeIntensity, Volume, XRFStack

logger = logging.getLogger(__name__)

ReconParams = validated(ReconSettings)

COLUMNS = [
    "experiment",
    "method",
    "dims",
    "fsc_split_half_nm",
    "fsc_vs_truth_nm",
    "psnr_db",
    "ssim",
    "paper_fsc_nm",
]

# Headline numbers of Zheng et al., Optica 11, 146 (2024), section 4 (FSC, one-bit):
# raw 91 projections, enhanced 270 reprojections, enhanced from 45 projections.
PAPER_FSC_NM = {"tomography_raw": 60.8, "tomography_enhanced": 14.8, "tomography_limited": 20.8}


@validated
class EvaluationParams:
    """What to evaluate.

    ``element`` is the element line compared (the paper reports Zn);
    ``n_projections_2d`` evenly spaced projections are evaluated in 2-D;
    ``ablation_checkpoints`` maps a method name to a checkpoint file, evaluated
    when the file exists (e.g. ``msrb_only: data/06_models/msrb_only.pt``).
    """

    element: str = "Zn_K"
    n_projections_2d: int = 7
    rl_iterations: int = 30
    threshold: Literal["one_bit", "half_bit", "0.143"] = "one_bit"
    apodize: bool = True
    fast_axis: Literal["x", "y"] = "x"
    ablation_checkpoints: dict[str, str] | None = None


def _row(experiment: str, method: str, dims: str, paper_key: str = "", **values: float) -> dict[str, Any]:
    row = {c: np.nan for c in COLUMNS}
    row.update(experiment=experiment, method=method, dims=dims, **values)
    row["paper_fsc_nm"] = PAPER_FSC_NM.get(paper_key, np.nan)
    return row


def _truth_metrics(
    estimate: np.ndarray, truth: np.ndarray, voxel_size_nm: float, params: EvaluationParams
) -> tuple[dict[str, float], pd.DataFrame]:
    """PSNR, SSIM and FSC-vs-truth resolution of ``estimate`` on the truth's grid."""
    matched = match_intensity(estimate, truth)
    data_range = float(truth.max() - truth.min())
    table = fourier_shell_correlation(matched, truth, voxel_size_nm, apodize=params.apodize)
    values = {
        "psnr_db": psnr(matched, truth, data_range=data_range),
        "ssim": ssim(matched, truth, data_range=data_range),  # a volume: mean over slices
        "fsc_vs_truth_nm": resolution_nm(table, params.threshold),
    }
    return values, table


def _nearest_upsample(x: np.ndarray, factor: int) -> np.ndarray:
    for axis in range(x.ndim - 2, x.ndim):
        x = np.repeat(x, factor, axis=axis)
    return x


def _models(
    pretrained_model: dict[str, Any], params: EvaluationParams
) -> dict[str, torch.nn.Module]:
    models = {"pretrained": model_from_checkpoint(pretrained_model)}
    for name, path in (params.ablation_checkpoints or {}).items():
        if Path(path).exists():
            models[name] = model_from_checkpoint(load_checkpoint(path))
        else:
            logger.info("Ablation '%s' skipped: no checkpoint at %s", name, path)
    return models


def evaluate_projections(
    truth_projections: XRFStack,
    raw_xrf: XRFStack,
    enhanced_xrf: XRFStack,
    pretrained_model: dict[str, Any],
    probe_intensity: ProbeIntensity,
    params: EvaluationParams,
) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """2-D comparison of every method with the truth projections, on the truth's grid."""
    element = params.element
    truth_stack = truth_projections.select_elements([element])
    raw = raw_xrf.select_elements([element]).data[0]
    scale = round(raw_xrf.pixel_size_nm / truth_projections.pixel_size_nm)
    frames = np.unique(np.linspace(0, raw.shape[0] - 1, params.n_projections_2d).astype(int))
    truth = truth_stack.data[0, frames]
    raw = raw[frames]
    probe = resample_probe(probe_intensity, truth_projections.pixel_size_nm)

    estimates = {
        "raw": _nearest_upsample(raw, scale),
        "bicubic": bicubic_upsample(raw, scale),
        "richardson_lucy": richardson_lucy_sr(
            np.clip(raw, 0, None), probe.intensity, scale, n_iter=params.rl_iterations,
            fast_axis=params.fast_axis,
        ),
    }
    for name, model in _models(pretrained_model, params).items():
        estimates[name] = enhance_maps(
            model, raw, scale=scale, probe_intensity=probe.intensity, fast_axis=params.fast_axis
        ).data
    estimates["fine_tuned"] = enhanced_xrf.select_elements([element]).data[0, frames]

    experiment = f"projections, {raw_xrf.pixel_size_nm:.0f} nm -> {truth_projections.pixel_size_nm:.1f} nm"
    rows, curves = [], {}
    for method, estimate in estimates.items():
        per_frame = [
            _truth_metrics(e, t, truth_projections.pixel_size_nm, params) for e, t in zip(estimate, truth)
        ]
        values = {
            key: float(np.median([v[key] for v, _ in per_frame]))
            for key in ("psnr_db", "ssim", "fsc_vs_truth_nm")
        }
        rows.append(_row(experiment, method, "2D", **values))
        curves[method] = per_frame[len(per_frame) // 2][1]
    middle = len(frames) // 2
    panels = {"truth": truth[middle]} | {m: match_intensity(e[middle], truth[middle]) for m, e in estimates.items()}
    figures = {
        "projections_frc_vs_truth.png": plot_fsc(
            curves, title=f"{element} projection {frames[middle]}: FRC against the truth",
            threshold=params.threshold,
        ),
        "projections_side_by_side.png": plot_side_by_side(
            panels, title=f"{element} projection {frames[middle]} (angle "
            f"{raw_xrf.angles_deg[frames[middle]]:.0f} deg)",
            pixel_sizes_nm={k: truth_projections.pixel_size_nm for k in panels},
        ),
    }
    return pd.DataFrame(rows, columns=COLUMNS), figures


def split_half_volumes(
    stack: XRFStack, recon: ReconParams, params: EvaluationParams
) -> tuple[Volume, Volume]:
    """Reconstruct the evaluated element from the even- and from the odd-numbered
    projections separately."""
    stack = stack.select_elements([params.element])
    return (
        reconstruct_stack(stack.select_frames(slice(0, None, 2)), **asdict(recon)),
        reconstruct_stack(stack.select_frames(slice(1, None, 2)), **asdict(recon)),
    )


def _truth_slab(truth: Volume, volume: Volume, element: str) -> np.ndarray:
    data = truth.data[truth.elements.index(element)]
    slab = volume.metadata.get("slab_nm")
    if slab:
        start, stop = (int(round(v / truth.voxel_size_nm)) for v in slab)
        data = data[start:stop]
    return data


def _upsample_volume(volume: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return volume
    t = torch.from_numpy(np.ascontiguousarray(volume))[None, None]
    return torch.nn.functional.interpolate(t, scale_factor=factor, mode="trilinear").numpy()[0, 0]


def evaluate_volumes(
    truth_volume: Volume,
    raw_volume: Volume,
    raw_halves: tuple[Volume, Volume],
    enhanced_volume: Volume,
    enhanced_halves: tuple[Volume, Volume],
    limited_projection_volume: Volume,
    limited_halves: tuple[Volume, Volume],
    params: EvaluationParams,
) -> tuple[pd.DataFrame, dict[str, Figure]]:
    """3-D comparison: split-half FSC and FSC / PSNR / SSIM against the truth volume."""
    element = params.element
    n_raw = raw_volume.metadata["n_projections"]
    experiments = {
        ("tomography_raw", f"tomography, {n_raw} projections", "raw"): (raw_volume, raw_halves),
        (
            "tomography_enhanced",
            f"tomography, {n_raw} projections -> {enhanced_volume.metadata['n_projections']} reprojections",
            "fine_tuned",
        ): (enhanced_volume, enhanced_halves),
        (
            "tomography_limited",
            f"tomography, {(n_raw + 1) // 2} projections -> "
            f"{limited_projection_volume.metadata['n_projections']} reprojections",
            "fine_tuned",
        ): (limited_projection_volume, limited_halves),
    }
    rows, split_curves, truth_curves, slices = [], {}, {}, {}
    for (paper_key, experiment, method), (volume, (even, odd)) in experiments.items():
        index = volume.elements.index(element)
        split = fourier_shell_correlation(
            even.data[index], odd.data[index], volume.voxel_size_nm, apodize=params.apodize
        )
        truth = _truth_slab(truth_volume, volume, element)
        factor = round(volume.voxel_size_nm / truth_volume.voxel_size_nm)
        estimate = _upsample_volume(volume.data[index], factor)[: truth.shape[0]]
        values, table = _truth_metrics(estimate, truth, truth_volume.voxel_size_nm, params)
        rows.append(
            _row(
                experiment, method, "3D", paper_key,
                fsc_split_half_nm=resolution_nm(split, params.threshold), **values,
            )
        )
        split_curves[experiment] = split
        truth_curves[experiment] = table
        short = experiment.replace("tomography, ", "").replace(" projections", "").replace(" reprojections", "")
        slices[f"{method}, {short}"] = match_intensity(estimate, truth)[truth.shape[0] // 2]
    slices = {"truth": truth[truth.shape[0] // 2]} | slices
    figures = {
        "tomography_fsc_split_half.png": plot_fsc(split_curves, f"{element}: split-half FSC", params.threshold),
        "tomography_fsc_vs_truth.png": plot_fsc(truth_curves, f"{element}: FSC against the truth", params.threshold),
        "tomography_central_slices.png": plot_side_by_side(
            slices, title=f"{element}: central slice",
            pixel_sizes_nm={k: truth_volume.voxel_size_nm for k in slices},
        ),
    }
    return pd.DataFrame(rows, columns=COLUMNS), figures


def _figure_html(name: str, figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{name}" src="data:image/png;base64,{data}"><figcaption>{name}</figcaption></figure>'


def build_report(
    projection_results: pd.DataFrame,
    projection_figures: dict[str, Figure],
    volume_results: pd.DataFrame,
    volume_figures: dict[str, Figure],
) -> tuple[pd.DataFrame, str, str, dict[str, Figure], dict[str, list[dict[str, float]]]]:
    """The results table (CSV, Markdown), a self-contained HTML report, the figures and
    MLflow metrics."""
    results = pd.concat([projection_results, volume_results], ignore_index=True)
    markdown = markdown_table(results)
    figures = projection_figures | volume_figures
    html = "\n".join(
        [
            "<!doctype html><html><head><meta charset='utf-8'><title>xrf-sr-kedro evaluation</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}</style></head><body>",
            "<h1>Evaluation against the simulated ground truth</h1>",
            "<p>Resolution from Fourier shell/ring correlation at the one-bit threshold (nm); "
            "PSNR and SSIM against the truth after a least-squares gain/offset match. "
            "<code>paper_fsc_nm</code> is the paper's figure for the same experiment on real data.</p>",
            results.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="-"),
            *[_figure_html(name, fig) for name, fig in figures.items()],
            "</body></html>",
        ]
    )
    metrics = {}
    for row in results.itertuples(index=False):
        key = f"{row.dims}.{row.method}.{_slug(row.experiment)}"
        for column in ("fsc_split_half_nm", "fsc_vs_truth_nm", "psnr_db", "ssim"):
            value = getattr(row, column)
            if np.isfinite(value):
                metrics[f"{key}.{column}"] = [{"value": float(value), "step": 0}]
    return results, markdown, html, figures, metrics


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z.]+", "_", text).strip("_")


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (numbers to 3 significant digits, NaN as "-")."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "-" if not np.isfinite(value) else f"{value:.3g}"
        return str(value)

    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"
