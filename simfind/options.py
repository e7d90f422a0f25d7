"""The choices simfind's options take: one list each, which the library checks and the CLI offers."""

from __future__ import annotations

from .errors import UsageError

BY = ("auto", "exact", "hash", "clip")  # evidence for `dupes --by`
ACTIONS = ("move", "hardlink", "symlink", "delete")  # `dupes --action`
KEEP_RULES = ("pixels", "newest", "oldest", "largest", "smallest", "shortest-path")  # `dupes --keep` (or a glob)
PRECISIONS = ("auto", "fp32", "bf16")  # CLIP arithmetic
DEVICES = ("auto", "cpu", "cuda", "mps")  # where CLIP runs
FORMATS = ("table", "json", "csv", "html")  # `dupes` and `query` output
INFO_FORMATS = ("table", "json")


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"{option} must be one of {', '.join(choices)}, not {value!r}")
    return value


def check_action(action: str | None, to: str | None) -> None:
    """`--action` is one of ACTIONS, and `--to` goes with `move` and only with it."""
    if action is not None:
        check_choice("--action", action, ACTIONS)
    if (action == "move") != (to is not None):
        raise UsageError("--action move needs --to DIR" if action == "move" else "--to is only for --action move")
