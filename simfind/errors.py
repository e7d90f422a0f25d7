"""The errors simfind's library raises. Only the CLI turns them into messages and exit codes."""

from __future__ import annotations


class SimfindError(Exception):
    """A failure the user must fix; the message is one line that names the fix."""

    exit_code = 3


class UsageError(SimfindError):
    """A bad argument: a missing folder, an out-of-range value, an unknown format."""

    exit_code = 2


class IndexMissing(SimfindError):
    """No index where one was expected."""


class IndexUnreadable(SimfindError):
    """The index exists but cannot be read (corrupt, newer schema, locked for too long)."""


class IndexDamaged(IndexUnreadable):
    """The catalog file is damaged (SQLite finds it malformed, or it is empty); `index --rebuild` sets it aside."""


class IndexReadOnly(SimfindError):
    """A command that writes the index was given one it cannot write."""


class ModelUnavailable(SimfindError):
    """The CLIP model's weights cannot be had (offline, not cached, folder missing)."""


class SchedulerUnreachable(SimfindError):
    """The Dask scheduler given by --scheduler does not answer."""


class ClusterMismatch(SimfindError):
    """The cluster's workers do not all hold the same CLIP model (spec and weights)."""


class Interrupted(SimfindError):
    """Ctrl-C during indexing. What finished is committed."""

    exit_code = 130
