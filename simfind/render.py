"""Records -> text for people (rich tables) and for scripts (JSON, CSV). No I/O beyond the console given."""

from __future__ import annotations

import csv
import io
import json
import os

from typing import TYPE_CHECKING

from .records import DupesReport, IndexInfo, IndexReport, QueryReport

if TYPE_CHECKING:  # rich is imported by the table renderers only: JSON, CSV and summaries do without it
    from rich.console import Console

JSON_VERSION = 1


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def dupes_dict(report: DupesReport) -> dict:
    return {
        "version": JSON_VERSION,
        "threshold": report.threshold,
        "by": report.by,
        "groups": [
            {
                "keep": g.keep.path,
                "files": [
                    {
                        "path": m.file.path,
                        "similarity": round(m.similarity, 4),
                        "size": m.file.size,
                        "width": m.file.width,
                        "height": m.file.height,
                    }
                    for m in g.members
                ],
            }
            for g in report.groups
        ],
        "stats": {
            "files": report.files,
            "groups": len(report.groups),
            "duplicates": report.duplicates,
            "errors": report.errors,
            "reclaimable_bytes": sum(g.wasted_bytes for g in report.groups),
        },
    }


def dupes_json(report: DupesReport) -> str:
    return json.dumps(dupes_dict(report), indent=2) + "\n"


def dupes_csv(report: DupesReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", "path", "similarity", "size", "width", "height", "keep"])
    for n, g in enumerate(report.groups, 1):
        for k, m in enumerate(g.members):
            f = m.file
            writer.writerow([n, f.path, f"{m.similarity:.4f}", f.size, f.width, f.height, "true" if k == 0 else "false"])
    return out.getvalue()


def dupes_summary(report: DupesReport) -> str:
    wasted = sum(g.wasted_bytes for g in report.groups)
    line = (
        f"{len(report.groups)} groups, {report.duplicates} duplicates, {human_bytes(wasted)} reclaimable "
        f"among {report.files} files (by {report.by}, threshold {report.threshold:g})"
    )
    if report.errors:
        line += f"; {report.errors} files could not be read (simfind info --errors)"
    return line


def display_path(path: str, base: str | None = None) -> str:
    """A path for people: relative to the working folder when it is below it, else absolute."""
    base = base or os.getcwd()
    rel = os.path.relpath(path, base)
    return path if rel.startswith(os.pardir) else rel


def dupes_table(report: DupesReport, console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    for n, g in enumerate(report.groups, 1):
        table = Table(
            title=f"Group {n}: {len(g.members)} files, {human_bytes(g.wasted_bytes)} reclaimable",
            title_justify="left",
            show_edge=False,
            expand=False,
        )
        table.add_column("", no_wrap=True)
        table.add_column("similarity", justify="right", no_wrap=True)
        table.add_column("size", justify="right", no_wrap=True)
        table.add_column("dimensions", justify="right", no_wrap=True)
        table.add_column("path", overflow="fold")
        for k, m in enumerate(g.members):
            f = m.file
            table.add_row(
                Text("keep", style="bold green") if k == 0 else Text("dup", style="yellow"),
                "" if k == 0 else ("identical" if m.file.content_hash == g.keep.content_hash else f"{m.similarity:.3f}"),
                human_bytes(f.size),
                f"{f.width}x{f.height}",
                display_path(f.path),
            )
        console.print(table)
        console.print()
    console.print(Text(dupes_summary(report), style="bold"))


def index_summary(report: IndexReport, index_dir: str) -> str:
    parts = [f"{report.scanned} images found", f"{report.added} new", f"{report.updated} changed"]
    if report.renamed:
        parts.append(f"{report.renamed} renamed")
    if report.removed:
        parts.append(f"{report.removed} removed")
    parts.append(f"{report.unchanged} unchanged")
    if report.embedded:
        parts.append(f"{report.embedded} embedded")
    line = "indexed: " + ", ".join(parts)
    if report.failed:
        line += f"; {report.failed} could not be read (simfind info --errors)"
    return line + f" -> {index_dir}"


def info_dict(info: IndexInfo, with_errors: bool) -> dict:
    d = {
        "version": JSON_VERSION,
        "index": info.index,
        "files": info.files,
        "errors": info.errors,
        "hashed": info.hashed,
        "embedded": info.embedded,
        "model": info.model,
        "bytes": info.bytes,
        "schema_version": info.schema_version,
    }
    if with_errors:
        d["error_files"] = [{"path": p, "reason": r} for p, r in info.error_files]
    return d


def info_table(info: IndexInfo, console: Console, with_errors: bool) -> None:
    from rich.table import Table

    table = Table(show_header=False, show_edge=False, title="simfind index", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("index", info.index)
    table.add_row("files", str(info.files))
    table.add_row("errors", str(info.errors))
    table.add_row("perceptual hashes", str(info.hashed))
    table.add_row("CLIP embeddings", str(info.embedded))
    table.add_row("model", info.model or "none (hash-only)")
    table.add_row("size on disk", human_bytes(info.bytes))
    console.print(table)
    if with_errors and info.error_files:
        errors = Table(title="files that could not be read", title_justify="left", show_edge=False)
        errors.add_column("path", overflow="fold")
        errors.add_column("reason", overflow="fold")
        for path, reason in info.error_files:
            errors.add_row(path, reason)
        console.print()
        console.print(errors)


def query_dict(report: QueryReport) -> dict:
    return {
        "version": JSON_VERSION,
        "query": report.query,
        "by": report.by,
        "results": [{"rank": m.rank, "path": m.file.path, "similarity": round(m.similarity, 4)} for m in report.results],
    }


def query_json(report: QueryReport) -> str:
    return json.dumps(query_dict(report), indent=2) + "\n"


def query_csv(report: QueryReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "path", "similarity", "size", "width", "height"])
    for m in report.results:
        writer.writerow([m.rank, m.file.path, f"{m.similarity:.4f}", m.file.size, m.file.width, m.file.height])
    return out.getvalue()


def query_table(report: QueryReport, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"most similar to {report.query!r} (by {report.by})", title_justify="left", show_edge=False)
    table.add_column("rank", justify="right")
    table.add_column("similarity", justify="right")
    table.add_column("size", justify="right")
    table.add_column("dimensions", justify="right")
    table.add_column("path", overflow="fold")
    for m in report.results:
        table.add_row(str(m.rank), f"{m.similarity:.3f}", human_bytes(m.file.size), f"{m.file.width}x{m.file.height}",
                      display_path(m.file.path))
    console.print(table)
    if not report.results:
        console.print("no results")
