"""Tests for xrf_sr_kedro.metrics.plots: figures build and save to PNG."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from xrf_sr_kedro.metrics.fsc import fourier_shell_correlation
from xrf_sr_kedro.metrics.image import bicubic_upsample
from xrf_sr_kedro.metrics.plots import (
    plot_before_after,
    plot_fsc,
    plot_orthogonal_slices,
    plot_side_by_side,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _save(fig: Figure, path) -> None:
    fig.savefig(path, dpi=60)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


@pytest.fixture
def maps():
    rng = np.random.default_rng(0)
    truth = rng.random((64, 64))
    raw = truth.reshape(16, 4, 16, 4).mean(axis=(1, 3))
    return truth, raw


@pytest.mark.parametrize("threshold", ["one_bit", "half_bit", "0.143"])
def test_plot_fsc(tmp_path, maps, threshold):
    truth, raw = maps
    rng = np.random.default_rng(1)
    enhanced = truth + 0.1 * rng.standard_normal(truth.shape)
    curves = {
        "raw": fourier_shell_correlation(raw, raw + 0.05 * rng.standard_normal(raw.shape), 40.0),
        "enhanced": fourier_shell_correlation(enhanced, truth, 10.0),
    }
    fig = plot_fsc(curves, "FSC vs truth", threshold=threshold)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lbl.startswith("raw:") and lbl.endswith(" nm") for lbl in labels)
    assert any(lbl.startswith("enhanced:") for lbl in labels)
    _save(fig, tmp_path / "fsc.png")
    with pytest.raises(ValueError, match="threshold"):
        plot_fsc(curves, "x", threshold="3sigma")


def test_plot_side_by_side(tmp_path, maps):
    truth, raw = maps
    images = {"truth": truth, "raw": raw, "bicubic": bicubic_upsample(raw, 4)}
    fig = plot_side_by_side(
        images, "Zn_K", pixel_sizes_nm={"truth": 10.0, "raw": 40.0, "bicubic": 10.0}, units="counts"
    )
    assert isinstance(fig, Figure)
    # Three image panels share one colour scale; each covers the same field in nm.
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 3
    clims = {ax.images[0].get_clim() for ax in image_axes}
    assert len(clims) == 1
    extents = {tuple(np.round(ax.images[0].get_extent(), 6)) for ax in image_axes}
    assert extents == {(0.0, 640.0, 640.0, 0.0)}
    _save(fig, tmp_path / "side.png")
    fig2 = plot_side_by_side({"a": truth, "b": raw}, "no scale", shared_scale=False)
    _save(fig2, tmp_path / "side2.png")
    with pytest.raises(ValueError, match="pixel_sizes_nm"):
        plot_side_by_side(images, "x", pixel_sizes_nm={"truth": 10.0})
    with pytest.raises(ValueError, match="2-D"):
        plot_side_by_side({"vol": np.zeros((2, 3, 4))}, "x")


def test_plot_orthogonal_slices(tmp_path):
    rng = np.random.default_rng(2)
    vol = rng.random((12, 20, 24))
    fig = plot_orthogonal_slices(vol, 25.0, "Fe_K reconstruction")
    assert isinstance(fig, Figure)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert [ax.images[0].get_array().shape for ax in image_axes] == [(20, 24), (12, 24), (12, 20)]
    _save(fig, tmp_path / "ortho.png")
    with pytest.raises(ValueError, match="3-D"):
        plot_orthogonal_slices(vol[0], 25.0, "x")


def test_plot_before_after(tmp_path, maps):
    truth, raw = maps
    residual = np.random.default_rng(3).standard_normal(raw.shape)
    fig = plot_before_after(raw, truth, residual, "Zn_K", pixel_size_before_nm=40.0)
    assert isinstance(fig, Figure)
    assert len([ax for ax in fig.axes if ax.images]) == 3
    _save(fig, tmp_path / "before_after.png")
    _save(plot_before_after(raw, truth), tmp_path / "before_after_2.png")


def test_side_by_side_wraps_into_rows(tmp_path):
    images = {f"panel {i}": np.random.default_rng(i).random((16, 16)) for i in range(6)}
    fig = plot_side_by_side(images, "wrapped", ncols=4)
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_images()]
    assert len(visible) == 6
    rows = {round(ax.get_position().y0, 3) for ax in visible}
    assert len(rows) == 2
    fig.savefig(tmp_path / "wrapped.png")


def _colour_bar_labels(fig: Figure) -> list[str]:
    return [ax.get_ylabel() for ax in fig.axes if not ax.images and ax.get_ylabel()]


def test_map_figures_name_the_unit_and_ignore_hot_pixels():
    # a map with one hot pixel 1000x the rest: the colour range is set by percentiles,
    # so the map itself is not drawn in one dark colour
    rng = np.random.default_rng(4)
    img = rng.random((40, 40))
    img[3, 5] = 1000.0
    vol = np.stack([img] * 6)
    unit = "counts per fine pixel (7.5 x 7.5 nm)"
    figures = [
        plot_side_by_side({"a": img, "b": img}, "t", units=unit),
        plot_side_by_side({"a": img, "b": img}, "t", units=unit, shared_scale=False),
        plot_orthogonal_slices(vol, 7.5, "t", units=unit),
    ]
    for fig in figures:
        labels = _colour_bar_labels(fig)
        assert labels and set(labels) == {unit}
        for ax in (a for a in fig.axes if a.images):
            vmin, vmax = ax.images[0].get_clim()
            assert vmax < 2.0 and vmin < 0.1  # not stretched to the hot pixel's 1000
    before_after = plot_before_after(img[::4, ::4], img, img[::4, ::4] - 0.5, units="counts",
                                     units_after=unit)
    assert _colour_bar_labels(before_after) == ["counts", unit, "residual (counts)"]
    # no unit given: the figure says so instead of inventing "a.u."
    for fig in (plot_side_by_side({"a": img}, "t"), plot_orthogonal_slices(vol, 7.5, "t"),
                plot_before_after(img[::4, ::4], img)):
        assert set(_colour_bar_labels(fig)) <= {"unit not given", "residual (unit not given)"}
        assert all("a.u." not in label for label in _colour_bar_labels(fig))


def test_tomography_slice_figures_state_projections_and_unit():
    from xrf_sr_kedro.pipelines.tomography.nodes import slice_figures
    from xrf_sr_kedro.types import Volume

    vol = Volume(np.random.default_rng(5).random((1, 6, 16, 16)), 7.5, ("Fe_K",),
                 units="counts per fine pixel (7.5 x 7.5 nm)", metadata={"n_projections": 36})
    fig = slice_figures(enhanced_volume=vol)["enhanced_volume_Fe_K.png"]
    assert "36 projections" in fig._suptitle.get_text()
    assert _colour_bar_labels(fig) == ["counts per fine pixel (7.5 x 7.5 nm)"]
