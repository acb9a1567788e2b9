"""How the enhancement engine runs its forward passes: tiles a pass, and passes at once.

On a GPU one large batch keeps the device busy.  On a CPU a small network gains
nothing from large batches (measured on 2 cores, ``small`` preset, 91 maps of
64 x 64, one torch thread: batches of 1 / 2 / 4 / 8 maps took 1.05 / 0.97 / 1.00 /
1.34 CPU-s; another run: 1 / 2 / 4 maps 1.37 / 1.24 / 1.10 CPU-s, and without
channels-last 1.64 / 1.55 / 2.06), and torch's intra-op threads scale poorly on
its small convolutions, so the engine runs passes of a few tiles
(:data:`CPU_PASS_PIXELS` LR pixels) on several single-threaded workers at once:
Python threads, since torch releases the GIL inside its kernels.  Every tile goes through the same arithmetic whichever
worker runs it, so results do not depend on the number of workers.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["CPU_PASS_PIXELS", "GPU_PASS_PIXELS", "tiles_per_pass", "default_workers",
           "ordered_map"]

T = TypeVar("T")
R = TypeVar("R")

#: LR input pixels of one reference tile; a pass holds at most ``batch_size`` of these.
GPU_PASS_PIXELS = 128 * 128
#: LR input pixels of one pass on a CPU: four 64 x 64 maps (see the module notes).
CPU_PASS_PIXELS = 4 * 64 * 64


def tiles_per_pass(batch_size: int, tile_pixels: int, device_type: str) -> int:
    """Tiles of ``tile_pixels`` LR pixels in one forward pass (at least 1).

    At most ``batch_size``; on a GPU at most ``batch_size * 128**2`` pixels a pass,
    on a CPU at most :data:`CPU_PASS_PIXELS`.
    """
    budget = batch_size * GPU_PASS_PIXELS if device_type != "cpu" else CPU_PASS_PIXELS
    return max(1, min(batch_size, budget // max(1, tile_pixels)))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_workers(device_type: str, n_passes: int) -> int:
    """Passes run at once: one per usable core on a CPU (at most ``n_passes``), 1 on a GPU."""
    if device_type != "cpu":
        return 1
    return max(1, min(_usable_cores(), n_passes))


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int, max_in_flight: int | None = None
) -> Iterator[R]:
    """``fn`` over ``items`` on ``workers`` threads, yielded in order, few results held.

    With one worker it is a plain loop in the calling thread.  Otherwise at most
    ``max_in_flight`` (default ``2 * workers``) items are submitted ahead of the one
    being yielded, so memory stays bounded however many items there are.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    limit = max_in_flight or 2 * workers
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enhance") as pool:
        queue: deque[Future[R]] = deque()
        for item in items:
            queue.append(pool.submit(fn, item))
            if len(queue) >= limit:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
