"""Which file of a duplicate group to keep: a sort key whose minimum is the keeper."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from .errors import UsageError
from .options import KEEP_RULES
from .records import IndexedFile

KeeperKey = Callable[[IndexedFile], Any]


def default_key(f: IndexedFile):
    """Largest picture (pixels inside any letterbox bars or frame), then largest file, then oldest, then path
    (deterministic)."""
    return (-f.picture_pixels, -f.size, f.mtime_ns, f.path)


_RULES: dict[str, KeeperKey] = {
    "pixels": default_key,
    "newest": lambda f: (-f.mtime_ns, default_key(f)),
    "oldest": lambda f: (f.mtime_ns, default_key(f)),
    "largest": lambda f: (-f.size, default_key(f)),
    "smallest": lambda f: (f.size, default_key(f)),
    "shortest-path": lambda f: (len(f.path), default_key(f)),
}
assert set(_RULES) == set(KEEP_RULES)


def keeper_rule(rule: str | None) -> KeeperKey:
    """The key for `--keep RULE`: one of KEEP_RULES, or a glob (files whose path matches it are preferred; ties
    and groups without a match fall back to the default rule). None is the default rule."""
    if rule is None:
        return default_key
    if rule in _RULES:
        return _RULES[rule]
    if not any(c in rule for c in "*?[/"):
        raise UsageError(f"--keep must be one of {', '.join(KEEP_RULES)} or a path glob (like '*/originals/*'), not {rule!r}")
    return lambda f: (not fnmatch.fnmatch(f.path, rule), default_key(f))
