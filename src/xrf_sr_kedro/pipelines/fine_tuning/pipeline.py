"""Fine-tuning: the pretrained network on (coarse, fine) scans of another region
(the paper's recipe), on application-scale pairs, or on application-scale pairs at the
measured data's dose (``fine_tuning.data``); then the
choice of the network the 3-D chain uses (on the validation region), fine-tuned on a
fine scan of a second region through the probe (``fine_tuning.fine_scan``), optionally
adapted to the measured counts themselves (``fine_tuning.self_supervised``) into
``selected_model``."""

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.make_fine_tuning_pairs,
                ["fine_tuning_coarse_xrf", "fine_tuning_fine_xrf", "params:fine_tuning.pairs"],
                ["fine_tuning_pairs", "fine_tuning_validation_pairs"],
                name="make_fine_tuning_pairs",
            ),
            node(
                nodes.choose_fine_tuning_data,
                ["fine_tuning_pairs", "fine_tuning_validation_pairs", "pretraining_pairs",
                 "validation_region_pairs", "raw_xrf", "probe_intensity", "params:fine_tuning.data",
                 "params:simulation.application_pairs", "params:fine_tuning.dose_matched_pairs"],
                ["fine_tuning_train_set", "fine_tuning_validation_set"],
                name="choose_fine_tuning_data",
            ),
            node(
                nodes.fine_tune,
                [
                    "pretrained_model",
                    "fine_tuning_train_set",
                    "fine_tuning_validation_set",
                    "params:fine_tuning.train",
                    "params:fine_tuning.checkpoints",
                ],
                ["fine_tuned_model", "fine_tuning_metrics", "fine_tuning_examples"],
                name="fine_tune_on_experimental_pairs",
            ),
            node(
                nodes.select_model,
                ["pretrained_model", "fine_tuned_model", "validation_region_pairs"],
                ["region_selected_model", "model_selection_metrics"],
                name="select_model_on_validation_region",
            ),
            node(
                nodes.tune_on_fine_scan,
                ["region_selected_model", "fine_scan_coarse_xrf", "fine_scan_fine_xrf",
                 "probe_intensity", "params:fine_tuning.fine_scan"],
                ["fine_scan_model", "fine_scan_metrics"],
                name="fine_tune_on_fine_scan",
            ),
            node(
                nodes.adapt_to_measurement,
                ["fine_scan_model", "raw_xrf", "probe_intensity",
                 "params:fine_tuning.self_supervised"],
                ["selected_model", "self_supervised_metrics"],
                name="adapt_to_measured_counts",
            ),
        ],
        tags=["fine_tuning", "training"],
    )
