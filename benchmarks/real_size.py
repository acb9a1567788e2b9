"""The real-size reconstruction: 1750 px wide, 36 angles, 51 slices, 10 OSPML iterations.

Run: ``PYTHONPATH=src python benchmarks/real_size.py [--quick] [--workers 2] [--slab 26]``

Builds a phantom projection stack of the size of the measurement of issue 17 (one
element, 36 angles over 180 degrees, 51 rows of 1750 px), and reconstructs it with
``tomo.recon.reconstruct_stack``, the function the tomography pipeline's node calls,
with ``streaming: on`` (slabs of ``--slab`` rows into a chunked volume file) and
``--workers`` single-threaded Dask workers (``parallel.mode: local``; ``--workers 0``
runs the slabs serially in this process with ``--threads`` torch threads).

Peak memory is the largest sum of the resident memory of this process and all its
children (the Dask scheduler's nanny and workers), sampled every 0.2 s.  Progress
goes to the log (standard error) as in a redirected ``kedro run``.

The default slab, 26 rows, splits the 51 rows into two slabs that run side by side
on the two workers, one round; slabs of 16 rows make four slabs, the last of 3 rows,
and two rounds, the second of which leaves one worker idle (a quick run of 16-row
slabs thus projects 64 / 51 too little wall time).

``--quick`` reconstructs only ``--quick-rows`` rows (default one slab a worker)
with ``--quick-iter`` iterations (default 2), and projects the time of 51 rows and
10 iterations from it in proportion to rows x iterations (the cost is per voxel
and iteration; worker start-up and the one-off set-up of each slab, counted 5
times over, make it an upper bound); the peak memory of the quick run is the full
run's, since it holds as many slabs of the same size at once.  Ends with
``real_size_recon_min: <x>`` and ``real_size_peak_gb: <x>``
(``..._projected_min`` with ``--quick``) and the machine's load.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import tempfile
import threading
import time

import numpy as np
import psutil

from xrf_sr_kedro.tomo.recon import reconstruct_stack
from xrf_sr_kedro.types import XRFStack

WIDTH, N_ANGLES, N_ROWS, N_ITER = 1750, 36, 51, 10


def phantom_stack(n_rows: int, width: int = WIDTH, n_angles: int = N_ANGLES) -> XRFStack:
    """Exact parallel-beam projections of a few discs (non-negative, counts-like)."""
    rng = np.random.default_rng(0)
    angles = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    s = np.arange(width) + 0.5 - width / 2.0
    proj = np.zeros((n_angles, width), dtype=np.float64)
    for _ in range(12):
        x0, y0 = rng.uniform(-0.3, 0.3, 2) * width
        r, value = rng.uniform(0.02, 0.12) * width, rng.uniform(1.0, 5.0)
        centre = x0 * np.cos(np.radians(angles)) + y0 * np.sin(np.radians(angles))
        chord = np.clip(r**2 - (s[None, :] - centre[:, None]) ** 2, 0.0, None)
        proj += value * 2.0 * np.sqrt(chord) / width
    rows = 1.0 + 0.2 * np.sin(np.linspace(0.0, np.pi, n_rows))  # varies along the axis
    data = (100.0 * proj[:, None, :] * rows[None, :, None]).astype(np.float32)
    return XRFStack(data=data[None], pixel_size_nm=100.0, elements=("Zn_K",),
                    angles_deg=angles, units="counts", metadata={"kind": "phantom"})


class PeakMemory:
    """Largest resident memory of this process plus its children, sampled in a thread.

    Also records the CPU seconds of this process and of every child seen (their
    last sample), so a loaded machine's wall time can be told from the work done.
    """

    def __init__(self, every_s: float = 0.2) -> None:
        self.peak = 0
        self.cpu_s: dict[int, float] = {}
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for proc in [me, *me.children(recursive=True)]:
            try:
                if proc is not me:
                    total += proc.memory_info().rss
                t = proc.cpu_times()
                self.cpu_s[proc.pid] = t.user + t.system
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self._every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time a subset and project")
    parser.add_argument("--quick-rows", type=int, default=None,
                        help="rows reconstructed with --quick (default slab x workers)")
    parser.add_argument("--quick-iter", type=int, default=2,
                        help="iterations reconstructed with --quick")
    parser.add_argument("--workers", type=int, default=2,
                        help="single-threaded Dask workers (0: serial in this process)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of each worker (or of this process with --workers 0)")
    parser.add_argument("--slab", type=int, default=26,
                        help="rows per slab (26: the 51 rows in one round of two slabs on 2 "
                        "workers, 3.0 GB peak at 1750 px; 16: four slabs in two uneven "
                        "rounds, 2.6 GB)")
    parser.add_argument("--n-iter", type=int, default=N_ITER)
    parser.add_argument("--width", type=int, default=WIDTH)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    import distributed  # noqa: F401  (configures its loggers; quiet them after)

    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("distributed", "tornado", "bokeh", "asyncio"):
            logging.getLogger(name).setLevel(logging.WARNING)

    import torch

    torch.set_num_threads(args.threads)
    n_workers = max(args.workers, 0)
    rows = N_ROWS
    if args.quick:
        rows = min(N_ROWS, args.quick_rows or args.slab * max(n_workers, 1))
    n_iter = min(args.n_iter, args.quick_iter) if args.quick else args.n_iter
    parallel = (
        {"mode": "serial"} if n_workers == 0
        else {"mode": "local", "n_workers": n_workers, "threads_per_worker": args.threads,
              "dashboard_address": ":0"}
    )
    stack = phantom_stack(rows, width=args.width)
    load0 = os.getloadavg()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
          f"{load0[0]:.1f} / {load0[1]:.1f} / {load0[2]:.1f} (1 / 5 / 15 min); "
          f"{rows} of {N_ROWS} rows of {args.width} px, {N_ANGLES} angles, {n_iter} "
          f"OSPML iterations, slabs of {args.slab} rows, "
          f"{n_workers or 'no'} worker(s) x {args.threads} thread(s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="real_size_") as tmp, PeakMemory() as mem:
        t0 = time.perf_counter()
        vol = reconstruct_stack(
            stack, algorithm="ospml_quad", n_iter=n_iter, n_subsets=10, reg_par=0.01,
            streaming="on", slab_slices=args.slab, streaming_dir=tmp, parallel=parallel,
        )
        seconds = time.perf_counter() - t0
        check = vol.read(0, rows // 2, rows // 2 + 1)
    if not np.isfinite(check).all() or check.max() <= 0:
        raise SystemExit("the reconstruction is empty or not finite")
    load1 = os.getloadavg()
    rounds = math.ceil(math.ceil(rows / args.slab) / max(n_workers, 1))
    minutes = seconds / 60.0
    print(f"reconstructed {rows} rows in {seconds:.1f} s ({rounds} round(s) of slabs); "
          f"load average now {load1[0]:.1f} / {load1[1]:.1f} / {load1[2]:.1f}")
    cpu_min = sum(mem.cpu_s.values()) / 60.0
    print(f"CPU time of this process and its workers: {cpu_min:.2f} min "
          f"(on {max(n_workers, 1)} free core(s): about {cpu_min / max(n_workers, 1):.2f} min)")
    print(f"load_1min: {load1[0]:.1f}")
    if args.quick:
        factor = N_ROWS / rows * args.n_iter / n_iter
        print(f"real_size_recon_projected_min: {minutes * factor:.2f}")
        print(f"real_size_cpu_projected_min: {cpu_min * factor:.2f}")
    else:
        print(f"real_size_recon_min: {minutes:.2f}")
        print(f"real_size_cpu_min: {cpu_min:.2f}")
    print(f"real_size_peak_gb: {mem.peak / 1e9:.2f}")


if __name__ == "__main__":
    main()
