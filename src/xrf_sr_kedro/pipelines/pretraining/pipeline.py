"""Pretraining: the dual-branch network on fly-scanned natural images."""

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.pretrain,
                [
                    "pretraining_pairs",
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
