"""Fine-tuning: the pretrained network on (coarse, fine) scans of another region."""

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
                nodes.fine_tune,
                [
                    "pretrained_model",
                    "fine_tuning_pairs",
                    "fine_tuning_validation_pairs",
                    "params:fine_tuning.train",
                    "params:fine_tuning.checkpoints",
                ],
                ["fine_tuned_model", "fine_tuning_metrics", "fine_tuning_examples"],
                name="fine_tune_on_experimental_pairs",
            ),
        ],
        tags=["fine_tuning", "training"],
    )
