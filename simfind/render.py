"""Records -> text for people (rich tables) and for scripts (JSON, CSV). No I/O beyond the console given."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .records import ActionReport, ActionStep, DupesReport, IndexInfo, IndexReport, QueryReport

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


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """"1 file", "2 files"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def dupes_summary(report: DupesReport) -> str:
    wasted = sum(g.wasted_bytes for g in report.groups)
    line = (
        f"{counted(len(report.groups), 'group')}, {counted(report.duplicates, 'duplicate')}, "
        f"{human_bytes(wasted)} reclaimable among {counted(report.files, 'file')} "
        f"(by {report.by}, threshold {report.threshold:g})"
    )
    if report.errors:
        line += f"; {counted(report.errors, 'file')} could not be read (simfind info --errors)"
    return line


def display_path(path: str, base: str | None = None) -> str:
    """A path for people: relative to the working folder when it is below it, else absolute."""
    base = base or os.getcwd()
    rel = os.path.relpath(path, base)
    return path if rel.startswith(os.pardir) else rel


def dupes_table(report: DupesReport, console: Console, summary: bool = True) -> None:
    """A table per group, then (with `summary`) the summary line."""
    from rich.table import Table
    from rich.text import Text

    for n, g in enumerate(report.groups, 1):
        table = Table(
            title=f"Group {n}: {counted(len(g.members), 'file')}, {human_bytes(g.wasted_bytes)} reclaimable",
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
                Text(display_path(f.path)),  # a path is text, never rich markup ("IMG [copy].jpg")
            )
        console.print(table)
        console.print()
    if summary:
        console.print(Text(dupes_summary(report), style="bold"))


def index_summary(report: IndexReport, index_dir: str, seconds: float | None = None) -> str:
    parts = [f"{counted(report.scanned, 'image')} found", f"{report.added:,} new", f"{report.updated:,} changed"]
    if report.renamed:
        parts.append(f"{report.renamed:,} renamed")
    if report.removed:
        parts.append(f"{report.removed:,} removed")
    parts.append(f"{report.unchanged:,} unchanged")
    if report.embedded:
        parts.append(f"{report.embedded:,} embedded")
    if report.refreshed:
        parts.append(f"{report.refreshed:,} re-read for this simfind version")
    line = "indexed: " + ", ".join(parts)
    older = report.errors - report.failed  # unchanged since an earlier run recorded them: still not indexed
    said = [f"{counted(report.failed, 'file')} could not be read"] if report.failed else []
    if older > 0:
        said.append(f"{counted(older, 'file') if not said else f'{older:,} more'} recorded as errors earlier")
    if said:
        line += "; " + ", ".join(said) + " (simfind info --errors)"
    if seconds is not None:
        line += f"; {seconds:.1f} s"
    return line + f" -> {index_dir}"


_VERBS = {"move": "moved", "hardlink": "hard-linked", "symlink": "symlinked", "delete": "deleted"}


def action_line(step: ActionStep) -> str:
    """One file acted on, as the plan (--dry-run) or the record says it."""
    if step.status in ("skipped", "failed"):
        return f"{step.status} {step.path}: {step.reason}"
    if step.action.startswith("undo "):
        return f"{'would restore' if step.status == 'planned' else 'restored'} {step.path}"
    arrow = f" -> {step.target}" if step.target else (f" -> {step.keep}" if "link" in step.action else "")
    verb = f"would {step.action}" if step.status == "planned" else _VERBS[step.action]
    return f"{verb} {step.path}{arrow}"


def action_summary(report: ActionReport, action: str) -> str:
    verb, skipped, failed = _VERBS[action], report.count("skipped"), report.count("failed")
    if report.dry_run:
        return (f"dry run: {counted(report.count('planned'), 'file')} would be {verb}, {skipped:,} skipped; "
                "nothing was changed")
    return (f"{counted(report.count('done'), 'file')} {verb}, {skipped:,} skipped, {failed:,} failed; "
            f"log: {report.log} (`simfind undo {report.log}` reverses moves and links)")


def undo_summary(report: ActionReport) -> str:
    already = report.count("already")
    if already and already == len(report.steps):
        return f"nothing to undo: the {counted(already, 'file')} of this log were restored already"
    done = report.count("planned" if report.dry_run else "done")
    line = (f"{counted(done, 'file')} {'would be ' if report.dry_run else ''}restored, "
            f"{report.count('skipped'):,} skipped, {report.count('failed'):,} failed")
    return line + (f", {already:,} restored already" if already else "")


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
    from rich.text import Text

    table = Table(show_header=False, show_edge=False, title="simfind index", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("index", Text(info.index))
    table.add_row("files", f"{info.files:,}")
    table.add_row("errors", f"{info.errors:,}")
    table.add_row("perceptual hashes", f"{info.hashed:,}")
    table.add_row("CLIP embeddings", f"{info.embedded:,}")
    table.add_row("model", Text(info.model or "none (hash-only)"))
    table.add_row("size on disk", human_bytes(info.bytes))
    console.print(table)
    if with_errors and info.error_files:
        errors = Table(title="files that could not be read", title_justify="left", show_edge=False)
        errors.add_column("path", overflow="fold")
        errors.add_column("reason", overflow="fold")
        for path, reason in info.error_files:
            errors.add_row(Text(path), Text(reason))
        console.print()
        console.print(errors)


def query_dict(report: QueryReport) -> dict:
    return {
        "version": JSON_VERSION,
        "query": report.query,
        "by": report.by,
        "results": [{"rank": m.rank, "path": m.file.path, "similarity": round(m.similarity, 4), "id": m.file.id}
                    for m in report.results],
    }


def query_json(report: QueryReport) -> str:
    return json.dumps(query_dict(report), indent=2) + "\n"


def query_csv(report: QueryReport) -> str:
    return queries_csv([report])


def queries_jsonl(reports: Sequence[QueryReport]) -> str:
    """Several queries' answers: each query's JSON document on a line of its own (JSON lines)."""
    return "".join(json.dumps(query_dict(r), separators=(",", ":")) + "\n" for r in reports)


def queries_csv(reports: Sequence[QueryReport]) -> str:
    """Queries' answers in one CSV: a row per result, the query first; a query without results has one row with
    only the query, so that every query asked is in the file."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["query", "rank", "path", "similarity", "size", "width", "height"])
    for r in reports:
        if not r.results:
            writer.writerow([r.query, "", "", "", "", "", ""])
        for m in r.results:
            writer.writerow([r.query, m.rank, m.file.path, f"{m.similarity:.4f}", m.file.size, m.file.width,
                             m.file.height])
    return out.getvalue()


def queries_table(reports: Sequence[QueryReport], console: Console) -> None:
    for k, r in enumerate(reports):
        if k:
            console.print()
        query_table(r, console)


def _query_label(report: QueryReport) -> str:
    """The query as the rows show paths (relative below the working folder), quoted; a text as it was typed."""
    q = report.query
    return repr(display_path(q) if os.path.isabs(q) and os.path.isfile(q) else q)


def _no_results(report: QueryReport) -> str:
    """The one line an empty query answer prints: what was searched, and what a result would have had to meet."""
    head = f"most similar to {_query_label(report)} (by {report.by})"
    if report.files == 0:
        return f"{head}: no results, the index holds no files"
    if report.threshold is None:
        return f"{head}: no results"
    among = f"among {counted(report.files, 'indexed file')}" if report.files else "among the indexed files"
    what = "a copy of" if report.by == "hash" else "a match for"
    return (f"nothing {among} is {what} {_query_label(report)} at similarity {report.threshold:g} or above "
            f"(by {report.by})")


def query_table(report: QueryReport, console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    if not report.results:  # a title alone: an empty table would wrap it to the width of its headers
        console.print(Text(_no_results(report)))
        return
    # the title on a line of its own: as a table title it wraps to the table's width, mid-phrase
    console.print(Text(f"most similar to {_query_label(report)} (by {report.by})"), soft_wrap=True)
    table = Table(show_edge=False)
    table.add_column("rank", justify="right")
    table.add_column("similarity", justify="right")
    table.add_column("size", justify="right")
    table.add_column("dimensions", justify="right")
    table.add_column("path", overflow="fold")
    for m in report.results:
        table.add_row(str(m.rank), f"{m.similarity:.3f}", human_bytes(m.file.size), f"{m.file.width}x{m.file.height}",
                      Text(display_path(m.file.path)))
    console.print(table)


# -- HTML ---------------------------------------------------------------------------------------------------------

_HTML_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%(title)s</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f5;color:#18181b}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:10px 16px;z-index:1}
h1{font-size:18px;margin:0 0 4px}
.summary{color:#52525b}
input{font:inherit;padding:5px 8px;width:min(480px,90vw);margin-top:6px}
main{padding:12px 16px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0 0 12px;padding:8px 10px}
.card h2{font-size:14px;margin:0 0 6px;color:#3f3f46}
.files{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:160px;font-size:12px;overflow-wrap:anywhere}
figure img{width:160px;height:160px;object-fit:contain;background:#e4e4e7;display:block}
figure.keep img{outline:3px solid #16a34a}
.badge{display:inline-block;background:#16a34a;color:#fff;border-radius:3px;padding:0 4px;font-size:11px}
.dim{color:#71717a}
.hidden{display:none}
</style></head><body>
<header><h1>%(title)s</h1><div class="summary">%(summary)s</div>
<input id="filter" type="search" placeholder="Filter by path (type part of a file or folder name)" autocomplete="off">
<span id="shown" class="dim"></span></header>
<main>
"""

_HTML_TAIL = """</main>
<div id="more" class="dim">&nbsp;</div>
<script type="application/json" id="cards">%(data)s</script>
<script>
(function(){
  // Cards are built from the JSON above in pages of 60 as the reader scrolls: a report of thousands of groups
  // opens at once, and only the thumbnails near the screen are ever decoded.
  var cards=JSON.parse(document.getElementById('cards').textContent);
  var main=document.querySelector('main'), more=document.getElementById('more');
  var shown=document.getElementById('shown'), list=cards, done=0, loaded=0, PAGE=60;
  function el(tag, cls, text){ var e=document.createElement(tag); if(cls) e.className=cls;
    if(text!=null) e.textContent=text; return e; }
  var lazy = ('IntersectionObserver' in window) ? new IntersectionObserver(function(es){
    es.forEach(function(e){ if(e.isIntersecting){ show(e.target); lazy.unobserve(e.target); } });
  }, {rootMargin:'400px'}) : null;
  function show(img){ if(img.dataset.src){
    img.addEventListener('load', function(){ document.body.dataset.loaded = ++loaded; });
    img.src=img.dataset.src; img.removeAttribute('data-src'); } }
  function card(c){
    var sec=el('section','card'); sec.appendChild(el('h2',null,c.title));
    var files=el('div','files');
    c.files.forEach(function(f){
      var fig=el('figure', f.keep ? 'keep' : ''), img=el('img');
      img.alt=f.name; if(f.thumb){ img.dataset.src=f.thumb; lazy ? lazy.observe(img) : show(img); }
      fig.appendChild(img);
      var cap=el('figcaption'); if(f.keep) cap.appendChild(el('span','badge','keep'));
      cap.appendChild(document.createTextNode(' '+f.path)); cap.appendChild(el('br'));
      cap.appendChild(el('span','dim',f.caption)); fig.appendChild(cap); files.appendChild(fig);
    });
    sec.appendChild(files); return sec;
  }
  function page(){
    var end=Math.min(done+PAGE, list.length), frag=document.createDocumentFragment();
    for(; done<end; done++) frag.appendChild(card(list[done]));
    main.appendChild(frag);
    shown.textContent = list.length + ' of ' + cards.length + ' shown';
    more.textContent = done < list.length ? 'scroll for more' : (list.length ? '' : 'nothing matches');
  }
  var pager = ('IntersectionObserver' in window) ? new IntersectionObserver(function(es){
    if(es[0].isIntersecting && done < list.length) page(); }, {rootMargin:'800px'}) : null;
  var box=document.getElementById('filter');
  function filter(){
    var q=box.value.toLowerCase();
    list = q ? cards.filter(function(c){ return c.paths.indexOf(q) >= 0; }) : cards;
    main.textContent=''; done=0; page();
  }
  box.addEventListener('input', filter);
  if(location.hash.indexOf('#q=') === 0){ box.value=decodeURIComponent(location.hash.slice(3)); }  // a shareable filter
  filter(); if(pager) pager.observe(more); else while(done < list.length) page();
})();
</script>
</body></html>
"""


def _page(title: str, summary: str, cards: list[dict]) -> str:
    import json
    from html import escape

    data = json.dumps(cards, separators=(",", ":")).replace("</", "<\\/")  # never closes the script early
    return _HTML_HEAD % {"title": escape(title), "summary": escape(summary)} + _HTML_TAIL % {"data": data}


def _file_card(path: str, thumbs: dict[str, str], caption: str, keep: bool) -> dict:
    return {"path": path, "name": os.path.basename(path), "caption": caption, "keep": keep, "thumb": thumbs.get(path)}


def dupes_html(report: DupesReport, *, thumbs: dict[str, str]) -> str:
    """One self-contained page: a card per group (largest waste first), the keeper marked, thumbnails embedded
    as JPEG data URIs and decoded only as they come into view, a filter box. No network, no external files."""
    wasted = sum(g.wasted_bytes for g in report.groups)
    summary = (f"{report.files} files, {len(report.groups)} groups, {report.duplicates} duplicates, "
               f"{human_bytes(wasted)} reclaimable (by {report.by}, threshold {report.threshold:g})")
    cards = [
        {"title": f"Group {n}: {len(g.members)} files, {human_bytes(g.wasted_bytes)} reclaimable",
         "paths": " ".join(m.file.path for m in g.members).lower(),
         "files": [_file_card(m.file.path, thumbs, f"{m.file.width}x{m.file.height}, {human_bytes(m.file.size)}, "
                              f"similarity {m.similarity:.3f}", k == 0) for k, m in enumerate(g.members)]}
        for n, g in enumerate(report.groups, 1)
    ]
    return _page("simfind: duplicate groups", summary, cards)


def query_html(report: QueryReport, *, thumbs: dict[str, str]) -> str:
    summary = f"{len(report.results)} results for {report.query} (by {report.by})"
    return _page("simfind: query", summary, [_query_card(report, thumbs)])


def queries_html(reports: Sequence[QueryReport], *, thumbs: dict[str, str]) -> str:
    found = sum(1 for r in reports if r.results)
    summary = f"{len(reports)} queries, {found} with results"
    return _page("simfind: queries", summary, [_query_card(r, thumbs) for r in reports])


def _query_card(report: QueryReport, thumbs: dict[str, str]) -> dict:
    return {"title": report.query, "paths": " ".join(m.file.path for m in report.results).lower(),
            "files": [_file_card(m.file.path, thumbs, f"#{m.rank}, similarity {m.similarity:.3f}, "
                                 f"{m.file.width}x{m.file.height}", False) for m in report.results]}
