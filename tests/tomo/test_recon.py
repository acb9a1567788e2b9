"""tomo/recon.py: the stack driver (elements, slab, pixel-size scaling, metadata)."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

from xrf_sr_kedro.tomo import even_angles_deg, project_volume
from xrf_sr_kedro.tomo.recon import ReconSettings, reconstruct_stack
from xrf_sr_kedro.types import Volume, XRFStack

PIXEL_NM = 20.0


@pytest.fixture
def stack(disk_phantom):
    """Two elements (the disk phantom and twice it), 4 slices of 24 x 24, 30 angles."""
    disk = disk_phantom(24).astype(np.float32)
    slices = np.stack([disk] * 4)
    truth = Volume(np.stack([slices, 2 * slices]), PIXEL_NM, ("Zn_K", "Mn_K"), units="counts")
    return truth, project_volume(truth, even_angles_deg(30, 0.0, 174.0),
                                 metadata={"kind": "unit test"})


def test_recovers_signal_per_voxel_of_each_element(stack):
    truth, projections = stack
    volume = reconstruct_stack(projections, n_iter=20, n_subsets=5, reg_par=0.0)
    assert volume.elements == ("Zn_K", "Mn_K") and volume.voxel_size_nm == PIXEL_NM
    assert volume.data.shape == truth.data.shape
    inside = truth.data[0, 0] > 0
    # line integrals (signal x nm) are divided back by the pixel size: voxel values, not x20
    for e in range(2):
        ratio = volume.data[e][:, inside].mean() / truth.data[e][:, inside].mean()
        assert ratio == pytest.approx(1.0, abs=0.1)
    assert volume.metadata["source"] == "unit test"
    assert volume.metadata["n_projections"] == 30 and volume.metadata["angles_deg_max"] == 174.0


def test_elements_and_slab_select_what_is_reconstructed(stack):
    _, projections = stack
    volume = reconstruct_stack(
        projections, elements=["Mn_K"], n_iter=2, n_subsets=2, slab_nm=(20.0, 60.0)
    )
    assert volume.elements == ("Mn_K",)
    assert volume.data.shape == (1, 2, 24, 24)  # rows 1..2 of 4 (20 nm .. 60 nm)
    assert volume.metadata["slab_nm"] == [20.0, 60.0]


def test_bad_input_stops_with_a_named_reason(stack):
    _, projections = stack
    with pytest.raises(ValueError, match=r"slab_nm=\[0.0, 200.0\] selects rows 0:10, outside"):
        reconstruct_stack(projections, slab_nm=(0.0, 200.0))
    maps = XRFStack(projections.data, PIXEL_NM, projections.elements)
    with pytest.raises(ValueError, match="no rotation angles"):
        reconstruct_stack(maps)


def test_settings_and_signature_share_every_default():
    signature = inspect.signature(reconstruct_stack).parameters
    settings = {f.name: f.default for f in dataclasses.fields(ReconSettings)}
    assert settings == {name: signature[name].default for name in settings}
    assert set(settings) == set(signature) - {"stack"}
