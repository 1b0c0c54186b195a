"""pytest start-up for the whole repository.

Doctests in ``lstm_utils/``, unit tests in ``tests/`` and the notebook tests share it:

- TensorFlow is imported once, quietly (no C++ start-up lines in the test output), in each
  process that runs tests (not in pytest-xdist's controller, which only hands them out).
- Jupyter kernels started by the tests (nbval, papermill) talk to the test process over
  Unix sockets instead of TCP. Two pytest workers start kernels side by side, and a TCP
  port that jupyter_client has picked for one kernel can be taken by another process
  before the kernel binds it (jupyter_client issue 487); the kernel then dies at
  start-up ("Kernel died before replying to kernel_info"). Sockets in a private folder
  cannot collide.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from typing import Any

import nbval.kernel
import pytest
from jupyter_client import AsyncKernelManager, KernelManager
from traitlets import default

import lstm_utils

_SOCKET_FOLDER = tempfile.mkdtemp(prefix="lstm-book-kernels-")
atexit.register(shutil.rmtree, _SOCKET_FOLDER, ignore_errors=True)


def _unix_socket_kernel(manager: type) -> type:
    """A subclass of a jupyter_client kernel manager whose kernels listen on Unix sockets."""

    class UnixSocketKernel(manager):  # type: ignore[misc]
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            return os.path.join(_SOCKET_FOLDER, uuid.uuid4().hex[:12])

    UnixSocketKernel.__name__ = UnixSocketKernel.__qualname__ = f"UnixSocket{manager.__name__}"
    return UnixSocketKernel


UnixSocketKernelManager = _unix_socket_kernel(KernelManager)  # nbval's
UnixSocketAsyncKernelManager = _unix_socket_kernel(AsyncKernelManager)  # papermill's, via nbclient

nbval.kernel.KernelManager = UnixSocketKernelManager


@pytest.fixture
def kernel_manager_class() -> type:
    """Pass as ``kernel_manager_class=`` to ``papermill.execute_notebook``."""
    return UnixSocketAsyncKernelManager


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--parameter-grid",
        action="store_true",
        help="also run the tests marked parameter_grid: every chapter over its parameter grid (make test-parameters)",
    )
    parser.addoption(
        "--slow",
        action="store_true",
        help="also run the tests marked slow: fresh processes per backend or device set-up (make test-slow)",
    )


# Each marker's tests are deselected unless pytest is given its option.
_OPT_IN_MARKERS = {"parameter_grid": "--parameter-grid", "slow": "--slow"}


def _runs_tests(config: pytest.Config) -> bool:
    """False in pytest-xdist's controller (``-n N``), which hands tests to its workers and runs none."""
    return bool(os.environ.get("PYTEST_XDIST_WORKER")) or not config.getoption("numprocesses", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "parameter_grid: a chapter run of the parameter grid (make test-parameters)")
    config.addinivalue_line(
        "markers",
        "slow: starts fresh Python processes (other backends, logical devices, a clean stderr) to check what"
        " a chapter's cells also assert; make test-slow",
    )
    if _runs_tests(config):
        # Before any test module imports TensorFlow; the controller would spend seconds of a core on it.
        lstm_utils.quiet_tensorflow()


# Both check the book built once from the stored outputs (tests/conftest.py's built_book).
_BOOK_SITE_MODULES = ("tests/test_book.py", "tests/test_browser.py")


def _is_chapter_run(nodeid: str) -> bool:
    """A whole chapter executed by papermill (slow, independent of everything else)."""
    return "::test_chapter_runs_" in nodeid


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Chapter runs first, so no worker is left with one at the end; deselect the parameter grid
    unless --parameter-grid is given (make test-parameters) and the slow tests unless --slow
    (make test-slow)."""
    items.sort(key=lambda item: not _is_chapter_run(item.nodeid))  # stable: the rest keeps its order
    left_out = {marker for marker, option in _OPT_IN_MARKERS.items() if not config.getoption(option)}
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        opted_out = any(item.get_closest_marker(marker) for marker in left_out)
        (deselected if opted_out else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``--dist loadscope`` (``make test``, ``make test-slow``, ``make test-latest``): each
    papermill chapter run (test-latest runs the low corners) is a unit of its own;
    the book and browser tests share one worker, so the book is built once for both; everything
    else is grouped as pytest-xdist groups it (a module's tests together, so its module-scoped
    fixtures run once; a notebook's nbval cells together, in order, in one kernel).

    pytest-xdist's own loadscope would send all of a module's chapter runs, a dozen of up to
    half a minute each, to one worker while the other idles.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class NotebookScopeScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if _is_chapter_run(nodeid):
                return nodeid
            if nodeid.startswith(_BOOK_SITE_MODULES):
                return "the built book"  # one worker builds it once (the session fixture built_book)
            return str(super()._split_scope(nodeid))

    return NotebookScopeScheduling(config, log)
