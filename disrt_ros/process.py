"""The node's process: ROS start-up, spin, and a quiet end within seconds of a signal.

SIGINT (Ctrl-C) or SIGTERM (``kill``, ``ros2 launch``, systemd) at any moment — while the
modules import, while the model loads, during the warm-up (minutes with ``compile``), in
the middle of a predict, while frames stream — ends the process within ``STOP_WITHIN_S``
with exit code 0, no traceback and no false ERROR:

* While the console script imports torch and rclpy (seconds), a signal ends it at once
  (:func:`_quiet_while_importing`, run when :mod:`disrt_ros.node` imports this module
  first): nothing needs cleaning up yet.
* :func:`run` installs Python handlers for both signals before ``rclpy.init``; rclpy puts
  its own over them, which wake the executor and shut the ROS context down, then call
  these. The first signal raises ``KeyboardInterrupt`` in the main thread wherever it is
  (building the node, waiting for the warm-up, spinning); later ones are ignored, so the
  clean-up is never interrupted. Outputs finished after the context is gone are dropped
  quietly by the node (no "publisher's context is invalid" error).
* The clean-up asks every :class:`~disrt_ros.worker.BatchWorker` to stop, waits for them at
  most ``STOP_JOIN_S``, destroys the node (only if they ended: a thread still in a torch
  call may hold it) and shuts ROS down.
* :func:`end_process` then ends the process with ``os._exit`` after flushing the logs and
  the standard streams, skipping the interpreter's finalisation, for two measured reasons:
  (1) finalising the modules (torch, OpenCV, rclpy, ...) took 1.5-2.7 s on 2 shared cores,
  most of the 3 s; (2) with a worker thread still inside a long torch call (a compile, a
  slow predict), finalisation aborts: CPython before 3.14 ends a daemon thread that wants
  the GIL back during finalisation with ``pthread_exit``, whose forced unwinding through
  the ``noexcept`` C++ frames of the torch call that released the GIL (pybind11's
  ``gil_scoped_release`` destructor) calls ``std::terminate`` — "terminate called without an
  active exception", SIGABRT (found with a core dump of the node signalled during its
  warm-up). Waiting for such a call instead could take minutes.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

STOP_WITHIN_S = 3.0  # the promise (README): from the signal to the end of the process
STOP_JOIN_S = 1.0  # of it, the most spent waiting for the worker threads
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Signals:
    """Python-level handlers: the first signal raises KeyboardInterrupt, later ones are
    ignored (also once :meth:`quiet` was called, i.e. during the clean-up)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._quiet = False
        self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}

    def _handle(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum
        if not self._quiet:
            self._quiet = True
            raise KeyboardInterrupt

    def quiet(self) -> None:
        self._quiet = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run(make_node: Callable[[], object], args: list[str], prog: str,
        fatal: tuple[type[BaseException], ...] = ()) -> int:
    """Init rclpy with ``args``, build the node with ``make_node()`` and spin it until a
    signal or an external shutdown. Returns the exit code: 0; 2 for an exception of
    ``fatal``, printed as ``[prog] message``; 1 for any other, with its traceback. Ends the
    process itself (:func:`end_process`) if a worker thread is still busy after
    ``STOP_JOIN_S``."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from disrt_ros.worker import running

    signals = _Signals()
    node, code = None, 0
    try:
        rclpy.init(args=args)
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except fatal as error:
        print(f"[{prog}] {error}", file=sys.stderr)
        code = 2
    except Exception:  # a bug: shown, and not hidden by end_process's exit code
        traceback.print_exc()
        code = 1
    finally:
        signals.quiet()
        deadline = time.monotonic() + STOP_JOIN_S
        for worker in running():  # also those of a node interrupted while being built
            worker.stop(timeout=0.0)
        for worker in running():
            worker.stop(timeout=deadline - time.monotonic())
        stuck = bool(running())  # still in a torch call: see the module docstring
        if node is not None and not stuck:
            node.destroy_node()
        rclpy.try_shutdown()
        signals.restore()
        if stuck:
            end_process(code)
    return code


def end_process(code: int) -> NoReturn:
    """Flush the logs and the standard streams and end the process now with ``code``,
    without the interpreter's finalisation (module docstring)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a broken pipe: nothing more to write
            pass
    os._exit(code)


def _quiet_while_importing() -> None:
    """The console script spends seconds importing torch and rclpy before :func:`run`
    installs its handlers; a signal then ends it at once with exit code 0 instead of a
    KeyboardInterrupt traceback. Only for the console script (``disrt-bed-monitor`` or
    ``python -m disrt_ros.node``): importing this module elsewhere changes no handler."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    console = argv0.name == "disrt-bed-monitor" or argv0.parts[-2:] == ("disrt_ros", "node.py")
    if console and threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            signal.signal(sig, lambda signum, frame: os._exit(0))


_quiet_while_importing()
