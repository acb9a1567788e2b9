"""Enhancement: the selected network applied to the measured XRF maps, optionally refined."""

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.enhance,
                ["raw_xrf", "selected_model", "probe_intensity", "params:enhancement.engine"],
                "network_enhanced_xrf",
                name="enhance_raw_xrf",
            ),
            node(
                nodes.refine,
                ["network_enhanced_xrf", "raw_xrf", "probe_intensity", "params:enhancement.refinement"],
                "enhanced_xrf",
                name="refine_enhanced_xrf",
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
