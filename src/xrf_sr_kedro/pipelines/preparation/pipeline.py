"""Preparation of measured projections: centre, alignment, centre again.

Reads the measured stack ``raw_xrf`` (read-only; I0-normalised by its reader) and
writes ``prepared_xrf``, a file of the project's own, whose metadata carries the
centre, its method and the per-angle shifts, plus figures.  The registry's
``real_data`` pipelines feed ``prepared_xrf`` to the tomography in place of
``raw_xrf`` (:data:`xrf_sr_kedro.pipeline_registry.PREPARED_STAND_INS`) and end with
:func:`create_report_pipeline`: the Markdown ``real_data_report``.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(nodes.prepare_projections, ["raw_xrf", "params:preparation"],
                 "preparation_result", name="find_centre_and_align"),
            node(nodes.prepared_stack, "preparation_result", "prepared_xrf",
                 name="save_prepared_projections"),
            node(nodes.plot_preparation, "preparation_result", "preparation_figures",
                 name="plot_preparation"),
        ],
        tags=["preparation"],
    )


GUARD = "params:enhancement.consistency"


def create_report_pipeline(enhanced: bool) -> Pipeline:
    """The report node that ends a ``real_data`` (``enhanced``) or ``real_data_raw`` run.

    It reads the preparation's result, the measured ``raw_xrf`` (for the dose), the
    volumes, and the low-count guard of ``enhancement.consistency``; with
    ``enhanced`` also the reprojections, their enhancement and the probe (for the
    consistency residual).  Writes ``real_data_report``.
    """
    guard = [f"{GUARD}.{key}" for key in
             ("shown_min_counts", "shown_max_counts", "residual_tolerance")]
    if enhanced:
        inputs = ["preparation_result", "raw_xrf", "raw_volume", "raw_reprojections",
                  "enhanced_reprojections", "enhanced_volume", "probe_intensity", *guard,
                  f"{GUARD}.fast_axis", f"{GUARD}.mode"]
        report = node(nodes.report_enhanced_run, inputs, "real_data_report",
                      name="report_real_data_run")
    else:
        report = node(nodes.report_raw_run, ["preparation_result", "raw_xrf", "raw_volume", *guard],
                      "real_data_report", name="report_real_data_run")
    return pipeline([report], tags=["preparation", "report"])
