"""Acting on duplicate groups: move, hardlink, symlink or delete every file but the keeper, safely.

Safety rules, each checked at the moment of acting (not when the report was made):
- a file that changed since it was indexed (size, mtime or content hash) is skipped and reported, never touched;
- nothing in a group is touched unless its keeper still exists unchanged: the last copy of a picture is never
  acted on. Links replace only byte copies of the keeper (a link to other bytes would lose the file's own);
- `move` keeps each file's folder structure under the destination and never overwrites;
- every act is appended to a JSON-lines log (flushed and fsync'ed per line) that `undo` reverses: moves go back,
  links become copies of the keeper's bytes again (identical to what was there). Deletes cannot be undone.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence

from .errors import Interrupted, SimfindError, UsageError
from .grouping import is_under
from .hashing import content_hash
from .options import check_action
from .records import ActionReport, ActionStep, Group, IndexedFile

_TMP_SUFFIX = ".simfind-tmp"


def changed(f: IndexedFile) -> str | None:
    """Why `f` no longer is the file the index describes, or None when it still is (size, mtime and bytes)."""
    try:
        st = os.lstat(f.path)
    except FileNotFoundError:
        return "gone since it was indexed"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not os.path.isfile(f.path) or os.path.islink(f.path):
        return "no longer a regular file"
    if st.st_size != f.size or st.st_mtime_ns != f.mtime_ns:
        return "changed since it was indexed (size or modification time); run `simfind index` again"
    try:
        with open(f.path, "rb") as fh:
            digest = content_hash(fh.read())
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if digest != f.content_hash:
        return "changed since it was indexed (content); run `simfind index` again"
    return None


def act(groups: Sequence[Group], action: str, *, to: str | None = None, dry_run: bool = False,
        log: str | None = None, on_step: Callable[[ActionStep], None] = lambda s: None) -> ActionReport:
    """Apply `action` to every file of each group except its keeper (members[0])."""
    check_action(action, to)
    if not dry_run and not log:
        raise UsageError("acting needs a log to undo from: pass --log FILE")
    base = _common_base(groups)
    to_root = os.path.abspath(to) if action == "move" else None
    where = {"to_root": to_root, "to_root_made": not os.path.exists(to_root)} if to_root else {}
    steps: list[ActionStep] = []
    logfh = None if dry_run else _open_log(log)
    try:
        for group in groups:
            keep = group.keep
            why = changed(keep)
            for member in group.members[1:]:
                f = member.file
                target = os.path.join(to_root, os.path.relpath(f.path, base)) if to_root else None
                step = ActionStep(action, f.path, keep.path, "planned", target)
                if why is not None:
                    step = _skip(step, f"its keeper {keep.path} is {why}: nothing in this group was touched")
                else:
                    step = _check(step, f, keep)
                if step.status == "planned" and not dry_run:
                    step = _do(step, f, keep, logfh, where)
                steps.append(step)
                on_step(step)
    except KeyboardInterrupt:
        if dry_run:
            raise Interrupted("interrupted: nothing was changed (a dry run)") from None
        total = sum(len(g.members) - 1 for g in groups)
        done = sum(s.status == "done" for s in steps)
        raise Interrupted(f"interrupted: {done} of {total} files were acted on ({action}), each recorded in the log "
                          f"{log}; `simfind undo {log}` reverses moves and links") from None
    finally:
        if logfh is not None:
            logfh.close()
    return ActionReport(tuple(steps), dry_run, log)


def _skip(step: ActionStep, reason: str) -> ActionStep:
    return ActionStep(step.action, step.path, step.keep, "skipped", step.target, reason)


def _check(step: ActionStep, f: IndexedFile, keep: IndexedFile) -> ActionStep:
    why = changed(f)
    if why is not None:
        return _skip(step, why)
    if os.path.samefile(f.path, keep.path):
        return _skip(step, "already the same file as its keeper (a hard link)")
    if step.action in ("hardlink", "symlink") and f.content_hash != keep.content_hash:
        return _skip(step, "not a byte copy of its keeper: a link would lose its own bytes (use move or delete)")
    if step.action == "move" and os.path.lexists(step.target):
        return _skip(step, f"{step.target} already exists (move never overwrites)")
    return step


def _do(step: ActionStep, f: IndexedFile, keep: IndexedFile, logfh, where: dict) -> ActionStep:
    try:
        if step.action == "move":
            os.makedirs(os.path.dirname(step.target), exist_ok=True)
            _move(f.path, step.target)
        elif step.action == "delete":
            os.unlink(f.path)
        else:
            _replace_with_link(f.path, keep.path, hard=step.action == "hardlink")
    except OSError as e:
        hint = "; the keeper is on another file system: use symlink" if e.errno == errno.EXDEV else ""
        return ActionStep(step.action, step.path, step.keep, "failed", step.target, f"{e.strerror or e}{hint}")
    record = {"action": step.action, "path": f.path, "keep": keep.path, "to": step.target, "size": f.size,
              "mtime_ns": f.mtime_ns, "content_hash": f.content_hash.hex(), "time": time.time(), **where}
    logfh.write(json.dumps(record) + "\n")
    logfh.flush()
    os.fsync(logfh.fileno())
    return ActionStep(step.action, step.path, step.keep, "done", step.target)


def _move(src: str, dst: str) -> None:
    """Rename without ever overwriting; across file systems, copy (with times) then remove."""
    try:
        os.link(src, dst)  # fails if dst exists: an atomic no-overwrite rename on one file system
        os.unlink(src)
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "destination exists", dst) from None
        shutil.copy2(src, dst)
        os.unlink(src)


def _replace_with_link(path: str, keep: str, *, hard: bool) -> None:
    tmp = path + _TMP_SUFFIX
    if os.path.lexists(tmp):
        os.unlink(tmp)
    if hard:
        os.link(keep, tmp)
    else:
        os.symlink(os.path.abspath(keep), tmp)
    os.replace(tmp, path)  # atomic: the path always holds either the file or the link


def _open_log(path: str):
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return open(path, "a", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write the log {path}: {e.strerror or e}; pass --log FILE in a folder you can write"
                         ) from None


def _common_base(groups: Iterable[Group]) -> str:
    dirs = {os.path.dirname(m.file.path) for g in groups for m in g.members}
    return os.path.commonpath(sorted(dirs)) if dirs else os.sep


# -- undo -----------------------------------------------------------------------------------------------------


def undo(log: str, *, dry_run: bool = False, on_step: Callable[[ActionStep], None] = lambda s: None) -> ActionReport:
    """Reverse the moves and links recorded in `log`, newest first. Files that changed since are left alone."""
    try:
        with open(log, encoding="utf-8") as fh:
            lines = [line for line in fh if line.strip()]
    except OSError as e:
        raise UsageError(f"cannot read the log {log}: {e.strerror or e}") from None
    try:
        records = [json.loads(line) for line in lines]
    except json.JSONDecodeError as e:
        raise SimfindError(f"{log} is not a simfind action log (line {e.lineno}: {e.msg})") from None
    steps = []
    try:
        for r in reversed(records):
            step = _undo_one(r, dry_run)
            steps.append(step)
            on_step(step)
    except KeyboardInterrupt:
        done = sum(s.status == "done" for s in steps)
        raise Interrupted(f"interrupted: {done} of {len(records)} files restored; `simfind undo {log}` again restores "
                          "the rest (what is back is recognised)") from None
    if not dry_run:
        _remove_emptied_folders([r for r, s in zip(reversed(records), steps) if s.status in ("done", "already")])
    return ActionReport(tuple(steps), dry_run, log)


def _remove_emptied_folders(records: Iterable[dict]) -> None:
    """The folders a move made under its --to, now empty again, go; --to itself too when the move made it.
    Logs written before `to_root` was recorded leave them."""
    roots = {}
    for r in records:
        root = r.get("to_root")
        if r.get("action") != "move" or not root or not r.get("to"):
            continue
        roots[root] = roots.get(root, False) or bool(r.get("to_root_made"))
        folder = os.path.dirname(r["to"])
        while folder != root and is_under(folder, root):
            try:
                os.rmdir(folder)  # only an empty folder: a file someone put there since keeps its folder
            except OSError:
                break
            folder = os.path.dirname(folder)
    for root, made in roots.items():
        if made:
            try:
                os.rmdir(root)
            except OSError:
                pass


def _undo_one(r: dict, dry_run: bool) -> ActionStep:
    action, path, keep = r.get("action"), r.get("path"), r.get("keep")
    step = ActionStep(f"undo {action}", path, keep, "planned", r.get("to"))
    if action == "delete":
        return _skip(step, "a delete cannot be undone")
    if os.path.lexists(path) and action == "move":
        if not os.path.lexists(r.get("to") or "") and not os.path.islink(path) and _same_bytes(path, r):
            return _already(step)
        return _skip(step, "something is at the original path again; left alone")
    try:
        if action == "move":
            src = r["to"]
            if not _same_bytes(src, r):
                return _skip(step, f"{src} is gone or changed since it was moved; left alone")
            if not dry_run:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                _move(src, path)
        elif action in ("hardlink", "symlink"):
            if not _is_link_to(path, keep, hard=action == "hardlink"):
                if os.path.isfile(path) and not os.path.islink(path) and _same_bytes(path, r):
                    return _already(step)  # a file of its own again, with the bytes it had
                return _skip(step, "no longer the link simfind made; left alone")
            if not _same_bytes(keep, r):
                return _skip(step, f"its keeper {keep} changed; the original bytes cannot be restored from it")
            if not dry_run:
                tmp = path + _TMP_SUFFIX
                if os.path.lexists(tmp):
                    os.unlink(tmp)
                shutil.copyfile(keep, tmp)
                os.utime(tmp, ns=(r["mtime_ns"], r["mtime_ns"]))
                os.replace(tmp, path)
        else:
            return _skip(step, f"unknown action {action!r} in the log")
    except (OSError, KeyError) as e:
        return ActionStep(step.action, path, keep, "failed", step.target, str(getattr(e, "strerror", None) or e))
    return ActionStep(step.action, path, keep, "planned" if dry_run else "done", step.target)


def _already(step: ActionStep) -> ActionStep:
    """The file is back as it was: this log (or this part of it) was undone before."""
    return ActionStep(step.action, step.path, step.keep, "already", step.target, "restored already")


def _same_bytes(path: str, r: dict) -> bool:
    try:
        with open(path, "rb") as fh:
            return content_hash(fh.read()).hex() == r["content_hash"]
    except OSError:
        return False


def _is_link_to(path: str, keep: str, *, hard: bool) -> bool:
    try:
        if hard:
            return not os.path.islink(path) and os.path.samefile(path, keep)
        return os.path.islink(path) and os.path.realpath(path) == os.path.realpath(keep)
    except OSError:
        return False
