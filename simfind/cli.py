"""The command line: parse, make one library call, render, map errors to exit codes. No logic of its own."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import Interrupted, SimfindError, UsageError
from .interrupts import check, finished, stopping
from .options import ACTIONS, BY, DEVICES, FORMATS, INFO_FORMATS, PRECISIONS, check_action

_DEBUG_ENV = "SIMFIND_DEBUG"


def _err(message: str) -> None:
    typer.echo(f"simfind: {message}", err=True)


def _is_click_error(e: BaseException) -> bool:
    """click's errors, whether typer uses click itself or its vendored copy (typer >= 0.26)."""
    return hasattr(e, "exit_code") and hasattr(e, "format_message")


def _unset_envvars_unnamed(message: str) -> str:
    """click names an option's environment variable in every error about it ("'--index' (env var: 'SIMFIND_INDEX')"):
    a user who never set it is sent looking for it. Named only when it is set."""
    import re

    return re.sub(r" \(env var: '([A-Z_]+)'\)", lambda m: m.group(0) if m.group(1) in os.environ else "", message)


class _Group(TyperGroup):
    """Every failure becomes one line on stderr and an exit code (SPEC); never a traceback."""

    def invoke(self, ctx):
        try:
            check()
            return super().invoke(ctx)
        except KeyboardInterrupt:  # typer would make it a silent exit 130; the library raised none with its count
            raise Interrupted("interrupted") from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name or "simfind", complete_var=complete_var,
                              standalone_mode=False, **extra)
        except SimfindError as e:
            finished()
            _err(("" if e.exit_code == 130 else "error: ") + str(e))
            sys.exit(e.exit_code)
        except KeyboardInterrupt:  # while the command line was parsed
            finished()
            _err("interrupted")
            sys.exit(130)
        except BrokenPipeError:
            sys.stderr.close()  # stdout went away (| head): stop quietly
            sys.exit(1)
        except Exception as e:
            finished()
            if type(e).__name__ == "NoArgsIsHelpError":
                typer.echo(e.format_message(), err=True)
                sys.exit(2)
            if type(e).__name__ == "Abort":
                _err("aborted")
                sys.exit(130)
            if _is_click_error(e):
                ctx = getattr(e, "ctx", None)
                hint = f" (see '{ctx.command_path} --help')" if ctx is not None and e.exit_code == 2 else ""
                _err(f"error: {_unset_envvars_unnamed(e.format_message())}{hint}")
                sys.exit(e.exit_code)
            if os.environ.get(_DEBUG_ENV):  # a bug: still one line, with a way to see more
                raise
            _err(f"internal error: {type(e).__name__}: {e} (run with {_DEBUG_ENV}=1 for details, and please report it)")
            sys.exit(3)
        if rv == 130 or stopping():  # typer's answer to a KeyboardInterrupt outside the command, or a lost one
            finished()
            _err("interrupted")
            sys.exit(130)
        finished()
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=_Group,
    name="simfind",
    help="Find duplicate and near-duplicate images: byte copies, re-encodes, resizes and edited copies.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A str Enum of the library's choices (options.py), which typer shows and checks."""
    return Enum(name, [(v.replace("-", "_"), v) for v in values], type=str)


Format = _choices("Format", FORMATS)
InfoFormat = _choices("InfoFormat", INFO_FORMATS)
Action = _choices("Action", ACTIONS)
By = _choices("By", BY)
Device = _choices("Device", DEVICES)
Precision = _choices("Precision", PRECISIONS)


def _default_index() -> str:
    from .store import default_index_dir

    return default_index_dir()


IndexOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--index",
        envvar="SIMFIND_INDEX",
        help="Index folder. Default: a per-user data folder.",
        show_default=False,
        file_okay=False,
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, no summary on stderr.")]
WorkersOpt = Annotated[
    Optional[int],
    typer.Option(
        "--workers", "-j", min=1, show_default=False,
        help="Worker processes. Default: all cores, or none for a few new files (under 16 MB: starting them costs more).",
    ),
]

SchedulerOpt = Annotated[
    Optional[str],
    typer.Option(
        "--scheduler", envvar="SIMFIND_SCHEDULER", show_default=False, metavar="ADDRESS",
        help="Run the per-file work on the Dask cluster of this scheduler (tcp://HOST:8786; needs simfind[dask]). "
             "Its workers must see the same paths (and the model's weights).",
    ),
]


ModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        help="CLIP model: NAME:TAG (open_clip, e.g. ViT-B-32:laion2b_s34b_b79k, the default), hf-hub:org/repo, "
        "or local-dir:/path (open_clip_config.json + weights).",
        show_default=False,
    ),
]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where CLIP runs.")]


PrecisionOpt = Annotated[
    Precision,
    typer.Option(
        "--precision",
        help="CLIP arithmetic. auto: bf16 where the CPU or GPU runs it natively and it agrees with fp32 "
        "(checked at load), else fp32.",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"simfind {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Find duplicate and near-duplicate images.

    Index folders once (`simfind index DIR`), then ask for duplicate groups (`simfind dupes`).
    Re-indexing only reads what changed.
    """


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def _progress(quiet: bool):
    """A progress callback for the library: rich bars on stderr when it is a terminal, else nothing."""
    if quiet or not sys.stderr.isatty():  # decided before rich is imported: scripts and CI never pay for it
        yield lambda phase, done, total: None
        return
    console = _stderr_console()
    if not console.is_terminal:
        yield lambda phase, done, total: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    labels = {"scan": "scanning", "hash": "indexing", "index": "indexing", "group": "grouping"}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[amount]}"), TimeRemainingColumn(),
        console=console, transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                for old in tasks.values():  # one bar at a time: a new phase replaces the last
                    bar.remove_task(old)
                tasks.clear()
                tasks[phase] = bar.add_task(labels.get(phase, phase), total=total or None, amount="")
            bar.update(tasks[phase], completed=done, total=total or None, amount=_amount(phase, done, total))

        yield update


def _amount(phase: str, done: int, total: int) -> str:
    """How far a phase is, in its own unit: bytes for hashing (files go largest first), else a count."""
    if phase == "hash":
        return f"{done / 1e6:,.1f}/{total / 1e6:,.1f} MB"
    return f"{done:,}/{total:,}" if total else f"{done:,}"


def _notify(quiet: bool):
    def notify(message: str) -> None:
        if not quiet:
            _err(message)

    return notify


def _write_output(text: str, output: Optional[Path]) -> None:
    """Write to stdout, or atomically to `output` (a temp file renamed into place)."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from .atomic import write_text_atomically

    target = output.expanduser().resolve()
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {output}: folder {target.parent} does not exist")
    write_text_atomically(str(target), text)


# Off a terminal (a pipe, a file) lines are as long as they need to be: a path split over two lines is a path
# that grep, cut and a reader's copy-paste cannot find.
_UNWRAPPED = 1 << 20


def _render_table(draw, output: Optional[Path]) -> None:
    import io

    from rich.console import Console

    if output is None and sys.stdout.isatty():
        draw(Console())
        return
    buf = io.StringIO()
    draw(Console(file=buf, width=_UNWRAPPED, color_system=None, force_terminal=False))
    text = "\n".join(line.rstrip() for line in buf.getvalue().split("\n"))
    _write_output(text, output)


def _emit(fmt: Format, output: Optional[Path], report, as_json, as_csv, as_table, as_html=None) -> None:
    if fmt is Format.html:
        if as_html is None:
            raise UsageError("--format html is for dupes and query")
        if output is None and sys.stdout.isatty():
            raise UsageError("an HTML report goes to a file: pass -o report.html")
        _write_output(as_html(report), output)
    elif fmt is Format.json:
        _write_output(as_json(report), output)
    elif fmt is Format.csv:
        _write_output(as_csv(report), output)
    else:
        _render_table(lambda console: as_table(report, console), output)


@app.command("index")
def index_cmd(
    dirs: Annotated[list[Path], typer.Argument(help="Folders (or image files) to index.", exists=True, show_default=False,
                                               metavar="DIR...")],
    index: IndexOpt = None,
    no_clip: Annotated[bool, typer.Option("--no-clip", help="Hashes only: no CLIP embeddings (no torch).")] = False,
    require_clip: Annotated[
        bool, typer.Option("--require-clip", help="Fail (exit 3) instead of falling back to hashes when the model is missing.")
    ] = False,
    model: ModelOpt = None,
    device: DeviceOpt = Device.auto,
    precision: PrecisionOpt = Precision.auto,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per CLIP forward pass.")] = 32,
    reembed: Annotated[
        bool, typer.Option("--reembed", help="Replace the index's embeddings when --model differs from the one it holds.")
    ] = False,
    workers: WorkersOpt = None,
    exclude: Annotated[
        Optional[list[str]], typer.Option("--exclude", help="Skip paths matching this glob (repeatable).", show_default=False)
    ] = None,
    hidden: Annotated[bool, typer.Option("--hidden", help="Include hidden files and folders.")] = False,
    scheduler: SchedulerOpt = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Set the catalog aside (kept under a dated name) and index every file "
                                             "again: the fix for a damaged index.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Index images under DIRS: content hash, perceptual hash and CLIP embedding of each, on disk.

    Unchanged files are only stat'ed; renamed files are recognised by their bytes; files gone from
    disk leave the index. Unreadable or corrupt files are recorded (see `simfind info --errors`).
    """
    from . import api

    if require_clip and no_clip:
        raise UsageError("--require-clip and --no-clip contradict each other; pass one")
    index_dir = str(index or _default_index())
    started = time.perf_counter()
    with _progress(quiet) as progress:
        report = api.index(
            [str(d) for d in dirs], index_dir=index_dir, workers=workers, hidden=hidden, exclude=exclude or (),
            clip=None if no_clip else (model or _default_model()), require_clip=require_clip, reembed=reembed,
            device=device.value, precision=precision.value, batch_size=batch_size, rebuild=rebuild,
            progress=progress, notify=_notify(quiet), quiet=quiet, scheduler=scheduler,
        )
    if not quiet:
        from .render import index_summary

        summary = index_summary(report, index_dir, time.perf_counter() - started)
        check()
        finished()  # every file is in: a Ctrl-C from now on changes nothing, and must not add a line
        _err(summary)


def _default_model() -> str:
    from .embed import DEFAULT_MODEL

    return DEFAULT_MODEL


@app.command("dupes")
def dupes_cmd(
    paths: Annotated[
        Optional[list[Path]],
        typer.Argument(help="Report only files under these paths (indexed first where needed).", exists=True,
                       show_default=False, metavar="[PATH]..."),
    ] = None,
    index: IndexOpt = None,
    threshold: Annotated[
        Optional[float],
        typer.Option(
            "--threshold", "-t", min=0.0, max=1.0,
            help="Similarity in [0, 1] a pair needs to count (1.0 = identical). Default: tuned per --by. By hash, "
                 "a pair must first pass verification (its pictures agree once any crop, turn or frame is undone): "
                 "below the default few more pairs count.",
            show_default=False,
        ),
    ] = None,
    by: Annotated[By, typer.Option("--by", help="Evidence: exact bytes, perceptual hash, CLIP, or all the index has.")] = By.auto,
    between: Annotated[
        Optional[tuple[Path, Path]],
        typer.Option("--between", help="Only groups with files under both DIR_A and DIR_B (e.g. train/test leakage).",
                     metavar="DIR_A DIR_B", exists=True, show_default=False),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report to FILE.", dir_okay=False, show_default=False)] = None,
    fail_on_dupes: Annotated[bool, typer.Option("--fail-on-dupes", help="Exit 1 if any group is found (for CI).")] = False,
    keep: Annotated[
        Optional[str],
        typer.Option("--keep", metavar="RULE",
                     help="Which file of a group to keep. Default: the original: not a copy the rest of the group shows "
                          "to be edited (turned, or differing in one region: a watermark or caption); then camera EXIF "
                          "as the camera wrote it; then most picture pixels (letterbox bars and frames not counted); "
                          "then the file another one was re-saved from, the higher JPEG quality and an EXIF "
                          "orientation; then oldest, then largest. Or a rule: pixels (most picture pixels, then "
                          "largest, then oldest), newest, oldest, largest, smallest, shortest-path, or a path glob such "
                          "as '*/originals/*'.",
                     show_default=False),
    ] = None,
    action: Annotated[
        Optional[Action],
        typer.Option("--action", help="Act on every file of each group except its keeper (asks once; see --yes, --dry-run).",
                     show_default=False),
    ] = None,
    to: Annotated[Optional[Path], typer.Option("--to", help="Destination folder for --action move (folder structure kept).",
                                               file_okay=False, show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print exactly what --action would do, and do nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")] = False,
    log: Annotated[
        Optional[Path],
        typer.Option("--log", help="JSON-lines log of every act, for `simfind undo LOG`. Default: a new file in the "
                                   "index folder's logs/.", dir_okay=False, show_default=False),
    ] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Report groups of duplicate images. Each group names the file to keep (--keep) and each other file's
    similarity to it; --action moves, links or deletes the others, logged so that `simfind undo` can reverse it."""
    from . import api
    from .render import dupes_csv, dupes_html, dupes_json, dupes_summary, dupes_table

    if action is None and (to or dry_run or log or yes):
        raise UsageError("--to, --dry-run, --yes and --log go with --action")
    check_action(action.value if action is not None else None, str(to) if to is not None else None)

    index_dir = str(index or _default_index())
    with _progress(quiet) as progress:
        report = api.duplicates(
            index_dir=index_dir, paths=[str(p) for p in paths or []], threshold=threshold, by=by.value,
            between=(str(between[0]), str(between[1])) if between else None, keep=keep, workers=workers,
            move_to=str(to) if to is not None else None,
            progress=progress, notify=_notify(quiet), scheduler=scheduler,
        )
    if action is not None:
        _act(report, action.value, to, dry_run, yes, log, index_dir, quiet)
        if fmt is Format.table and output is None:
            return  # the plan and what was done are the report
    _emit(fmt, output, report, dupes_json, dupes_csv, lambda r, console: dupes_table(r, console, summary=not quiet),
          lambda r: dupes_html(r, thumbs=_thumbs(r, workers)))
    if fmt is not Format.table and not quiet:
        _err(dupes_summary(report))
    if fail_on_dupes and report.groups:
        raise typer.Exit(1)


def _thumbs(report, workers):
    paths = [m.file.path for g in report.groups for m in g.members] if hasattr(report, "groups") else \
        [m.file.path for m in report.results]
    return _thumbs_of(paths, workers)


def _thumbs_of(paths: list[str], workers=None):
    from . import api

    return api.display_thumbnails(paths, workers=workers)


def _act(report, action: str, to, dry_run: bool, yes: bool, log, index_dir: str, quiet: bool) -> None:
    """The plan (--dry-run) or the record of what was done goes to stdout, a line per file; files skipped or
    failed, and the summary, to stderr."""
    from .actions import act
    from .render import action_summary, counted

    n = sum(len(g.members) - 1 for g in report.groups)
    if not n:
        if not quiet:
            _err(f"nothing to {action}: no duplicates")
        return
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"--action {action} needs a confirmation: pass --yes (or --dry-run to see the plan)")
        where = f" to {to}" if to else ""
        if not typer.confirm(f"{action} {counted(n, 'file')}{where}, keeping one file per group?", default=False,
                             err=True):
            raise typer.Exit(1)
    if log is None and not dry_run:
        log = Path(index_dir) / "logs" / time.strftime(f"{action}-%Y%m%d-%H%M%S.jsonl")
    result = act(report.groups, action, to=str(to) if to else None, dry_run=dry_run, log=str(log) if log else None,
                 on_step=_show_step)
    if not quiet:
        _err(action_summary(result, action))
    if result.count("failed"):
        raise typer.Exit(3)


def _show_step(step) -> None:
    from .render import action_line

    if step.status in ("skipped", "failed"):
        _err(action_line(step))
    elif step.status != "already":
        print(action_line(step), flush=True)


@app.command("undo")
def undo_cmd(
    log: Annotated[Path, typer.Argument(help="The log a `dupes --action` run wrote.", exists=True, dir_okay=False,
                                        show_default=False, metavar="LOG")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be restored, and do nothing.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Reverse the moves and links recorded in LOG, newest first, and remove the folders the moves made.
    Files changed since are left alone; deletes cannot be undone. Undoing a log twice changes nothing."""
    from .actions import undo
    from .render import undo_summary

    result = undo(str(log), dry_run=dry_run, on_step=_show_step)
    if not quiet:
        _err(undo_summary(result))
    if result.count("failed"):
        raise typer.Exit(3)


@app.command("query")
def query_cmd(
    images_or_texts: Annotated[
        Optional[list[str]],
        typer.Argument(help="Image files, or texts (need CLIP embeddings); each is a query of its own.",
                       show_default=False, metavar="IMAGE_OR_TEXT..."),
    ] = None,
    from_file: Annotated[
        Optional[Path],
        typer.Option("--from-file", help="Also the queries in FILE: every non-blank line is one (an image path, "
                                         "relative to the current folder, or a text); - reads stdin. Every query "
                                         "is checked before any is searched.", dir_okay=False, show_default=False,
                     metavar="FILE"),
    ] = None,
    index: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", min=1, metavar="N", help="How many results.")] = 10,
    threshold: Annotated[
        Optional[float],
        typer.Option("--threshold", "-t", min=0.0, max=1.0, show_default=False, metavar="SIM",
                     help="Keep only results at or above this similarity. Without CLIP embeddings: the "
                          "threshold copies are found at, as in dupes (default 0.9)."),
    ] = None,
    fail_on_miss: Annotated[
        bool, typer.Option("--fail-on-miss", help="Exit 1 when no result meets --threshold (is this a known image?). "
                                                  "An indexed image finds itself at 1.0, so this never fails for one: "
                                                  "add --exclude-self to ask whether anything else matches.")
    ] = False,
    exclude_self: Annotated[
        bool, typer.Option("--exclude-self", help="Leave the query image's own path out of the results "
                                                  "(its copies under other paths stay).")
    ] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the results to FILE.", dir_okay=False, show_default=False)] = None,
    device: DeviceOpt = Device.auto,
    precision: PrecisionOpt = Precision.auto,
    quiet: QuietOpt = False,
) -> None:
    """The indexed images most similar to an image or a text. By CLIP when the index has embeddings;
    without them, an image query lists the indexed files `dupes` would group with it at the threshold (the same
    search and checks, the same similarity). An argument that is not an existing file is a text query.
    Several queries (or --from-file, even with one line) are answered in one run: JSON then has one document
    per line (JSON lines), the table one table per query, HTML one card each; CSV always leads with the query."""
    from . import api
    from .render import (
        queries_csv,
        queries_html,
        queries_jsonl,
        queries_table,
        query_csv,
        query_html,
        query_json,
        query_table,
    )

    listed = _query_lines(from_file) if from_file else []
    if from_file and not listed:
        raise UsageError(f"--from-file {from_file} holds no queries (one image path or text per line)")
    items = [*(images_or_texts or ()), *listed]
    if not items:
        raise UsageError("query needs an image or a text (or --from-file FILE)")
    reports = api.query_many(items, index_dir=str(index or _default_index()), k=k, threshold=threshold,
                             exclude_self=exclude_self, device=device.value, precision=precision.value)
    if len(reports) == 1 and not from_file:
        _emit(fmt, output, reports[0], query_json, query_csv, query_table,
              lambda r: query_html(r, thumbs=_thumbs(r, None)))
    else:
        _emit(fmt, output, reports, queries_jsonl, queries_csv, queries_table,
              lambda rs: queries_html(rs, thumbs=_thumbs_of([m.file.path for r in rs for m in r.results])))
    gone = sum(r.missing for r in reports)
    if gone and not quiet:
        _err(f"{gone:,} {'file' if gone == 1 else 'files'} that would be listed {'is' if gone == 1 else 'are'} "
             "gone from disk since indexing and left out; `simfind index DIR` brings the index up to date")
    missed = [r.query for r in reports if not r.results]
    if fail_on_miss and missed:
        if not quiet:
            _err(f"no result at the threshold for {len(missed):,} of {len(reports):,} "
                 f"{'query' if len(reports) == 1 else 'queries'}: {missed[0]}" + (", ..." if len(missed) > 1 else ""))
        raise typer.Exit(1)


def _query_lines(path: Path) -> list[str]:
    """The queries in a --from-file FILE: one per line, blank lines skipped, surrounding spaces dropped."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read --from-file {path}: {getattr(e, 'strerror', None) or e}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


@app.command("serve")
def serve_cmd(
    index: IndexOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on. Anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8765,
    token: Annotated[
        Optional[str],
        typer.Option("--token", envvar="SIMFIND_TOKEN", show_default=False,
                     help="Require 'Authorization: Bearer TOKEN' on every endpoint but /health and the upload page."),
    ] = None,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", min=0.001, help="Largest upload accepted (MB).")] = 25.0,
    device: DeviceOpt = Device.auto,
    precision: PrecisionOpt = Precision.auto,
) -> None:
    """Answer queries over HTTP: POST /query (an image upload or a JSON text) with the JSON `query` prints,
    POST /match with a verdict, GET /health, and an upload page at /. The index is read per request, so a
    running `simfind index` is picked up without a restart. Needs simfind[serve]."""
    from .serve import serve

    serve(str(index or _default_index()), host=host, port=port, token=token, max_upload_mb=max_upload_mb,
          device=device.value, precision=precision.value,
          ready=lambda url: _err(f"serving {url} (Ctrl-C stops)"))


@app.command("info")
def info_cmd(
    index: IndexOpt = None,
    errors: Annotated[bool, typer.Option("--errors", help="List the files that could not be read, with the reason.")] = False,
    fmt: Annotated[InfoFormat, typer.Option("--format", "-f", help="Output format.")] = InfoFormat.table,
) -> None:
    """What the index holds: files, errors, hashes, embeddings, model, size on disk."""
    import json

    from . import api
    from .render import info_dict, info_table

    result = api.info(str(index or _default_index()))
    if fmt is InfoFormat.json:
        _write_output(json.dumps(info_dict(result, errors), indent=2) + "\n", None)
    else:
        _render_table(lambda console: info_table(result, console, errors), None)


def main() -> None:
    app()
