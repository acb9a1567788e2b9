"""Pretraining: the dual-branch network on application-scale pairs (microstructures + natural images).

The checkpoint is chosen on ``validation_region_pairs``; the natural-image
validation (``pretraining_validation_pairs``) is scored and logged separately.
``kedro run`` does not train: it uses the network shipped with the project
(:func:`create_shipped_pipeline`); ``kedro run --pipeline full`` (or this pipeline
alone) pretrains.
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


def create_shipped_pipeline(**kwargs) -> Pipeline:
    """Stage 1 as ``kedro run`` does it: the shipped network becomes ``pretrained_model``."""
    return pipeline(
        [
            node(
                nodes.use_shipped_network,
                ["shipped_pretrained_model", "params:pretraining.model"],
                "pretrained_model",
                name="use_shipped_pretrained_network",
            ),
        ],
        tags=["pretraining"],
    )
