"""Reports as scripts and people read them: the JSON and CSV of the contract (../shared/SPEC.md), the tables, the
one-line summaries. Reports are built by hand here, so these tests say what the renderers do with any report."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import pytest
from rich.console import Console

from simfind.records import (
    ActionReport,
    ActionStep,
    DupesReport,
    Failure,
    FileRef,
    Group,
    IndexedFile,
    IndexInfo,
    IndexReport,
    Match,
    Member,
    QueryReport,
)
from simfind.render import (
    action_line,
    action_summary,
    dupes_csv,
    dupes_json,
    dupes_summary,
    dupes_table,
    index_summary,
    info_dict,
    info_table,
    queries_csv,
    query_csv,
    query_json,
    query_table,
    undo_summary,
)

ODD = '/photos/a "b", c/été 写真.jpg'  # a comma, double quotes, accents, CJK, spaces
QUOTE = "/photos/it's x,y.jpg"  # a single quote


def _f(id_: int, path: str, size: int = 1000, width: int = 640, height: int = 480, content: int | None = None
       ) -> IndexedFile:
    return IndexedFile(id_, path, size, 0, bytes([content or id_]) * 16, width, height, b"\0" * 8)


def _report() -> DupesReport:
    g1 = Group((Member(_f(1, "/photos/keep.jpg", 5000, 1024, 768), 1.0), Member(_f(2, ODD, 3000), 0.9375),
                Member(_f(3, QUOTE, 2000, 320, 240), 0.90625)))
    g2 = Group((Member(_f(4, "/photos/b/original.png", 9000), 1.0),
                Member(_f(5, "/photos/b/copy.png", 9000, content=4), 1.0)))  # the same bytes
    return DupesReport(threshold=0.9, by="hash", groups=(g1, g2), files=10, errors=1)


def _table(draw) -> str:
    buf = io.StringIO()
    draw(Console(file=buf, width=200, color_system=None))
    return buf.getvalue()


# -- dupes ----------------------------------------------------------------------------------------------------


def test_dupes_json_has_the_contracts_shape():
    text = dupes_json(_report())
    d = json.loads(text)
    assert text.endswith("\n") and text.count("\n") > 1  # one document, readable
    assert d["version"] == 1 and d["threshold"] == 0.9 and d["by"] == "hash"
    assert [set(g) for g in d["groups"]] == [{"keep", "files"}] * 2
    for g in d["groups"]:
        assert g["files"][0]["path"] == g["keep"] and g["files"][0]["similarity"] == 1.0
        for f in g["files"]:
            assert {"path", "similarity", "size", "width", "height"} <= set(f)
            assert isinstance(f["similarity"], float) and 0.0 <= f["similarity"] <= 1.0
            assert all(isinstance(f[k], int) for k in ("size", "width", "height"))
    first = d["groups"][0]["files"]
    assert [(f["path"], f["similarity"], f["size"], f["width"], f["height"]) for f in first] == [
        ("/photos/keep.jpg", 1.0, 5000, 1024, 768), (ODD, 0.9375, 3000, 640, 480), (QUOTE, 0.9062, 2000, 320, 240)]
    assert {k: d["stats"][k] for k in ("files", "groups", "duplicates", "errors")} == \
        {"files": 10, "groups": 2, "duplicates": 3, "errors": 1}
    assert d["stats"]["reclaimable_bytes"] == 3000 + 2000 + 9000


def test_dupes_json_with_no_groups():
    d = json.loads(dupes_json(DupesReport(threshold=0.95, by="clip", groups=(), files=3, errors=0)))
    assert d["groups"] == [] and d["by"] == "clip" and d["threshold"] == 0.95
    assert {k: d["stats"][k] for k in ("files", "groups", "duplicates", "errors")} == \
        {"files": 3, "groups": 0, "duplicates": 0, "errors": 0}


def test_dupes_csv_is_one_row_per_file_and_survives_odd_paths():
    text = dupes_csv(_report())
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["group", "path", "similarity", "size", "width", "height", "keep"]
    assert len(rows) == 1 + 5 and all(len(r) == 7 for r in rows)
    assert [r[1] for r in rows[1:]] == ["/photos/keep.jpg", ODD, QUOTE, "/photos/b/original.png", "/photos/b/copy.png"]
    assert [r[0] for r in rows[1:]] == ["1", "1", "1", "2", "2"]
    assert [r[6] for r in rows[1:]] == ["true", "false", "false", "true", "false"]
    assert [float(r[2]) for r in rows[1:]] == [1.0, 0.9375, 0.9062, 1.0, 1.0]
    assert rows[2][3:6] == ["3000", "640", "480"]
    # as a spreadsheet or a script reads it, by column name
    by_name = list(csv.DictReader(io.StringIO(text)))
    assert [r["path"] for r in by_name if r["keep"] == "true"] == ["/photos/keep.jpg", "/photos/b/original.png"]


def test_dupes_csv_and_json_keep_paths_with_tabs_and_newlines_whole():
    odd = ("/photos/tab\there.jpg", "/photos/new\nline.jpg", "/photos/back\\slash.jpg")
    report = DupesReport(0.9, "hash", (Group((Member(_f(1, odd[0]), 1.0), Member(_f(2, odd[1]), 0.95),
                                             Member(_f(3, odd[2]), 0.95))),), 3, 0)
    assert [r[1] for r in list(csv.reader(io.StringIO(dupes_csv(report))))[1:]] == list(odd)
    assert [f["path"] for f in json.loads(dupes_json(report))["groups"][0]["files"]] == list(odd)


def test_dupes_csv_with_no_groups_is_the_header_alone():
    text = dupes_csv(DupesReport(threshold=0.9, by="hash", groups=(), files=3, errors=0))
    assert list(csv.reader(io.StringIO(text))) == [["group", "path", "similarity", "size", "width", "height", "keep"]]


def test_the_dupes_table_shows_every_path_and_similarity():
    text = _table(lambda c: dupes_table(_report(), c))
    for path in ("/photos/keep.jpg", ODD, QUOTE, "/photos/b/original.png", "/photos/b/copy.png"):
        assert path in text
    assert "0.938" in text and "0.906" in text
    assert "identical" in text  # the same bytes say so rather than 1.000
    assert text.count("keep") >= 2 and "Group 1" in text and "Group 2" in text
    assert "3 duplicates" in text.splitlines()[-1]  # the summary closes the table


def test_the_dupes_table_shows_paths_below_the_working_folder_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inside, outside = str(tmp_path / "sub" / "a.jpg"), "/elsewhere/b.jpg"
    report = DupesReport(0.9, "hash", (Group((Member(_f(1, inside), 1.0), Member(_f(2, outside), 0.95))),), 2, 0)
    text = _table(lambda c: dupes_table(report, c))
    assert "sub/a.jpg" in text and str(tmp_path) not in text and outside in text


@pytest.mark.parametrize("path", ["/photos/IMG [copy].jpg", "/photos/[/]odd.jpg"])
def test_the_tables_show_paths_with_square_brackets(path):
    report = DupesReport(0.9, "hash", (Group((Member(_f(1, "/photos/k.jpg"), 1.0), Member(_f(2, path), 0.95))),), 2, 0)
    assert path in _table(lambda c: dupes_table(report, c))
    assert path in _table(lambda c: query_table(QueryReport("/q.jpg", "hash", (Match(1, _f(2, path), 0.9),)), c))


def test_dupes_summary_wording():
    report = dataclasses.replace(_report(), errors=2)
    assert dupes_summary(report) == ("2 groups, 3 duplicates, 14.0 KB reclaimable among 10 files (by hash, "
                                     "threshold 0.9); 2 files could not be read (simfind info --errors)")
    clean = DupesReport(threshold=0.95, by="clip", groups=(), files=7, errors=0)
    assert dupes_summary(clean) == "0 groups, 0 duplicates, 0 B reclaimable among 7 files (by clip, threshold 0.95)"


def test_summaries_say_one_in_the_singular():
    one = DupesReport(threshold=0.9, by="hash", groups=(_report().groups[1],), files=1, errors=1)
    assert dupes_summary(one) == ("1 group, 1 duplicate, 9.0 KB reclaimable among 1 file (by hash, threshold 0.9); "
                                  "1 file could not be read (simfind info --errors)")
    report = _index_report(scanned=1, added=1, failed=1, failures=(Failure(FileRef("/p/a.jpg", 1, 1), "bad"),))
    assert index_summary(report, "/idx").startswith("indexed: 1 image found, 1 new")
    assert "; 1 file could not be read" in index_summary(report, "/idx")
    table = _table(lambda c: dupes_table(one, c))
    assert "Group 1: 2 files" in table and "1 group, 1 duplicate," in table


def _steps(*statuses: str, action: str = "move") -> ActionReport:
    return ActionReport(tuple(ActionStep(action, f"/p/{i}.jpg", "/p/k.jpg", s, f"/d/{i}.jpg" if action == "move"
                                         else None, "why" if s in ("skipped", "failed") else "")
                              for i, s in enumerate(statuses)), dry_run="planned" in statuses, log="/l.jsonl")


def test_action_lines_and_summaries():
    report = _steps("done", "skipped")
    assert [action_line(s) for s in report.steps] == ["moved /p/0.jpg -> /d/0.jpg", "skipped /p/1.jpg: why"]
    assert action_summary(report, "move") == ("1 file moved, 1 skipped, 0 failed; log: /l.jsonl "
                                              "(`simfind undo /l.jsonl` reverses moves and links)")
    plan = _steps("planned", "planned", action="hardlink")
    assert action_line(plan.steps[0]) == "would hardlink /p/0.jpg -> /p/k.jpg"
    assert action_summary(plan, "hardlink") == "dry run: 2 files would be hard-linked, 0 skipped; nothing was changed"


def test_undo_summary_of_a_log_undone_twice_is_one_line():
    again = ActionReport(tuple(ActionStep("undo move", f"/p/{i}.jpg", "/p/k.jpg", "already") for i in range(3)),
                         dry_run=False, log="/l.jsonl")
    assert undo_summary(again) == "nothing to undo: the 3 files of this log were restored already"
    partly = ActionReport((*again.steps, ActionStep("undo move", "/p/x.jpg", "/p/k.jpg", "done")), False, "/l")
    assert undo_summary(partly) == "1 file restored, 0 skipped, 0 failed, 3 restored already"


# -- query ----------------------------------------------------------------------------------------------------


def _query() -> QueryReport:
    return QueryReport("/q.jpg", "hash", (Match(1, _f(1, "/photos/keep.jpg", 5000), 0.96875),
                                          Match(2, _f(2, ODD, 3000, 320, 240), 0.8)))


def test_query_json_has_the_contracts_shape():
    d = json.loads(query_json(_query()))
    assert d == {"version": 1, "query": "/q.jpg", "by": "hash", "results": d["results"]}
    assert [(r["rank"], r["path"], r["similarity"]) for r in d["results"]] == [
        (1, "/photos/keep.jpg", 0.9688), (2, ODD, 0.8)]
    text = json.loads(query_json(QueryReport("a cat on a sofa, \"indoors\"", "clip", ())))
    assert text["query"] == 'a cat on a sofa, "indoors"' and text["results"] == [] and text["by"] == "clip"


def test_query_csv_is_one_row_per_result_and_a_row_for_a_query_without_any():
    q = _query().query
    rows = list(csv.reader(io.StringIO(query_csv(_query()))))
    assert rows == [["query", "rank", "path", "similarity", "size", "width", "height"],
                    [q, "1", "/photos/keep.jpg", "0.9688", "5000", "640", "480"],
                    [q, "2", ODD, "0.8000", "3000", "320", "240"]]
    none = list(csv.reader(io.StringIO(queries_csv([QueryReport("/new.jpg", "hash", ()), _query()]))))
    assert none[1] == ["/new.jpg", "", "", "", "", "", ""] and len(none) == 4


def test_the_query_table_shows_every_path_and_similarity():
    text = _table(lambda c: query_table(_query(), c))
    assert "/photos/keep.jpg" in text and ODD in text and "0.969" in text and "0.800" in text and "/q.jpg" in text
    assert "no results" in _table(lambda c: query_table(QueryReport("/q.jpg", "hash", ()), c))


def test_an_empty_hash_query_says_what_was_searched_and_what_a_copy_must_meet():
    text = _table(lambda c: query_table(QueryReport("/q.jpg", "hash", (), 0.9, 1200), c))
    assert text.strip() == ("nothing among 1,200 indexed files is a copy of '/q.jpg' at similarity 0.9 or above "
                            "(by hash)")
    assert "holds no files" in _table(lambda c: query_table(QueryReport("/q.jpg", "hash", (), 0.9, 0), c))


# -- info -----------------------------------------------------------------------------------------------------


def _info() -> IndexInfo:
    return IndexInfo(index="/home/u/.simfind", files=2560, errors=2, hashed=2560, embedded=2558,
                     model="ViT-B-32:laion2b_s34b_b79k", bytes=1234567, schema_version=5,
                     error_files=(("/photos/bad.jpg", "truncated JPEG"), (ODD, "cannot identify image file")))


def test_info_dict_has_the_contracts_shape():
    d = info_dict(_info(), with_errors=True)
    assert json.loads(json.dumps(d)) == d
    assert {k: d[k] for k in ("version", "index", "files", "errors", "embedded", "model", "bytes")} == {
        "version": 1, "index": "/home/u/.simfind", "files": 2560, "errors": 2, "embedded": 2558,
        "model": "ViT-B-32:laion2b_s34b_b79k", "bytes": 1234567}
    assert d["error_files"] == [{"path": "/photos/bad.jpg", "reason": "truncated JPEG"},
                                {"path": ODD, "reason": "cannot identify image file"}]
    assert d["hashed"] == 2560 and d["schema_version"] == 5
    without = info_dict(_info(), with_errors=False)
    assert "error_files" not in without and without == {k: v for k, v in d.items() if k != "error_files"}


def test_info_dict_of_a_hash_only_index():
    info = IndexInfo("/i", files=3, errors=0, hashed=3, embedded=0, model=None, bytes=10, schema_version=5,
                     error_files=())
    d = info_dict(info, with_errors=True)
    assert d["model"] is None and d["embedded"] == 0 and d["error_files"] == []


def test_the_info_table_shows_counts_and_with_errors_the_files():
    text = _table(lambda c: info_table(_info(), c, with_errors=True))
    for word in ("/home/u/.simfind", "2,560", "2,558", "ViT-B-32:laion2b_s34b_b79k", "1.2 MB", "/photos/bad.jpg",
                 "truncated JPEG", ODD):
        assert word in text
    assert "/photos/bad.jpg" not in _table(lambda c: info_table(_info(), c, with_errors=False))


# -- index ----------------------------------------------------------------------------------------------------


def _index_report(**counts) -> IndexReport:
    base = dict(scanned=0, unchanged=0, added=0, updated=0, renamed=0, removed=0, failed=0, failures=())
    return IndexReport(**{**base, **counts})


def test_index_summary_of_a_first_run():
    report = _index_report(scanned=120, added=118, failed=2,
                           failures=(Failure(FileRef("/p/a.jpg", 1, 1), "truncated JPEG"),) * 2)
    assert index_summary(report, "/idx", 3.25) == ("indexed: 120 images found, 118 new, 0 changed, 0 unchanged; "
                                                   "2 files could not be read (simfind info --errors); 3.2 s -> /idx")


def test_index_summary_of_a_re_run_with_nothing_to_do():
    assert index_summary(_index_report(scanned=120, unchanged=120), "/idx") == \
        "indexed: 120 images found, 0 new, 0 changed, 120 unchanged -> /idx"


def test_index_summary_names_renames_removals_embeddings_and_refreshes_only_when_there_are_some():
    report = _index_report(scanned=50, unchanged=40, added=3, updated=2, renamed=5, removed=4, embedded=7,
                           refreshed=6)
    assert index_summary(report, "/idx", 0.04) == (
        "indexed: 50 images found, 3 new, 2 changed, 5 renamed, 4 removed, 40 unchanged, 7 embedded, "
        "6 re-read for this simfind version; 0.0 s -> /idx")
    quiet = index_summary(_index_report(scanned=5, added=5), "/idx")
    assert not any(word in quiet for word in ("renamed", "removed", "embedded", "re-read", "could not be read", " s "))
