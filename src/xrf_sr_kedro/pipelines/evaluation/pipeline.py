"""Evaluation: methods and controls against the truth in 2-D and 3-D, and the report."""

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes

METRICS = "params:evaluation.metrics"
PROJECTIONS = "params:evaluation.projections"
ELEMENT = "params:evaluation.projections.element"
RECON = "params:tomography.recon"
VOLUMES = "params:evaluation.volumes"


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
                ["truth_projections", "raw_xrf", "enhanced_xrf", "pretrained_model", "fine_tuned_model", "probe_intensity",
                 "truth_volume", "tv_weight", PROJECTIONS, METRICS, "params:enhancement.refinement"],
                ["projection_results", "projection_figures"],
                name="evaluate_projections_against_truth",
            ),
            node(
                nodes.score_on_natural_images,
                ["pretrained_model", "fine_tuned_model", "pretraining_validation_pairs"],
                ["natural_image_scores", "natural_image_metrics"],
                name="score_networks_on_unseen_natural_images",
            ),
            node(
                nodes.tune_raw_reconstruction,
                ["truth_volume", "raw_xrf", "probe_intensity", ELEMENT, RECON, VOLUMES, METRICS],
                ["raw_recon_choice", "raw_recon_tuning_table"],
                name="tune_raw_reconstruction_on_a_disjoint_sample",
            ),
            node(
                nodes.oracle_raw_sweep,
                ["truth_volume", "raw_xrf", ELEMENT, RECON, VOLUMES, METRICS],
                "raw_recon_oracle_table",
                name="oracle_raw_reconstruction_sweep",
            ),
            node(
                nodes.raw_best_iterations,
                ["raw_xrf", "raw_recon_choice", ELEMENT, RECON, VOLUMES],
                "raw_best_iterations_slab_volume",
                name="reconstruct_raw_best_iterations",
            ),
            node(
                nodes.bicubic_reprojections,
                ["raw_reprojections", "truth_volume", ELEMENT, RECON, VOLUMES],
                "bicubic_reprojections_slab_volume",
                name="reconstruct_bicubic_reprojections",
            ),
            node(
                nodes.enhanced_measured,
                ["enhanced_xrf", ELEMENT, RECON, VOLUMES],
                "enhanced_measured_slab_volume",
                name="reconstruct_enhanced_measured",
            ),
            node(
                nodes.tv_deconvolution_volume,
                ["raw_xrf", "probe_intensity", "tv_weight", "truth_volume", PROJECTIONS, RECON, VOLUMES],
                "tv_deconvolution_slab_volume",
                name="reconstruct_tv_deconvolution",
            ),
            node(
                nodes.evaluate_volumes,
                {
                    "truth_volume": "truth_volume", "raw_volume": "raw_volume", "enhanced_volume": "enhanced_volume",
                    "limited_projection_volume": "limited_projection_volume", "element": ELEMENT,
                    "metrics": METRICS, "volumes_settings": VOLUMES,
                    **{f"{h}_raw": f"split_{h}_more_angles_raw_slab_volume" for h in ("even", "odd")},
                    **{f"{h}_{e}": f"split_{h}_{e}_slab_volume" for h in ("even", "odd") for e in ("more_angles", "limited")},
                    "raw_best_iterations": "raw_best_iterations_slab_volume",
                    "bicubic_reprojections": "bicubic_reprojections_slab_volume",
                    "enhanced_measured": "enhanced_measured_slab_volume",
                    "tv_deconvolution": "tv_deconvolution_slab_volume",
                    "pretrained": "pretrained_more_angles_slab_volume",
                    "fine_tuned": "fine_tuned_more_angles_slab_volume",
                },
                ["volume_results", "volume_figures"],
                name="evaluate_volumes_against_truth",
            ),
            node(
                nodes.build_report,
                ["projection_results", "projection_figures", "volume_results", "volume_figures",
                 "params:evaluation.metrics.threshold", "tv_tuning_table",
                 "raw_recon_tuning_table", "raw_recon_oracle_table", "natural_image_scores"],
                ["evaluation_results", "evaluation_results_markdown", "evaluation_report",
                 "evaluation_figures", "evaluation_metrics"],
                name="build_evaluation_report",
            ),
        ],
        tags=["evaluation"],
    )
