"""The `simfind` command (console script) and `python -m simfind`.

The cyclic garbage collector is off while the command line starts: importing typer, click and simfind makes
tens of thousands of objects and no garbage, yet the collector ran through them again and again. What exists
once the command is parsed lives to the end, so it is frozen (never scanned again, not even by the collection
Python makes at exit) and collection is back on for the work itself: a re-index with nothing to do is mostly
start-up, and the collector was a good part of it. Only the command does this; importing simfind as a library
changes nothing.
"""

import gc

gc.disable()

from .cli import main as _cli_main  # noqa: E402


def main() -> None:
    gc.freeze()
    gc.enable()
    try:
        _cli_main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
