"""Pretraining: the dual-branch network on application-scale pairs (microstructures + natural images).

The checkpoint is chosen on ``validation_region_pairs``; the natural-image
validation (``pretraining_validation_pairs``) is scored and logged separately.
"""

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.pretrain,
                [
                    "application_training_pairs",
                    "validation_region_pairs",
                    "pretraining_validation_pairs",
                    "params:pretraining.model",
                    "params:pretraining.train",
                    "params:pretraining.checkpoints",
                ],
                ["pretrained_model", "pretraining_metrics", "pretraining_examples"],
                name="pretrain_dual_branch_network",
            ),
        ],
        tags=["pretraining", "training"],
    )
