"""Tomography: raw reconstruction, angular and lateral enhancement, limited projections.

Both experiments run the same chain, :func:`enhanced_chain`: reconstruct the
measured projections, reproject the volume to more (or the measured) angles,
enhance the reprojections with the fine-tuned network and reconstruct again at
4x finer voxels.  (a) ``more_angles``: the measured projections (91 in the simulation),
reprojected to ``tomography.reprojection.n_angles`` angles (270 by default);
(b) ``limited_projection``: every second projection, reprojected to the measured angles.
Names carry no angle counts: the real counts are in each stack's metadata
(``n_angles``) and each volume's (``n_projections``).
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from . import nodes, slab_nodes

RECON = "params:tomography.recon"
ENGINE = "params:enhancement.engine"
REPROJECTION = "params:tomography.reprojection"


def enhanced_chain(
    namespace: str,
    measured_input: str,
    *,
    angles_from: str,
    outputs: dict[str, str] | None = None,
    model: str = "selected_model",
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
    model : str
        Catalog name of the network checkpoint (default ``selected_model``: the network
        chosen on the validation region).

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
    inputs = {"measured": measured_input, "selected_model": model,
              "probe_intensity": "probe_intensity"}
    if not from_params:
        inputs["angles_source"] = angles_from
    return pipeline(
        chain, namespace=namespace, inputs=inputs, outputs=outputs or {}, parameters=parameters
    )


def _slab_outputs(namespace: str) -> dict[str, str]:
    """Catalog names of an evaluation chain: ``<ns>_raw_slab_volume``, ``<ns>_slab_volume``
    (the catalog's ``{name}_slab_volume`` pattern saves them) and its reprojections."""
    return {
        "volume": f"{namespace}_raw_slab_volume",
        "reprojections": f"{namespace}_reprojections",
        "enhanced_reprojections": f"{namespace}_enhanced_reprojections",
        "enhanced_volume": f"{namespace}_slab_volume",
    }


def evaluation_chains() -> Pipeline:
    """The extra chains of the 3-D evaluation, on the slab ``evaluation.volumes.slab_nm``.

    Not part of the tomography stage: ``pipeline_registry`` adds them to the evaluation
    stage (which needs a ground truth anyway), so measured data never runs them.

    Independent split halves: the even and the odd *measured* projections each run
    through the whole chain of their experiment (``split_even_more_angles`` /
    ``split_odd_more_angles``: reprojected to ``tomography.reprojection.n_angles`` angles, 270
    by default; ``split_even_limited`` / ``split_odd_limited``: halves of
    the 46 limited projections, reprojected to the measured angles); each chain's first
    reconstruction is the raw row's half.  ``pretrained_more_angles`` /
    ``fine_tuned_more_angles``: the more-angles chain with each network (the main chains use ``selected_model``).  Outputs: ``<namespace>_raw_slab_volume`` (first reconstruction) and
    ``<namespace>_slab_volume`` (the chain's result).
    """
    volumes = "params:evaluation.volumes"
    split = [
        node(slab_nodes.select_evaluation_slab, ["raw_xrf", volumes], "raw_xrf_slab", name="select_evaluation_slab"),
        node(slab_nodes.split_even_odd, "raw_xrf_slab", ["split_even_xrf", "split_odd_xrf"],
             name="split_measured_even_odd"),
        node(slab_nodes.select_evaluation_slab, ["limited_projection_xrf", volumes], "limited_projection_xrf_slab",
             name="select_limited_evaluation_slab"),
        node(slab_nodes.split_even_odd, "limited_projection_xrf_slab",
             ["split_even_limited_xrf", "split_odd_limited_xrf"], name="split_limited_even_odd"),
    ]
    chains = [
        enhanced_chain(ns, measured, angles_from=angles, outputs=_slab_outputs(ns))
        for half in ("even", "odd")
        for ns, measured, angles in (
            (f"split_{half}_more_angles", f"split_{half}_xrf", REPROJECTION),
            (f"split_{half}_limited", f"split_{half}_limited_xrf", "raw_xrf"),
        )
    ]
    networks = [
        enhanced_chain(f"{name}_more_angles", "raw_xrf_slab", angles_from=REPROJECTION,
                       outputs=_slab_outputs(f"{name}_more_angles"), model=f"{name}_model")
        for name in ("pretrained", "fine_tuned")
    ]
    return pipeline([*split, *chains, *networks], tags=["evaluation", "evaluation_chains"])


def create_pipeline(**kwargs) -> Pipeline:
    more_angles = enhanced_chain(
        "more_angles",
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
