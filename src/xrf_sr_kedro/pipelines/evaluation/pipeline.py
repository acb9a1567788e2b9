"""Evaluation: FSC resolution, error against the truth, baselines, and the report."""

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes

PARAMS = "params:evaluation.metrics"
RECON = "params:tomography.recon"


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.evaluate_projections,
                [
                    "truth_projections",
                    "raw_xrf",
                    "enhanced_xrf",
                    "pretrained_model",
                    "probe_intensity",
                    PARAMS,
                ],
                ["projection_results", "projection_figures"],
                name="evaluate_projections_against_truth",
            ),
            node(
                nodes.split_half_volumes,
                ["raw_xrf", RECON, PARAMS],
                "raw_split_halves",
                name="split_half_reconstruct_raw",
            ),
            node(
                nodes.split_half_volumes,
                ["enhanced_reprojections", RECON, PARAMS],
                "enhanced_split_halves",
                name="split_half_reconstruct_enhanced",
            ),
            node(
                nodes.split_half_volumes,
                ["limited_projection_enhanced_reprojections", RECON, PARAMS],
                "limited_projection_split_halves",
                name="split_half_reconstruct_limited",
            ),
            node(
                nodes.evaluate_volumes,
                [
                    "truth_volume",
                    "raw_volume",
                    "raw_split_halves",
                    "enhanced_volume",
                    "enhanced_split_halves",
                    "limited_projection_volume",
                    "limited_projection_split_halves",
                    PARAMS,
                ],
                ["volume_results", "volume_figures"],
                name="evaluate_volumes_against_truth",
            ),
            node(
                nodes.build_report,
                ["projection_results", "projection_figures", "volume_results", "volume_figures"],
                [
                    "evaluation_results",
                    "evaluation_results_markdown",
                    "evaluation_report",
                    "evaluation_figures",
                    "evaluation_metrics",
                ],
                name="build_evaluation_report",
            ),
        ],
        tags=["evaluation"],
    )
