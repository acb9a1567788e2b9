"""reconstruct_stack streams slabs into a chunked file for large volumes, same result."""

from __future__ import annotations

import numpy as np
import pytest

from xrf_sr_kedro.io.chunked import ChunkedVolume
from xrf_sr_kedro.tomo.recon import ReconSettings, reconstruct_stack
from xrf_sr_kedro.tomo.streamed import use_streaming
from xrf_sr_kedro.types import Volume, XRFStack


def _stack(n_rows: int = 7, width: int = 16, n_angles: int = 12) -> XRFStack:
    rng = np.random.default_rng(3)
    data = (5.0 * rng.random((2, n_angles, n_rows, width))).astype(np.float32)
    return XRFStack(
        data=data, pixel_size_nm=40.0, elements=("Zn_K", "Fe_K"),
        angles_deg=np.linspace(0.0, 180.0, n_angles, endpoint=False), units="counts",
    )


def test_streaming_choice():
    assert use_streaming(10, "on") and not use_streaming(10**12, "off")
    assert use_streaming(101, "auto", 100) and not use_streaming(100, "auto", 100)
    with pytest.raises(ValueError, match="streaming"):
        use_streaming(1, "maybe")


@pytest.mark.parametrize("algorithm", ["ospml_quad", "sirt"])
def test_streamed_volume_equals_in_memory_volume(tmp_path, algorithm):
    stack = _stack()
    kw = dict(algorithm=algorithm, n_iter=3, n_subsets=3, reg_par=0.01, slice_batch=4)
    whole = reconstruct_stack(stack, **kw, streaming="off")
    streamed = reconstruct_stack(
        stack, **kw, streaming="auto", streaming_min_voxels=100, slab_slices=3,
        streaming_dir=str(tmp_path / "s"), parallel={"mode": "serial"},
    )
    assert isinstance(whole, Volume) and isinstance(streamed, ChunkedVolume)
    assert streamed.path.name == "volume.h5" and streamed.path.parent.parent == tmp_path / "s"
    assert not (streamed.path.parent / "stack_rows.h5").exists()
    # a second call gets its own file: the first handle still reads its own volume
    again = reconstruct_stack(stack, **kw, streaming="on", streaming_dir=str(tmp_path / "s"),
                              parallel={"mode": "serial"})
    assert again.path != streamed.path
    assert streamed.shape == whole.data.shape
    assert streamed.voxel_size_nm == whole.voxel_size_nm and streamed.units == whole.units
    for e in range(2):
        got = streamed.read(e, 0, stack.shape_hw[0])
        # slabs of 3 rows vs batches of 4: the same per-slice arithmetic, to float32 rounding
        np.testing.assert_allclose(got, whole.data[e], rtol=1e-5, atol=1e-6 * whole.data.max())
    for key in ("algorithm", "n_iter", "center_offset_px"):
        assert streamed.metadata[key] == whole.metadata[key]


def test_small_stack_stays_in_memory_by_default():
    assert isinstance(reconstruct_stack(_stack(n_rows=2), n_iter=1), Volume)
    assert ReconSettings().streaming == "auto"


def test_a_failed_streamed_reconstruction_leaves_no_scratch_folder(tmp_path, monkeypatch):
    from xrf_sr_kedro.tomo import slabs

    def broken(stack_path, volume_path, **_):
        volume_path.write_bytes(b"partial")  # as a slab writer would have started
        raise RuntimeError("worker lost")

    monkeypatch.setattr(slabs, "reconstruct_slabs", broken)
    with pytest.raises(RuntimeError, match="worker lost"):
        reconstruct_stack(_stack(), n_iter=1, streaming="on", streaming_dir=str(tmp_path / "s"),
                          parallel={"mode": "serial"})
    assert list((tmp_path / "s").iterdir()) == []
