"""Progress of long work in any output: a bar on a terminal, log lines in a file.

One helper for every loop a person waits for.  When standard error is a terminal
the loop shows a tqdm bar; otherwise (``kedro run > run.log 2>&1``, a batch job,
a Dask worker) it logs a line such as::

    reconstruct slabs: 3/12 (25 %), 0:01:10 elapsed, about 4 min left

at most every ``log_every_s`` seconds, plus one line at the start and one at the
end, so a redirected log shows how far the work is and when it will end.

Example
-------
>>> for slab in progress(slabs, desc="reconstruct slabs", unit="slab"):
...     work(slab)
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

__all__ = [
    "Progress", "progress", "format_time_left", "default_log_every_s", "DEFAULT_LOG_EVERY_S",
    "LOG_EVERY_ENV", "log_lines_only",
]

T = TypeVar("T")

DEFAULT_LOG_EVERY_S = 30.0

#: Environment variable that overrides :data:`DEFAULT_LOG_EVERY_S` (seconds) for every
#: loop that does not pass ``log_every_s``: ``XRF_SR_PROGRESS_EVERY_S=300 kedro run``
#: for sparser logs of long runs, ``0`` for a line after every item.
LOG_EVERY_ENV = "XRF_SR_PROGRESS_EVERY_S"


def default_log_every_s() -> float:
    """Seconds between progress log lines: ``$XRF_SR_PROGRESS_EVERY_S`` or 30."""
    raw = os.environ.get(LOG_EVERY_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_LOG_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"environment variable {LOG_EVERY_ENV}={raw!r} must be a number of seconds"
        ) from None
    if not value >= 0:
        raise ValueError(f"environment variable {LOG_EVERY_ENV}={raw!r} must be >= 0 seconds")
    return value


def format_time_left(seconds: float) -> str:
    """Round a remaining time for people: ``"about 40 s"``, ``"about 4 min"``, ``"about 2.5 h"``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "unknown"
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


#: Set by :func:`log_lines_only` in processes whose output is not a person's
#: terminal even when their standard error is one (Dask workers).
_LOG_LINES_ONLY = False


def log_lines_only(flag: bool = True) -> None:
    """Make every :class:`Progress` of this process log lines instead of drawing a bar.

    For worker processes (:func:`xrf_sr_kedro.parallel.forward_worker_logs` calls
    it on every Dask worker): they share the driver's terminal, where several
    bars would overwrite each other, and their log records are forwarded to the
    driver's log, where the lines belong.
    """
    global _LOG_LINES_ONLY
    _LOG_LINES_ONLY = bool(flag)


def _stderr_is_tty() -> bool:
    if _LOG_LINES_ONLY:
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Count finished items of a known total and report them with the time left.

    Parameters
    ----------
    total : int
        Items to do (slabs, epochs, tiles).
    desc : str
        What is being done; starts every log line.
    unit : str
        Name of one item, for the bar.
    log_every_s : float, optional
        Shortest interval between two log lines when not on a terminal, seconds;
        default :func:`default_log_every_s`.
    enabled : bool
        ``False`` reports nothing (tests, nested loops).
    bar : bool, optional
        Force the bar (``True``) or the log lines (``False``); default: bar when
        standard error is a terminal.
    clock : callable, optional
        Seconds since an arbitrary origin (default ``time.monotonic``); for tests.
    log : logging.Logger, optional
        Where the lines go (default this module's logger).
    quiet : bool
        For inner loops (iterations of one slab, batches of one epoch): no start
        line, and the final line only when the loop ran at least ``log_every_s``,
        so short inner loops add nothing to the log and long ones still report.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "item",
        log_every_s: float | None = None,
        enabled: bool = True,
        bar: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
        quiet: bool = False,
    ) -> None:
        if int(total) != total or total < 0:
            raise ValueError(f"total must be a non-negative integer, got {total!r}")
        if log_every_s is None:
            log_every_s = default_log_every_s()
        if not log_every_s >= 0:
            raise ValueError(f"log_every_s must be >= 0 seconds, got {log_every_s!r}")
        self.total = int(total)
        self.desc = desc
        self.n = 0
        self._clock = clock
        self._log = log or logger
        self._every = float(log_every_s)
        self._enabled = bool(enabled)
        self._quiet = bool(quiet)
        self._t0 = clock()
        self._last = self._t0
        use_bar = _stderr_is_tty() if bar is None else bool(bar)
        self._bar = (
            tqdm(total=self.total, desc=desc, unit=unit, leave=False)
            if self._enabled and use_bar
            else None
        )
        if self._enabled and self._bar is None and not self._quiet:
            self._log.info("%s: 0/%d started", desc, self.total)

    def time_left_s(self) -> float:
        """Remaining seconds at the mean rate so far (``inf`` before the first item)."""
        if self.n == 0:
            return math.inf
        elapsed = self._clock() - self._t0
        return elapsed / self.n * (self.total - self.n)

    def line(self) -> str:
        """The log line for the current state."""
        pct = 100.0 * self.n / self.total if self.total else 100.0
        elapsed = self._clock() - self._t0
        left = "done" if self.n >= self.total else f"{format_time_left(self.time_left_s())} left"
        return f"{self.desc}: {self.n}/{self.total} ({pct:.0f} %), {_hms(elapsed)} elapsed, {left}"

    def update(self, n: int = 1) -> None:
        """Record ``n`` more finished items."""
        self.n += int(n)
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self._clock()
        if now - self._last >= self._every and self.n < self.total:
            self._last = now
            self._log.info("%s", self.line())

    def close(self) -> None:
        """Close the bar, or log the final line."""
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif not self._quiet or self._clock() - self._t0 >= self._every:
            self._log.info("%s", self.line())
        self._enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(
    iterable: Iterable[T],
    desc: str,
    total: int | None = None,
    unit: str = "item",
    log_every_s: float | None = None,
    enabled: bool = True,
    **kwargs: Any,
) -> Iterator[T]:
    """Yield the items of ``iterable`` while reporting progress (see :class:`Progress`).

    ``total`` defaults to ``len(iterable)``.  Further keyword arguments go to
    :class:`Progress` (``bar``, ``clock``, ``log``).
    """
    if total is None:
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, desc, unit=unit, log_every_s=log_every_s, enabled=enabled, **kwargs) as p:
        for item in iterable:
            yield item
            p.update()
