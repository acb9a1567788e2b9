"""The evaluation report: results table (CSV / Markdown) and one self-contained HTML
page rendered from a jinja2 template, with every figure embedded."""

from __future__ import annotations

import base64
import io
import logging

import jinja2
import pandas as pd
from matplotlib.figure import Figure

from xrf_sr_kedro.evaluation.table import markdown_table, mlflow_metrics

logger = logging.getLogger(__name__)

__all__ = ["build_report", "render_html", "REPORT_TEMPLATE"]

REPORT_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>xrf-sr-kedro evaluation</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}</style></head>
<body>
<h1>Evaluation against the simulated ground truth</h1>
<p>Resolution from Fourier shell/ring correlation at the {{ threshold }} threshold (nm): against the truth
in all directions, in a cone around the rotation axis (axial) and in the band around the slice plane
(equatorial); <code>finest_resolved_pair_nm</code> is the finest calibration pair whose profile dips at
least 26.5 % between the two features (Rayleigh). The FSC against the truth measures recovered
information and is blind to a linear filter; the Rayleigh test sees sharpness. PSNR and SSIM are against the
truth after a least-squares gain/offset match. <code>fsc_split_half_nm</code> is reported only for
independent halves and read up to the Nyquist limit of the measured pixels (twice the measured pixel):
beyond it the halves of an upsampled volume share the spectral images of their common low frequencies and
the network's own detail, so a value equal to that limit means "this fine or finer, as far as the halves can
tell". <code>paper_fsc_nm</code> is the paper's figure for the same experiment on real data:
twice its pixel sizes (30 nm, 7.5 nm), i.e. Nyquist-saturated.</p>
{{ table_html }}
{% if tuning_html %}<h2>TV weight sweep, on a region disjoint from the evaluated sample (never its truth)</h2>
{{ tuning_html }}{% endif %}
{% if recon_tuning_html %}<h2>raw_best_iterations: OSPML sweep on another simulated sample (the choice; never the
evaluation truth)</h2>
{{ recon_tuning_html }}{% endif %}
{% if natural_html %}<h2>Unseen natural images at the pretraining dose: each network against bicubic
(PSNR in dB; <code>gain_db</code> = network - bicubic)</h2>
{{ natural_html }}{% endif %}
{% if recon_oracle_html %}<h2>Oracle: the same OSPML sweep scored against the evaluation truth (for reference only,
never used to choose)</h2>
{{ recon_oracle_html }}{% endif %}
{% for name, data in figures %}<figure><img alt="{{ name }}" src="data:image/png;base64,{{ data }}">
<figcaption>{{ name }}</figcaption></figure>
{% endfor %}</body></html>
"""


def _png_base64(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def render_html(results: pd.DataFrame, figures: dict[str, Figure], threshold: str = "one_bit",
                tv_tuning: pd.DataFrame | None = None, recon_tuning: pd.DataFrame | None = None,
                recon_oracle: pd.DataFrame | None = None, natural_images: pd.DataFrame | None = None) -> str:
    """The HTML page (table, TV and OSPML tuning sweeps, the natural-image scores, the oracle
    sweep, figures as inline PNG)."""
    def html(table: pd.DataFrame | None) -> str:
        return table.to_html(**fmt) if table is not None and len(table) else ""

    fmt = {"float_format": lambda v: f"{v:.3g}", "na_rep": "-", "index": False}
    template = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined).from_string(REPORT_TEMPLATE)
    return template.render(
        threshold=threshold.replace("_", "-"),
        table_html=results.to_html(**fmt),
        tuning_html=html(tv_tuning),
        recon_tuning_html=html(recon_tuning),
        recon_oracle_html=html(recon_oracle),
        natural_html=html(natural_images),
        figures=[(name, _png_base64(fig)) for name, fig in figures.items()],
    )


def build_report(
    projection_results: pd.DataFrame,
    projection_figures: dict[str, Figure],
    volume_results: pd.DataFrame,
    volume_figures: dict[str, Figure],
    threshold: str = "one_bit",
    tv_tuning: pd.DataFrame | None = None,
    recon_tuning: pd.DataFrame | None = None,
    recon_oracle: pd.DataFrame | None = None,
    natural_images: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, str, str, dict[str, Figure], dict[str, list[dict[str, float]]]]:
    """Results table, its Markdown, the HTML page, all figures and the MLflow metrics."""
    results = pd.concat([projection_results, volume_results], ignore_index=True)
    figures = projection_figures | volume_figures
    html = render_html(results, figures, threshold, tv_tuning, recon_tuning, recon_oracle, natural_images)
    return results, markdown_table(results), html, figures, mlflow_metrics(results)
