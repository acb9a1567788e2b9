"""Atomic file writes: a crash never leaves a half-written file in place.

The temporary file is written beside the target (``.<name>.<pid>.<random>.tmp``)
and renamed over it.  It gets the permissions a plain ``open()`` would give
(``0o666`` minus the umask), so the group, or an ``mlflow ui`` service run as
another user, can read what the project writes.  A save killed hard (SIGKILL, power
loss) leaves its temporary file behind; the next save of the same target removes
such leftovers whose process is gone.  The streamed steps' scratch folders
(:func:`scratch_folder`) are cleaned up the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

_FILE_MODE = 0o666


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no read-only query elsewhere: set and restore
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists on this host (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _left_by_dead_process(pid_text: str) -> bool:
    """True for a pid taken from a leftover's name whose process is gone on this host."""
    return pid_text.isdigit() and not pid_alive(int(pid_text))


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Delete ``.<name>.<pid>.*.tmp`` files beside ``target`` whose process is gone.

    Returns the removed paths.  Files of a live process (a concurrent save) and
    files not named by this module are left alone.
    """
    target = Path(target)
    removed = []
    for tmp in target.parent.glob(f".{target.name}.*.tmp"):
        pid_text = tmp.name[len(target.name) + 2 :].split(".", 1)[0]
        if not _left_by_dead_process(pid_text):
            continue
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    if removed:
        logger.info("Removed %d temporary file(s) left by an interrupted save of %s",
                    len(removed), target)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    Write the file to the yielded path.  If the block raises, the temporary file is
    removed and any existing file at ``path`` is left untouched.  The rename is
    atomic on POSIX file systems because both paths share a directory.  The final
    file has mode ``0o666 & ~umask`` (as ``open()`` would create it).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # a writer may have replaced the file: set the mode last
            os.chmod(tmp_path, _FILE_MODE & ~current_umask())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _host_tag() -> str:
    """This host's name, reduced to characters safe in a file name."""
    return "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname()) or "host"


def scratch_folder(kind: str, parent: str | os.PathLike | None = None) -> Path:
    """A new scratch folder ``xrf_sr_<kind>_<host>_<pid>_*`` in ``parent`` (default: the
    system's temporary folder), after removing the ``<kind>`` folders this host's
    processes that are gone (killed outright: SIGKILL, out of memory) left there.

    A failed or interrupted step removes its own folder; this is the net for a process
    that could not.  Folders of live processes, of other hosts (a shared file system
    on a cluster) and not named by this function are left alone.
    """
    if not kind.isidentifier():
        raise ValueError(f"kind must be a plain name, got {kind!r}")
    base = Path(tempfile.gettempdir() if parent is None else parent)
    base.mkdir(parents=True, exist_ok=True)
    prefix = f"xrf_sr_{kind}_{_host_tag()}_"
    removed = 0
    for old in base.glob(f"{prefix}*"):
        pid_text = old.name[len(prefix):].split("_", 1)[0]
        if old.is_dir() and _left_by_dead_process(pid_text):
            shutil.rmtree(old, ignore_errors=True)
            removed += 1
    if removed:
        logger.info("Removed %d scratch folder(s) %s* left in %s by killed runs", removed, prefix, base)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}_", dir=base))
