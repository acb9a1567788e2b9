"""Evaluation: methods and controls against the truth in 2-D and 3-D, and the report."""

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes

METRICS = "params:evaluation.metrics"
PROJECTIONS = "params:evaluation.projections"
ELEMENT = "params:evaluation.projections.element"
RECON = "params:tomography.recon"


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.tune_tv_weight,
                ["truth_volume", "raw_xrf", "fine_tuning_coarse_xrf", "fine_tuning_fine_xrf", "probe_intensity",
                 PROJECTIONS, "params:evaluation.tv_tuning"],
                ["tv_weight", "tv_tuning_table"],
                name="tune_tv_weight_on_a_disjoint_region",
            ),
            node(
                nodes.evaluate_projections,
                ["truth_projections", "raw_xrf", "enhanced_xrf", "pretrained_model", "probe_intensity",
                 "truth_volume", "tv_weight", PROJECTIONS, METRICS],
                ["projection_results", "projection_figures"],
                name="evaluate_projections_against_truth",
            ),
            node(
                nodes.split_half_volumes,
                ["raw_xrf", RECON, ELEMENT],
                "raw_split_halves",
                name="split_half_reconstruct_raw",
            ),
            node(
                nodes.evaluate_volumes,
                ["truth_volume", "raw_volume", "raw_split_halves", "enhanced_volume",
                 "limited_projection_volume", ELEMENT, METRICS],
                ["volume_results", "volume_figures"],
                name="evaluate_volumes_against_truth",
            ),
            node(
                nodes.build_report,
                ["projection_results", "projection_figures", "volume_results", "volume_figures",
                 "params:evaluation.metrics.threshold", "tv_tuning_table"],
                ["evaluation_results", "evaluation_results_markdown", "evaluation_report",
                 "evaluation_figures", "evaluation_metrics"],
                name="build_evaluation_report",
            ),
        ],
        tags=["evaluation"],
    )
