"""Which floating-point precision the enhancement network runs in, for this hardware.

bfloat16 autocast halves the CPU time of the presets only where the hardware
computes in bf16 natively; elsewhere PyTorch emulates it and it is about 5x
*slower* than float32 (measured on an AVX2-only AMD EPYC: 24.1 s against 4.4 s
for the ``paper`` preset on one 140 x 140 map).  ``"auto"`` therefore picks:

* ``"bfloat16"`` on a CUDA GPU that supports it (``torch.cuda.is_bf16_supported``),
* ``"bfloat16"`` on a CPU with native bf16 arithmetic: the x86 flags
  ``avx512_bf16`` (AVX-512 BF16) or ``amx_bf16`` (AMX) in ``/proc/cpuinfo``,
* ``"float32"`` everywhere else (including when the flags cannot be read, e.g.
  off Linux, and on MPS).

``torch.backends.cpu.get_cpu_capability()`` alone cannot decide: it reports
``"AVX512"`` for AVX-512 CPUs with or without the BF16 extension.  It is logged
beside the decision.

The hardware flags are not the whole story: torch and oneDNN can be told to use a
lower instruction set than the CPU has (``ATEN_CPU_CAPABILITY=avx2`` for ATen's
kernels, ``ONEDNN_MAX_CPU_ISA=AVX2`` or any ISA below ``AVX512_CORE_BF16`` for
oneDNN's convolutions), and then bf16 is emulated again.  :func:`cpu_bf16_disabled_by`
reads those two variables and ``"auto"`` picks float32 when either of them rules bf16
out.  This also emulates an AVX2-only machine on a bf16 one, e.g.
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/enhancement.py``
prints ``precision_auto: float32``.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch

logger = logging.getLogger(__name__)

__all__ = ["PRECISIONS", "Precision", "cpu_bf16_disabled_by", "cpu_has_native_bf16",
           "resolve_precision"]

Precision = Literal["float32", "bfloat16"]
#: Values accepted by :func:`resolve_precision`.
PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")
#: ``/proc/cpuinfo`` flags of x86 CPUs that compute in bf16 natively.
NATIVE_BF16_FLAGS: frozenset[str] = frozenset({"avx512_bf16", "amx_bf16"})
#: ``ONEDNN_MAX_CPU_ISA`` values that keep oneDNN below AVX-512 BF16 (its ISA names).
ONEDNN_ISAS_WITHOUT_BF16: frozenset[str] = frozenset({
    "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
})
#: ``ATEN_CPU_CAPABILITY`` values that keep ATen's kernels below AVX-512.
ATEN_CAPABILITIES_WITHOUT_BF16: frozenset[str] = frozenset({"default", "avx2", "zvector"})


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The ``flags`` of the first CPU in ``cpuinfo``; empty when unreadable."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU has AVX-512 BF16 or AMX (read from ``cpuinfo``)."""
    return bool(_cpu_flags(cpuinfo) & NATIVE_BF16_FLAGS)


def cpu_bf16_disabled_by(env: Mapping[str, str] | None = None) -> str | None:
    """The environment setting that keeps torch from computing in bf16 natively, if any.

    Parameters
    ----------
    env : mapping, optional
        Environment variables (default ``os.environ``).

    Returns
    -------
    str or None
        ``"ATEN_CPU_CAPABILITY=<value>"`` or ``"ONEDNN_MAX_CPU_ISA=<value>"`` when that
        variable limits torch (ATen) or oneDNN to an instruction set without bf16
        arithmetic (:data:`ATEN_CAPABILITIES_WITHOUT_BF16`,
        :data:`ONEDNN_ISAS_WITHOUT_BF16`); None when neither does.
    """
    env = os.environ if env is None else env
    aten = env.get("ATEN_CPU_CAPABILITY", "").strip()
    if aten.lower() in ATEN_CAPABILITIES_WITHOUT_BF16:
        return f"ATEN_CPU_CAPABILITY={aten}"
    isa = env.get("ONEDNN_MAX_CPU_ISA", env.get("DNNL_MAX_CPU_ISA", "")).strip()
    if isa.upper() in ONEDNN_ISAS_WITHOUT_BF16:
        return f"ONEDNN_MAX_CPU_ISA={isa}"
    return None


def resolve_precision(
    requested: str, device: str | torch.device | None = None
) -> Precision:
    """The precision to run in: ``requested`` itself, or the hardware's choice for ``"auto"``.

    Parameters
    ----------
    requested : {"auto", "float32", "bfloat16"}
        ``"float32"`` and ``"bfloat16"`` are returned unchanged (an explicit
        choice is honoured, even where bf16 is emulated and slow).
    device : str or torch.device, optional
        Where the model runs (default: ``cuda`` when available, else ``cpu``).

    Returns
    -------
    {"float32", "bfloat16"}

    Raises
    ------
    ValueError
        ``requested`` is not one of :data:`PRECISIONS`.
    """
    if requested not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r} "
            "(parameter enhancement.engine.precision)"
        )
    if requested != "auto":
        return requested  # type: ignore[return-value]
    dev = torch.device(device if device is not None else
                       ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda":
        native = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        why = f"GPU bf16 support: {native}"
    elif dev.type == "cpu":
        native = cpu_has_native_bf16()
        why = (f"CPU native bf16 (avx512_bf16/amx_bf16): {native}, torch CPU capability "
               f"{torch.backends.cpu.get_cpu_capability()}")
        limit = cpu_bf16_disabled_by()
        if native and limit is not None:
            native = False
            why += f", but {limit} rules bf16 arithmetic out"
    else:
        native, why = False, f"no bf16 autocast chosen for device type {dev.type!r}"
    chosen: Precision = "bfloat16" if native else "float32"
    logger.info("precision auto -> %s on %s (%s)", chosen, dev, why)
    return chosen
