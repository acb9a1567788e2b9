"""Tomography: raw reconstruction, angular and lateral enhancement, limited projections.

(a) reconstruct the raw projections; (b) reproject to more angles; (c) enhance the
reprojections with the enhancement engine; (d) reconstruct at 4x finer voxels;
(e) the same from every second projection, reprojected to the measured angles.
"""

from kedro.pipeline import Pipeline, node, pipeline

from xrf_sr_kedro.pipelines.enhancement.nodes import enhance

from . import nodes

RECON = "params:tomography.recon"
ENGINE = "params:enhancement.engine"


def create_pipeline(**kwargs) -> Pipeline:
    full = [
        node(nodes.reconstruct_stack, ["raw_xrf", RECON], "raw_volume", name="reconstruct_raw"),
        node(
            nodes.reproject_volume,
            ["raw_volume", "params:tomography.reprojection"],
            "raw_reprojections",
            name="reproject_raw_to_more_angles",
        ),
        node(
            enhance,
            ["raw_reprojections", "fine_tuned_model", "probe_intensity", ENGINE],
            "enhanced_reprojections",
            name="enhance_reprojections",
        ),
        node(
            nodes.reconstruct_stack,
            ["enhanced_reprojections", RECON],
            "enhanced_volume",
            name="reconstruct_enhanced",
        ),
    ]
    limited = [
        node(
            nodes.every_second_projection,
            "raw_xrf",
            "limited_projection_xrf",
            name="select_every_second_projection",
        ),
        node(
            nodes.reconstruct_stack,
            ["limited_projection_xrf", RECON],
            "limited_projection_raw_volume",
            name="reconstruct_limited_projections",
        ),
        node(
            nodes.reproject_to_measured_angles,
            ["limited_projection_raw_volume", "raw_xrf"],
            "limited_projection_reprojections",
            name="reproject_limited_to_measured_angles",
        ),
        node(
            enhance,
            ["limited_projection_reprojections", "fine_tuned_model", "probe_intensity", ENGINE],
            "limited_projection_enhanced_reprojections",
            name="enhance_limited_reprojections",
        ),
        node(
            nodes.reconstruct_stack,
            ["limited_projection_enhanced_reprojections", RECON],
            "limited_projection_volume",
            name="reconstruct_limited_enhanced",
        ),
    ]
    report = [
        node(
            nodes.volume_slices,
            ["raw_volume", "enhanced_volume", "limited_projection_volume"],
            "tomography_slices",
            name="plot_central_slices",
        ),
        node(
            nodes.volumes_for_fiji,
            ["raw_volume", "enhanced_volume", "limited_projection_volume"],
            ["raw_volume_tiff", "enhanced_volume_tiff", "limited_projection_volume_tiff"],
            name="export_volumes_for_fiji",
        ),
    ]
    return pipeline(full + limited + report, tags=["tomography"])
