"""Ctrl-C and SIGTERM: one clean stop, whenever they come.

A terminal's Ctrl-C goes to every process of the foreground job: the command and its worker processes alike.
The command turns the first signal into KeyboardInterrupt (which the library turns into what it kept) and
ignores the ones after it, so that a second Ctrl-C, or the signal `timeout` sends to the command and then to
its whole group, cannot break the clean-up and the exit the first one began. Workers never see the signal:
they start with it blocked, and the command stops them itself.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


_stopping = False


def _stop(signum, frame) -> None:
    global _stopping
    _stopping = True
    ignore()
    # The worker pool's own threads can fail while the stop tears the pool down (a worker gone mid-message): what
    # they would print is a traceback about the stop the user asked for, never an error of the run.
    threading.excepthook = _quiet
    raise KeyboardInterrupt


def _quiet(args) -> None:
    """threading.excepthook once the command is stopping: a background thread's failure is not shown."""


def stopping() -> bool:
    return _stopping


def check() -> None:
    """Raise KeyboardInterrupt if the command was signalled and is still going: Python drops an exception raised
    in a weakref callback or a __del__ (importlib runs one per module lock), and the signal with it."""
    if _stopping:
        raise KeyboardInterrupt


def install() -> None:
    """For the command only (never the library): SIGINT and SIGTERM stop it once. A signal the command was
    started with ignored (a job run with nohup, or in the background of a script) stays ignored."""
    for sig in SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _stop)


def finished() -> None:
    """The command's outcome is decided (a summary or an error line comes next): from here it is not
    interrupted. Only where install() ran: a library caller's (or a test's) handlers are left alone."""
    if all(signal.getsignal(sig) in (_stop, signal.SIG_IGN) for sig in SIGNALS):
        ignore()


def ignore() -> None:
    """From here to the exit no signal interrupts: the outcome is decided and only the exit is left (the
    interpreter's exit handlers, which stop worker processes, print 'Exception ignored' when interrupted)."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done, then act on them: a catalog commit and the count of
    what it kept happen together or not at all, so that "N files kept" is what the catalog holds."""
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in SIGNALS}
    held = [sig for sig, handler in saved.items() if callable(handler)]  # SIG_IGN stays; SIG_DFL is not ours
    caught: list[int] = []
    for sig in held:
        signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig in held:
            signal.signal(sig, saved[sig])
    if caught:
        saved[caught[0]](caught[0], None)  # what the signal would have done: raise KeyboardInterrupt


def block_signals() -> None:
    """SIGINT and SIGTERM blocked in this process from here on (a worker's, whatever it was started with)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


@contextmanager
def blocked() -> Iterator[None]:
    """Processes (and threads) started in this block inherit SIGINT and SIGTERM blocked, and keep them so:
    worker processes that would print a traceback each when Ctrl-C reaches them. This thread gets a signal
    that came meanwhile when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks (nor process groups to signal)
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
