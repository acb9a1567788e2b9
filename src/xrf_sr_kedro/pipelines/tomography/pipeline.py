"""Tomography: raw reconstruction, angular and lateral enhancement, limited projections.

Both experiments run the same chain, :func:`enhanced_chain`: reconstruct the
measured projections, reproject the volume to more (or the measured) angles,
enhance the reprojections with the fine-tuned network and reconstruct again at
4x finer voxels.  (a) the 91 raw projections, reprojected to 270 angles;
(b) every second projection (45), reprojected to the 91 measured angles.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes

RECON = "params:tomography.recon"
ENGINE = "params:enhancement.engine"
REPROJECTION = "params:tomography.reprojection"


def enhanced_chain(
    namespace: str,
    measured_input: str,
    *,
    angles_from: str,
    outputs: dict[str, str] | None = None,
) -> Pipeline:
    """reconstruct -> reproject -> enhance -> reconstruct, as one namespaced modular pipeline.

    Parameters
    ----------
    namespace : str
        Prefix of the chain's node names and of any dataset not mapped in ``outputs``.
    measured_input : str
        Catalog name of the measured projection stack (an ``XRFStack`` with angles).
    angles_from : str
        Where the reprojection angles come from: ``"params:tomography.reprojection"``
        (evenly spaced, e.g. 270) or the catalog name of a stack whose angles are used
        (e.g. ``"raw_xrf"``, the measured angles).
    outputs : dict, optional
        Catalog names for the chain's datasets ``volume`` (reconstruction of the
        measured input), ``reprojections``, ``enhanced_reprojections`` and
        ``enhanced_volume``; unmapped ones become ``<namespace>.<name>``.

    Returns
    -------
    Pipeline
        Reads ``measured_input``, ``selected_model``, ``probe_intensity`` and the
        parameters ``tomography.recon``, ``enhancement.engine`` (and
        ``tomography.reprojection``), which keep their names.
    """
    from_params = angles_from.startswith("params:")
    reproject = nodes.reproject_volume if from_params else nodes.reproject_to_measured_angles
    angles = angles_from if from_params else "angles_source"
    chain = [
        node(nodes.reconstruct_volume, ["measured", RECON], "volume", name="reconstruct_measured"),
        node(reproject, ["volume", angles], "reprojections", name="reproject"),
        node(
            nodes.enhance_reprojections,
            ["reprojections", "selected_model", "probe_intensity", ENGINE],
            "enhanced_reprojections",
            name="enhance_reprojections",
        ),
        node(
            nodes.reconstruct_volume,
            ["enhanced_reprojections", RECON],
            "enhanced_volume",
            name="reconstruct_enhanced",
        ),
    ]
    parameters = {RECON, ENGINE} | ({angles_from} if from_params else set())
    inputs = {"measured": measured_input, "selected_model": "selected_model",
              "probe_intensity": "probe_intensity"}
    if not from_params:
        inputs["angles_source"] = angles_from
    return pipeline(
        chain, namespace=namespace, inputs=inputs, outputs=outputs or {}, parameters=parameters
    )


def create_pipeline(**kwargs) -> Pipeline:
    more_angles = enhanced_chain(
        "enhanced_270",
        "raw_xrf",
        angles_from=REPROJECTION,
        outputs={
            "volume": "raw_volume",
            "reprojections": "raw_reprojections",
            "enhanced_reprojections": "enhanced_reprojections",
            "enhanced_volume": "enhanced_volume",
        },
    )
    half_projections = enhanced_chain(
        "limited_projection",
        "limited_projection_xrf",
        angles_from="raw_xrf",
        outputs={
            "volume": "limited_projection_raw_volume",
            "reprojections": "limited_projection_reprojections",
            "enhanced_reprojections": "limited_projection_enhanced_reprojections",
            "enhanced_volume": "limited_projection_volume",
        },
    )
    select_half = node(
        nodes.every_second_projection,
        "raw_xrf",
        "limited_projection_xrf",
        name="select_every_second_projection",
    )
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
    return pipeline(
        [more_angles, select_half, half_projections, *report], tags=["tomography"]
    )
