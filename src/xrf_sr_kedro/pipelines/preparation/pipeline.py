"""Preparation of measured projections: centre, alignment, centre again.

Reads the measured stack ``raw_xrf`` (read-only; I0-normalised by its reader) and
writes ``prepared_xrf``, a file of the project's own, whose metadata carries the
centre, its method and the per-angle shifts, plus figures.  The registry's
``real_data`` pipelines feed ``prepared_xrf`` to the tomography in place of
``raw_xrf`` (:data:`xrf_sr_kedro.pipeline_registry.PREPARED_STAND_INS`).
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
