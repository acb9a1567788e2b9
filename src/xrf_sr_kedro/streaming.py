"""Batched enhancement (or any per-map transform) streamed from stack file to stack file.

:func:`stream_frames` reads ``frames_per_slab`` maps of one element from a
projection stack file, applies ``fn`` (e.g. a ``functools.partial`` of
:func:`xrf_sr_kedro.inference.engine.enhance_maps` returning the array), and
writes the result into a chunked stack file with the pixel size divided by the
scale, so that a stack of any length is enhanced in the memory of one slab.
Slabs run here or on Dask workers (:mod:`xrf_sr_kedro.parallel`).
:func:`enhance_stack_file` does this with the enhancement engine.
:func:`enhance_stack_streamed` is the streamed counterpart of
:func:`xrf_sr_kedro.inference.stack.enhance_stack` for a whole stack (in memory
or lazy): every element of ``frames_per_slab`` frames at a time (so a
multi-channel network sees the elements of a projection together), into a
scratch stack file carrying the same units and ``enhancement`` record.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from xrf_sr_kedro.io.atomic import scratch_folder
from xrf_sr_kedro.io.chunked import ChunkedStack, open_stack, slab_ranges, stack_writer
from xrf_sr_kedro.parallel import ParallelConfig, client_for, map_slabs, task_setup

logger = logging.getLogger(__name__)

#: Whether a large computation streams: ``auto`` above a size, ``on`` / ``off`` forced.
Streaming = Literal["auto", "on", "off"]
STREAMING = ("auto", "on", "off")


def streams(n: int, streaming: Streaming, minimum: int, section: str, minimum_name: str) -> bool:
    """The one streaming decision (reconstruction and enhancement): ``"on"`` / ``"off"``
    force it, ``"auto"`` streams when ``n`` exceeds ``minimum``.  A bad setting stops with
    the parameter's name, ``parameter <section> streaming`` or ``<section> <minimum_name>``."""
    if streaming not in STREAMING:
        raise ValueError(f"parameter {section} streaming must be one of {STREAMING}, got {streaming!r}")
    if int(minimum) != minimum or minimum < 0:
        raise ValueError(f"parameter {section} {minimum_name} must be a count >= 0, got {minimum!r}")
    if streaming != "auto":
        return streaming == "on"
    return int(n) > int(minimum)


__all__ = [
    "DEFAULT_FRAMES_PER_SLAB", "stream_frames", "enhance_frames", "enhance_stack_file",
    "enhance_stack_streamed",
]

#: Maps (frames, every element) per slab of the streamed enhancement: the unit of memory.
DEFAULT_FRAMES_PER_SLAB = 8


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
    frames_per_slab: int = DEFAULT_FRAMES_PER_SLAB,
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
    frames_per_slab: int = DEFAULT_FRAMES_PER_SLAB,
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


def _enhance_slab(
    slab: tuple[int, int],
    *,
    stack: ChunkedStack,
    model: Any,
    scale: int,
    device: str,
    threads: int,
    engine_kwargs: dict[str, Any],
) -> Any:
    """One task: frames ``a0:a1`` of every element through the engine (its layout)."""
    from xrf_sr_kedro.inference.engine import enhance_maps

    a0, a1 = slab
    dev = task_setup(device, threads)
    maps = np.stack([stack.read_frames(e, a0, a1) for e in range(stack.shape[0])], axis=1)
    return enhance_maps(model, maps, scale, device=dev, progress=False, **engine_kwargs)


def _write_coarse(path: Path, stack: Any, index: list[int], frames_per_slab: int) -> ChunkedStack:
    """The selected elements of ``stack`` (``XRFStack`` or ``ChunkedStack``) into a stack
    file the slab tasks read, one frame slab at a time."""
    lazy = isinstance(stack, ChunkedStack)
    n_frames = stack.shape[1] if lazy else stack.n_frames
    rows, width = stack.shape_hw
    with stack_writer(
        path, (len(index), n_frames, rows, width), stack.pixel_size_nm,
        [stack.elements[e] for e in index], stack.angles_deg, units=stack.units,
        metadata=stack.metadata, chunk_rows=min(64, rows),
    ) as w:
        for k, e in enumerate(index):
            for a0, a1 in slab_ranges(n_frames, frames_per_slab):
                w[k, a0:a1] = stack.read_frames(e, a0, a1) if lazy else stack.data[e, a0:a1]
    return open_stack(path)


def enhance_stack_streamed(
    model: Any,
    stack: Any,
    checkpoint_info: dict[str, Any],
    *,
    elements: Sequence[str] | None = None,
    frames_per_slab: int = DEFAULT_FRAMES_PER_SLAB,
    streaming_dir: str | os.PathLike | None = None,
    parallel: ParallelConfig | Mapping[str, Any] | None = None,
    progress: bool = True,
    **engine_kwargs: Any,
) -> ChunkedStack:
    """Enhance a stack slab by slab into a scratch stack file: peak memory of one slab.

    Parameters
    ----------
    model : torch.nn.Module
        The network; its ``config.scale`` (or the checkpoint's) is the scale.
    stack : XRFStack or ChunkedStack
        Measured maps with angles, in memory or lazy.
    checkpoint_info : dict
        As in :func:`xrf_sr_kedro.inference.stack.enhance_stack` (recorded).
    elements : sequence of str, optional
        Element lines to enhance (default all).
    frames_per_slab : int
        Frames (of every element) per task: the unit of memory.
    streaming_dir : path-like, optional
        Folder in which each call makes a new ``xrf_sr_enhance_*`` folder for the
        selected input (deleted afterwards) and the output ``enhanced.h5``; default
        the system's temporary folder (on a cluster: a file system the workers share).
    parallel : ParallelConfig or mapping, optional
        Where slabs run (``params:parallel``; default ``mode: auto``).
    progress : bool
        Report per-slab progress.
    **engine_kwargs
        Of :func:`xrf_sr_kedro.inference.engine.enhance_maps` (``tile_px``,
        ``overlap_px``, ``batch_size``, ``precision``, ``probe_intensity`` on the
        enhanced grid, ``fast_axis``, ``self_ensemble``); ``precision="auto"`` is
        resolved here for the slabs' device and recorded.

    Returns
    -------
    ChunkedStack
        Lazy handle marked ``scratch`` (the catalog moves the file into place), in
        counts per fine pixel with the units, pixel sizes and ``enhancement`` record
        of :func:`~xrf_sr_kedro.inference.stack.enhance_stack`.  A failed or
        interrupted run leaves no files.
    """
    from xrf_sr_kedro.inference.engine import DEFAULT_OVERLAP_PX, DEFAULT_TILE_PX
    from xrf_sr_kedro.inference.precision import resolve_precision
    from xrf_sr_kedro.inference.stack import enhancement_metadata, model_scale
    from xrf_sr_kedro.inference.units import per_fine_pixel
    from xrf_sr_kedro.parallel import worker_device

    if int(frames_per_slab) != frames_per_slab or frames_per_slab < 1:
        raise ValueError(
            f"parameter enhancement.engine frames_per_slab must be >= 1, got {frames_per_slab!r}"
        )
    if stack.angles_deg is None:
        raise ValueError("cannot stream an enhancement of a stack without angles (exchange/theta)")
    cfg = (parallel if isinstance(parallel, ParallelConfig)
           else ParallelConfig(**dict(parallel or {})))
    scale = model_scale(model, checkpoint_info)
    names = list(elements) if elements else list(stack.elements)
    missing = [e for e in names if e not in stack.elements]
    if missing:
        raise KeyError(f"element(s) {missing} not in stack; available: {list(stack.elements)}")
    index = [list(stack.elements).index(e) for e in names]
    kwargs = {"tile_px": DEFAULT_TILE_PX, "overlap_px": DEFAULT_OVERLAP_PX, **engine_kwargs,
              "precision": resolve_precision(engine_kwargs.get("precision", "auto"),
                                             worker_device(cfg.device))}
    # a new folder per call: two chains never share a file another's lazy handle reads
    folder = scratch_folder("enhance", streaming_dir)
    coarse_path, out_path = folder / "coarse.h5", folder / "enhanced.h5"
    try:
        coarse = _write_coarse(coarse_path, stack, index, frames_per_slab)
        n_el, n_frames, rows, width = coarse.shape
        slabs = slab_ranges(n_frames, frames_per_slab)
        stats = {k: np.zeros((n_frames, n_el)) for k in
                 ("lo", "hi", "conservation_scale", "n_clipped_negative")}
        out_shape = (n_el, n_frames, rows * scale, width * scale)
        enhancement, metadata = enhancement_metadata(
            stack, scale, checkpoint_info, _Stats(**stats), total_pixels=int(np.prod(out_shape)),
            **kwargs)
        logger.info("streaming the enhancement of %d frame(s) x %d element(s), %d a slab, into %s",
                    n_frames, n_el, frames_per_slab, out_path)
        with stack_writer(
            out_path, out_shape, coarse.pixel_size_nm / scale, coarse.elements,
            coarse.angles_deg, units=enhancement["units"], metadata=metadata,
            chunk_rows=min(64, out_shape[2]),
        ) as out, client_for(cfg, len(slabs), None) as cl:

            def write(i: int, result: Any) -> None:
                a0, a1 = slabs[i]
                for key, values in stats.items():
                    values[a0:a1] = np.asarray(getattr(result, key)).reshape(a1 - a0, n_el)
                out[:, a0:a1] = per_fine_pixel(result.data.transpose(1, 0, 2, 3), scale * scale)

            map_slabs(
                _enhance_slab, slabs, client=cl, on_result=write, desc="enhance slabs",
                progress=progress, stack=coarse, model=model, scale=scale, device=cfg.device,
                threads=cfg.threads_per_worker, engine_kwargs=kwargs,
            )
            # the per-map record is complete only now: the same as the in-memory path's
            _, metadata = enhancement_metadata(
                stack, scale, checkpoint_info, _Stats(**stats),
                total_pixels=int(np.prod(out_shape)), **kwargs)
            out.set_metadata(metadata)
        return replace(open_stack(out_path), scratch=True)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        coarse_path.unlink(missing_ok=True)


class _Stats:
    """The engine's per-map bookkeeping gathered over slabs (engine layout (n_frames, n_elements))."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, conservation_scale: np.ndarray,
                 n_clipped_negative: np.ndarray) -> None:
        self.lo, self.hi = lo.astype(np.float32), hi.astype(np.float32)
        self.conservation_scale = conservation_scale
        self.n_clipped_negative = n_clipped_negative.astype(np.int64)
