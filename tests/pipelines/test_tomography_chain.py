"""The tomography chain factory: catalog names kept, everything else namespaced."""

from __future__ import annotations

from xrf_sr_kedro.pipelines.tomography.pipeline import create_pipeline, enhanced_chain, evaluation_chains

PARAMS = {"params:tomography.recon", "params:enhancement.engine"}


def test_enhanced_chain_maps_inputs_and_outputs_and_namespaces_the_rest():
    chain = enhanced_chain(
        "split_even", "even_xrf", angles_from="params:tomography.reprojection",
        outputs={"enhanced_volume": "even_enhanced_volume"},
    )
    assert chain.inputs() == {
        "even_xrf", "selected_model", "probe_intensity", "params:tomography.reprojection", *PARAMS
    }
    assert chain.outputs() == {"even_enhanced_volume"}
    assert chain.all_outputs() == {
        "split_even.volume", "split_even.reprojections", "split_even.enhanced_reprojections",
        "even_enhanced_volume",
    }
    assert {n.name for n in chain.nodes} == {
        "split_even.reconstruct_measured", "split_even.reproject",
        "split_even.enhance_reprojections", "split_even.reconstruct_enhanced",
    }


def test_measured_angles_come_from_the_named_stack():
    chain = enhanced_chain("half", "half_xrf", angles_from="raw_xrf")
    assert chain.inputs() == {"half_xrf", "raw_xrf", "selected_model", "probe_intensity", *PARAMS}
    reproject = next(n for n in chain.nodes if n.name == "half.reproject")
    assert reproject.inputs == ["half.volume", "raw_xrf"]


def test_tomography_pipeline_keeps_the_catalog_dataset_names():
    pipe = create_pipeline()
    assert pipe.inputs() == {
        "raw_xrf", "selected_model", "probe_intensity", "params:tomography.reprojection",
        *PARAMS,
    }
    chain_outputs = {
        "raw_volume", "raw_reprojections", "enhanced_reprojections", "enhanced_volume",
        "limited_projection_xrf", "limited_projection_raw_volume",
        "limited_projection_reprojections", "limited_projection_enhanced_reprojections",
        "limited_projection_volume",
    }
    assert chain_outputs <= pipe.all_outputs()
    assert not any("." in name for name in pipe.all_outputs())  # nothing left namespaced


def test_split_chains_each_run_one_half_of_the_measured_projections():
    pipe = create_pipeline() + evaluation_chains()
    assert not any("." in name for name in pipe.all_outputs())
    by_name = {n.name: n for n in pipe.nodes}
    for experiment, source in (("more_angles", "raw_xrf_slab"), ("limited", "limited_projection_xrf_slab")):
        split = next(n for n in pipe.nodes if n.inputs == [source] and n.name.startswith("split_"))
        even, odd = split.outputs
        assert by_name[f"split_even_{experiment}.reconstruct_measured"].inputs[0] == even
        assert by_name[f"split_odd_{experiment}.reconstruct_measured"].inputs[0] == odd
        for half in ("even", "odd"):  # the whole chain: reconstruct, reproject, enhance, reconstruct
            assert f"split_{half}_{experiment}_slab_volume" in pipe.all_outputs()
            assert by_name[f"split_{half}_{experiment}.enhance_reprojections"].inputs[1] == "selected_model"
    assert by_name["pretrained_more_angles.enhance_reprojections"].inputs[1] == "pretrained_model"
