"""Reports as scripts and people read them: the JSON and CSV of the contract (docs/cli.md), and the table."""

from __future__ import annotations

import csv
import io
import json

from rich.console import Console

from simfind.records import DupesReport, Group, IndexedFile, Match, Member, QueryReport
from simfind.render import dupes_csv, dupes_json, dupes_table, query_csv, query_json

ODD = '/photos/a "b", c/été.jpg'  # a comma, quotes and a non-ASCII letter


def _f(id_: int, path: str, size: int = 1000) -> IndexedFile:
    return IndexedFile(id_, path, size, 0, bytes([id_]) * 4, 640, 480, b"\0" * 8)


def _report() -> DupesReport:
    group = Group((Member(_f(1, "/photos/keep.jpg", 5000), 1.0), Member(_f(2, ODD, 3000), 0.9375)))
    return DupesReport(threshold=0.9, by="hash", groups=(group,), files=10, errors=1)


def test_dupes_json_has_the_contracts_shape():
    d = json.loads(dupes_json(_report()))
    assert d["version"] == 1 and d["threshold"] == 0.9 and d["by"] == "hash"
    (g,) = d["groups"]
    assert g["keep"] == "/photos/keep.jpg" and g["files"][0]["path"] == g["keep"]
    assert g["files"][0]["similarity"] == 1.0 and g["files"][1] == {
        **g["files"][1], "path": ODD, "similarity": 0.9375, "size": 3000, "width": 640, "height": 480}
    assert {k: d["stats"][k] for k in ("files", "groups", "duplicates", "errors")} == \
        {"files": 10, "groups": 1, "duplicates": 1, "errors": 1}


def test_dupes_csv_is_one_row_per_file_and_survives_odd_paths():
    rows = list(csv.reader(io.StringIO(dupes_csv(_report()))))
    assert rows[0] == ["group", "path", "similarity", "size", "width", "height", "keep"]
    assert [r[1] for r in rows[1:]] == ["/photos/keep.jpg", ODD]
    assert rows[1][0] == rows[2][0] and float(rows[2][2]) == 0.9375


def test_the_table_shows_every_path_and_similarity():
    buf = io.StringIO()
    dupes_table(_report(), Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    assert "keep.jpg" in text and "été.jpg" in text and "0.938" in text


def test_query_json_and_csv():
    report = QueryReport("/q.jpg", "hash", (Match(1, _f(1, "/photos/keep.jpg"), 0.97), Match(2, _f(2, ODD), 0.8)))
    d = json.loads(query_json(report))
    assert d["version"] == 1 and d["query"] == "/q.jpg" and d["by"] == "hash"
    assert [(r["rank"], r["path"], r["similarity"]) for r in d["results"]] == [(1, "/photos/keep.jpg", 0.97), (2, ODD, 0.8)]
    rows = list(csv.reader(io.StringIO(query_csv(report))))
    assert len(rows) == 3 and ODD in rows[2] and "/photos/keep.jpg" in rows[1]
