"""The report of a real-data run (``kedro run --pipeline real_data`` / ``real_data_raw``).

One Markdown page, rendered from a jinja2 template, that says what the run found and
how far to trust it: the rotation centre (value, method, every method's estimate, a
link to the trial-centre images), the alignment (reference element, shifts per angle
rms and largest, links to the shifts and sinogram figures), the I0 normalisation used
or why there was none, the elements and the real angle count, the data's dose per
element against the range where enhancement was shown to help (the low-count guard,
:func:`xrf_sr_kedro.physics.dose.dose_guard`), the consistency residual of the
enhancement against the Poisson level of the data's dose when the enhancement ran,
and the units of every output.  No Kedro here: the ``preparation`` package's report
node makes one call to :func:`real_data_report`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import jinja2
import numpy as np

from xrf_sr_kedro.physics.dose import (
    DoseEstimate,
    dose_guard,
    estimate_dose,
    expected_poisson_residual_from_counts,
    residual_vs_noise,
)
from xrf_sr_kedro.tomo.prepare import PreparationResult
from xrf_sr_kedro.io.chunked import ChunkedStack, ChunkedVolume, slab_ranges
from xrf_sr_kedro.types import ProbeIntensity, Volume, XRFStack

logger = logging.getLogger(__name__)

__all__ = ["REPORT_TEMPLATE", "ElementDose", "real_data_report", "reprojection_consistency"]

REPORT_TEMPLATE = """# Real-data run report

{{ n_angles }} projections ({{ angles_text }}), {{ shape_text }} px at {{ pixel_text }};
elements {{ elements | join(", ") }}; values in **{{ measured_units }}**.

## Rotation centre

* **{{ "%+.2f" | format(centre_px) }} px** ({{ "%+.1f" | format(centre_nm) }} nm) from the detector
  centre (rotation axis minus detector centre), method: **{{ centre_method }}**
{%- if estimates %}
* every method's estimate: {% for name, value in estimates %}{{ name }} {{ "%+.2f" | format(value) }} px{{ ", " if not loop.last }}{% endfor %}
{%- endif %}
{%- if trial_link %}
* trial-centre FBP slices on {{ reference }} (at the right centre features are compact, at a
  wrong one they become half-rings): [{{ trial_link }}]({{ trial_link }})

![trial centres]({{ trial_link }})
{%- endif %}

## Projection alignment

{% if shifts_rms_px is none -%}
Alignment off (`preparation.align: false`): the projections were reconstructed as measured.
{%- else -%}
Iterative reprojection alignment on **{{ reference }}**, applied to every element:
shifts {{ "%.2f" | format(shifts_rms_px) }} px rms ({{ "%.0f" | format(shifts_rms_nm) }} nm), largest
{{ "%.2f" | format(shifts_max_px) }} px.

* shifts per angle: [{{ shifts_link }}]({{ shifts_link }})
* sinogram before / after: [{{ sinogram_link }}]({{ sinogram_link }})

![shifts per angle]({{ shifts_link }})
![sinogram before and after]({{ sinogram_link }})
{%- endif %}

## I0 normalisation

{% if i0_normalised -%}
Every map multiplied by mean(I0) / I0 pixel by pixel, I0 from scaler **{{ i0_scaler }}**
(mean {{ "%.4g" | format(i0_mean) }}; per-angle mean I0 from {{ "%.4g" | format(i0_min) }} to {{ "%.4g" | format(i0_max) }}).
{%- else -%}
**Warning: the maps are NOT normalised by the incident flux**: no I0 scaler was named
(`i0_scaler` / `i0_key` of the `raw_xrf` entry), so beam decay and injections between angles
stay in the data and in the volumes. Name the ion chamber (e.g. `i0_scaler: US_IC`); the
reader's log lists the scalers the files have.
{%- endif %}

## Dose and the low-count guard

Counts per scan point where the sample is (pixels above the median), estimated from the
measured maps ({{ dose_method_text }}; for maps that are not raw counts, e.g. fitted or
I0-normalised, the noise-equivalent count: the Poisson count with the same signal-to-noise
ratio, from the gain in units per count); enhancement was shown to help between
**{{ shown_range_text }}** counts (`benchmarks/low_count.py`, `enhancement.consistency`).

| element | dose (counts/point, sample) | mean (counts/point) | gain (units/count) | method | Poisson residual |
|---|---|---|---|---|---|
{% for d in doses -%}
| {{ d.element }} | {{ "%.3g" | format(d.estimate.signal_counts_per_pixel) }} | {{ "%.3g" | format(d.estimate.mean_counts_per_pixel) }} | {{ "%.3g" | format(d.estimate.gain) }} | {{ d.estimate.method }} | {{ "%.3f" | format(d.estimate.expected_residual) }} |
{% endfor %}
{% if warnings -%}
{% for element, text in warnings %}
**Low-count warning ({{ element }})**: {{ text }}.
{% endfor %}
{%- else -%}
Every element's dose lies inside the shown range.
{%- endif %}

## Consistency of the enhancement

{% if consistency is none -%}
The enhancement did not run (`real_data_raw`): no consistency residual.
{%- else -%}
The enhanced reprojections, degraded again by the fly-scan forward model, against the
reprojections they were enhanced from ({{ consistency_elements | join(", ") }}): relative L2 residual
**{{ "%.3f" | format(consistency.residual) }}**; the Poisson level of the measurement's dose is {{ "%.3f" | format(consistency.expected) }}
({{ "%.2f" | format(consistency.ratio) }}x). {{ consistency.verdict }}.
Reprojections carry less noise than the measurement, so a trustworthy enhancement sits at or
below the Poisson level; far above it, see docs/real_data.md, "A high residual".
{%- endif %}

## Outputs and their units

| output | shape | grid | units |
|---|---|---|---|
{% for row in outputs -%}
| {{ row.name }} | {{ row.shape }} | {{ row.grid }} | {{ row.units }} |
{% endfor %}
"""


@dataclass(frozen=True)
class ElementDose:
    """One element's dose estimate (:func:`xrf_sr_kedro.physics.dose.estimate_dose`)."""

    element: str
    estimate: DoseEstimate


def reprojection_consistency(
    reprojections: XRFStack,
    enhanced_reprojections: XRFStack | ChunkedStack,
    probe_intensity: ProbeIntensity,
    fast_axis: str = "x",
    mode: str = "fly",
) -> float:
    """Relative L2 residual of the enhanced reprojections, re-degraded, against the reprojections.

    Uses :func:`xrf_sr_kedro.inference.consistency.data_consistency` with the probe
    resampled to the enhanced grid; the step is the ratio of the pixel sizes.  A lazy
    enhanced stack (streamed enhancement) is read ``DEFAULT_FRAMES_PER_SLAB`` frames
    at a time: ``sqrt(sum ||residual||^2 / sum ||measured||^2)`` over the slabs.
    """
    from xrf_sr_kedro.inference.consistency import data_consistency
    from xrf_sr_kedro.physics.probe import resample_probe
    from xrf_sr_kedro.streaming import DEFAULT_FRAMES_PER_SLAB

    measured = reprojections
    if enhanced_reprojections.elements != measured.elements:
        measured = measured.select_elements(list(enhanced_reprojections.elements))
    step = round(measured.pixel_size_nm / enhanced_reprojections.pixel_size_nm)
    probe = resample_probe(probe_intensity, enhanced_reprojections.pixel_size_nm)
    if not isinstance(enhanced_reprojections, ChunkedStack):
        report = data_consistency(measured, enhanced_reprojections, probe.intensity, step,
                                  fast_axis=fast_axis, mode=mode)
        return float(report["relative_l2_overall"])
    residual_sq = measured_sq = 0.0
    for a0, a1 in slab_ranges(enhanced_reprojections.n_frames, DEFAULT_FRAMES_PER_SLAB):
        part = measured.select_frames(slice(a0, a1))
        report = data_consistency(part, enhanced_reprojections.to_stack(a0, a1),
                                  probe.intensity, step, fast_axis=fast_axis, mode=mode)
        residual_sq += float(np.square(report["residual"]).sum())
        measured_sq += float(np.square(part.data, dtype=np.float64).sum())
    if measured_sq == 0.0:
        return 0.0 if residual_sq == 0.0 else math.inf
    return math.sqrt(residual_sq / measured_sq)


def _output_row(
    name: str, obj: XRFStack | ChunkedStack | Volume | ChunkedVolume | None
) -> dict[str, str] | None:
    if obj is None:
        return None
    if isinstance(obj, (XRFStack, ChunkedStack)):
        grid = f"{obj.pixel_size_nm:.4g} nm pixels, {obj.n_frames} angles"
    else:
        grid = f"{obj.voxel_size_nm:.4g} nm voxels"
    lazy = isinstance(obj, (ChunkedStack, ChunkedVolume))
    shape = " x ".join(str(s) for s in (obj.shape if lazy else np.shape(obj.data)))
    return {"name": name, "shape": shape, "grid": grid, "units": obj.units}


def _dose_per_element(measured: XRFStack) -> list[ElementDose]:
    return [ElementDose(e, estimate_dose(measured.data[k], measured.units))
            for k, e in enumerate(measured.elements)]


def real_data_report(
    preparation: PreparationResult,
    measured: XRFStack,
    raw_volume: Volume,
    shown_min_counts: float | None,
    shown_max_counts: float | None = None,
    residual_tolerance: float = 1.5,
    *,
    reprojections: XRFStack | None = None,
    enhanced_reprojections: XRFStack | ChunkedStack | None = None,
    enhanced_volume: Volume | ChunkedVolume | None = None,
    probe_intensity: ProbeIntensity | None = None,
    fast_axis: str = "x",
    mode: str = "fly",
    figures_folder: str = "preparation",
) -> str:
    """The Markdown report of a real-data run (module docstring).

    Parameters
    ----------
    preparation : PreparationResult
        What the preparation found (centre, alignment, the stack it wrote).
    measured : XRFStack
        The measured maps as read (I0-normalised by the reader when a scaler was
        named); the dose is estimated on them, per element.
    raw_volume : Volume
        The raw reconstruction.
    shown_min_counts, shown_max_counts : float or None
        Counts per scan point (where the sample is) between which enhancement was
        shown to help (``enhancement.consistency``); ``None``: no bound.
    residual_tolerance : float
        Residual / Poisson level above which the enhanced data disagree with the data.
    reprojections, enhanced_reprojections, enhanced_volume, probe_intensity : optional
        The enhanced chain's outputs and the probe, when the enhancement ran: the
        consistency residual is computed from them.
    fast_axis, mode
        The fly-scan model of the consistency check.
    figures_folder : str
        Folder of the preparation figures, relative to the report's own folder.

    Returns
    -------
    str
        Markdown.
    """
    stack = preparation.stack
    md: dict[str, Any] = stack.metadata
    angles = np.asarray(stack.angles_deg, dtype=float)
    doses = _dose_per_element(measured)
    warnings = []
    for d in doses:
        text = None if shown_min_counts is None else dose_guard(
            d.estimate, shown_min_counts, shown_max_counts)
        if text:
            logger.warning("Low-count guard (%s): %s", d.element, text)
            warnings.append((d.element, text))
    consistency = None
    if enhanced_reprojections is not None and reprojections is not None and probe_intensity is not None:
        residual = reprojection_consistency(reprojections, enhanced_reprojections,
                                            probe_intensity, fast_axis, mode)
        counts = np.concatenate([np.clip(measured.data[k], 0, None).ravel() / d.estimate.gain
                                 for k, d in enumerate(doses)
                                 if d.element in enhanced_reprojections.elements])
        expected = expected_poisson_residual_from_counts(counts)
        ratio, verdict = residual_vs_noise(residual, expected, residual_tolerance)
        consistency = {"residual": residual, "expected": expected, "ratio": ratio,
                       "verdict": verdict}
    alignment = preparation.alignment
    shifts = None if alignment is None else np.asarray(alignment.shifts_px, dtype=float)
    i0 = np.asarray(md.get("i0_per_frame_mean") or [md.get("i0_mean", np.nan)], dtype=float)
    y_nm = float(md.get("pixel_size_y_nm", stack.pixel_size_nm))
    x_nm = float(md.get("pixel_size_x_nm", stack.pixel_size_nm))
    lo = "0" if shown_min_counts is None else f"{shown_min_counts:g}"
    hi = "no upper bound" if shown_max_counts is None else f"{shown_max_counts:g}"
    outputs = [_output_row(n, o) for n, o in (
        ("measured maps (raw_xrf)", measured), ("prepared projections (prepared_xrf)", stack),
        ("raw volume (raw_volume)", raw_volume),
        ("enhanced reprojections (enhanced_reprojections)", enhanced_reprojections),
        ("enhanced volume (enhanced_volume)", enhanced_volume))]
    context = {
        "n_angles": stack.n_frames,
        "angles_text": f"{angles.min():.4g} to {angles.max():.4g} degrees",
        "shape_text": " x ".join(str(s) for s in stack.shape_hw),
        "pixel_text": (f"{x_nm:.4g} nm" if math.isclose(x_nm, y_nm, rel_tol=0.01)
                       else f"{y_nm:.4g} nm (y) x {x_nm:.4g} nm (x)"),
        "elements": list(stack.elements),
        "measured_units": measured.units,
        "centre_px": preparation.center_offset_px,
        "centre_nm": preparation.center_offset_px * stack.pixel_size_nm,
        "centre_method": md.get("center_method", "fixed (parameter)"),
        "estimates": sorted((md.get("preparation", {}).get("centre_estimates_px") or {}).items()),
        "trial_link": None if preparation.centre is None else f"{figures_folder}/trial_centres.png",
        "reference": preparation.reference_element,
        "shifts_rms_px": None if shifts is None else float(np.sqrt((shifts**2).sum(axis=1).mean())),
        "shifts_rms_nm": None if shifts is None else float(
            np.sqrt((shifts**2).sum(axis=1).mean()) * stack.pixel_size_nm),
        "shifts_max_px": None if shifts is None else float(np.abs(shifts).max()),
        "shifts_link": f"{figures_folder}/shifts_per_angle.png",
        "sinogram_link": f"{figures_folder}/sinogram_before_after.png",
        "i0_normalised": bool(md.get("i0_normalised", False)),
        "i0_scaler": md.get("i0_scaler"),
        "i0_mean": float(md.get("i0_mean", np.nan)),
        "i0_min": float(i0.min()),
        "i0_max": float(i0.max()),
        "doses": doses,
        "dose_method_text": ", ".join(sorted({d.estimate.method for d in doses})),
        "shown_range_text": f"{lo} and {hi}",
        "warnings": warnings,
        "consistency": consistency,
        "consistency_elements": [] if enhanced_reprojections is None else list(
            enhanced_reprojections.elements),
        "outputs": [row for row in outputs if row is not None],
    }
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.from_string(REPORT_TEMPLATE).render(**context)
