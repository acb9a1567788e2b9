"""Enhancement: the fine-tuned network applied to the measured XRF maps."""

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.enhance,
                ["raw_xrf", "fine_tuned_model", "probe_intensity", "params:enhancement.engine"],
                "enhanced_xrf",
                name="enhance_raw_xrf",
            ),
            node(
                nodes.check_consistency,
                ["raw_xrf", "enhanced_xrf", "probe_intensity", "params:enhancement.consistency"],
                ["enhancement_consistency_metrics", "enhancement_before_after"],
                name="check_data_consistency",
            ),
        ],
        tags=["enhancement"],
    )
