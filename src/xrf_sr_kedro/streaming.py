"""Batched enhancement (or any per-map transform) streamed from stack file to stack file.

:func:`stream_frames` reads ``frames_per_slab`` maps of one element from a
projection stack file, applies ``fn`` (e.g. a ``functools.partial`` of
:func:`xrf_sr_kedro.inference.engine.enhance_maps` returning the array), and
writes the result into a chunked stack file with the pixel size divided by the
scale, so that a stack of any length is enhanced in the memory of one slab.
Slabs run here or on Dask workers (:mod:`xrf_sr_kedro.parallel`).
:func:`enhance_stack_file` does this with the enhancement engine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from xrf_sr_kedro.io.chunked import ChunkedStack, open_stack, slab_ranges, stack_writer
from xrf_sr_kedro.parallel import ParallelConfig, client_for, map_slabs, task_setup

logger = logging.getLogger(__name__)

__all__ = ["stream_frames", "enhance_frames", "enhance_stack_file"]


def _frames_task(
    slab: tuple[int, int, int],
    *,
    transform: Callable[..., np.ndarray],
    stack: ChunkedStack,
    device: str,
    threads: int,
    fn_kwargs: dict[str, Any],
) -> np.ndarray:
    e, a0, a1 = slab
    dev = task_setup(device, threads)
    # On GPU workers each task takes its worker's GPU.
    kwargs = fn_kwargs
    if device == "cuda" and "device" in fn_kwargs:
        kwargs = {**fn_kwargs, "device": dev}
    return np.asarray(transform(stack.read_frames(e, a0, a1), **kwargs), dtype=np.float32)


def stream_frames(
    fn: Callable[..., np.ndarray],
    stack_path: str | os.PathLike,
    out_path: str | os.PathLike,
    scale: int,
    *,
    fn_kwargs: dict[str, Any] | None = None,
    frames_per_slab: int = 8,
    parallel: ParallelConfig | None = None,
    client: Any = None,
    max_in_flight: int | None = None,
    progress: bool = True,
    desc: str = "enhance slabs",
    units: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> ChunkedStack:
    """Apply ``fn`` to every map of a stack file, ``frames_per_slab`` maps at a time.

    Parameters
    ----------
    fn : callable
        ``fn(maps, **fn_kwargs)`` with ``maps`` of shape ``(n, H, W)`` returns
        ``(n, H * scale, W * scale)``; top-level (picklable) for Dask.  A
        ``device`` keyword in ``fn_kwargs`` is replaced by each worker's GPU when
        ``parallel.device`` is ``cuda``.
    stack_path, out_path : path-like
        Input stack file and output stack file (written atomically).
    scale : int
        Upsampling factor; the output pixel size is the input's divided by it (nm).
    fn_kwargs : dict, optional
        Keyword arguments of ``fn``.
    frames_per_slab : int
        Maps per task: the unit of memory.
    parallel, client, max_in_flight, progress
        As in :func:`xrf_sr_kedro.tomo.slabs.reconstruct_slabs`.
    units : str, optional
        Unit of the output (default the input's).
    metadata : dict, optional
        Added to the output's metadata (over the input's).

    Returns
    -------
    ChunkedStack
        Lazy handle on ``out_path``, shape ``(n_elements, n_angles, H*scale, W*scale)``.
    """
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    stack = open_stack(stack_path)
    n_el, n_frames, h, w = stack.shape
    slabs = [(e, a0, a1) for e in range(n_el) for a0, a1 in slab_ranges(n_frames, frames_per_slab)]
    cfg = parallel or ParallelConfig()
    out_shape = (n_el, n_frames, h * int(scale), w * int(scale))
    meta = {**stack.metadata, "source": str(stack_path), "scale": int(scale),
            **(metadata or {})}
    with stack_writer(
        out_path, out_shape, stack.pixel_size_nm / scale, stack.elements, stack.angles_deg,
        units=stack.units if units is None else units, metadata=meta,
        chunk_rows=min(64, out_shape[2]),
    ) as out, client_for(cfg, len(slabs), client) as cl:

        def write(i: int, block: np.ndarray) -> None:
            e, a0, a1 = slabs[i]
            if block.shape != (a1 - a0, *out_shape[2:]):
                raise ValueError(
                    f"fn returned shape {block.shape} for {a1 - a0} maps of {h}x{w}; expected "
                    f"{(a1 - a0, *out_shape[2:])} (scale {scale})"
                )
            out[e, a0:a1] = block

        map_slabs(
            _frames_task, slabs, client=cl, on_result=write, max_in_flight=max_in_flight,
            desc=desc, progress=progress, transform=fn, stack=stack, device=cfg.device,
            threads=cfg.threads_per_worker, fn_kwargs=fn_kwargs or {},
        )
    return open_stack(out_path)



def enhance_frames(maps: np.ndarray, *, model: Any, scale: int, **engine_kwargs: Any) -> np.ndarray:
    """``enhance_maps(model, maps, scale, **engine_kwargs).data`` in counts per fine pixel
    (:func:`xrf_sr_kedro.inference.units.per_fine_pixel`): the engine as a map transform."""
    from xrf_sr_kedro.inference.engine import enhance_maps
    from xrf_sr_kedro.inference.units import per_fine_pixel

    return per_fine_pixel(enhance_maps(model, maps, scale, **engine_kwargs).data, scale * scale)


def enhance_stack_file(
    model: Any,
    stack_path: str | os.PathLike,
    out_path: str | os.PathLike,
    scale: int,
    *,
    frames_per_slab: int = 8,
    parallel: ParallelConfig | None = None,
    client: Any = None,
    progress: bool = True,
    **engine_kwargs: Any,
) -> ChunkedStack:
    """Enhance every map of a stack file with the engine, ``frames_per_slab`` maps at a time.

    ``engine_kwargs`` go to :func:`xrf_sr_kedro.inference.engine.enhance_maps`
    (``tile_px``, ``batch_size``, ``precision``, ``device``, ...); its own progress
    bar is switched off in favour of the per-slab one.  The model travels to each
    Dask task (a few MB for the presets).  As
    :func:`xrf_sr_kedro.inference.stack.enhance_stack`, the output is in counts per
    fine pixel (each map sums to its measured map), its ``units`` say so and its
    metadata records ``enhancement.fine_pixels_per_measured_pixel``.
    """
    from xrf_sr_kedro.inference.units import FINE_PIXEL_KEY, fine_pixel_units, pixel_sizes_yx_nm

    source = open_stack(stack_path)
    fine_y_nm, fine_x_nm = (v / scale for v in pixel_sizes_yx_nm(source))
    units = fine_pixel_units(source.units, fine_y_nm, fine_x_nm)
    record = {"scale": int(scale), "input_units": f"{source.units} per measured pixel",
              "units": units, FINE_PIXEL_KEY: int(scale) * int(scale)}
    extra = {"enhancement": record}
    if "pixel_size_y_nm" in source.metadata or "pixel_size_x_nm" in source.metadata:
        extra.update(pixel_size_y_nm=fine_y_nm, pixel_size_x_nm=fine_x_nm)
    return stream_frames(
        enhance_frames, stack_path, out_path, scale, frames_per_slab=frames_per_slab,
        parallel=parallel, client=client, progress=progress, desc="enhance slabs",
        fn_kwargs={"progress": False, **engine_kwargs, "model": model, "scale": scale},
        units=units, metadata=extra,
    )
