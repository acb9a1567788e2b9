"""Project command line: ``kedro run`` that reports a bad input in one clear line.

Kedro loads ``<package>.cli.cli`` and lets its commands override the built-in ones.
This ``run`` is Kedro's own (same options) with three changes:

* run from a subdirectory of the project, it first changes to the project root,
  so the catalog's relative paths (``data/...``, ``../shared/...``) mean what they
  mean from the root;
* a known bad-input error (the project's validation errors: a malformed or
  missing file, a refused overwrite, a bad parameter) prints one line naming the
  node or dataset and the problem, and writes the full traceback to
  ``logs/last_error.log``; ``--verbose`` raises it with the traceback as before;
* any other error (a bug) keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import traceback
import warnings
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as _kedro_run
from kedro.utils import find_kedro_project

logger = logging.getLogger(__name__)

#: Where the full traceback of the last refused run goes (relative to the project root).
ERROR_LOG = Path("logs") / "last_error.log"

_PACKAGE_DIR = Path(__file__).resolve().parent
_INPUT_ERRORS = (ValueError, OSError, KeyError)


@click.group(name="xrf_sr_kedro")
def cli() -> None:
    """Project commands (``run`` replaces Kedro's)."""


def _raised_in_project(exc: BaseException) -> bool:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and Path(last).resolve().is_relative_to(_PACKAGE_DIR)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def bad_input_cause(exc: BaseException) -> BaseException | None:
    """The project's own validation error in ``exc``'s chain, or None (a bug).

    Counted: ``ValueError``/``OSError``/``KeyError`` raised by the project's code
    (``DataFormatError``, ``FileNotFoundError``, ``ProtectedDataError``...), and
    pydantic's parameter validation errors.
    """
    for e in reversed(_chain(exc)):  # innermost first
        if type(e).__name__ == "ValidationError" and type(e).__module__.startswith("pydantic"):
            return e
        if isinstance(e, _INPUT_ERRORS) and _raised_in_project(e):
            return e
    return None


def one_line(exc: BaseException, cause: BaseException) -> str:
    """``<node or dataset>: <the validation message>`` on one line."""
    from xrf_sr_kedro.guards import ERROR_CONTEXT

    where = []
    if ERROR_CONTEXT.get("dataset"):
        where.append(f"{ERROR_CONTEXT['action']} dataset '{ERROR_CONTEXT['dataset']}'")
    if ERROR_CONTEXT.get("node"):
        where.append(f"node '{ERROR_CONTEXT['node']}'")
    message = " ".join(str(cause).split()) or type(cause).__name__
    if type(cause).__name__ == "ValidationError":
        message = " ".join(str(exc).split())  # Kedro's wrapper names the parameter
    prefix = (", ".join(where) + ": ") if where else ""
    return prefix + message


def _write_error_log(root: Path, exc: BaseException) -> Path:
    path = root / ERROR_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    return path


def _run(verbose: bool, **kwargs: Any) -> Any:
    root = find_kedro_project(Path.cwd())
    if root is not None and Path.cwd().resolve() != Path(root).resolve():
        logger.info("Running from the project root %s (was %s)", root, Path.cwd())
        os.chdir(root)
    root = Path(root) if root is not None else Path.cwd()
    # every page of the docs says `--pipeline`; its deprecation notice only buries errors
    warnings.filterwarnings("ignore", message=r"Option '--pipeline' is deprecated")
    try:
        return _kedro_run.callback(**kwargs)
    except click.ClickException:
        raise
    except Exception as exc:
        cause = None if verbose else bad_input_cause(exc)
        if cause is None:
            raise
        log = _write_error_log(root, exc)
        raise click.ClickException(
            f"{one_line(exc, cause)}\n(full traceback: {log}; rerun with --verbose to print it)"
        ) from None


run = click.Command(
    name="run",
    params=[
        *_kedro_run.params,
        click.Option(["--verbose", "-v"], is_flag=True,
                     help="On a bad-input error, print the full traceback too."),
    ],
    callback=_run,
    help=_kedro_run.help,
    short_help=_kedro_run.short_help,
)
cli.add_command(run)
