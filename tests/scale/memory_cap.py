"""The memory cap of the ``capped_*.py`` subprocess scripts (imported as a sibling module).

``cap_data(headroom_mb)`` caps the data segment at its current size plus the headroom;
``require_cap_bites(shape)`` checks that an array of ``shape`` (float32) cannot be
allocated under it, printing ``cap_bites: True``, or prints ``cap_bites: False`` and
exits 3 so the calling test fails.
"""

from __future__ import annotations

import resource
import sys

import numpy as np


def vm_data_bytes() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmData in /proc/self/status")


def cap_data(headroom_mb: float) -> None:
    cap = vm_data_bytes() + int(headroom_mb * 2**20)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))


def require_cap_bites(shape: tuple[int, ...]) -> None:
    try:
        whole = np.ones(shape, dtype=np.float32)
    except MemoryError:
        print("cap_bites: True")
    else:
        print(f"cap_bites: False ({whole.nbytes} bytes allocated under the cap)")
        sys.exit(3)
