"""Import astra-toolbox's CPU code on a machine without the CUDA 12 runtime.

The astra-toolbox 2.5.0 wheel links ``libcudart.so.12`` and ``libcufft.so.11``
(from the ``nvidia-cuda-runtime-cu12`` / ``nvidia-cufft-cu12`` wheels) even for its
CPU projectors.  Where those libraries are missing, :func:`import_astra` compiles
tiny stand-ins (every CUDA entry point returns an error, so ASTRA reports no GPU)
with the system C compiler into a cache folder, preloads them, and imports
``astra``.  Benchmark-only: nothing in ``src/`` uses ASTRA.
"""

from __future__ import annotations

import ctypes
import importlib.util
import subprocess
import tempfile
from pathlib import Path

_LIBS = {"libcudart.so.12": "cudart", "libcufft.so.11": "cufft"}


def _needed_symbols(libastra: Path) -> dict[str, list[str]]:
    out = subprocess.run(["nm", "-D", "--undefined-only", str(libastra)],
                         capture_output=True, text=True, check=True).stdout
    syms: dict[str, list[str]] = {lib: [] for lib in _LIBS}
    for line in out.splitlines():
        name = line.split()[-1]
        if "@" in name:
            sym, lib = name.split("@", 1)
            if lib in syms:
                syms[lib].append(sym)
    return syms


def _build_stub(lib: str, symbols: list[str], folder: Path) -> Path:
    src, ver, so = folder / f"{lib}.c", folder / f"{lib}.map", folder / lib
    body = ['static const char msg[] = "no CUDA (stub)";']
    for s in symbols:
        body.append(f"const char *{s}(void) {{ return msg; }}" if s == "cudaGetErrorString"
                    else f"long {s}(void) {{ return 100; }}")
    src.write_text("\n".join(body) + "\n")
    ver.write_text(f"{lib} {{ global: *; }};\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(src),
                    f"-Wl,--version-script={ver}", f"-Wl,-soname,{lib}"], check=True)
    return so


def import_astra():
    """``astra`` (CPU projectors usable), or raise ImportError with the reason."""
    try:
        import astra
        return astra
    except ImportError as exc:
        if "libcudart" not in str(exc) and "libcufft" not in str(exc):
            raise
    spec = importlib.util.find_spec("astra")
    if spec is None or spec.origin is None:
        raise ImportError("astra-toolbox is not installed (pip install '.[bench]')")
    libastra = Path(spec.origin).parent / "libastra.so.0"
    folder = Path(tempfile.gettempdir()) / "xrf_sr_astra_cuda_stubs"
    folder.mkdir(exist_ok=True)
    try:
        for lib, symbols in _needed_symbols(libastra).items():
            so = folder / lib
            if not so.exists():
                so = _build_stub(lib, symbols, folder)
            ctypes.CDLL(str(so), mode=ctypes.RTLD_GLOBAL)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ImportError(f"cannot stand in for ASTRA's CUDA libraries: {exc}") from exc
    import astra
    return astra
