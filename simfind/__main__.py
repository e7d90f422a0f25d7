"""The `simfind` command (console script) and `python -m simfind`.

The cyclic garbage collector is off while the command line starts: importing typer, click and simfind makes
tens of thousands of objects and no garbage, yet the collector ran through them again and again. What exists
once the command is parsed lives to the end, so it is frozen (never scanned again, not even by the collection
Python makes at exit) and collection is back on for the work itself: a re-index with nothing to do is mostly
start-up, and the collector was a good part of it. Only the command does this; importing simfind as a library
changes nothing.
"""

import gc
import sys

gc.disable()

from . import interrupts  # noqa: E402


def _interrupted() -> None:
    """A Ctrl-C before the command line is parsed (cli.py answers the ones after)."""
    interrupts.ignore()
    sys.stderr.write("simfind: interrupted\n")
    sys.exit(130)


interrupts.install()  # before the slow imports: a Ctrl-C during them is one line too
try:
    from .cli import main as _cli_main
except KeyboardInterrupt:
    _interrupted()


def main() -> None:
    gc.freeze()
    gc.enable()
    try:
        _cli_main()
    except KeyboardInterrupt:
        _interrupted()
    finally:
        interrupts.ignore()  # only the exit is left: its handlers (which stop worker processes) run uninterrupted
        gc.freeze()


if __name__ == "__main__":
    main()
