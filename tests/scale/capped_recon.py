"""Run by test_memory_cap.py in a subprocess: reconstruct a stack under a memory cap.

Usage: ``python capped_recon.py STACK OUT HEADROOM_MB SLAB_SLICES``

After the imports and one warm-up slab (the interpreter, torch and the projector
cost the same for any stack), the data segment is capped at its current size plus
``HEADROOM_MB``.  The script then checks that the cap bites (allocating the whole
volume fails) and reconstructs the file slab by slab.  It prints ``cap_bites`` and
``streamed_ok`` lines; any failure exits non-zero.
"""

from __future__ import annotations

import sys

from xrf_sr_kedro.io.chunked import open_stack
from xrf_sr_kedro.tomo.recon import reconstruct
from xrf_sr_kedro.tomo.slabs import reconstruct_slabs

from memory_cap import cap_data, require_cap_bites  # sibling module (the script's folder is on sys.path)

RECON = dict(algorithm="sirt", n_iter=2)


def main(stack_path: str, out_path: str, headroom_mb: float, slab_slices: int) -> None:
    stack = open_stack(stack_path)
    n_el, n_angles, n_rows, width = stack.shape
    # Warm-up: same geometry and slab size, so caches and thread pools exist.
    reconstruct(stack.read_rows(0, 0, slab_slices), stack.angles_deg, progress=False, **RECON)
    cap_data(headroom_mb)
    volume_bytes = n_rows * width * width * 4
    require_cap_bites((n_rows, width, width))
    reconstruct_slabs(
        stack_path, out_path, slab_slices=slab_slices, parallel=None, progress=False, **RECON
    )
    print(f"streamed_ok: volume {volume_bytes / 2**20:.1f} MiB under {headroom_mb} MiB headroom")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
