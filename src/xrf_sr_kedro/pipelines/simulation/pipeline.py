"""Simulation: the ground-truth sample, its raw fly-scans, fine-tuning scans, training pairs."""

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.simulate_sample,
                "params:simulation.sample",
                "truth_volume",
                name="simulate_ground_truth_sample",
            ),
            node(
                nodes.project_truth,
                ["truth_volume", "params:simulation.scan"],
                "truth_projections",
                name="project_ground_truth",
            ),
            node(
                nodes.simulate_raw_xrf,
                ["truth_projections", "probe_intensity", "params:simulation.scan"],
                "simulated_xrf",
                name="simulate_raw_flyscan_xrf",
            ),
            node(
                nodes.simulate_fine_tuning_scans,
                ["probe_intensity", "params:simulation.fine_tuning_region"],
                ["simulated_fine_tuning_coarse_xrf", "simulated_fine_tuning_fine_xrf"],
                name="simulate_fine_tuning_scans",
            ),
            node(
                nodes.simulate_fine_tuning_scans,
                ["probe_intensity", "params:simulation.fine_scan_region"],
                ["simulated_fine_scan_coarse_xrf", "simulated_fine_scan_fine_xrf"],
                name="simulate_fine_scan_region",
            ),
            node(
                nodes.collect_training_images,
                ["natural_images", "params:simulation.training_images"],
                ["pretraining_train_images", "pretraining_validation_images"],
                name="collect_natural_images",
            ),
            node(
                nodes.make_pretraining_pairs,
                ["pretraining_train_images", "probe_intensity", "params:simulation.pairs"],
                "pretraining_pairs",
                name="make_pretraining_pairs",
            ),
            node(
                nodes.make_validation_pairs,
                ["pretraining_validation_images", "probe_intensity", "params:simulation.pairs"],
                "pretraining_validation_pairs",
                name="make_pretraining_validation_pairs",
            ),
            node(
                nodes.make_application_training_pairs,
                ["pretraining_pairs", "probe_intensity", "params:simulation.application_pairs"],
                "application_training_pairs",
                name="make_application_training_pairs",
            ),
            node(
                nodes.make_validation_region_pairs,
                ["probe_intensity", "params:simulation.validation_region"],
                "validation_region_pairs",
                name="make_validation_region_pairs",
            ),
        ],
        tags=["simulation"],
    )
